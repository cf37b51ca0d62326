"""Tour section ``landscapes``: "The solution space: landscapes" (Goodfellow et al. 2015; Li et al. 2018).

On the MNIST-1D MLP of the baseline (40-100-100-10, ReLU), trained here with Adam while its
trajectory is recorded:

1. the 1-D interpolation from the initialisation to the solution (Goodfellow's monotone path),
   train and test loss and accuracy, both end points evaluated;
2. a filter-normalised random plane around the solution: a 51×51 grid over [−1, 1]² with the
   first-layer shortcut, the training trajectory overlaid by least-squares projection, and its
   own losses against the surface's at the projected points;
3. the PCA plane of the same trajectory (Li et al. §7), where the path is visible.

Time budget: about 60 s, 15 s with ``--quick`` (fewer training steps, the grids on a stated
mini-batch of the training set, a coarser PCA grid; the random plane stays 51×51).
Section options (``ctx.options``) for tests and experiments: ``steps``, ``grid``, ``pca_grid``,
``subset`` (grid examples; 0 = all), ``interp_points`` (α values of the interpolation).
"""
from __future__ import annotations

import time

import numpy as np

from .tour import SectionOutput, Table, section

#: training and grid settings; quick mode in brackets
SETTINGS = {"lr": 1e-2, "batch_size": 100, "steps": 1500, "quick_steps": 300, "snapshots": 30,
            "grid": 51, "pca_grid": 31, "quick_pca_grid": 21, "subset": 0, "quick_subset": 500,
            "interp_points": 41}


def _options(ctx) -> dict:
    q = ctx.quick
    o = {"steps": SETTINGS["quick_steps" if q else "steps"], "grid": SETTINGS["grid"],
         "pca_grid": SETTINGS["quick_pca_grid" if q else "pca_grid"],
         "subset": SETTINGS["quick_subset" if q else "subset"], "interp_points": SETTINGS["interp_points"]}
    o.update({k: int(v) for k, v in ctx.options.items() if k in o and v is not None})
    return o


def _pca_axes(coords, n):
    """Axes covering the projected path (and the origin) with a 15 % margin, n points each."""
    from ..landscape import grid_axis
    axes = []
    for c in coords.T:
        lo, hi = min(c.min(), 0.0), max(c.max(), 0.0)
        pad = 0.15 * max(hi - lo, 1e-3)
        axes.append(grid_axis(lo - pad, hi + pad, n))
    return axes


