"""Tour section ``memorization``: "Networks easily memorize" (Zhang et al. 2017; Belkin et al.
2019; Nakkiran et al. 2019).

1. Zhang's Fig. 1 on an MNIST-1D subset: one MLP under each corruption (true labels, partial
   label noise p = 0.2…0.8, random labels, shuffled pixels, random pixels, Gaussian inputs),
   several seeds, all trained as ONE population in lockstep: learning curves, time-to-fit
   against p, test error against p.
2. Double descent: width sweep at 15 % label noise, with the parameter count marked against the
   number of training examples. The tour uses random-feature networks (closed-form training, so
   many widths fit in seconds); ``--dd-model mlp`` trains every layer instead (minutes).

Budget: about 30 s on 2 cores (≤ 12 s with ``--quick``). Sizes are stated in the report.
Section options: ``n_train``, ``n_seeds``, ``dd_model``, ``dd_n_train``, ``dd_seeds``.
"""
from __future__ import annotations

import time

import numpy as np

from ._figures import save_and_plot
from .tour import SectionOutput, Table, section

#: normal / quick settings
SETTINGS = {
    "normal": {"n_train": 1000, "n_test": 1000, "hidden": (128, 128), "n_seeds": 2, "batch_size": 100,
               "steps": 1500, "corruptions": None, "dd_model": "random_features", "dd_n_train": 400,
               "dd_seeds": 2, "dd_widths": (10, 25, 50, 100, 200, 300, 350, 400, 450, 500, 600, 800,
                                            1200, 1600, 3200)},
    "quick": {"n_train": 400, "n_test": 500, "hidden": (64, 64), "n_seeds": 1, "batch_size": 50,
              "steps": 800, "corruptions": ("true", "partial:0.4", "partial:0.8", "random_labels",
                                            "random_pixels", "gaussian"),
              "dd_model": "random_features", "dd_n_train": 200, "dd_seeds": 1,
              "dd_widths": (10, 50, 100, 150, 180, 200, 220, 250, 300, 400, 800)},
}


def _arguments(parser) -> None:
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="MNIST-1D training examples for the Zhang experiment")
    parser.add_argument("--n-seeds", dest="n_seeds", type=int, default=None, help="seeds per corruption")
    parser.add_argument("--dd-model", dest="dd_model", choices=("random_features", "mlp"), default=None,
                        help="double-descent model (mlp trains every layer: minutes)")
    parser.add_argument("--dd-n-train", dest="dd_n_train", type=int, default=None,
                        help="training examples for the double-descent sweep")
    parser.add_argument("--dd-seeds", dest="dd_seeds", type=int, default=None, help="seeds per width")


def _options(ctx) -> dict:
    o = dict(SETTINGS["quick" if ctx.quick else "normal"])
    o.update({k: v for k, v in ctx.options.items() if k in o and v is not None})
    if o["dd_model"] == "mlp" and "dd_widths" not in ctx.options:
        o["dd_widths"] = None                                   # the model's own default widths
    return o


