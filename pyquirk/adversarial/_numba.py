"""Numba twins of :mod:`._reference` (same names, same signatures), for the attack loop.

:func:`pgd_step` runs the row kernels of :mod:`pyquirk.backends.numba_kernels` (step, then
projection) on each row in turn, so a row is read from memory once and stays in L1 between the
two, and no intermediate iterate is allocated; it equals the separate kernels bit for bit, and checks
that each gradient row is finite on the way.
:func:`track_best` computes each margin and copies an improved row in one pass, without the
reference's float64 copy of the logits and index arrays. Serial, like the other attack kernels:
they sit between engine calls that use every core.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..backends.numba_kernels import _project_row, _step_row
from ..backends.reference_kernels import L2_STEP_FLOOR


@njit(cache=True)
def _finite(a):
    """Whether every element of the row is finite (v − v is 0 exactly when v is)."""
    bad = False
    for i in range(a.size):
        bad |= a[i] - a[i] != 0
    return not bad


@njit(cache=True)
def _pgd_step(x, g, x0, alpha, eps, lo, hi, l2, floor):
    N = x0.shape[0]
    out = np.empty_like(x)
    row = np.empty(x.shape[1], x.dtype)      # the stepped row, still in L1 when it is projected
    for m in range(x.shape[0]):
        if not _finite(g[m]):
            return out, False
        _step_row(x[m], g[m], alpha[m], l2, floor, row)
        _project_row(row, x0[m % N], eps[m], lo, hi, l2, out[m])
    return out, True


def pgd_step(x, g, x0, alpha, eps, norm, lo, hi):
    """Twin of :func:`._reference.pgd_step` (``(None, False)`` on a non-finite gradient)."""
    dt = x.dtype.type
    out, ok = _pgd_step(x, g, x0, alpha, eps, dt(lo), dt(hi), norm == "l2", L2_STEP_FLOOR)
    return (out, True) if ok else (None, False)


@njit(cache=True)
def track_best(z, labels, targeted, m_best, x, x_best, z_best):
    """Twin of :func:`._reference.track_best`."""
    M, C = z.shape
    N, D = labels.shape[0], x.shape[1]
    for r in range(M):
        y = labels[r % N]
        own, other = np.float64(z[r, y]), -np.inf
        for j in range(C):
            v = np.float64(z[r, j])
            if j != y and (v > other or v != v):       # a NaN wins, as in NumPy's max
                other = v
        m = own - other if targeted else other - own
        if m > m_best[r]:
            m_best[r] = m
            for i in range(D):                        # element loops: 4× faster than row slices here
                x_best[r, i] = x[r, i]
            for j in range(C):
                z_best[r, j] = z[r, j]
