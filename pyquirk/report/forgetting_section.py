"""Tour section ``forgetting``: "Networks forget" (McCloskey & Cohen 1989; Kirkpatrick et al. 2017;
Serrà et al. 2018).

Naive fine-tuning against replay, EWC and HAT on two 5-task sequences built from MNIST-1D
(``mnist1d(seed=42)``, the baseline's data), both task-incremental (a head per task):

1. **permuted** MNIST-1D: task t sees every signal with its 40 positions permuted by πₜ (π₀ the
   identity); the first ``n_train`` training and ``n_test`` test signals of each task;
2. **split** MNIST-1D: the class pairs (0, 1), (2, 3), …, (8, 9), all their signals.

Every strategy trains the MLP 40-100-100-heads with SGD (lr 0.1, momentum 0.9, batch 64, state
reset per task) for the same epochs per task; the seeds are one population (one engine call per
step). References: joint training on all tasks (for HAT's ρ) and one network per task (the
single-task accuracy). Settings (quick mode in brackets): permuted 2000 [1000] training and 500
test signals per task, 4 [3] epochs; split 5 [3] epochs; 3 [2] seeds; EWC λ = 10 (true Fisher,
200 samples), replay memory 1000 (reservoir), HAT s_max = 400, c = 0.75.

HAT's capacity row: on split MNIST-1D HAT and the single-task reference run once more with 300
units per hidden layer (same schedule and seeds). HAT's gates close about half of a layer's units
for each task from the start (N(0, 1) embeddings), so on the 100-unit MLP a task learns in half a
network and ends 3–5 points below one network per task; with 300 units its mean gap is within
2 points (1.5 with the tour's seeds, 1.75 over seeds 0–19), while the single-task accuracy barely
moves. Permuted MNIST-1D needs about 800 units, too slow for the tour (docs/forgetting.md,
"HAT and capacity").

Time budget about 30 s (10 s with ``--quick``) on two cores. Options (``ctx.options``): ``epochs``,
``n_train``, ``seeds`` (how many) override both scenarios.
"""
from __future__ import annotations

import time

import numpy as np

from ._figures import save_and_plot
from .tour import SectionOutput, Table, section

DATA_SEED = 42
SETTINGS = {"permuted_n_train": 2000, "quick_permuted_n_train": 1000, "n_test": 500,
            "permuted_epochs": 4, "quick_permuted_epochs": 3, "split_epochs": 5, "quick_split_epochs": 3,
            "seeds": 3, "quick_seeds": 2, "hidden": (100, 100), "batch_size": 64, "lr": 0.1, "momentum": 0.9,
            "hat_hidden": (300, 300)}
STRATEGIES = {"naive": {}, "ewc": {"lam": 10.0}, "replay": {"memory_size": 1000}, "hat": {}}
LABELS = {"naive": "naive", "ewc": "EWC", "replay": "replay", "hat": "HAT", "joint": "joint",
          "single": "single-task"}


def _arguments(parser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="epochs per task (both scenarios)")
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="training signals per permuted task")
    parser.add_argument("--seeds", type=int, default=None, help="population members (seeds)")


def _setting(ctx, key):
    return SETTINGS.get(("quick_" if ctx.quick else "") + key, SETTINGS.get(key))


def _options(ctx) -> dict:
    o = {"permuted_n_train": _setting(ctx, "permuted_n_train"), "permuted_epochs": _setting(ctx, "permuted_epochs"),
         "split_epochs": _setting(ctx, "split_epochs"), "seeds": _setting(ctx, "seeds")}
    opt = ctx.options
    if opt.get("epochs") is not None:
        o["permuted_epochs"] = o["split_epochs"] = int(opt["epochs"])
    if opt.get("n_train") is not None:
        o["permuted_n_train"] = int(opt["n_train"])
    if opt.get("seeds") is not None:
        o["seeds"] = int(opt["seeds"])
    return o


def _member_seeds(seeds, n):
    """n members: the run's seeds with the init and order streams shifted by the member index."""
    return [seeds.replace(init=seeds.init + e, order=seeds.order + e) for e in range(n)]


