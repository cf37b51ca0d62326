"""Tour section ``init-order``: "Learning is influenced by initialization and example order"
(LeCun et al. 1998/2002; Glorot & Bengio 2010; He et al. 2015; Saxe et al. 2014; Yosinski et al.
2014; Erhan et al. 2010).

1. Scale and scheme: outcome maps of test accuracy after the same training, for each scheme ×
   gain × depth × activation (one population per activation and depth), and the per-layer
   forward and gradient signal at init that explains them.
2. Example order: the same init trained many times with only the first k or only the last k
   examples' order changed; variance of the final function on a fixed probe set, with a
   Mann–Whitney U test.
3. Transfer: the first n layers of nets trained on digits 0–4 copied into nets for 5–9, frozen or
   fine-tuned, against a random init (one population with per-member masks).

Budget: about 30 s on 2 cores (≤ 12 s with ``--quick``); the sizes are stated in the report.
Greedy autoencoder pre-training and curricula are in :mod:`pyquirk.initialization` and
:mod:`pyquirk.ordering` (docs/initialization.md), not in the tour.
"""
from __future__ import annotations

import time

import numpy as np

from ._figures import save_and_plot
from .tour import SectionOutput, Table, section

SETTINGS = {
    "normal": {"schemes": ("lecun_normal", "glorot_normal", "he_normal", "orthogonal"),
               "gains": (0.1, 0.3, 1.0, 3.0, 10.0), "depths": (2, 6), "width": 32, "init_steps": 120,
               "init_n_train": 1000, "order_n_train": 500, "k": 200, "n_runs": 6, "n_init": 3,
               "order_epochs": 10, "transfer_hidden": (64, 64), "transfer_seeds": 3,
               "transfer_steps": 300, "transfer_base_steps": 400},
    "quick": {"schemes": ("glorot_normal", "he_normal"), "gains": (0.1, 1.0, 10.0), "depths": (6,),
              "width": 32, "init_steps": 100, "init_n_train": 500, "order_n_train": 300, "k": 100,
              "n_runs": 4, "n_init": 2, "order_epochs": 5, "transfer_hidden": (32, 32),
              "transfer_seeds": 2, "transfer_steps": 150, "transfer_base_steps": 200},
}


def _arguments(parser) -> None:
    parser.add_argument("--k", type=int, default=None, help="size of the early and late sets")
    parser.add_argument("--n-runs", dest="n_runs", type=int, default=None,
                        help="orders per (init seed, condition)")
    parser.add_argument("--n-init", dest="n_init", type=int, default=None, help="init seeds")
    parser.add_argument("--init-steps", dest="init_steps", type=int, default=None,
                        help="training steps of each init-sweep network")


def _options(ctx) -> dict:
    o = dict(SETTINGS["quick" if ctx.quick else "normal"])
    o.update({k: v for k, v in ctx.options.items() if k in o and v is not None})
    return o


def _transfer_verdict(base: float, frozen, tuned) -> str:
    """One data-driven sentence on the transfer curves (accuracies as fractions)."""
    parts = []
    if frozen[-1] < base - 0.02:
        parts.append(f"Freezing copied layers costs accuracy once {len(frozen)} layer(s) are kept "
                     f"({frozen[-1]:.1%} against {base:.1%}): features specific to digits 0–4 do "
                     "not serve 5–9")
    else:
        parts.append("Frozen copied layers serve task B about as well as a random start")
    if max(tuned) > base + 0.005:
        parts.append(f"fine-tuning them does better than a random start (up to {max(tuned):.1%})")
    else:
        parts.append("fine-tuning them does not beat a random start at this size")
    return "; ".join(parts) + "."


@section("init-order", "Learning is influenced by initialization and example order", order=70,
         arguments=_arguments)
