"""Numba twin of :mod:`._reference` (same name and signature).

:func:`combine` runs the reference's K passes over blocks of 2048 output elements, so each block
stays in L1 across the passes and is written to memory once (NumPy's version makes K passes over
the whole ``[T, M]`` tile; ``np.einsum``, used before, took 1.5–1.7× longer than this on the tiles of
``python -m bench.landscape_bench``). Serial: the native pass that follows owns the cores (see
``evaluate._serial_numba``).
"""
from __future__ import annotations

from numba import njit

BLOCK = 2048   # output elements per block: 8 KB in float32


@njit(cache=True)
def combine(C, H, out):
    """Twin of :func:`._reference.combine` (the same products and sums, in the same order)."""
    T, K = C.shape
    M = H.shape[1]
    for t in range(T):
        for m0 in range(0, M, BLOCK):
            o = out[t, m0:m0 + BLOCK]               # 1-D views: LLVM vectorises these loops
            h = H[0, m0:m0 + BLOCK]
            c = C[t, 0]
            for m in range(o.size):
                o[m] = c * h[m]
            for k in range(1, K):
                h = H[k, m0:m0 + BLOCK]
                c = C[t, k]
                for m in range(o.size):
                    o[m] += c * h[m]
    return out
