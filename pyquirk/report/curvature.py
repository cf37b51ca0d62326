"""Tour section ``curvature``: the solution space — curvature and saddles (Dauphin et al. 2014).

Two parts, each on MNIST-1D:

1. **Saddles.** :func:`pyquirk.hessian.saddle_experiment`: critical points found from starts along
   training trajectories of a small tanh MLP (P = 87), their exact saddle index against their loss
   (Spearman's ρ), and λ_min and the index along one trajectory.
2. **Spectra.** A tanh MLP 40-24-10 (P = 1234) trained briefly with Adam; on its Hessian (the mean
   CE over 1000 training signals; 500 in quick mode) every estimator is checked against the exact
   spectrum (:func:`pyquirk.hessian.check_estimators`), and the SLQ density is drawn over the
   histogram of the exact eigenvalues.
"""
from __future__ import annotations

import numpy as np

from .tour import SectionOutput, Table, section

DATA_SEED = 42
#: (normal, quick) settings
SADDLES = {"n_runs": (3, 2), "n_starts": (10, 6)}
SPECTRUM = {"n_train": (1000, 500), "epochs": (20, 10), "n_probes": (100, 60), "slq_runs": (10, 6),
            "slq_steps": (80, 50), "hidden": 24}


def spectrum_problem(seeds, quick: bool):
    """(net, θ, (X, y)): the tanh MLP 40-24-10 after a short Adam run on MNIST-1D (float64)."""
    from ..data import mnist1d
    from ..nn import Dense, Net, Tanh
    from ..train import Adam, fit

    q = int(bool(quick))
    ds = mnist1d(seed=DATA_SEED)
    n = SPECTRUM["n_train"][q]
    X, y = ds.X_train[:n].astype(np.float64), ds.y_train[:n]
    net = Net([Dense(SPECTRUM["hidden"]), Tanh(), Dense(ds.n_classes)], input_shape=(X.shape[1],))
    res = fit(net, net.init(seeds, dtype=np.float64), X, y, Adam(1e-2), epochs=SPECTRUM["epochs"][q],
              batch_size=100, seeds=seeds)
    return net, res.theta, (X, y)


@section("curvature", "The solution space: curvature and saddles", order=40)
def curvature_section(ctx) -> SectionOutput:
    from ..hessian import Curvature, check_estimators, saddle_experiment

    q = int(ctx.quick)
    exp = saddle_experiment(seeds=ctx.seeds, n_runs=SADDLES["n_runs"][q], n_starts=SADDLES["n_starts"][q],
                            progress=ctx.show_progress)
    ctx.save_result("saddles", exp)
    ctx.figure("index-vs-loss", exp.plot(),
               caption="Left: exact saddle index (fraction of negative Hessian eigenvalues) against "
                       "the loss of critical points found from starts along training trajectories "
                       "(Dauphin et al. 2014, Fig. 1). Middle and right: λ_min, the index and ‖∇L‖ "
                       "along the first training run.")

    net, theta, data = spectrum_problem(ctx.seeds, ctx.quick)
    curv = Curvature(net, theta, data)
    check = check_estimators(curv, k=5, n_probes=SPECTRUM["n_probes"][q], slq_runs=SPECTRUM["slq_runs"][q],
                             slq_steps=SPECTRUM["slq_steps"][q], seed=ctx.seeds.probes)
    ctx.save_result("estimators", check)
    ctx.figure("estimators-density", check.plot(),
               caption="Left: each estimator's error against the exact answer, next to the error it "
                       "states itself. Right: the SLQ spectral density (σ is a standard deviation) over "
                       "the histogram of the exact eigenvalues.")

    cp, spec = exp.points, check.exact
    rows = [[r["quantity"], r["estimator"], f"{r['estimate']:.6g}", f"{r['exact']:.6g}",
             f"{r['rel_error']:.1e}", f"{r['stated_error']:.1e}", "yes" if r["within_stated"] else "NO",
             r["hvps"]] for r in check.rows]
    table = Table(["quantity", "estimator", "estimate", "exact", "rel. error", "stated error", "within",
                   "HVPs"], rows, caption=f"Estimators against the exact spectrum (P = {curv.dim}, "
                                          f"N = {curv.N}, Hessian of the mean CE)")
    red = cp.reduction[cp.converged]
    metrics = {
        "spearman_index_loss": exp.spearman, "spearman_pvalue": exp.spearman_pvalue,
        "critical_points": int(len(cp.loss)), "converged": exp.n_converged,
        "max_grad_reduction": float(red.max()) if red.size else float("nan"),
        "spectrum_dim": curv.dim, "exact_index": spec.index, "lambda_max": float(spec.eigenvalues[-1]),
        "lambda_min": float(spec.eigenvalues[0]), "estimators_within_stated": check.all_within,
        "lanczos_max_rel_error": max(r["rel_error"] for r in check.rows if r["estimator"] == "block Lanczos"),
    }
    sem = exp.semantics
    paragraphs = [
        "Why does plain descent work on a non-convex loss? Dauphin et al. (2014) argued that in high "
        "dimension most critical points are saddles, not bad local minima, and that a critical "
        "point's index (its fraction of negative curvature directions) grows with its loss: "
        "points with high loss are saddles that descent can leave; low-loss points are near-minima.",
        f"We trained {sem['n_runs']} runs of a tanh MLP ({sem['net']}, {sem['training']}), took "
        f"{sem['n_starts_per_run']} starts along each trajectory, and from each start minimised "
        "½‖∇L‖² by Levenberg-Marquardt on the residual ∇L with the exact Hessian as its Jacobian. "
        f"{exp.n_converged} of {len(cp.loss)} starts reached ‖∇L‖ ≤ {sem['rtol']:g}·‖∇L(start)‖; "
        f"over them, Spearman's ρ between loss and exact index is {exp.spearman:.3f}. Weight "
        f"decay ({sem['weight_decay']:g}) keeps every critical point at finite distance.",
        f"On a larger net (P = {curv.dim}) the full Hessian is still cheap enough to check every "
        "estimator: block Lanczos against numpy-exact eigenvalues, Hutchinson and Hutch++ against "
        "the trace (3 standard errors), SLQ against tr/P and the exact index. The spectrum has the "
        f"familiar shape: a bulk near zero, a few outliers up to λ_max = {spec.eigenvalues[-1]:.3g}, "
        f"and a small negative part (index {spec.index:.3f}) after a short training run.",
    ]
    return SectionOutput(paragraphs=paragraphs, metrics=metrics, tables=[table])