def _rows(res, suffix: str = "") -> list:
    """One table row per strategy and reference of ``res``; ``suffix`` is appended to each label."""
    rows = []
    for name, m in res.table.items():
        def pct(k, m=m):
            return "—" if not np.isfinite(m.get(k, np.nan)) else f"{100 * m[k]:+.1f}"
        rho = m.get("rho", np.nan)
        rows.append([LABELS.get(name, name) + suffix, f"{100 * m['acc']:.1f}", pct("bwt"), pct("forgetting_last"),
                     pct("forgetting_max"), pct("fwt"), "—" if not np.isfinite(rho) else f"{rho:+.2f}",
                     pct("single_gap"), pct("intransigence"), f"{res.runs[name].counts['wall_time_s']:.1f} s"])
    return rows


def _table(parts, caption) -> Table:
    """``parts``: ``[(result, label suffix), …]``, their rows in that order."""
    rows = [row for res, suffix in parts for row in _rows(res, suffix)]
    return Table(["strategy", "ACC %", "BWT", "forgetting (last)", "forgetting (max)", "FWT", "ρ",
                  "gap to single-task", "intransigence", "time"], rows, caption=caption)


@section("forgetting", "Networks forget", order=90, arguments=_arguments)
def forgetting_section(ctx) -> SectionOutput:
    from ..data import mnist1d
    from ..forgetting import permuted, run_experiment, split
    from ..train import SGD

    o = _options(ctx)
    t_all = time.perf_counter()
    ds = mnist1d(seed=DATA_SEED)
    seeds = _member_seeds(ctx.seeds, o["seeds"])
    common = dict(seeds=seeds, hidden=SETTINGS["hidden"], batch_size=SETTINGS["batch_size"],
                  optimizer=SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"]), progress=ctx.show_progress)
    scenarios = {
        "permuted": (permuted(ds, 5, seed=ctx.seeds.data, n_train=o["permuted_n_train"], n_test=SETTINGS["n_test"]),
                     o["permuted_epochs"]),
        "split": (split(ds, n_tasks=5), o["split_epochs"]),
    }
    results, metrics, tables, times = {}, {}, [], {}
    wide = _hat_capacity(ctx, scenarios["split"][0], o["split_epochs"], common, metrics)
    for key, (sc, epochs) in scenarios.items():
        t0 = time.perf_counter()
        res = run_experiment(sc, STRATEGIES, epochs=epochs, **common)
        times[key] = time.perf_counter() - t0
        results[key] = res
        save_and_plot(ctx, key, res, key, caption=f"{key.capitalize()} MNIST-1D, 5 tasks, a head per task: the "
                      "accuracy matrix R[i, j] (test accuracy % on task j after training task i, mean over "
                      "seeds) of each strategy, and the accuracy on task 1 after every epoch as tasks 2–5 "
                      "arrive (band: min–max over seeds; dotted: task boundaries).")
        parts = [(res, "")] + ([(wide, f", {_width()} units")] if key == "split" else [])
        tables.append(_table(parts, f"{key.capitalize()} MNIST-1D: metrics (points of accuracy, mean over "
                                    f"{len(seeds)} seeds); BWT and forgetting over tasks 1–4, ρ after task 5; "
                                    "ACC of single-task: its mean accuracy per task, the reference of the gap"
                                    + (f"; the last two rows: HAT and single-task with {_width()} units per "
                                       "hidden layer (HAT's capacity row)." if key == "split" else ".")))
        for name, m in res.table.items():
            for k in ("acc", "bwt", "forgetting_last", "forgetting_max", "fwt", "rho", "single_gap", "intransigence"):
                if k in m and np.isfinite(m[k]):
                    metrics[f"{key}_{name}_{k}"] = m[k]
        f_naive = res.table["naive"]["forgetting_max"]
        for name in ("ewc", "replay", "hat"):
            metrics[f"{key}_{name}_halves_forgetting"] = bool(res.table[name]["forgetting_max"] <= 0.5 * f_naive)
        metrics[f"{key}_time_s"] = times[key]
    metrics["section_time_s"] = time.perf_counter() - t_all

    p, sp = results["permuted"].table, results["split"].table
    nt = o["permuted_n_train"]
    paragraphs = [
        "McCloskey & Cohen (1989) taught a network one set of facts and then another, and watched "
        "the first set vanish: gradient descent on the new task overwrites what the old one needed. "
        "Continual-learning methods fight back in three ways (Serrà et al. 2018): rehearse old "
        "examples (replay), make important weights stiff (EWC, Kirkpatrick et al. 2017), or give "
        "each task its own units (HAT, hard attention to the task).",
        f"Permuted MNIST-1D: 5 tasks, each the same {nt} training signals with their 40 positions "
        "shuffled by a fixed permutation (task 1 unshuffled); split MNIST-1D: 5 tasks of two digits "
        "each. Task-incremental: a 40-100-100 MLP with a 10-way (permuted) or 2-way (split) head per "
        f"task, SGD with momentum, {o['permuted_epochs']} (permuted) and {o['split_epochs']} (split) "
        f"epochs per task, {len(seeds)} seeds trained in lockstep as one population.",
        f"Naive fine-tuning forgets: on permuted MNIST-1D its backward transfer is "
        f"{100 * p['naive']['bwt']:+.1f} points (task 1 falls from "
        f"{100 * np.nanmean(results['permuted'].runs['naive'].R[:, 0, 0]):.0f} % to "
        f"{100 * np.nanmean(results['permuted'].runs['naive'].R[:, -1, 0]):.0f} %). Max-based forgetting "
        f"(Chaudhry et al. 2018): naive {100 * p['naive']['forgetting_max']:.1f}, EWC "
        f"{100 * p['ewc']['forgetting_max']:.1f}, replay {100 * p['replay']['forgetting_max']:.1f}, HAT "
        f"{100 * p['hat']['forgetting_max']:.1f} points. On split MNIST-1D the tasks are easy and "
        f"naive forgets less ({100 * sp['naive']['forgetting_max']:.1f} points), but the order is the same.",
        "The price differs. EWC's penalty makes the network stiff, so later tasks are learned less "
        "well (intransigence: a lower diagonal of R); replay costs a memory of past examples; HAT "
        "never forgets a task (its weights between the units a task uses are frozen), but each task "
        f"gets only part of a small network: its gap to one network per task is "
        f"{100 * p['hat'].get('single_gap', np.nan):.1f} points on permuted and "
        f"{100 * sp['hat'].get('single_gap', np.nan):.1f} on split MNIST-1D, all of it intransigence "
        "(the task is learned less well inside the sequence) and none of it forgetting. HAT's gates "
        "close about half of a layer's units for each task from the start, so each task learns in "
        f"half a network. Given room for the sequence ({_width()} units per hidden layer; the official "
        "HAT code's MLP has 2000), HAT keeps split MNIST-1D within "
        f"{100 * wide.table['hat']['single_gap']:.1f} points (mean over tasks and seeds, ±"
        f"{100 * wide.table['hat']['single_gap_std']:.1f} across seeds) of one {_width()}-unit network per task "
        f"(single-task: {100 * wide.table['single']['acc']:.1f} % with {_width()} units, "
        f"{100 * sp['single']['acc']:.1f} % with 100).",
        "Metrics (docs/forgetting.md): ACC is the mean final accuracy; BWT (GEM) the mean change of "
        "each task from just after it was learned to the end, so BWT = −forgetting (last-based, "
        "Avalanche) exactly; max-based forgetting measures from the task's best accuracy; FWT the "
        "accuracy on a task before training it, above the random initialisation; ρ (HAT) sits at "
        "−1 for chance and 0 for joint training.",
    ]
    return SectionOutput(paragraphs=paragraphs, metrics=metrics, tables=tables)


def _width() -> int:
    return SETTINGS["hat_hidden"][0]


def _hat_capacity(ctx, scenario, epochs, common, metrics):
    """HAT and its single-task reference on ``scenario`` with ``SETTINGS["hat_hidden"]`` units:
    the setting under which HAT keeps each task within 2 points of one network per task."""
    from ..forgetting import run_experiment

    t0 = time.perf_counter()
    res = run_experiment(scenario, {"hat": STRATEGIES["hat"]}, references=("single",), epochs=epochs,
                         **{**common, "hidden": SETTINGS["hat_hidden"]})
    ctx.save_result("split_hat_capacity", res)
    gap = res.table["hat"]["single_gap"]
    metrics.update({"split_hat_wide_acc": res.table["hat"]["acc"], "split_hat_wide_single_gap": gap,
                    "split_hat_wide_single_gap_std": res.table["hat"]["single_gap_std"],
                    "split_single_wide_acc": res.table["single"]["acc"],
                    "split_hat_wide_within_2_points": bool(gap <= 0.02),
                    "split_hat_wide_time_s": time.perf_counter() - t0})
    return res
