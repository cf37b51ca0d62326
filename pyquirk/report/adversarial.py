"""Tour section ``dumb-errors``: "Neural networks make dumb errors" (Szegedy 2014, Goodfellow 2015,
Madry 2018, Nguyen 2015, Papernot 2017).

On the MNIST-1D MLP of the baseline (40-100-100-10, ReLU, Adam 1e-2, batch 100), with inputs in the
data's box (min and max over train and test, about [−5.5, 4.5]: width ≈ 10 standardised units):

1. PGD-L∞ at ε = 0.3 (3 % of the box width) and FGSM at the same ε on the whole test set; clean
   and adversarial signals side by side;
2. the robust-accuracy curve, FGSM and PGD, L∞ and L2, each a single batched pass over its ε grid;
3. fooling images for all 10 classes, by gradient ascent from uniform noise and by a gradient-free
   (μ, λ) evolution strategy;
4. the transfer matrix of four models: the baseline MLP and a wide one-hidden-layer MLP, each
   trained on both disjoint halves A and B of the training set (Szegedy's cross-model and
   cross-training-set settings; models of one architecture train as one population);
5. Papernot's black-box attack: a substitute grown from 150 held-out test inputs by Jacobian
   augmentation (λ = 1.0, 10 % of the box width, like the paper's 0.1 on [0, 1] MNIST), attacked
   with FGSM at the same ε, against random sign noise of the same norm.

Time budget: about 60 s, 15 s with ``--quick`` (shorter training, fewer ε points and rounds, a
test subset). Section options (``ctx.options``, for tests and experiments): any key of
:data:`SETTINGS` without the ``quick_`` prefix (``steps``, ``n_eval``, ``transfer_steps``, ...).
"""
from __future__ import annotations

import time

import numpy as np

from .tour import SectionOutput, Table, section

EPS = 0.3
SETTINGS = {
    "steps": 6000, "quick_steps": 1000, "n_eval": 1000, "quick_n_eval": 300,
    "curve_points": 9, "quick_curve_points": 5, "curve_steps": 40, "quick_curve_steps": 10,
    "transfer_steps": 1000, "quick_transfer_steps": 300, "rounds": 6, "quick_rounds": 4,
    "evolution_generations": 100, "quick_evolution_generations": 30,
    "fooling_steps": 300, "quick_fooling_steps": 300,
}
TARGETS = {"pgd_adv_acc_max": 0.10, "fooling_min_confidence": 0.9999, "transfer_min": 0.30}


def _opt(ctx, key):
    v = ctx.options.get(key)
    return int(v) if v is not None else SETTINGS[("quick_" if ctx.quick else "") + key]


