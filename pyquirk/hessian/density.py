"""Spectral density by stochastic Lanczos quadrature (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019).

For a unit probe v, m Lanczos steps give a tridiagonal T (float64); its eigenvalues θ_j and the
squared first components τ_j of its eigenvectors are the nodes and weights of the m-point Gauss
quadrature of the spectral measure ``μ_v = Σ_i (u_iᵀ v)² δ(λ − λ_i)``. With v = g/√n, g
Rademacher, ``E[μ_v]`` is the uniform measure on the eigenvalues, so averaging R runs estimates
the spectral density ``(1/n) Σ_i δ(λ − λ_i)``; it is smoothed with a Gaussian:

    φ(λ) = (1/R) Σ_r Σ_j τ_rj · N(λ; θ_rj, σ²).

**σ is a standard deviation** (``sigma_convention="std"``, default ``σ = 0.01·(λ_max − λ_min)``).
``sigma_convention="pyhessian"`` reproduces PyHessian's ``density_generate``: its ``sigma_squared``
(default 1e-5) is a *variance*, multiplied by ``max(1, λ_max − λ_min)``, on a grid from the mean
smallest to the mean largest node ±0.01, and the density is renormalised to unit mass on that grid.

The R runs advance in lockstep: each Lanczos step is one block HVP with R tangents. Each run is
fully reorthogonalised against its own basis (twice), so its T is exact to rounding. Bases are kept
in the operator's precision; T (α, β) and its eigenproblem are float64.

Diagnostics: ``∫ λ φ`` = ``mean_r Σ_j τ_rj θ_rj`` = ``mean_r v_rᵀ H v_r`` exactly (smoothing keeps the
mean), an unbiased estimate of tr(H)/n with the standard error over runs. The saddle index gets an
interval from the Chebyshev-Markov-Stieltjes inequalities: for each run, the distribution function
of μ_v at t lies between the Gauss weights summed below the node just under t and above the node
just over t (Golub & Meurant, *Matrices, Moments and Quadrature*, 2010, §6.2).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from .._validate import check_choice, check_positive_int
from ..seeds import stream
from .curvature import as_operator
from .results import DensityResult
from .trace import rademacher

SIGMA_CONVENTIONS = ("std", "pyhessian")
#: bytes the R × m × n Lanczos bases may hold before the runs are done in groups
BASIS_BYTES = 1 << 30


def zero_tolerance(values, n: int, dtype) -> float:
    """``n · ε(dtype) · max|λ|``: eigenvalues this close to 0 count as zero (as numpy's matrix_rank)."""
    return float(n * np.finfo(np.dtype(dtype)).eps * np.nanmax(np.abs(values)))


def _lanczos_runs(op, V0: np.ndarray, m: int):
    """Lockstep single-vector Lanczos from the rows of ``V0: [R, n]`` (unit rows), m steps.

    The bases are kept in the operator's precision (float32 for a float32 net); α and β in float64.

    Returns ``alpha: [R, m]``, ``beta: [R, m−1]``, ``length: [R]`` (steps until an invariant subspace).
    """
    R, n = V0.shape
    dt = np.float32 if np.dtype(getattr(op, "dtype", np.float64)) == np.float32 else np.float64
    basis = np.empty((R, m, n), dtype=dt)
    basis[:, 0] = V0
    alpha, beta = np.zeros((R, m)), np.zeros((R, max(m - 1, 0)))
    length = np.full(R, m)
    active = np.arange(R)
    for j in range(m):
        W64 = op.matmat(basis[active, j])
        alpha[active, j] = np.einsum("rn,rn->r", W64, basis[active, j].astype(np.float64))
        if j == m - 1:
            break
        W = W64.astype(dt, copy=False)
        for i, r in enumerate(active):                   # CGS2 against this run's own basis
            for _ in range(2):
                W[i] -= (basis[r, :j + 1] @ W[i]) @ basis[r, :j + 1]
        b = np.linalg.norm(W.astype(np.float64), axis=1)
        scale = np.abs(alpha[active, :j + 1]).max(axis=1) + np.abs(beta[active, :j]).max(axis=1, initial=0.0)
        stop = b <= 10 * np.finfo(dt).eps * np.maximum(scale, 1e-300)
        length[active[stop]] = j + 1
        beta[active[~stop], j] = b[~stop]
        basis[active[~stop], j + 1] = W[~stop] / b[~stop, None]
        active = active[~stop]
        if active.size == 0:
            break
    return alpha, beta, length


def _gauss(alpha, beta, length):
    """Nodes and weights ``[R, m]`` (NaN/0 padded) of each run's quadrature."""
    R, m = alpha.shape
    nodes, weights = np.full((R, m), np.nan), np.zeros((R, m))
    for r in range(R):
        L = int(length[r])
        theta, U = scipy.linalg.eigh_tridiagonal(alpha[r, :L], beta[r, :L - 1])
        nodes[r, :L], weights[r, :L] = theta, U[0] ** 2
    return nodes, weights


def index_bracket(nodes, weights, t: float):
    """Per-run quadrature estimate and CMS bracket of ``μ_v((−∞, t))``: three ``[R]`` arrays."""
    est, lo, hi = (np.empty(len(nodes)) for _ in range(3))
    for r in range(len(nodes)):
        ok = ~np.isnan(nodes[r])
        x, w = nodes[r, ok], weights[r, ok]
        cw = np.concatenate([[0.0], np.cumsum(w)])
        j = int(np.sum(x < t))
        est[r] = cw[j]
        lo[r] = cw[j - 1] if j >= 1 else 0.0
        hi[r] = cw[j + 1] if j < len(x) else 1.0
    return est, lo, hi


def _se(x):
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def smooth(nodes, weights, sigma: float | None, convention: str, n_grid: int):
    """Grid, density, and the σ (std) used; see the module docstring for the two conventions."""
    lo_all, hi_all = float(np.nanmin(nodes)), float(np.nanmax(nodes))
    if convention == "pyhessian":
        lam_max, lam_min = np.nanmean(np.nanmax(nodes, axis=1)) + 0.01, np.nanmean(np.nanmin(nodes, axis=1)) - 0.01
        grid = np.linspace(lam_min, lam_max, n_grid)
        var = (1e-5 if sigma is None else sigma) * max(1.0, lam_max - lam_min)
        std = float(np.sqrt(var))
    else:
        std = 0.01 * max(hi_all - lo_all, 1e-12) if sigma is None else float(sigma)
        grid = np.linspace(lo_all - 5 * std, hi_all + 5 * std, n_grid)
    ok = ~np.isnan(nodes)
    x, w = nodes[ok], weights[ok] / nodes.shape[0]
    density = np.zeros(n_grid)
    for s in range(0, len(x), 256):
        d = grid[:, None] - x[None, s:s + 256]
        density += (np.exp(-0.5 * (d / std) ** 2) * w[None, s:s + 256]).sum(axis=1)
    density /= std * np.sqrt(2 * np.pi)
    if convention == "pyhessian":
        density /= density.sum() * (grid[1] - grid[0])
    return grid, density, std


def slq(op, n_runs: int = 10, n_steps: int = 80, *, sigma: float | None = None,
        sigma_convention: str = "std", n_grid: int = 1000, zero_tol: float | None = None,
        seed: int = 0) -> DensityResult:
    """Spectral density of H by stochastic Lanczos quadrature.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        n_runs: independent probes R (≥ 2 for standard errors).
        n_steps: Lanczos steps m per run (capped at dim).
        sigma: smoothing; a standard deviation under ``"std"``, PyHessian's ``sigma_squared`` under
            ``"pyhessian"``. Default 0.01·(λ_max − λ_min) and 1e-5 respectively.
        sigma_convention: ``"std"`` or ``"pyhessian"``.
        n_grid: grid points.
        zero_tol: |λ| ≤ zero_tol counts as zero for the index (default :func:`zero_tolerance`).
        seed: ``probes`` stream seed.

    Returns:
        :class:`DensityResult`.
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    R = check_positive_int(n_runs, "n_runs")
    m = min(check_positive_int(n_steps, "n_steps"), op.dim)
    n_grid = check_positive_int(n_grid, "n_grid", minimum=2)
    check_choice(sigma_convention, SIGMA_CONVENTIONS, "sigma_convention")
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    before = dict(op.counts)
    rng = stream("probes", seed)
    V0 = rademacher(rng, (R, op.dim)) / np.sqrt(op.dim)
    itemsize = 4 if np.dtype(getattr(op, "dtype", np.float64)) == np.float32 else 8
    group = max(1, int(BASIS_BYTES // (m * op.dim * itemsize)))
    parts = [_lanczos_runs(op, V0[g:g + group], m) for g in range(0, R, group)]
    alpha, beta, length = (np.concatenate([p[i] for p in parts]) for i in range(3))
    nodes, weights = _gauss(alpha, beta, length)
    grid, density, std = smooth(nodes, weights, sigma, sigma_convention, n_grid)
    means = np.nansum(nodes * weights, axis=1)
    ztol = zero_tolerance(nodes, op.dim, getattr(op, "dtype", np.float64)) if zero_tol is None else float(zero_tol)
    est, lo, hi = index_bracket(nodes, weights, -ztol)
    se_lo, se_hi = (_se(v) if R > 1 else 0.0 for v in (lo, hi))
    bounds = np.clip([lo.mean() - 3 * se_lo, hi.mean() + 3 * se_hi], 0.0, 1.0)
    counts = {k: op.counts[k] - before.get(k, 0) for k in op.counts}
    counts["wall_time_s"] = time.perf_counter() - t0
    return DensityResult(
        grid=grid, density=density, nodes=nodes, weights=weights,
        sigma=float(std if sigma is None and sigma_convention == "std" else (1e-5 if sigma is None else sigma)),
        sigma_std=std, sigma_convention=sigma_convention, dim=int(op.dim),
        mean_eigenvalue=float(means.mean()), mean_se=_se(means),
        grid_mass=float(np.trapezoid(density, grid)), index_estimate=float(est.mean()),
        index_bounds=bounds, zero_tol=ztol,
        semantics={**op.semantics(), "estimator": "stochastic Lanczos quadrature, Rademacher probes, "
                   "full reorthogonalisation, float64 tridiagonal (scipy eigh_tridiagonal)",
                   "n_runs": R, "n_steps": m, "steps_done": length.tolist(),
                   "sigma_convention": sigma_convention,
                   "sigma_meaning": "standard deviation" if sigma_convention == "std" else
                   "PyHessian sigma_squared: variance × max(1, λmax − λmin)",
                   "index_bounds": "CMS bracket averaged over runs ± 3 SE"},
        seeds={"probes": int(seed)}, counts=counts)


__all__ = ["slq", "smooth", "index_bracket", "zero_tolerance", "SIGMA_CONVENTIONS"]
