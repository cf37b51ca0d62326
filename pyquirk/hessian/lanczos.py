"""Extreme eigenpairs: thick-restart block Lanczos, and block power iteration as the baseline.

Block Lanczos (Golub & Underwood 1977; thick restart: Wu & Simon 2000) builds an orthonormal
basis of the block Krylov space ``span{Q₀, H Q₀, H² Q₀, ...}``, one block of b vectors per step,
so each step is one block HVP in which the b tangents share the primal pass. Each new block goes
through the block three-term recurrence and then is orthogonalised once more against the whole
basis, twice when that pass shrinks it below 1/√2 of its norm (the DGKS criterion): full
reorthogonalisation, no ghost eigenvalues. The basis is kept in the operator's precision (float32
for a float32 net, which halves the memory traffic of the reorthogonalisation); the projected matrix ``T = Qᵀ H Q`` (block
tridiagonal, with an arrowhead after a restart) is float64 and diagonalised with
``scipy.linalg.eigh``. When the basis is full, the wanted Ritz vectors (plus a buffer) are kept
and the iteration continues from the last residual block (thick restart).

Convergence follows ARPACK's rule, so a tolerance means the same as in ``scipy.sparse.linalg.eigsh``:
Ritz pair (θ, x) is converged when ``‖H x − θ x‖ ≤ tol · max(|θ|, ε^(2/3)·‖T‖)``. The residuals
reported are true ones: the products ``H Q`` returned by the operator are kept next to the basis
Q, so ``H x = (H Q) y`` is a combination of actual HVP outputs (not the three-term recurrence's
estimate), at no extra HVP. The converged flags are judged on them.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from .._validate import check_choice, check_positive_int
from ..seeds import stream
from .curvature import as_operator
from .results import EigenResult

WHICH = ("largest", "smallest", "both")
EPS23 = np.finfo(np.float64).eps ** (2 / 3)
#: a second reorthogonalisation pass when one pass shrinks a vector below this fraction (Daniel et al. 1976)
DGKS = 1 / np.sqrt(2)


def default_tol(op) -> float:
    """1e-10 for a float64 operator, 1e-4 for float32 (whose HVPs carry ~1e-7 relative error)."""
    return 1e-10 if np.dtype(getattr(op, "dtype", np.float64)) == np.float64 else 1e-4


def _check_k(k, n, which):
    k = check_positive_int(k, "k")
    n_want = 2 * k if which == "both" else k
    if n_want >= n:
        raise ValueError(f"k={k} must be smaller than the operator's dimension {n}"
                         f"{' (2k for which=both)' if which == 'both' else ''}; "
                         "use exact_spectrum() for the whole spectrum")
    return k, n_want


def _wanted(theta: np.ndarray, count: int, which: str) -> np.ndarray:
    """Indices (into ascending ``theta``) of the ``count`` most wanted Ritz values, best first."""
    m = len(theta)
    if which == "largest":
        return np.arange(m - 1, m - 1 - count, -1)
    if which == "smallest":
        return np.arange(count)
    top = np.arange(m - 1, m - 1 - (count + 1) // 2, -1)
    return np.concatenate([top, np.arange(count - len(top))])


def _converged(res, theta, norm, tol):
    return res <= tol * np.maximum(np.abs(theta), EPS23 * norm)


def _orth_rows(V):
    """Orthonormal rows spanning the rows of ``V: [b, n]`` (QR, signs fixed to R's diagonal)."""
    q, r = np.linalg.qr(V.T)
    return (q * np.where(np.diag(r) < 0, -1.0, 1.0)).T


def lanczos(op, k: int = 5, which: str = "largest", *, block_size: int | None = None,
            tol: float | None = None, max_basis: int | None = None, max_restarts: int = 100,
            seed: int = 0, keep_vectors: bool = True) -> EigenResult:
    """The k largest and/or smallest eigenpairs of a symmetric operator by block Lanczos.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``, or a symmetric array).
        k: eigenpairs per end wanted; ``k < dim`` (``2k < dim`` for ``which="both"``).
        which: ``"largest"`` (algebraic, i.e. the top of the spectrum), ``"smallest"`` (the bottom,
            most negative first) or ``"both"`` (k of each, from one basis).
        block_size: vectors per block HVP (default 1). A single Krylov vector sees one copy of a
            repeated eigenvalue; use ``block_size ≥ m`` where multiplicity m is expected (e.g. at
            symmetric points). Larger blocks need more HVPs in total (top-10 of the benchmark MLP:
            78 at b=1, 118 at b=2) and pay only where the backend's block HVP is much cheaper per
            tangent than a single one (with the reused primal pass it is not; docs/hessian.md §2).
        tol: ARPACK-style relative residual tolerance (default: :func:`default_tol`).
        max_basis: basis vectors kept before a thick restart (default ``max(n_want + 6b, 40)``,
            at most ``dim``).
        max_restarts: give up (``converged`` False) after this many restarts.
        seed: seed of the ``probes`` stream that draws the starting block.
        keep_vectors: return the eigenvectors ``[k, dim]`` (else None).

    Returns:
        :class:`EigenResult`; eigenvalues descending for ``"largest"``, ascending for
        ``"smallest"``, and for ``"both"`` the k largest (descending) then the k smallest
        (ascending).
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    which = check_choice(which, WHICH, "which")
    n = op.dim
    k, n_want = _check_k(k, n, which)
    tol = default_tol(op) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    b = 1 if block_size is None else check_positive_int(block_size, "block_size")
    b = min(b, n - n_want) if block_size is None else min(b, n)
    m = min(n, max(n_want + 6 * b, 40) if max_basis is None else check_positive_int(max_basis, "max_basis"))
    if m < min(n, n_want + 2 * b):
        raise ValueError(f"max_basis={m} is too small for k={k} and block_size={b}: "
                         f"need at least {n_want + 2 * b}")
    before = dict(op.counts)
    rng = stream("probes", seed)

    dt = np.float32 if np.dtype(getattr(op, "dtype", np.float64)) == np.float32 else np.float64
    basis = np.empty((m, n), dtype=dt)                      # the operator's precision (T is float64)
    prods = np.empty((m, n), dtype=dt)                      # H·basis, as the operator returned it
    T = np.zeros((m, m))
    basis[:b] = _orth_rows(rng.standard_normal((b, n)))
    lo, s, e = 0, 0, b                                       # T couples [s, e) to [lo, s)
    iterations = restarts = 0
    exhausted = False
    while True:
        Q = basis[s:e]
        W64 = op.matmat(Q)
        prods[s:e] = W64
        iterations += 1
        A = W64 @ Q.T.astype(np.float64)
        T[s:e, s:e] = A = 0.5 * (A + A.T)
        W = W64.astype(dt, copy=False)
        W -= (A @ Q).astype(dt, copy=False)                  # the block recurrence ...
        if s > lo:
            W -= T[s:e, lo:s].astype(dt) @ basis[lo:s]
        before_norm = np.linalg.norm(W, axis=1)
        for _ in range(2):                                   # ... then full reorthogonalisation (DGKS)
            W -= (W @ basis[:e].T) @ basis[:e]
            after = np.linalg.norm(W, axis=1)
            if np.all(after > DGKS * before_norm):
                break
            before_norm = after
        theta, Y = scipy.linalg.eigh(T[:e, :e])
        norm = max(np.abs(theta).max(), 1e-300)
        # next block from the residual: W = B_nextᵀ Q_next (SVD, rank-revealing)
        r = min(e - s, n - e)
        if r == 0:
            exhausted, B = True, np.zeros((0, e - s))
        else:
            if e - s == 1:
                U, S, Vt = np.ones((1, 1)), after[:1].astype(np.float64), W / max(after[0], 1e-300)
            else:
                U, S, Vt = np.linalg.svd(W.astype(np.float64), full_matrices=False)
            U, S, Vt = U[:, :r], S[:r], np.array(Vt[:r], dtype=dt)
            dead = S <= 10 * np.finfo(dt).eps * max(norm, S.max(initial=0.0))
            if dead.any():                                   # invariant subspace: restart the direction
                S = np.where(dead, 0.0, S)
                Vt[dead] = rng.standard_normal((int(dead.sum()), n))
                Vt -= (Vt @ basis[:e].T) @ basis[:e]
            Qn = Vt / np.linalg.norm(Vt, axis=1, keepdims=True) if r == 1 else _orth_rows(Vt)
            B = S[:, None] * U.T                             # [r, b_cur]
        if e >= n_want:
            want = _wanted(theta, n_want, which)
            est = np.linalg.norm(B @ Y[s:e][:, want], axis=0)
            if exhausted or np.all(_converged(est, theta[want], norm, tol)) or restarts >= max_restarts:
                break
        if e + r <= m:                                       # extend the basis
            basis[e:e + r] = Qn
            T[e:e + r, s:e], T[s:e, e:e + r] = B, B.T
            lo, s, e = s, e, e + r
            continue
        # thick restart: keep the l most wanted Ritz vectors plus the residual block
        l_keep = int(np.clip((m - r) // 2, n_want, m - 2 * r))
        keep = _wanted(theta, l_keep, which)
        Yk = Y[:, keep].T.astype(dt)
        basis[:l_keep] = Yk @ basis[:e]
        prods[:l_keep] = Yk @ prods[:e]
        coupling = B @ Y[s:e][:, keep]                       # [r, l]
        T[:] = 0.0
        T[:l_keep, :l_keep] = np.diag(theta[keep])
        basis[l_keep:l_keep + r] = Qn
        T[l_keep:l_keep + r, :l_keep], T[:l_keep, l_keep:l_keep + r] = coupling, coupling.T
        lo, s, e = 0, l_keep, l_keep + r
        restarts += 1

    order = _wanted(theta, n_want, which)
    if which == "both":   # k largest descending, then k smallest ascending
        order = np.concatenate([np.arange(len(theta) - 1, len(theta) - 1 - k, -1), np.arange(k)])
    vals = theta[order]
    Yo = Y[:, order].T
    vecs = (Yo.astype(dt) @ basis[:e]).astype(np.float64)
    HV = (Yo.astype(dt) @ prods[:e]).astype(np.float64)
    res = np.linalg.norm(HV - vals[:, None] * vecs, axis=1)
    counts = {key: op.counts[key] - before.get(key, 0) for key in op.counts}
    counts["wall_time_s"] = time.perf_counter() - t0
    return EigenResult(
        eigenvalues=vals, residuals=res, converged=_converged(res, vals, norm, tol),
        eigenvectors=vecs if keep_vectors else None,
        residual_estimates=np.linalg.norm(B @ Y[s:e][:, order], axis=0),
        iterations=iterations, restarts=restarts, which=which, method="block-lanczos",
        semantics={**op.semantics(), "estimator": "thick-restart block Lanczos, full reorthogonalisation "
                   "(DGKS), T in float64", "basis_dtype": np.dtype(dt).name, "which": which, "k": k,
                   "block_size": b, "max_basis": m,
                   "tol": tol, "tol_rule": "‖Hx−θx‖ ≤ tol·max(|θ|, ε^(2/3)‖T‖) (ARPACK)",
                   "residuals": "‖(HQ)y − θQy‖ from the stored HVP outputs HQ (true, up to rounding)",
                   "krylov_exhausted": exhausted},
        seeds={"probes": int(seed)}, counts=counts)


def power_iteration(op, k: int = 1, *, tol: float | None = None, max_iter: int = 1000,
                    seed: int = 0, keep_vectors: bool = True) -> EigenResult:
    """The k eigenpairs of largest magnitude by block power (subspace) iteration: the baseline.

    Each step multiplies the current k vectors (one block HVP), does a Rayleigh-Ritz projection,
    and re-orthonormalises ``H X``. With k = 1 this is the power method PyHessian uses for its top
    eigenvalue, with a residual test instead of its relative-change test. It converges at the rate
    ``|λ_{k+1} / λ_k|`` per step, and to the largest *magnitude*, which can be negative.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        k: vectors in the block, ``k < dim``.
        tol: ARPACK-style residual tolerance (see :mod:`.lanczos`); default :func:`default_tol`.
        max_iter: maximum steps.
        seed: ``probes`` stream seed of the starting block.

    Returns:
        :class:`EigenResult`, eigenvalues by decreasing magnitude.
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    k, _ = _check_k(k, op.dim, "largest")
    tol = default_tol(op) if tol is None else float(tol)
    max_iter = check_positive_int(max_iter, "max_iter")
    before = dict(op.counts)
    V = _orth_rows(stream("probes", seed).standard_normal((k, op.dim)))
    for it in range(1, max_iter + 1):
        W = op.matmat(V)
        A = V @ W.T
        theta, Y = scipy.linalg.eigh(0.5 * (A + A.T))
        order = np.argsort(-np.abs(theta), kind="stable")
        theta, Y = theta[order], Y[:, order]
        X, HX = Y.T @ V, Y.T @ W
        res = np.linalg.norm(HX - theta[:, None] * X, axis=1)
        conv = _converged(res, theta, np.abs(theta).max(), tol)
        if conv.all():
            break
        V = _orth_rows(HX)
    counts = {key: op.counts[key] - before.get(key, 0) for key in op.counts}
    counts["wall_time_s"] = time.perf_counter() - t0
    return EigenResult(
        eigenvalues=theta, residuals=res, converged=conv, eigenvectors=X if keep_vectors else None,
        residual_estimates=res, iterations=it, restarts=0, which="magnitude", method="power",
        semantics={**op.semantics(), "estimator": "block power (subspace) iteration with Rayleigh-Ritz",
                   "which": "magnitude", "k": k, "tol": tol, "max_iter": max_iter,
                   "tol_rule": "‖Hx−θx‖ ≤ tol·max(|θ|, ε^(2/3)‖T‖) (ARPACK)"},
        seeds={"probes": int(seed)}, counts=counts)


def top_eigen(op, k: int = 5, **kwargs) -> EigenResult:
    """The k largest eigenpairs (descending): ``lanczos(op, k, "largest", ...)``."""
    return lanczos(op, k, "largest", **kwargs)


def bottom_eigen(op, k: int = 5, **kwargs) -> EigenResult:
    """The k smallest eigenpairs (ascending; the most negative curvature first)."""
    return lanczos(op, k, "smallest", **kwargs)


__all__ = ["lanczos", "power_iteration", "top_eigen", "bottom_eigen", "default_tol", "WHICH"]
