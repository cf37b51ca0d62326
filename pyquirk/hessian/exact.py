"""Exact small-net mode: the full Hessian from block HVPs, its spectrum, and estimator checks.

``full_hessian`` multiplies the identity in column blocks (``H[:, J] = H I[:, J]``), so an n×n
Hessian costs n HVPs in ⌈n/b⌉ block calls; it is exact to rounding (no finite differences). The
matrix is returned as assembled; ``exact_spectrum`` diagonalises its symmetric part with
``scipy.linalg.eigh`` and reports the asymmetry as a rounding diagnostic.

``check_estimators`` is a user feature: on a net small enough for the full Hessian, it runs every
estimator of this package and reports its error against the exact answer next to the error the
estimator itself claims (Lanczos/power: the residual bound |θ − λ| ≤ ‖r‖; Hutchinson, Hutch++
and SLQ: 3 standard errors; SLQ index: its interval).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from .._validate import check_positive_int
from .curvature import as_operator
from .density import slq, zero_tolerance
from .lanczos import lanczos, power_iteration
from .results import EstimatorCheck, Spectrum
from .trace import hutchinson, hutchpp

#: largest dimension ``full_hessian`` builds unless ``max_dim`` is raised
MAX_DIM = 5000


def full_hessian(op, *, block_size: int = 256, max_dim: int = MAX_DIM) -> np.ndarray:
    """The full ``[dim, dim]`` matrix of the operator (float64), built with block HVPs.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        block_size: identity columns per block HVP.
        max_dim: refuse larger operators (memory ``8·dim²`` bytes, time ``dim`` HVPs).

    Returns:
        ``H: [dim, dim]`` as assembled (symmetric up to rounding).
    """
    op = as_operator(op)
    n = op.dim
    block_size = check_positive_int(block_size, "block_size")
    if n > check_positive_int(max_dim, "max_dim"):
        raise ValueError(f"full_hessian: dim={n} exceeds max_dim={max_dim} ({8 * n * n / 2**30:.1f} GiB, "
                         f"{n} HVPs); raise max_dim or use the estimators")
    H = np.empty((n, n))
    for s in range(0, n, block_size):
        e = min(s + block_size, n)
        E = np.zeros((e - s, n))
        E[np.arange(e - s), np.arange(s, e)] = 1.0
        H[s:e] = op.matmat(E)                                # rows of H are H e_j (H symmetric)
    return H


def spectrum_of(H: np.ndarray, dtype=np.float64, semantics: dict | None = None,
                counts: dict | None = None) -> Spectrum:
    """:class:`Spectrum` of an assembled matrix (eigenvalues of its symmetric part)."""
    norm = np.linalg.norm(H)
    asym = float(np.linalg.norm(H - H.T) / norm) if norm > 0 else 0.0
    lam = scipy.linalg.eigh(0.5 * (H + H.T), eigvals_only=True)
    n = len(lam)
    ztol = zero_tolerance(lam, n, dtype) if n else 0.0
    neg, pos = int(np.sum(lam < -ztol)), int(np.sum(lam > ztol))
    return Spectrum(eigenvalues=lam, zero_tol=ztol, index=neg / n, n_negative=neg,
                    n_zero=n - neg - pos, n_positive=pos, asymmetry=asym,
                    semantics={**(semantics or {}), "eigensolver": "scipy.linalg.eigh of (H + Hᵀ)/2",
                               "zero_tol_rule": "dim · eps(dtype) · max|λ|",
                               "index": "fraction of eigenvalues < −zero_tol"},
                    counts=counts or {})


def exact_spectrum(op, *, block_size: int = 256, max_dim: int = MAX_DIM) -> Spectrum:
    """All eigenvalues of the operator via :func:`full_hessian` and ``scipy.linalg.eigh``."""
    t0 = time.perf_counter()
    op = as_operator(op)
    before = dict(op.counts)
    H = full_hessian(op, block_size=block_size, max_dim=max_dim)
    counts = {k: op.counts[k] - before.get(k, 0) for k in op.counts}
    spec = spectrum_of(H, getattr(op, "dtype", np.float64), op.semantics(), counts)
    spec.counts["wall_time_s"] = time.perf_counter() - t0
    return spec


def _row(quantity, estimator, estimate, exact, stated, hvps):
    err = abs(float(estimate) - float(exact))
    return {"quantity": quantity, "estimator": estimator, "estimate": float(estimate),
            "exact": float(exact), "abs_error": err, "rel_error": err / max(abs(float(exact)), 1e-300),
            "stated_error": float(stated), "within_stated": bool(err <= stated), "hvps": int(hvps)}


def check_estimators(op, *, k: int = 5, n_probes: int = 100, slq_runs: int = 10, slq_steps: int = 80,
                     seed: int = 0, max_dim: int = MAX_DIM) -> EstimatorCheck:
    """Run every estimator on ``op`` and compare it with the exact spectrum.

    Rows: top-k and bottom-k eigenvalues by block Lanczos (stated error: the residual ‖r‖,
    which bounds |θ − λ| for the nearest eigenvalue); the top eigenvalue by power iteration; the
    trace by Hutchinson (``n_probes``) and Hutch++ (same HVP budget), stated error 3 SE; tr/n and
    the saddle index from SLQ (3 SE; the index interval's half-width around its estimate).

    Returns:
        :class:`EstimatorCheck` with one row per quantity and the exact :class:`Spectrum`.
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    before = dict(op.counts)
    spec = exact_spectrum(op, max_dim=max_dim)
    lam = spec.eigenvalues
    rows = []
    floor = spec.zero_tol        # rounding of the exact eigenvalues themselves
    top = lanczos(op, k, "largest", seed=seed)
    for i in range(k):
        rows.append(_row(f"λ_max[{i}]", "block Lanczos", top.eigenvalues[i], lam[-1 - i],
                         top.residuals[i] + floor, top.counts["hvps"] if i == 0 else 0))
    bot = lanczos(op, k, "smallest", seed=seed)
    for i in range(k):
        rows.append(_row(f"λ_min[{i}]", "block Lanczos", bot.eigenvalues[i], lam[i],
                         bot.residuals[i] + floor, bot.counts["hvps"] if i == 0 else 0))
    pw = power_iteration(op, 1, seed=seed, max_iter=500)
    top_mag = lam[np.argmax(np.abs(lam))]
    rows.append(_row("λ_max|·|", "power iteration", pw.eigenvalues[0], top_mag, pw.residuals[0] + floor,
                     pw.counts["hvps"]))
    tr = float(lam.sum())
    h = hutchinson(op, n_probes, seed=seed)
    rows.append(_row("trace", "Hutchinson", h.estimate, tr, 3 * h.standard_error, h.counts["hvps"]))
    hp = hutchpp(op, n_probes, seed=seed)
    rows.append(_row("trace", "Hutch++", hp.estimate, tr, 3 * hp.standard_error, hp.counts["hvps"]))
    d = slq(op, slq_runs, slq_steps, seed=seed, zero_tol=spec.zero_tol)
    rows.append(_row("trace/n", "SLQ", d.mean_eigenvalue, tr / len(lam), 3 * d.mean_se, d.counts["hvps"]))
    lo, hi = d.index_bounds
    rows.append(_row("saddle index", "SLQ", d.index_estimate, spec.index,
                     max(d.index_estimate - lo, hi - d.index_estimate), 0))
    counts = {kk: op.counts[kk] - before.get(kk, 0) for kk in op.counts}
    counts["wall_time_s"] = time.perf_counter() - t0
    return EstimatorCheck(rows=rows, exact=spec, density=d,
                          semantics={**op.semantics(), "k": k, "n_probes": n_probes,
                                     "slq_runs": slq_runs, "slq_steps": slq_steps,
                                     "stated_error": "Lanczos/power: residual ‖Hv−θv‖ (≥ |θ−λ|) + zero_tol; "
                                     "stochastic: 3 standard errors; index: interval half-width"},
                          seeds={"probes": int(seed)}, counts=counts)


__all__ = ["full_hessian", "exact_spectrum", "spectrum_of", "check_estimators", "MAX_DIM"]