@section("landscapes", "The solution space: landscapes", order=30)
def landscapes_section(ctx) -> SectionOutput:
    from matplotlib.figure import Figure

    from .. import landscape as ls
    from ..data import mnist1d
    from ..train import Adam, fit
    from .baseline import DATA_SEED, baseline_models

    o = _options(ctx)
    t_all = time.perf_counter()
    ds = mnist1d(seed=DATA_SEED)
    net = baseline_models(ds.X_train.shape[1], ds.n_classes)["mlp"]
    theta0 = net.init(ctx.seeds, scheme="he_normal")
    run = fit(net, theta0, ds.X_train, ds.y_train, Adam(SETTINGS["lr"]), steps=o["steps"],
              batch_size=SETTINGS["batch_size"], seeds=ctx.seeds,
              record_every=max(1, o["steps"] // SETTINGS["snapshots"]), progress=ctx.show_progress)
    theta = run.theta

    # 1. Goodfellow: init -> solution
    t0 = time.perf_counter()
    path = ls.interpolate(net, theta0, theta, ds, n=o["interp_points"], labels=("init", "solution"))
    t_interp = time.perf_counter() - t0
    ctx.save_result("interpolation", path)
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    path.plot(fig=fig)
    ctx.figure("interpolation", fig, caption="Loss and accuracy along (1 − α)·θ₀ + α·θ*, from the "
               "initialisation (α = 0) to the trained solution (α = 1), on the training and test sets.")

    # 2. Li et al.: a filter-normalised random plane around the solution, trajectory overlaid
    subset = o["subset"] or None
    plane = ls.random_plane(net, theta, seed=ctx.seeds, norm="filter")
    axis = ls.grid_axis(-1.0, 1.0, o["grid"])
    surf = ls.evaluate_grid(net, plane, ds.X_train, ds.y_train, alphas=axis, betas=axis, subset=subset,
                            seed=ctx.seeds, trajectory=run, progress=ctx.show_progress)
    ctx.save_result("random_plane", surf)
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    surf.plot(fig=fig)
    ctx.figure("random_plane", fig, caption=f"Training loss on a filter-normalised random plane around "
               f"the solution ({o['grid']}×{o['grid']} over [−1, 1]²), with the training trajectory "
               "projected onto it by least squares.")
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ls.plots.draw_surface3d(fig, surf, log=True)
    ctx.figure("random_plane_3d", fig, caption="The same surface in 3-D (log₁₀ loss).")

    # 3. the PCA plane of the trajectory
    pca = ls.pca_plane(run.trajectory, theta)
    coords, _ = pca.project(run.trajectory)
    pa, pb = _pca_axes(coords, o["pca_grid"])
    psurf = ls.evaluate_grid(net, pca, ds.X_train, ds.y_train, alphas=pa, betas=pb, subset=subset,
                             seed=ctx.seeds, trajectory=run, progress=ctx.show_progress)
    ctx.save_result("pca_plane", psurf)
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ls.plots.draw_contour(fig, psurf)
    ctx.figure("pca_plane", fig, caption="Training loss on the plane of the trajectory's top two "
               "principal directions (around the solution), with the trajectory.")
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ls.plots.draw_overlay_check(fig, psurf.trajectory)
    ax = fig.axes[0]
    ax.plot(surf.trajectory.steps, surf.trajectory.surface_loss, "^:", ms=3, color="C3",
            label="random plane at projection")
    ax.legend(fontsize="small")
    fig.axes[1].plot(surf.trajectory.steps, surf.trajectory.residual, "^:", ms=3, color="C3",
                     label="random plane")
    ctx.figure("trajectory_check", fig, caption="Left: each snapshot's own loss against the loss of "
               "the surface where it is drawn (PCA plane, and random plane in red). Right: the "
               "snapshot's relative distance from each plane.")

    rt, pt = surf.trajectory, psurf.trajectory
    ev = pca.info["explained_variance_ratio"]
    pps = surf.counts["points_per_s"]
    metrics = {
        "steps": o["steps"], "train_acc": float(run.history["train_acc"][-1]),
        "interp_monotone": path.monotone, "interp_largest_rise": path.largest_rise,
        "interp_train_loss_init": path.at(0.0)["train_loss"],
        "interp_train_loss_solution": path.at(1.0)["train_loss"],
        "interp_test_acc_solution": path.at(1.0)["test_acc"],
        "grid": o["grid"], "grid_points": int(surf.loss.size), "grid_time_s": surf.counts["wall_time_s"],
        "grid_points_per_s": pps, "grid_examples": surf.semantics["n_examples"],
        "origin_loss": surf.origin_loss, "random_plane_max_loss_gap": rt.max_loss_gap,
        "random_plane_median_residual": float(np.median(rt.residual[:-1])),
        "pca_explained_variance": [float(v) for v in ev], "pca_max_loss_gap": pt.max_loss_gap,
        "pca_median_residual": float(np.median(pt.residual[:-1])), "interp_time_s": t_interp,
        "section_time_s": time.perf_counter() - t_all,
    }
    data = "all 4000 training examples" if subset is None else \
        f"a stated mini-batch of {subset} training examples (the same at every point)"
    paragraphs = [
        "Goodfellow, Vinyals & Saxe (2015) found that the straight line from a network's "
        "initialisation to the solution found by training usually descends monotonically: no "
        "barrier separates them, although training takes a long, winding path. "
        f"Here the training loss falls from {metrics['interp_train_loss_init']:.3f} at α = 0 to "
        f"{metrics['interp_train_loss_solution']:.3f} at α = 1; "
        + ("it never rises on the way" if path.monotone else
           f"the largest rise on the way is {path.largest_rise:.3g}")
        + f" ({len(path.alphas)} values of α from {path.alphas[0]:g} to {path.alphas[-1]:g}).",
        "Li et al. (2018) draw the landscape on a plane of two random directions, normalised filter "
        "by filter to the solution's own scale, so that pictures of different networks compare. "
        f"The {o['grid']}×{o['grid']} grid ({surf.loss.size} networks, {data}) took "
        f"{surf.counts['wall_time_s']:.1f} s: the first layer's pre-activations are affine in the "
        "plane's coordinates, so three products serve every point and only the rest of the network "
        "runs per point, as a population.",
        "The trajectory drawn on that plane is the least-squares projection of each snapshot, in the "
        "contours' own coordinates. On a random plane it collapses onto the origin: a random "
        "direction is nearly orthogonal to the path "
        f"(median distance from the plane {metrics['random_plane_median_residual']:.0%} of the "
        "snapshot's distance from the solution), so the contour under a drawn point says little "
        f"about that snapshot (largest gap {rt.max_loss_gap:.2f} in loss). The PCA plane of the "
        f"trajectory holds {100 * ev.sum():.0f} % of its variance ({100 * ev[0]:.0f} % + "
        f"{100 * ev[1]:.0f} %); there the path is visible, and the gap is {pt.max_loss_gap:.2f}.",
    ]
    rows = [["interpolation init→solution", f"{len(path.alphas)} α × 2 splits", f"{t_interp:.1f} s"]]
    for what, s in (("random plane (filter-normalised)", surf), ("PCA plane", psurf)):
        rows.append([what, f"{s.loss.size} points", f"{s.counts['wall_time_s']:.1f} s"])
    return SectionOutput(paragraphs=paragraphs, metrics=metrics,
                         tables=[Table(["evaluation", "size", "time"], rows, caption="Work done")])
