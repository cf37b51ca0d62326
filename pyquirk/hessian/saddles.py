"""Saddles (Dauphin et al. 2014): the saddle index, critical points, and curvature along trajectories.

**Saddle index** = fraction of eigenvalues of H below ``−zero_tol`` (``zero_tol = dim·ε·max|λ|``,
so rounding-level eigenvalues of flat directions count as zero). Exact from the full Hessian when
``dim ≤ max_dim``; otherwise estimated by SLQ with an interval (see :mod:`.density`).

**Critical points** minimise ``f(θ) = ½‖∇L(θ)‖²`` (∇f = H ∇L). The method is Levenberg-Marquardt
on the residual ``r(θ) = ∇L(θ)`` with the *exact* Jacobian ``∂r/∂θ = H`` (the full Hessian from
block HVPs, diagonalised once per iteration, H = U Λ Uᵀ). The step solves
``(H² + μI) p = −H g``, i.e. ``p = −U diag(λ/(λ² + μ)) Uᵀ g``: a Newton step ``−H⁺g`` when μ → 0,
a short gradient step on f when μ is large. The damping follows Nielsen's gain-ratio rule on the
actual vs predicted decrease of ‖g‖²; a rejected step only costs one gradient, since the
eigendecomposition is reused. Because it drives ‖∇L‖ to zero rather than L down, it converges to
the critical point of whatever index lies near the start: saddles as well as minima. It runs in
float64 and stops when ``‖∇L‖ ≤ max(rtol·‖∇L(start)‖, atol)``. It can stall where ``H g ≈ 0`` with
``g ≠ 0`` (a minimum of ‖∇L‖ that is not critical); such starts are reported unconverged.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.linalg

from .._validate import as_float_array, check_choice, check_positive_int
from ..results import Result
from .curvature import Curvature, as_operator, split_data
from .density import slq
from .exact import MAX_DIM, full_hessian, spectrum_of
from .results import SaddleIndex


def saddle_index(op, method: str = "auto", *, max_dim: int = MAX_DIM, **slq_kwargs) -> SaddleIndex:
    """Fraction of negative eigenvalues of the operator.

    Args:
        op: a :class:`Curvature` (or an operator with ``dim`` and ``matmat``).
        method: ``"exact"`` (full Hessian + eigh), ``"slq"`` (estimate with an interval), or
            ``"auto"`` (exact when ``dim ≤ max_dim``).
        max_dim: the exact method's size limit.
        **slq_kwargs: passed to :func:`pyquirk.hessian.slq` (``n_runs``, ``n_steps``, ``seed``, ...).
    """
    t0 = time.perf_counter()
    op = as_operator(op)
    method = check_choice(method, ("auto", "exact", "slq"), "method")
    if method == "auto":
        method = "exact" if op.dim <= max_dim else "slq"
    before = dict(op.counts)
    if method == "exact":
        spec = spectrum_of(full_hessian(op, max_dim=max_dim), getattr(op, "dtype", np.float64))
        out = SaddleIndex(index=spec.index, lower=spec.index, upper=spec.index, method="exact",
                          dim=op.dim, zero_tol=spec.zero_tol, n_negative=spec.n_negative,
                          eigenvalues=spec.eigenvalues,
                          semantics={**op.semantics(), "index": "fraction of eigenvalues < −zero_tol",
                                     "zero_tol_rule": "dim · eps(dtype) · max|λ|"})
    else:
        d = slq(op, **slq_kwargs)
        out = SaddleIndex(index=d.index_estimate, lower=float(d.index_bounds[0]), upper=float(d.index_bounds[1]),
                          method="slq", dim=op.dim, zero_tol=d.zero_tol, grid=d.grid, density=d.density,
                          semantics={**d.semantics, "index": "SLQ quadrature estimate of the fraction "
                                     "< −zero_tol; bounds: CMS bracket ± 3 SE"}, seeds=d.seeds)
    out.counts = {k: op.counts[k] - before.get(k, 0) for k in op.counts}
    out.counts["wall_time_s"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------ critical points
@dataclasses.dataclass
class CriticalPoints(Result):
    """Critical points found from S starts (:func:`find_critical_points`).

    Attributes:
        theta: ``[S, P]`` final points; ``start: [S, P]`` the starts.
        loss, start_loss: ``[S]`` mean loss at the final point and at the start.
        grad_norm, start_grad_norm: ``[S]`` ‖∇L‖ over the selected parameters.
        index: ``[S]`` exact saddle index at the final point; ``n_negative: [S]``.
        lam_min, lam_max: ``[S]`` extreme eigenvalues at the final point.
        converged: ``[S]`` ``grad_norm ≤ max(rtol·start_grad_norm, atol)``.
        iterations: ``[S]`` LM iterations (each: one full Hessian).
        grad_history: ``[S, max_iter + 1]`` ‖∇L‖ per iteration, NaN-padded.
        info: per-start labels (e.g. ``{"run": [S], "step": [S]}``).
    """

    theta: np.ndarray
    start: np.ndarray
    loss: np.ndarray
    start_loss: np.ndarray
    grad_norm: np.ndarray
    start_grad_norm: np.ndarray
    index: np.ndarray
    n_negative: np.ndarray
    lam_min: np.ndarray
    lam_max: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    grad_history: np.ndarray
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def reduction(self) -> np.ndarray:
        """``grad_norm / start_grad_norm`` per start."""
        return self.grad_norm / self.start_grad_norm

    def _plot(self, fig) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        plot_index_vs_loss(ax1, self)
        for h in self.grad_history:
            ax2.semilogy(h / h[0], color="C0", alpha=0.4, lw=0.8)
        ax2.axhline(self.semantics.get("rtol", 1e-6), color="C3", ls=":", lw=0.8)
        ax2.set(xlabel="LM iteration", ylabel="‖∇L‖ / ‖∇L(start)‖", title="convergence")


def plot_index_vs_loss(ax, cp: CriticalPoints) -> None:
    """Dauphin et al. (2014) Fig. 1: saddle index against training loss at critical points."""
    ok = np.asarray(cp.converged, bool)
    ax.scatter(cp.loss[ok], cp.index[ok], s=18, color="C0", label="critical points")
    if (~ok).any():
        ax.scatter(cp.loss[~ok], cp.index[~ok], s=18, marker="x", color="C3", label="not converged")
    ax.set(xlabel="objective L(θ*) (training loss + weight decay)",
           ylabel="index (fraction of negative eigenvalues)",
           title="index vs loss at critical points")
    ax.legend(fontsize="small")


def _lm(curv: Curvature, rtol: float, atol: float, max_iter: int, max_dim: int):
    """Levenberg-Marquardt on r = ∇L with Jacobian H, from ``curv.theta``; see the module docstring."""
    loss, g = curv.loss_and_grad()
    target = max(rtol * np.linalg.norm(g), atol)
    hist, mu, nu, it = [np.linalg.norm(g)], None, 2.0, 0
    while hist[-1] > target and it < max_iter:
        it += 1
        lam, U = scipy.linalg.eigh(_sym(full_hessian(curv, max_dim=max_dim)))
        c = U.T @ g
        if mu is None:
            mu = 1e-3 * float(np.max(lam ** 2))
        gg = float(g @ g)
        while True:
            d = lam ** 2 + mu
            p = -U @ (lam * c / d)
            predicted = gg - float(np.sum((mu / d) ** 2 * c ** 2))
            theta = curv.theta.astype(np.float64, copy=True)
            theta[curv.index] += p
            new = curv.at(theta)
            new.counts = curv.counts                         # one running tally
            loss_new, g_new = new.loss_and_grad()
            rho = (gg - float(g_new @ g_new)) / max(predicted, 1e-300)
            if np.isfinite(rho) and rho > 1e-4:
                mu *= max(1 / 3, 1 - (2 * min(rho, 1.0) - 1) ** 3)
                nu = 2.0
                break
            mu, nu = mu * nu, nu * 2
            if mu > 1e30 * max(float(np.max(lam ** 2)), 1e-300):
                return curv, loss, g, hist, it            # stalled: no decrease possible
        curv, loss, g = new, loss_new, g_new
        hist.append(np.linalg.norm(g))
    return curv, loss, g, hist, it


def _sym(H):
    return 0.5 * (H + H.T)


def find_critical_points(net, starts, data, *, params="all", batch_size: int | None = None,
                         weight_decay: float = 0.0, rtol: float = 1e-6, atol: float = 0.0, max_iter: int = 50,
                         max_dim: int = 3000, info: dict | None = None,
                         progress: bool = False) -> CriticalPoints:
    """Critical points of the mean loss near each start, by Levenberg-Marquardt on ∇L.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        starts: ``[P]`` or ``[S, P]`` starting parameters (cast to float64).
        data: ``(X, y)`` or a Dataset (its training split); X is cast to float64.
        params: parameter selection (the others stay fixed).
        batch_size: examples per engine call (size-weighted; results do not depend on it).
        weight_decay: L2 term ``(wd/2)‖θ_S‖²`` added to the loss (see :class:`Curvature`).
        rtol, atol: stop when ``‖∇L‖ ≤ max(rtol·‖∇L(start)‖, atol)``.
        max_iter: LM iterations per start (each one full Hessian of the selection).
        max_dim: refuse selections larger than this (each iteration builds the full Hessian).
        info: per-start labels to keep in the result.
        progress: show a progress bar over starts.

    Returns:
        :class:`CriticalPoints`, with the exact index at every final point.
    """
    t0 = time.perf_counter()
    starts = as_float_array(starts, "starts", ndim=(1, 2)).astype(np.float64)
    starts = starts[None] if starts.ndim == 1 else starts
    X, y = split_data(data)
    X = as_float_array(X, "X", dtype=np.float64) if len(X) else X
    max_iter = check_positive_int(max_iter, "max_iter")
    if not (rtol >= 0 and atol >= 0 and rtol + atol > 0):
        raise ValueError(f"rtol and atol must be >= 0, not both 0; got rtol={rtol}, atol={atol}")
    S = len(starts)
    fields = {k: np.zeros(S) for k in ("loss", "start_loss", "grad_norm", "start_grad_norm",
                                       "index", "lam_min", "lam_max")}
    n_neg, iters, conv = np.zeros(S, int), np.zeros(S, int), np.zeros(S, bool)
    hist = np.full((S, max_iter + 1), np.nan)
    thetas = np.empty_like(starts)
    counts = {"hvps": 0, "hvp_calls": 0, "grad_calls": 0}
    from tqdm.auto import tqdm
    for s in tqdm(range(S), desc="critical points", disable=not progress, leave=False):
        curv = Curvature(net, starts[s], (X, y), params=params, batch_size=batch_size,
                         weight_decay=weight_decay)
        if curv.dim > max_dim:
            raise ValueError(f"params={params!r} selects {curv.dim} parameters > max_dim={max_dim}; "
                             "the exact LM step builds the full Hessian each iteration")
        curv.counts = counts
        fields["start_loss"][s], g0 = curv.loss_and_grad()
        end, loss, g, h, it = _lm(curv, rtol, atol, max_iter, max_dim)
        spec = spectrum_of(full_hessian(end, max_dim=max_dim))
        thetas[s] = end.theta
        fields["loss"][s], fields["grad_norm"][s], fields["start_grad_norm"][s] = loss, np.linalg.norm(g), h[0]
        fields["index"][s], n_neg[s] = spec.index, spec.n_negative
        fields["lam_min"][s], fields["lam_max"][s] = spec.eigenvalues[0], spec.eigenvalues[-1]
        conv[s] = h[-1] <= max(rtol * h[0], atol)
        iters[s], hist[s, :len(h)] = it, h
    counts["wall_time_s"] = time.perf_counter() - t0
    return CriticalPoints(
        theta=thetas, start=starts, n_negative=n_neg, converged=conv, iterations=iters,
        grad_history=hist, info=dict(info or {}), **fields,
        semantics={**curv.semantics(), "dtype": "float64", "rtol": rtol, "atol": atol,
                   "max_iter": max_iter,
                   "method": "Levenberg-Marquardt on r = ∇L with the exact Hessian as Jacobian: "
                             "(H² + μI)p = −Hg via eigh(H); Nielsen damping; minimises ½‖∇L‖²",
                   "index": "exact: fraction of eigenvalues < −dim·eps·max|λ|"},
        counts=counts)


__all__ = ["saddle_index", "find_critical_points", "CriticalPoints", "plot_index_vs_loss"]
