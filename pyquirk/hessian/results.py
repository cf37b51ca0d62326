"""Result dataclasses of :mod:`pyquirk.hessian`: data that saves, loads and plots itself.

Every result carries ``semantics`` (the operator: Hessian or GGN, loss, data size, parameter
selection, batch weighting, dtype; and the estimator's settings), ``seeds`` (the ``probes``
stream seed) and ``counts`` (``hvps``: tangent vectors multiplied, ``hvp_calls``: engine calls,
``grad_calls``, ``wall_time_s``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Result


@dataclasses.dataclass
class EigenResult(Result):
    """Extreme eigenpairs with their diagnostics.

    Attributes:
        eigenvalues: ``[k]`` (order: see the estimator).
        residuals: ``[k]`` true residual norms ``‖H v − λ v‖`` (unit vectors v).
        converged: ``[k]`` bool, judged on ``residuals`` with the stated tolerance rule.
        eigenvectors: ``[k, dim]`` unit vectors, or None.
        residual_estimates: ``[k]`` the residuals the iteration predicted (from T).
        iterations: block steps (each one block HVP).
        restarts: thick restarts.
        which: ``"largest"``, ``"smallest"``, ``"both"`` or ``"magnitude"``.
        method: ``"block-lanczos"`` or ``"power"``.
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    eigenvectors: np.ndarray | None = None
    residual_estimates: np.ndarray | None = None
    iterations: int = 0
    restarts: int = 0
    which: str = ""
    method: str = ""

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    def _plot(self, fig) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        i = np.arange(len(self.eigenvalues))
        conv = np.asarray(self.converged, bool)
        ax1.scatter(i[conv], self.eigenvalues[conv], color="C0", label="converged")
        ax1.scatter(i[~conv], self.eigenvalues[~conv], color="C3", marker="x", label="not converged")
        ax1.axhline(0, color="0.6", lw=0.6)
        ax1.set(xlabel="eigenpair", ylabel="eigenvalue", title=f"{self.method} ({self.which})")
        ax1.legend(fontsize="small")
        ax2.semilogy(i, np.maximum(self.residuals, 1e-300), "o-", label="true ‖Hv−λv‖")
        if self.residual_estimates is not None:
            ax2.semilogy(i, np.maximum(self.residual_estimates, 1e-300), ".:", label="estimate")
        ax2.set(xlabel="eigenpair", ylabel="residual", title=f"{self.iterations} block steps, "
                f"{self.counts.get('hvps', '?')} HVPs")
        ax2.legend(fontsize="small")


@dataclasses.dataclass
class TraceResult(Result):
    """A stochastic trace estimate.

    Attributes:
        estimate: the trace estimate.
        standard_error: its standard error (Hutch++: of the stochastic part; the low-rank part
            ``exact_part`` is computed, not sampled).
        samples: ``[m]`` the per-probe values ``gᵀ A g`` that were averaged.
        exact_part: ``tr(Qᵀ H Q)`` of Hutch++'s sketch (0 for Hutchinson).
        method: ``"hutchinson"`` or ``"hutch++"``.
        n_matvecs: HVPs used.
    """

    estimate: float
    standard_error: float
    samples: np.ndarray
    exact_part: float = 0.0
    method: str = "hutchinson"
    n_matvecs: int = 0

    def interval(self, z: float = 3.0) -> tuple[float, float]:
        """``estimate ± z·standard_error``."""
        return self.estimate - z * self.standard_error, self.estimate + z * self.standard_error

    def _plot(self, fig) -> None:
        ax = fig.subplots()
        s = np.asarray(self.samples, float)
        m = np.arange(1, len(s) + 1)
        running = self.exact_part + np.cumsum(s) / m
        se = np.array([s[:j].std(ddof=1) / np.sqrt(j) if j > 1 else np.nan for j in m])
        ax.plot(m, running, color="C0", label="running estimate")
        ax.fill_between(m, running - 3 * se, running + 3 * se, color="C0", alpha=0.2, label="±3 SE")
        ax.set(xlabel="probes", ylabel="trace", title=f"{self.method}: {self.estimate:.6g} "
               f"± {self.standard_error:.2g}")
        ax.legend(fontsize="small")


