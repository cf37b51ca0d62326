"""Numba twins of :mod:`._reference` (same names, same signatures), for the attack loop.

:func:`pgd_step` is the Numba step and projection kernels of :mod:`pyquirk.backends.numba_kernels`
in sequence, after one pass that checks the gradient is finite. (Fusing the two into one loop per
row ran 2-3× slower than the two passes: with five arrays in one loop body LLVM gives up its
runtime alias checks and does not vectorise.) :func:`track_best` computes each margin and copies an
improved row in one pass, without the reference's float64 copy of the logits and index arrays.
Serial, like the other attack kernels: they sit between engine calls that use every core.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..backends import numba_kernels as _kernels


@njit(cache=True)
def _all_finite(a):
    """Whether every element of the (C-contiguous) array is finite: v − v is 0 exactly when v is."""
    flat = a.ravel()
    bad = False
    for i in range(flat.size):
        bad |= flat[i] - flat[i] != 0
    return not bad


def pgd_step(x, g, x0, alpha, eps, norm, lo, hi):
    """Twin of :func:`._reference.pgd_step` (``(None, False)`` on a non-finite gradient)."""
    if not _all_finite(g):
        return None, False
    project = _kernels.project_linf if norm == "linf" else _kernels.project_l2
    return project(_kernels.steepest_step(x, g, alpha, norm), x0, eps, lo, hi), True


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
