"""Stochastic trace estimators with Rademacher probes, batched through the block HVP.

- Hutchinson (1989): ``tr(H) ≈ (1/m) Σ_i g_iᵀ H g_i`` with i.i.d. Rademacher g_i (entries ±1).
  Unbiased; its standard error is the sample standard deviation of ``g_iᵀ H g_i`` over √m.
- Hutch++ (Meyer, Musco, Musco & Woodruff 2021, Algorithm 1): with m HVPs split in three equal
  parts, sketch ``Q = orth(H S)`` from m/3 probes, take ``tr(Qᵀ H Q)`` exactly (m/3 HVPs) and
  estimate the trace of the deflated remainder ``(I − QQᵀ) H (I − QQᵀ)`` by Hutchinson with the
  last m/3 probes. Unbiased; its standard error is that of the Hutchinson part, given Q (the
  exact part carries no sampling error once Q is fixed). It wins when H has a few large
  eigenvalues, as neural-network Hessians do.

Probes come from the ``probes`` RNG stream (:func:`pyquirk.seeds.stream`) with the given seed, and
go through ``op.matmat`` in blocks of ``block_size`` (one engine call per block and batch).
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_positive_int
from ..seeds import stream
from .curvature import as_operator
from .results import TraceResult


def rademacher(rng: np.random.Generator, shape) -> np.ndarray:
    """Entries ±1 with probability 1/2 each, float64."""
    return rng.integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0


def _quadratic_forms(op, G: np.ndarray, block_size: int) -> np.ndarray:
    """``[g_iᵀ H g_i]`` for the rows of ``G: [m, n]``, in blocks."""
    out = np.empty(G.shape[0])
    for s in range(0, G.shape[0], block_size):
        out[s:s + block_size] = np.einsum("ij,ij->i", G[s:s + block_size], op.matmat(G[s:s + block_size]))
    return out


def _counts(op, before, t0):
    counts = {k: op.counts[k] - before.get(k, 0) for k in op.counts}
    counts["wall_time_s"] = time.perf_counter() - t0
    return counts


def hutchinson(op, n_probes: int = 100, *, block_size: int = 32, seed: int = 0) -> TraceResult:
    """Hutchinson's trace estimate with its standard error.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        n_probes: Rademacher probes m (≥ 2, for a standard error).
        block_size: probes per block HVP.
        seed: ``probes`` stream seed.

    Returns:
        :class:`TraceResult` with ``samples: [m]`` the values ``g_iᵀ H g_i``.
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    m = check_positive_int(n_probes, "n_probes", minimum=2)
    block_size = check_positive_int(block_size, "block_size")
    before = dict(op.counts)
    rng = stream("probes", seed)
    samples = np.concatenate([_quadratic_forms(op, rademacher(rng, (min(block_size, m - s), op.dim)), block_size)
                              for s in range(0, m, block_size)])
    return TraceResult(
        estimate=float(samples.mean()), standard_error=float(samples.std(ddof=1) / np.sqrt(m)),
        samples=samples, exact_part=0.0, method="hutchinson", n_matvecs=m,
        semantics={**op.semantics(), "estimator": "Hutchinson, Rademacher probes",
                   "n_probes": m, "block_size": block_size,
                   "standard_error": "sample std (ddof=1) of gᵀHg over sqrt(m)"},
        seeds={"probes": int(seed)}, counts=_counts(op, before, t0))


def hutchpp(op, n_matvecs: int = 99, *, block_size: int = 32, seed: int = 0) -> TraceResult:
    """Hutch++ trace estimate (Meyer et al. 2021) with the standard error of its sampled part.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        n_matvecs: total HVPs m (≥ 6); m//3 sketch probes, m//3 for ``H Q``, the rest for the
            deflated Hutchinson part.
        block_size: vectors per block HVP.
        seed: ``probes`` stream seed.
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    m = check_positive_int(n_matvecs, "n_matvecs", minimum=6)
    block_size = check_positive_int(block_size, "block_size")
    before = dict(op.counts)
    rng = stream("probes", seed)
    s = min(m // 3, op.dim)
    S = rademacher(rng, (s, op.dim))
    HS = np.concatenate([op.matmat(S[i:i + block_size]) for i in range(0, s, block_size)])
    q, _ = np.linalg.qr(HS.T)                                    # [n, s] orthonormal
    Q = q.T
    HQ = np.concatenate([op.matmat(Q[i:i + block_size]) for i in range(0, s, block_size)])
    exact = float(np.einsum("ij,ij->i", Q, HQ).sum())
    n_g = m - 2 * s
    G = rademacher(rng, (n_g, op.dim))
    G -= (G @ Q.T) @ Q                                           # (I − QQᵀ) g
    samples = _quadratic_forms(op, G, block_size)
    return TraceResult(
        estimate=exact + float(samples.mean()), standard_error=float(samples.std(ddof=1) / np.sqrt(n_g)),
        samples=samples, exact_part=exact, method="hutch++", n_matvecs=2 * s + n_g,
        semantics={**op.semantics(), "estimator": "Hutch++ (Meyer et al. 2021), Rademacher probes",
                   "n_matvecs": 2 * s + n_g, "sketch_size": s, "block_size": block_size,
                   "standard_error": "of the deflated Hutchinson part, given the sketch Q"},
        seeds={"probes": int(seed)}, counts=_counts(op, before, t0))


__all__ = ["hutchinson", "hutchpp", "rademacher"]