@dataclasses.dataclass
class DensityResult(Result):
    """A spectral density by stochastic Lanczos quadrature (SLQ).

    Attributes:
        grid: ``[G]`` eigenvalue axis.
        density: ``[G]`` smoothed density φ(λ) (integrates to about 1 over the grid).
        nodes: ``[R, m]`` Gauss quadrature nodes (Ritz values) of each run; NaN-padded when a
            run stopped early on an invariant subspace.
        weights: ``[R, m]`` their weights (squared first components), 0-padded; each row sums to 1.
        sigma: the smoothing parameter as given.
        sigma_std: the Gaussian standard deviation actually used.
        sigma_convention: ``"std"`` (σ is a standard deviation) or ``"pyhessian"`` (σ is
            PyHessian's ``sigma_squared``: a variance, multiplied by ``max(1, λ_max − λ_min)``).
        dim: dimension n of the operator.
        mean_eigenvalue, mean_se: ``∫ λ φ(λ) dλ`` = tr(H)/n estimated from the nodes, with its
            standard error over runs.
        grid_mass: ``∫ φ`` on the grid (1 up to the tails the grid cuts off).
        index_estimate: fraction of eigenvalues below ``−zero_tol`` (quadrature estimate).
        index_bounds: ``[2]`` an interval for that fraction: the Chebyshev-Markov-Stieltjes bracket
            averaged over runs, widened by 3 standard errors.
        zero_tol: eigenvalues within ±zero_tol of 0 count as zero.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    sigma_std: float
    sigma_convention: str
    dim: int
    mean_eigenvalue: float
    mean_se: float
    grid_mass: float
    index_estimate: float
    index_bounds: np.ndarray
    zero_tol: float

    @property
    def trace_estimate(self) -> float:
        """``dim · mean_eigenvalue``: the trace implied by the density."""
        return self.dim * self.mean_eigenvalue

    def _plot(self, fig) -> None:
        ax = fig.subplots()
        ax.semilogy(self.grid, np.maximum(self.density, 1e-12), color="C0", lw=1.2)
        ax.set_ylim(max(1e-8, float(self.density.max()) * 1e-9), float(self.density.max()) * 3)
        ax.axvline(0, color="0.6", lw=0.6)
        ax.set(xlabel="eigenvalue λ", ylabel="density φ(λ)",
               title=f"SLQ, {self.nodes.shape[0]} runs × {self.nodes.shape[1]} steps, "
                     f"σ = {self.sigma_std:.2g} (std)")


@dataclasses.dataclass
class Spectrum(Result):
    """The exact spectrum of a full Hessian (or GGN).

    Attributes:
        eigenvalues: ``[n]`` ascending.
        zero_tol: ``n · ε · max|λ|`` (ε of the operator's dtype): |λ| ≤ zero_tol counts as zero.
        index: saddle index, the fraction of eigenvalues ``< −zero_tol``.
        n_negative, n_zero, n_positive: counts.
        asymmetry: ``‖H − Hᵀ‖_F / ‖H‖_F`` of the assembled matrix (rounding diagnostic).
    """

    eigenvalues: np.ndarray
    zero_tol: float
    index: float
    n_negative: int
    n_zero: int
    n_positive: int
    asymmetry: float

    def _plot(self, fig) -> None:
        ax = fig.subplots()
        lam = self.eigenvalues
        ax.hist(lam, bins=min(200, max(10, len(lam) // 5)), color="C0", log=True)
        ax.axvline(0, color="C3", lw=0.8)
        ax.set(xlabel="eigenvalue", ylabel="count", title=f"exact spectrum, n={len(lam)}, "
               f"index {self.index:.3f}")


@dataclasses.dataclass
class EstimatorCheck(Result):
    """Every estimator against the exact answer (:func:`pyquirk.hessian.check_estimators`).

    Attributes:
        rows: one dict per quantity and estimator: ``quantity``, ``estimator``, ``estimate``,
            ``exact``, ``abs_error``, ``rel_error``, ``stated_error`` (the estimator's own error
            claim: residual bound, 3·SE, ...), ``within_stated`` (bool) and ``hvps``.
        exact: the exact spectrum.
        density: the SLQ density that was checked.
    """

    rows: list
    exact: Spectrum | None = None
    density: DensityResult | None = None

    def table(self) -> str:
        """The rows as a markdown table."""
        lines = ["| quantity | estimator | estimate | exact | rel. error | stated error | within | HVPs |",
                 "|---|---|---:|---:|---:|---:|:-:|---:|"]
        for r in self.rows:
            lines.append(f"| {r['quantity']} | {r['estimator']} | {r['estimate']:.10g} | {r['exact']:.10g} | "
                         f"{r['rel_error']:.2e} | {r['stated_error']:.2e} | "
                         f"{'yes' if r['within_stated'] else 'NO'} | {r['hvps']} |")
        return "\n".join(lines)

    @property
    def all_within(self) -> bool:
        return all(r["within_stated"] for r in self.rows)

    def _plot(self, fig) -> None:
        if self.density is not None and self.exact is not None:
            fig.set_size_inches(10.0, 3.8)
            ax, ax2 = fig.subplots(1, 2)
            plot_density_vs_exact(ax2, self.density, self.exact.eigenvalues)
        else:
            ax = fig.subplots()
        labels = [f"{r['quantity']}\n{r['estimator']}" for r in self.rows]
        err = [max(r["abs_error"], 1e-300) for r in self.rows]
        stated = [max(r["stated_error"], 1e-300) for r in self.rows]
        x = np.arange(len(self.rows))
        ax.bar(x - 0.2, err, 0.4, label="|error|", color="C0")
        ax.bar(x + 0.2, stated, 0.4, label="stated error", color="C1", alpha=0.7)
        ax.set_yscale("log")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set(ylabel="absolute error", title="estimators vs exact")
        ax.legend(fontsize="small")


def plot_density_vs_exact(ax, density: DensityResult, eigenvalues: np.ndarray) -> None:
    """The SLQ density over a histogram of the exact eigenvalues (both as densities, log scale)."""
    lam = np.asarray(eigenvalues)
    bins = np.linspace(density.grid[0], density.grid[-1], 80)
    hist, edges = np.histogram(lam, bins=bins)
    width = np.diff(edges)
    ax.bar(edges[:-1], hist / (len(lam) * width), width, align="edge", color="0.75", label="exact (histogram)")
    ax.semilogy(density.grid, np.maximum(density.density, 1e-12), color="C0", lw=1.2,
                label=f"SLQ, σ={density.sigma_std:.2g}")
    top = max(float(density.density.max()), float((hist / (len(lam) * width)).max()))
    ax.set_ylim(top * 1e-6, top * 3)
    ax.set(xlabel="eigenvalue λ", ylabel="density", title="spectral density: SLQ vs exact")
    ax.legend(fontsize="small")


@dataclasses.dataclass
class SaddleIndex(Result):
    """The saddle index (fraction of negative eigenvalues) at one θ.

    Attributes:
        index: the value (exact, or the SLQ quadrature estimate).
        lower, upper: exact: both equal ``index``; SLQ: the interval of
            :attr:`DensityResult.index_bounds`.
        method: ``"exact"`` or ``"slq"``.
        n_negative: exact count (None for SLQ).
        dim: operator dimension.
        zero_tol: eigenvalues in ``[−zero_tol, zero_tol]`` count as zero, not negative.
        eigenvalues: ``[n]`` exact spectrum (exact method) or None.
        grid, density: the SLQ density (SLQ method) or None.
    """

    index: float
    lower: float
    upper: float
    method: str
    dim: int
    zero_tol: float
    n_negative: int | None = None
    eigenvalues: np.ndarray | None = None
    grid: np.ndarray | None = None
    density: np.ndarray | None = None

    def _plot(self, fig) -> None:
        ax = fig.subplots()
        if self.eigenvalues is not None:
            ax.hist(self.eigenvalues, bins=100, log=True, color="C0")
        elif self.grid is not None:
            ax.semilogy(self.grid, np.maximum(self.density, 1e-12), color="C0")
            neg = self.grid < -self.zero_tol
            ax.fill_between(self.grid[neg], 1e-12, np.maximum(self.density[neg], 1e-12), color="C3", alpha=0.3)
        ax.axvline(0, color="C3", lw=0.8)
        ax.set(xlabel="eigenvalue", title=f"saddle index {self.index:.4f} ({self.method}, "
               f"[{self.lower:.4f}, {self.upper:.4f}])")


__all__ = ["EigenResult", "TraceResult", "DensityResult", "Spectrum", "EstimatorCheck", "SaddleIndex",
           "plot_density_vs_exact"]
