"""NumPy twins of the attack loop's kernels: the specification of each (Numba twins: :mod:`._numba`).

An attack iteration is the engine's input gradient followed by two kernels over the rows
``[M, D]`` of the iterate (M = members × examples, features flattened; row m belongs to example
``m % N`` of ``x0: [N, D]`` and of ``labels: [N]``):

- :func:`pgd_step`: the steepest step for the norm, then projection onto the ε-ball around x0,
  then clipping: exactly ``project(steepest_step(x, g, α), x0, ε, lo, hi)`` of
  :mod:`pyquirk.kernels`, with the check that g is finite (an overflowing model);
- :func:`track_best`: each row's attack margin, and the best iterate so far (largest margin),
  updated in place.
"""
from __future__ import annotations

import numpy as np

from ..backends import reference_kernels as _kernels


def margins_rows(z, labels, targeted: bool) -> np.ndarray:
    """Margins ``[M]`` (float64) of logits ``z: [M, C]`` for labels ``[M]``: untargeted
    ``max_{j≠y} z_j − z_y``, targeted ``z_t − max_{j≠t} z_j`` (NaN when a logit is NaN)."""
    z64 = np.array(z, dtype=np.float64)                     # a copy: the label column is masked
    rows = np.arange(z64.shape[0])
    own = z64[rows, labels]
    z64[rows, labels] = -np.inf
    other = z64.max(1)
    return own - other if targeted else other - own


def pgd_step(x, g, x0, alpha, eps, norm, lo, hi):
    """``(project(steepest_step(x, g, α), x0, ε, lo, hi), True)``, or ``(None, False)`` when g has
    a NaN or an infinity. ``alpha``, ``eps``: ``[M]`` float64."""
    if not np.isfinite(g).all():
        return None, False
    project = _kernels.project_linf if norm == "linf" else _kernels.project_l2
    return project(_kernels.steepest_step(x, g, alpha, norm), x0, eps, lo, hi), True


def track_best(z, labels, targeted, m_best, x, x_best, z_best):
    """In place: rows whose margin beats ``m_best`` copy their margin, ``x`` row and ``z`` row.

    ``z, z_best: [M, C]``, ``x, x_best: [M, D]``, ``m_best: [M]`` float64, ``labels: [N]`` int64
    (row m's label is ``labels[m % N]``). A NaN margin never counts as better.
    """
    m = margins_rows(z, np.tile(labels, z.shape[0] // labels.shape[0]), targeted)
    rows = np.flatnonzero(m > m_best)
    x_best[rows] = x[rows]
    z_best[rows] = z[rows]
    m_best[rows] = m[rows]