@section("memorization", "Networks easily memorize", order=50, arguments=_arguments)
def memorization_section(ctx) -> SectionOutput:
    from ..memorization import DEFAULT_CORRUPTIONS, double_descent, memorization

    o = _options(ctx)
    t_all = time.perf_counter()
    mem = memorization(corruptions=o["corruptions"] or DEFAULT_CORRUPTIONS, n_train=o["n_train"],
                       n_test=o["n_test"], hidden=o["hidden"], n_seeds=o["n_seeds"], seeds=ctx.seeds,
                       batch_size=o["batch_size"], steps=o["steps"], progress=ctx.show_progress)
    save_and_plot(ctx, "zhang", mem, "zhang",
                  "Zhang et al.'s Fig. 1 on MNIST-1D: (a) training loss of each "
                  "corruption (mean over seeds; dashed: input corruptions), (b) steps to 100 % training "
                  "accuracy against the label-noise level p (dashed lines: input corruptions), (c) test "
                  "error on the true test labels against p.")
    t_zhang = time.perf_counter() - t_all

    t0 = time.perf_counter()
    dd = double_descent(model=o["dd_model"], widths=o["dd_widths"], n_train=o["dd_n_train"],
                        n_seeds=o["dd_seeds"], seeds=ctx.seeds, noise=0.15, progress=ctx.show_progress)
    save_and_plot(ctx, "double_descent", dd, "double_descent",
                  "Train error (on the noisy labels) and test error "
                  "against the number of trainable parameters at 15 % label noise; dashed: #params = "
                  "N, dotted: N·C, green: the smallest width that interpolates.")
    t_dd = time.perf_counter() - t0

    summ, dds = mem.summary(), dd.summary()
    ratio = mem.time_to_fit_ratio("random_labels", "true")
    curve = mem.label_noise_curve()
    err = curve["test_error"].mean(axis=1)
    monotone = bool(np.all(np.diff(err) >= -0.02))
    rl = summ["random labels"] if "random labels" in summ else None
    metrics = {
        "n_train": mem.n_train, "n_params": mem.n_params, "members": mem.counts["members"],
        "steps_done": int(mem.steps[-1]), "time_to_fit_ratio_random_vs_true": ratio,
        "time_to_fit": {k: v["time_to_fit"] for k, v in summ.items()},
        "test_acc": {k: v["test_acc"] for k, v in summ.items()},
        "all_fitted": bool((mem.time_to_fit >= 0).all()),
        "test_error_vs_p": {f"{p:g}": float(e) for p, e in zip(curve["p"], err)},
        "test_error_monotone_in_p": monotone, "zhang_time_s": t_zhang,
        "dd_model": dd.model, "dd_n_train": dd.n_train, "dd_peak_width": dds["peak_width"],
        "dd_peak_n_params": dds["peak_n_params"], "dd_peak_test_error": dds["peak_test_error"],
        "dd_final_test_error": dds["final_test_error"],
        "dd_interpolation_width": (dds["interpolation_threshold"] or {}).get("width"),
        "dd_time_s": t_dd, "section_time_s": time.perf_counter() - t_all,
    }
    rows = [[lab, f"{v['time_to_fit']:.0f}" if np.isfinite(v["time_to_fit"]) else "—",
             f"{v['fitted']:.0%}", f"{v['train_acc']:.1%}", f"{v['test_acc']:.1%}"]
            for lab, v in summ.items()]
    dd_note = (f"random-feature networks (first layer random and fixed, output layer trained to "
               f"convergence, i.e. minimum-norm least squares); each of the {dd.n_classes} outputs "
               f"is a regression with h parameters on N = {dd.n_train} examples, so the "
               f"interpolation threshold is h = N, i.e. #params = N·C = {dd.n_train * dd.n_classes}"
               if dd.model == "random_features" else
               f"MLPs of one hidden layer, every layer trained ({dd.semantics.get('steps')} steps of "
               f"{dd.semantics.get('optimizer', {}).get('name')}, full batch, no regularisation)")
    thr = dds["interpolation_threshold"]
    paragraphs = [
        "Zhang et al. (2017) trained the same network on CIFAR-10 with true labels, partially or "
        "completely random labels, and with pixels shuffled, permuted per image or replaced by "
        "Gaussian noise. It fit them all perfectly, random labels only a small factor slower, "
        "while test error climbed steadily with the corruption level: capacity alone does not "
        "explain why networks generalise.",
        f"Here: MNIST-1D, the first {mem.n_train} training and {mem.n_test} test examples, an MLP "
        f"40-{'-'.join(map(str, o['hidden']))}-10 ({mem.n_params} parameters, "
        f"{mem.n_params / mem.n_train:.0f} per example), SGD (lr 0.05, momentum 0.9, batch "
        f"{o['batch_size']}), {len(mem.conditions)} corruptions × {o['n_seeds']} seeds = "
        f"{mem.counts['members']} networks trained in lockstep as one population until every one "
        f"reached 100 % training accuracy ({int(mem.steps[-1])} steps, {t_zhang:.1f} s).",
        f"Random labels took {ratio:.2f}× as many steps as true labels to fit "
        f"({rl['time_to_fit']:.0f} vs {summ['true']['time_to_fit']:.0f}) and reach "
        f"{rl['test_acc']:.1%} test accuracy (chance 10 %). Test error rises with p "
        + ("monotonically" if monotone else "(not monotonically at this size: see the table)")
        + f", from {err[0]:.1%} to {err[-1]:.1%}." if rl else "",
        "An MLP is blind to a fixed permutation of its inputs, so shuffled pixels are, for it, the "
        "true task again (Zhang used CNNs, for which they are not). Random pixels keep each "
        "example's multiset of values, which on MNIST-1D still carries some class information, "
        "so they generalise above chance; Gaussian inputs carry none.",
        f"Double descent (Belkin et al. 2019; Nakkiran et al. 2019): {dd_note}. With 15 % of the "
        f"{dd.n_train} training labels replaced, test error peaks at width {dds['peak_width']} "
        f"({dds['peak_n_params']} parameters, {dds['peak_params_per_example']:.1f} per example; "
        f"{dds['peak_test_error']:.1%}) and falls again to {dds['final_test_error']:.1%} at the "
        f"largest width"
        + (f"; the smallest width that fits the noisy labels exactly is {thr['width']}" if thr else "")
        + f" ({t_dd:.1f} s).",
    ]
    table = Table(["corruption", "steps to fit", "fitted", "train acc", "test acc"], rows,
                  caption=f"Zhang experiment, mean over {o['n_seeds']} seed(s)")
    return SectionOutput(paragraphs=[p for p in paragraphs if p], metrics=metrics, tables=[table])
