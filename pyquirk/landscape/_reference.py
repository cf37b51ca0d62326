"""NumPy twin of the landscape's per-tile kernel (Numba twin: :mod:`._numba`).

:func:`combine` forms the first layer's pre-activations of every point of a tile from the K
products computed once per grid (the first-layer shortcut, docs/landscape.md):
``out[t] = Σ_k C[t, k]·H[k]``, k ascending, each product and sum rounded to the dtype.
"""
from __future__ import annotations

import numpy as np


def combine(C, H, out):
    """``out[t, m] = Σ_k C[t, k]·H[k, m]`` (k ascending) for ``C: [T, K]``, ``H: [K, M]``, ``out: [T, M]``."""
    np.multiply(C[:, :1], H[None, 0], out=out)
    for k in range(1, C.shape[1]):
        out += C[:, k:k + 1] * H[None, k]
    return out