def init_order_section(ctx) -> SectionOutput:
    from ..initialization import init_sweep, signal_stats, transfer
    from ..ordering import order_sensitivity

    o = _options(ctx)
    t_all, times = time.perf_counter(), {}

    t0 = time.perf_counter()
    sweep = init_sweep(schemes=o["schemes"], gains=o["gains"], depths=o["depths"], width=o["width"],
                       n_train=o["init_n_train"], steps=o["init_steps"], seeds=ctx.seeds,
                       progress=ctx.show_progress)
    save_and_plot(ctx, "init_sweep", sweep, "init_map",
                  "Test accuracy after the same training, by init scheme "
                  "(columns), activation (rows), gain (× the scheme's standard deviation, across) and "
                  "number of hidden layers (up). × marks runs whose weights overflowed.")
    sig = signal_stats(schemes=o["schemes"], gains=(min(o["gains"]), 1.0, max(o["gains"])),
                       depth=max(o["depths"]) + 4, n_probe=200, n_seeds=1, seeds=ctx.seeds)
    save_and_plot(ctx, "signal_stats", sig, "signal",
                  "At initialisation, per layer: the standard deviation of the "
                  "pre-activations (top) and the norm of the weight gradient (bottom); solid: gain 1, "
                  "dotted/dashed: the smallest/largest gain.")
    times["init"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    order = order_sensitivity(k=o["k"], n_runs=o["n_runs"], n_init=o["n_init"],
                              n_train=o["order_n_train"], epochs=o["order_epochs"], seeds=ctx.seeds,
                              progress=ctx.show_progress)
    save_and_plot(ctx, "order", order, "order",
                  f"Variance of the final function across {o['n_runs']} runs that "
                  f"differ only in the order of the first {o['k']} (early) or the last {o['k']} (late) "
                  "training examples, per init seed: logit variance and prediction disagreement on the "
                  "probe set.")
    times["order"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tr = transfer(hidden=o["transfer_hidden"], n_seeds=o["transfer_seeds"], steps=o["transfer_steps"],
                  base_steps=o["transfer_base_steps"], seeds=ctx.seeds, progress=ctx.show_progress)
    save_and_plot(ctx, "transfer", tr, "transfer",
                  "Task-B (digits 5–9) test accuracy of nets whose first n "
                  "hidden layers come from a net trained on digits 0–4, frozen (AnB) or fine-tuned "
                  "(AnB+), against a random init (grey band: mean ± std).")
    times["transfer"] = time.perf_counter() - t0

    learned = sweep.learned()
    gains = list(sweep.gains)
    one = gains.index(1.0) if 1.0 in gains else int(np.argmin(np.abs(np.log(sweep.gains))))
    deep = len(sweep.depths) - 1
    ok_at_one = bool(learned[:, :, :, one].all())
    extremes = bool(~learned[:, deep, :, 0].any() and ~learned[:, deep, :, -1].any())
    n0, frozen = tr.curve(True)
    _, tuned = tr.curve(False)
    metrics = {
        "init_gain1_all_learn": ok_at_one, "init_extremes_at_chance_deepest": extremes,
        "init_diverged_fraction": float(sweep.diverged.mean()), "init_chance": sweep.chance,
        "init_test_acc_gain1": {f"{a}-d{int(d)}-{s}": float(sweep.test_acc[i, j, k, one].mean())
                                for i, a in enumerate(sweep.acts) for j, d in enumerate(sweep.depths)
                                for k, s in enumerate(sweep.schemes)},
        "order_logit_var_early": float(order.logit_var[:, 0].mean()),
        "order_logit_var_late": float(order.logit_var[:, 1].mean()),
        "order_ratio": order.ratio, "order_p_value": order.p_value,
        "order_disagreement_early": float(order.disagreement[:, 0].mean()),
        "order_disagreement_late": float(order.disagreement[:, 1].mean()),
        "transfer_baseline_acc": float(tr.test_acc[0].mean()),
        "transfer_frozen_acc": [float(v) for v in frozen.mean(1)],
        "transfer_finetuned_acc": [float(v) for v in tuned.mean(1)],
        "times_s": times, "section_time_s": time.perf_counter() - t_all,
    }
    sem = sweep.semantics
    paragraphs = [
        "How the weights start decides whether a network learns at all. LeCun et al. (1998) and "
        "Glorot & Bengio (2010) chose the weight variance so that activations and gradients keep "
        "their size from layer to layer (1/fan-in, or 2/(fan-in + fan-out)); He et al. (2015) "
        "doubled it for ReLU, which zeroes half of its inputs; Saxe et al. (2014) used orthogonal "
        "matrices. Multiplying that standard deviation by a gain g shrinks or grows the signal by "
        "about g per layer.",
        f"The map: MLPs of width {o['width']} with {', '.join(map(str, o['depths']))} hidden "
        f"layers on {sem['dataset']['n_train']} MNIST-1D examples, {o['init_steps']} steps of SGD "
        f"(lr 0.05, momentum 0.9, batch 100), {len(sweep.schemes)} schemes × {len(gains)} gains per "
        f"activation and depth as one population. At gain 1 every scheme learns"
        + (" in every configuration" if ok_at_one else " in most configurations")
        + f"; in the deepest nets gains {gains[0]:g} and {gains[-1]:g} "
        + ("stay at chance" if extremes else "mostly fail")
        + f" ({sweep.chance:.0%}): the signal vanishes, or, for ReLU, explodes until the weights "
        "overflow (×), and for tanh saturates into a chaotic regime. The signal plot shows the "
        "mechanism at init: with gain g the forward standard deviation changes by about g per "
        "layer (He: exactly preserved for ReLU at g = 1).",
        f"Order (Erhan et al. 2010): for each of {o['n_init']} fixed initialisations, "
        f"{o['n_runs']} runs change only the order of the first {o['k']} of the "
        f"{o['order_n_train']} training examples (early set) and {o['n_runs']} only the order of "
        f"the last {o['k']} (late set); {o['order_epochs']} epochs of Adam (lr 1e-3, batch 10). "
        f"The logit variance across runs on {order.semantics['probes']} probe examples is "
        f"{metrics['order_logit_var_early']:.4f} (early) against "
        f"{metrics['order_logit_var_late']:.4f} (late), {order.ratio:.1f}×; prediction "
        f"disagreement {metrics['order_disagreement_early']:.1%} against "
        f"{metrics['order_disagreement_late']:.1%}; one-sided Mann–Whitney U on the per-run "
        f"deviations p = {order.p_value:.2g}. "
        + ("Early examples shape the final function more than late ones."
           if order.ratio > 1 and order.p_value < 0.05 else
           "At this size the early set does not clearly dominate (see docs/initialization.md)."),
        f"Transfer (Yosinski et al. 2014): MLP 40-{'-'.join(map(str, o['transfer_hidden']))}-5 "
        f"trained on digits 0–4 ({tr.semantics['n_train_a']} examples); nets for 5–9 "
        f"({tr.semantics['n_train_b']} examples) start from its first n layers. Random init: "
        f"{metrics['transfer_baseline_acc']:.1%}; copied and frozen: "
        + ", ".join(f"n={int(n)} {a:.1%}" for n, a in zip(n0[1:], frozen.mean(1)[1:]))
        + "; copied and fine-tuned: "
        + ", ".join(f"n={int(n)} {a:.1%}" for n, a in zip(n0[1:], tuned.mean(1)[1:]))
        + ". " + _transfer_verdict(float(tr.test_acc[0].mean()), frozen.mean(1)[1:], tuned.mean(1)[1:]),
    ]
    mark = lambda idx: "×" if sweep.diverged[idx].all() else ""  # noqa: E731
    rows = [[a, int(d), s] + [f"{sweep.test_acc[i, j, k, g].mean():.2f}" + mark((i, j, k, g))
                              for g in range(len(gains))]
            for i, a in enumerate(sweep.acts) for j, d in enumerate(sweep.depths)
            for k, s in enumerate(sweep.schemes)]
    table = Table(["activation", "hidden layers", "scheme"] + [f"g={g:g}" for g in gains], rows,
                  caption="Init sweep: test accuracy (× = diverged)")
    return SectionOutput(paragraphs=paragraphs, metrics=metrics, tables=[table])