def _examples_figure(fig, X, Xa, y, pc, pa, ca, n=6):
    fig.set_size_inches(9.0, 2.8)
    axes = fig.subplots(1, n, sharey=True)
    pos = np.arange(X.shape[1])
    for ax, i in zip(axes, range(n)):
        ax.plot(X[i], pos, color="k", lw=1.2, label="clean")
        ax.plot(Xa[i], pos, color="C3", lw=1.0, label="adversarial")
        ax.set_title(f"y={y[i]}: {pc[i]}→{pa[i]}\n({ca[i]:.0%})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=6, loc="lower left")


@section("dumb-errors", "Neural networks make dumb errors: adversarial examples, fooling images, transfer",
         order=20)
def dumb_errors_section(ctx) -> SectionOutput:
    from matplotlib.figure import Figure

    from ..adversarial import Model, data_bounds, fgsm, pgd
    from ..adversarial.curves import robust_accuracy_curve
    from ..adversarial.fooling import evolve_fooling, fooling_images, log_softmax
    from ..adversarial.substitute import papernot_substitute
    from ..adversarial.transfer import train_disjoint, transfer_matrix
    from ..data import mnist1d
    from ..nn import Dense, Net, ReLU
    from ..train import Adam, fit
    from .baseline import DATA_SEED, TRAIN, baseline_models

    t_all = time.perf_counter()
    seeds = ctx.seeds
    ds = mnist1d(seed=DATA_SEED)
    bounds = data_bounds(ds.X_train, ds.X_test)
    n_eval = min(_opt(ctx, "n_eval"), ds.X_test.shape[0])
    Xe, ye = ds.X_test[:n_eval], ds.y_test[:n_eval]
    times = {}

    # ---- 1. the model and one attack
    t = time.perf_counter()
    net = baseline_models()["mlp"]
    run = fit(net, net.init(seeds), ds.X_train, ds.y_train, Adam(TRAIN["lr"]), steps=_opt(ctx, "steps"),
              batch_size=TRAIN["batch_size"], seeds=seeds, progress=ctx.show_progress)
    model = Model(net, run.theta, bounds, name="mlp")
    times["train"] = time.perf_counter() - t
    t = time.perf_counter()
    adv = pgd(model, Xe, ye, EPS, steps=40, seed=seeds)     # the fidelity figure: always 40 steps
    fg = fgsm(model, Xe, ye, EPS)
    ctx.save_result("pgd", adv)
    times["pgd"] = time.perf_counter() - t
    Xa = adv.x_adv[0]
    za = model.logits(Xa)
    pa, ca = za.argmax(-1), np.exp(log_softmax(za).max(-1))
    show = np.flatnonzero((adv.clean_pred == ye) & adv.success[0])[:6]
    if show.size:
        fig = Figure(layout="constrained")
        _examples_figure(fig, Xe[show], Xa[show], ye[show], adv.clean_pred[show], pa[show], ca[show],
                         n=show.size)
        ctx.figure("examples", fig, caption=f"Clean test signals (black) and their PGD-L∞ adversarial "
                   f"versions at ε = {EPS} (red): true label, clean → adversarial prediction "
                   f"(adversarial confidence).")

    # ---- 2. robust-accuracy curve
    t = time.perf_counter()
    k = _opt(ctx, "curve_points")
    sub = slice(0, min(n_eval, 500))
    curve = robust_accuracy_curve(model, Xe[sub], ye[sub],
                                  {"linf": np.linspace(0, 0.5, k), "l2": np.linspace(0, 2.5, k)},
                                  steps=_opt(ctx, "curve_steps"), seed=seeds)
    ctx.save_result("curve", curve)
    ctx.figure("robust-accuracy", curve.plot(), caption="Accuracy against ε (any ε' ≤ ε counts): "
               "FGSM and PGD, L∞ and L2; each curve is one batched pass over its ε grid.")
    times["curve"] = time.perf_counter() - t

    # ---- 3. fooling images
    t = time.perf_counter()
    fool = fooling_images(model, steps=_opt(ctx, "fooling_steps"), seed=seeds)
    evo = evolve_fooling(model, generations=_opt(ctx, "evolution_generations"), seed=seeds)
    ctx.save_result("fooling", fool)
    ctx.save_result("fooling-evolution", evo)
    ctx.figure("fooling", fool.plot(), caption="Fooling images by gradient ascent on log p(class) from "
               "uniform noise in the data's box: the MLP's confidence in each class.")
    ctx.figure("fooling-evolution", evo.plot(), caption="The same without gradients: a (μ, λ) "
               "evolution strategy (forward passes only).")
    times["fooling"] = time.perf_counter() - t

    # ---- 4. transfer
    t = time.perf_counter()
    wide = Net([Dense(256), ReLU(), Dense(10)], input_shape=(40,))
    models = train_disjoint([net, net, wide, wide], ds.X_train, ds.y_train, bounds=bounds, parts=[0, 1, 0, 1],
                            names=["mlp-A", "mlp-B", "wide-A", "wide-B"], steps=_opt(ctx, "transfer_steps"),
                            seeds=seeds)
    tr = transfer_matrix(models, Xe[sub], ye[sub], EPS, steps=_opt(ctx, "curve_steps"), seed=seeds)
    ctx.save_result("transfer", tr)
    ctx.figure("transfer", tr.plot(), caption=f"Transfer: PGD-L∞ examples at ε = {EPS} crafted on one "
               "model (row) and fed to another (column); the cell is the share of the column model's "
               "correct answers it loses. A and B are disjoint halves of the training set (framed "
               "cells: no training example in common); mlp and wide are different architectures.")
    times["transfer"] = time.perf_counter() - t

    # ---- 5. black-box substitute
    t = time.perf_counter()
    subst = Net([Dense(100), ReLU(), Dense(100), ReLU(), Dense(10)], input_shape=(40,))
    hold = slice(n_eval, n_eval + 150) if n_eval + 150 <= ds.X_test.shape[0] else slice(0, 150)
    ev = slice(0, n_eval) if hold.start >= n_eval else slice(150, n_eval)
    bb = papernot_substitute(model, subst, ds.X_test[hold], ds.X_test[ev], ds.y_test[ev], EPS,
                             rounds=_opt(ctx, "rounds"), lam=1.0, tau=3, epochs=10, seeds=seeds)
    ctx.save_result("substitute", bb)
    ctx.figure("substitute", bb.plot(), caption="Black-box attack (Papernot et al. 2017): the oracle's "
               "error on FGSM examples crafted on a substitute trained from label queries only, "
               "against random sign noise of the same norm.")
    times["substitute"] = time.perf_counter() - t

    off = tr.disjoint_pairs()
    metrics = {
        "eps_linf": EPS, "box": list(bounds), "eps_fraction_of_box": EPS / (bounds[1] - bounds[0]),
        "clean_acc": adv.clean_accuracy, "pgd_adv_acc": float(adv.robust_accuracy[0]),
        "fgsm_adv_acc": float(fg.robust_accuracy[0]),
        "pgd_linf_median_min_eps_grid": float(np.median(curve.curves["pgd-linf"]["min_eps"])),
        "fooling_min_confidence": fool.min_confidence,
        "fooling_max_steps": int(fool.steps_to_target.max()),
        "evolution_min_confidence": evo.min_confidence,
        "transfer_matrix": tr.matrix, "transfer_names": tr.names,
        "transfer_mean": float(off.mean()), "transfer_min": float(off.min()),
        "transfer_same_data_mean": float(tr.matrix[~np.eye(4, dtype=bool) & ~tr.disjoint].mean()),
        "substitute_queries": int(bb.queries[-1]), "substitute_error": float(bb.target_error[-1]),
        "substitute_noise_error": float(bb.noise_error[-1]),
        "substitute_agreement": float(bb.substitute_accuracy[-1]),
        "pgd_counts": adv.counts, "times_s": times, "time_s": time.perf_counter() - t_all,
    }
    checks = {"pgd_adv_acc_below_10pct": metrics["pgd_adv_acc"] < TARGETS["pgd_adv_acc_max"],
              "fooling_all_classes_9999": fool.min_confidence >= TARGETS["fooling_min_confidence"],
              "transfer_at_least_30pct": metrics["transfer_min"] >= TARGETS["transfer_min"],
              "substitute_beats_noise": bool(bb.target_error[-1] >= 1.5 * bb.noise_error[-1])}
    metrics["checks"] = checks
    metrics["meets_targets"] = all(checks.values())
    rows = [
        ["PGD-L∞ test accuracy (40 steps)", f"{metrics['pgd_adv_acc']:.1%}", "< 10 %"],
        ["FGSM test accuracy", f"{metrics['fgsm_adv_acc']:.1%}", ""],
        ["fooling images: lowest confidence over 10 classes", f"{fool.min_confidence:.5%}", "≥ 99.99 %"],
        ["fooling (evolution, no gradients): lowest confidence", f"{evo.min_confidence:.5%}", ""],
        ["transfer between disjoint-subset models (min / mean)",
         f"{metrics['transfer_min']:.0%} / {metrics['transfer_mean']:.0%}", "≥ 30 %"],
        [f"black-box substitute after {metrics['substitute_queries']} label queries",
         f"{metrics['substitute_error']:.0%}", f"noise: {metrics['substitute_noise_error']:.0%}"],
    ]
    paragraphs = [
        f"The baseline MLP ({metrics['clean_acc']:.0%} clean test accuracy) lives on signals "
        f"standardised to unit variance; every input stays in the data's box "
        f"[{bounds[0]:.2f}, {bounds[1]:.2f}]. A perturbation of at most ε = {EPS} per sample "
        f"({metrics['eps_fraction_of_box']:.0%} of the box width, a third of a standard deviation) "
        f"found by 40 steps of PGD (Madry et al. 2018) leaves {metrics['pgd_adv_acc']:.1%} of the "
        f"test set correctly classified; one FGSM step (Goodfellow et al. 2015) leaves "
        f"{metrics['fgsm_adv_acc']:.0%}.",
        "Fooling images (Nguyen et al. 2015): from uniform noise, gradient ascent on the class "
        f"log-probability reaches at least {fool.min_confidence:.4%} confidence for every class "
        f"within {metrics['fooling_max_steps']} steps; the evolution strategy, with forward passes "
        f"only, reaches {evo.min_confidence:.4%}.",
        "Transfer (Szegedy et al. 2014): adversarial examples crafted on one model fool models "
        f"trained on disjoint data: {metrics['transfer_min']:.0%} to {off.max():.0%} of their correct "
        f"answers are lost (mean {metrics['transfer_mean']:.0%}; "
        f"{metrics['transfer_same_data_mean']:.0%} between architectures on the same half). "
        "A black-box attacker that only sees labels (Papernot et al. 2017) trains a "
        f"substitute from 150 inputs and {metrics['substitute_queries']} queries and makes the model "
        f"err on {metrics['substitute_error']:.0%} of the inputs it got right, against "
        f"{metrics['substitute_noise_error']:.0%} for random noise of the same norm.",
        "Attack semantics are pinned (DESIGN §4): steepest step, projection, clip; success judged on "
        "the final clipped input; ε values and restarts are batch axes. See docs/adversarial.md.",
    ]
    missed = [k for k, v in checks.items() if not v]
    if missed:
        paragraphs.append(f"**Below target:** {', '.join(missed)}" + (" (quick mode)" if ctx.quick else ""))
    return SectionOutput(paragraphs=paragraphs, metrics=metrics,
                         tables=[Table(["measure", "value", "target / baseline"], rows,
                                       caption="Fidelity figures")])
