"""Tour section ``compression``: "Networks can be compressed" (Han et al. 2016, Frankle & Carbin 2019,
Hinton et al. 2015).

On the baseline MNIST-1D MLP (40-100-100-10, ReLU, Adam 1e-2, batch 100):

1. **Lottery tickets.** Iterative global magnitude pruning (the ``"global"`` preset: every layer but
   the output layer, rewind to init) to 90 % of the pruned layers' weights, with the two controls
   (the same mask on a random re-initialisation; a random mask with the same per-layer counts)
   trained in lockstep with the ticket.
2. **One-shot pruning curves** from the same dense net: global magnitude, layer-wise magnitude and
   random pruning at several sparsities, each retrained with its mask (all arms one population).
3. **Deep Compression size** of the 90 % ticket: 5-bit k-means weight sharing per layer (centroids
   fine-tuned by summed gradients), Huffman-coded cluster indices and relative positions; the
   ratio against dense float32 broken into its pruning, quantization and Huffman parts.
4. **Distillation.** An ensemble of four baseline MLPs (one population) teaches a 40-32-32-10
   student at several temperatures; the same student on hard labels alone is the control.
5. **Sparse inference.** Dense against CSR logits of a 1024-wide MLP at 90 % and 98 % sparsity
   (native kernel), and the memory of the ticket in CSR.

Time budget about 30 s (12 s with ``--quick``: shorter training, fewer rounds and points).
Options (``ctx.options``): ``steps``.
"""
from __future__ import annotations

import time

import numpy as np

from .tour import SectionOutput, Table, section

DATA_SEED = 42
SETTINGS = {"steps": 1000, "quick_steps": 300, "rounds": 4, "quick_rounds": 3, "target": 0.9,
            "curve": (0.5, 0.8, 0.9, 0.95), "quick_curve": (0.5, 0.9), "members": 4, "quick_members": 3,
            "temperatures": (1.0, 2.0, 4.0, 8.0), "quick_temperatures": (2.0, 8.0), "finetune": 300,
            "quick_finetune": 100, "sparse_N": 256}


def _setting(ctx, key):
    if key == "steps" and ctx.options.get("steps") is not None:
        return int(ctx.options["steps"])
    return SETTINGS.get(("quick_" if ctx.quick else "") + key, SETTINGS[key])


def mlp(width: int = 100, n_in: int = 40, n_classes: int = 10, depth: int = 2):
    """The baseline MLP shape: ``n_in``-width-…-width-``n_classes``, ReLU."""
    from ..nn import Dense, Net, ReLU
    layers = []
    for _ in range(depth):
        layers += [Dense(width), ReLU()]
    return Net(layers + [Dense(n_classes)], input_shape=(n_in,))


def _sparse_timing(seeds, N: int) -> list[dict]:
    """Dense vs CSR logits of a 1024-1024-1024-10 MLP, global magnitude pruning at 90 % and 98 %."""
    from ..compression import apply_mask, prune_magnitude
    from ..compression.sparse import native_reason, time_logits
    if native_reason() is not None:
        return []
    net = mlp(1024, n_in=1024, depth=2)
    theta = net.init(seeds)
    X = np.random.default_rng(0).standard_normal((N, 1024)).astype(np.float32)
    rows = []
    for p in (0.9, 0.98):
        mask = prune_magnitude(net, theta, p)
        t = time_logits(net, apply_mask(theta, mask), X, repeat=5)
        rows.append({"sparsity": p, **{k: t[k] for k in ("dense_s", "sparse_s", "speedup", "ratio")}})
    return rows


@section("compression", "Networks can be compressed", order=60)
def compression_section(ctx) -> SectionOutput:
    from ..compression import (distill, finetune_shared, lottery_ticket, per_round_fraction, pruning_curve,
                               share_weights, size_report, train_ensemble)
    from ..compression.sparse import SparseNet
    from ..data import mnist1d

    t0 = time.perf_counter()
    ds = mnist1d(seed=DATA_SEED)
    steps, rounds, target = _setting(ctx, "steps"), _setting(ctx, "rounds"), SETTINGS["target"]
    net = mlp()
    show = ctx.show_progress

    tk = lottery_ticket(net, ds, rounds, preset="global", p=per_round_fraction(target, rounds), steps=steps,
                        seeds=ctx.seeds, progress=show)
    ctx.save_result("tickets", tk)
    ctx.figure("tickets", tk.plot(), caption="Iterative global magnitude pruning (output layer kept), each "
               "round rewound to the initialisation: the ticket against the same mask on a fresh "
               "initialisation and against a random mask of the same per-layer sparsity.")

    curve = pruning_curve(net, ds, _setting(ctx, "curve"), theta=tk.theta_dense, retrain_steps=steps // 2,
                          seeds=ctx.seeds, progress=show)
    ctx.save_result("one-shot", curve)
    ctx.figure("one-shot", curve.plot(), caption="One-shot pruning of the trained dense net, before "
               "(dashed) and after (solid) masked retraining.")

    mask, theta = tk.masks[-1], tk.theta_ticket
    shared = share_weights(net, theta, mask, bits=5)
    acc_shared = float(net.accuracy(shared.theta, ds.X_test, ds.y_test))
    shared = finetune_shared(net, shared, ds, steps=_setting(ctx, "finetune"), seeds=ctx.seeds, progress=show)
    size = size_report(net, mask, shared)
    ctx.save_result("size", size)
    ctx.figure("size", size.plot(), caption="Storage of the 90 % ticket at each Deep Compression stage.")

    teacher = train_ensemble(net, ds, _setting(ctx, "members"), steps=steps, seeds=ctx.seeds, progress=show)
    student = mlp(32)
    dist = distill(student, (net, teacher.theta), ds, temperatures=_setting(ctx, "temperatures"),
                   alpha=0.5, steps=steps, seeds=ctx.seeds, progress=show)
    ctx.save_result("distillation", dist)
    ctx.figure("distillation", dist.plot(), caption="A 40-32-32-10 student distilled from an ensemble of "
               "four 40-100-100-10 MLPs, against the same student on hard labels alone.")

    timing = _sparse_timing(ctx.seeds, SETTINGS["sparse_N"])
    mem = SparseNet(net, theta, mask).memory()

    final = -1
    acc = {a: float(tk.test_acc[a][final]) for a in tk.arms}
    dense_acc = float(tk.test_acc["ticket"][0])
    Td, best = dist.best_distilled
    metrics = {
        "dense_test_acc": dense_acc, "ticket_scope_sparsity": float(tk.scope_sparsity[final]),
        "ticket_weight_sparsity": float(tk.sparsity[final]),
        **{f"{a}_test_acc": v for a, v in acc.items()},
        "ticket_minus_dense": acc["ticket"] - dense_acc,
        "ticket_beats_reinit": acc["ticket"] > acc.get("reinit", -1),
        **{f"oneshot_{m}_{int(round(100 * q))}": float(curve.acc_retrained[i, j])
           for i, m in enumerate(curve.methods) for j, q in enumerate(curve.sparsities)},
        "shared_acc_before_finetune": acc_shared, "shared_acc": float(shared.history["test_acc"][-1]),
        **{f"ratio_{k}": float(v) for k, v in size.ratios.items()},
        "teacher_acc": dist.teacher_acc, "student_hard_acc": dist.hard_acc,
        "student_distilled_acc": best, "student_best_T": Td,
        "csr_memory_ratio": mem["ratio"],
        **{f"sparse_speedup_{int(round(100 * r['sparsity']))}": r["speedup"] for r in timing},
        "steps": steps, "time_s": time.perf_counter() - t0,
    }
    rows = [["dense", f"{0:.0%}", f"{dense_acc:.1%}"]] + \
        [[a, f"{tk.scope_sparsity[final]:.1%}", f"{acc[a]:.1%}"] for a in tk.arms]
    size_rows = [[st, f"{bits / 8192:.1f} KiB", f"{size.stages['dense'] / bits:.1f}×"]
                 for st, bits in size.stages.items()]
    dist_rows = [["hard labels alone", "–", f"{dist.hard_acc:.1%}"]] + \
        [["distilled, α = 0.5", f"{T:g}", f"{a:.1%}"] for T, al, a in
         zip(dist.temperatures, dist.alphas, dist.test_acc) if al > 0] + \
        [["teacher (ensemble)", "–", f"{dist.teacher_acc:.1%}"]]
    tables = [Table(["network", "pruned (hidden layers)", "test acc"], rows, caption="Lottery tickets"),
              Table(["stage", "size", "vs dense float32"], size_rows,
                    caption=f"Deep Compression of the ticket: pruning {size.ratios['pruning']:.1f}×, "
                            f"quantization {size.ratios['quantization']:.1f}×, "
                            f"Huffman {size.ratios['huffman']:.2f}×"),
              Table(["student", "T", "test acc"], dist_rows, caption="Distillation")]
    if timing:
        tables.append(Table(["sparsity", "dense logits", "CSR logits", "speed-up", "memory ratio"],
                            [[f"{r['sparsity']:.0%}", f"{1e3 * r['dense_s']:.2f} ms", f"{1e3 * r['sparse_s']:.2f} ms",
                              f"{r['speedup']:.1f}×", f"{r['ratio']:.1f}×"] for r in timing],
                            caption=f"Sparse inference, 1024-1024-1024-10 MLP, N = {SETTINGS['sparse_N']}"))
    paragraphs = [
        "A trained network can lose most of its weights and keep its accuracy (Han, Mao & Dally, 2016), "
        "and an ensemble can be distilled into a smaller net (Hinton, Vinyals & Dean, 2015). Frankle & "
        "Carbin (2019) ask the essay's question: if a sparse subnetwork can do the job, do we need the "
        "large network at all? Their answer: the subnetwork found by pruning trains well only from its "
        "original initialisation — the 'winning ticket'.",
        f"Pruning {tk.scope_sparsity[final]:.0%} of the hidden layers' weights over {rounds} rounds "
        f"({steps} steps each, rewound to the initialisation), the ticket reaches {acc['ticket']:.1%} test "
        f"accuracy against {dense_acc:.1%} for the dense net; the same mask on a fresh initialisation "
        f"reaches {acc.get('reinit', float('nan')):.1%} and a random mask of the same sparsity "
        f"{acc.get('random_mask', float('nan')):.1%}. One-shot pruning straight to high sparsity loses more: "
        "the iterations matter.",
        f"Stored as Deep Compression stores it (relative indices, 5-bit shared weights, Huffman codes), "
        f"the ticket takes {size.stages['huffman'] / 8192:.1f} KiB against {size.stages['dense'] / 8192:.1f} "
        f"KiB dense: {size.ratios['total']:.1f}× smaller, at {metrics['shared_acc']:.1%} test accuracy "
        f"after fine-tuning the centroids ({acc_shared:.1%} before).",
        f"A 40-32-32-10 student trained on hard labels reaches {dist.hard_acc:.1%}; distilled from the "
        f"{dist.teacher_members_acc.size}-member ensemble ({dist.teacher_acc:.1%}) at T = {Td:g} it reaches "
        f"{best:.1%}, with {student.n_params} parameters against the ensemble's "
        f"{dist.teacher_members_acc.size * net.n_params}.",
    ]
    if timing:
        paragraphs.append(
            "Masks alone never make a network faster. In CSR, the native kernel computes the 1024-wide "
            f"MLP's logits {timing[0]['speedup']:.1f}× faster than dense BLAS at 90 % sparsity and "
            f"{timing[-1]['speedup']:.1f}× at 98 %, in {1 / timing[0]['ratio']:.0%} and "
            f"{1 / timing[-1]['ratio']:.0%} of the dense memory (timings from this run, on a shared machine).")
    return SectionOutput(paragraphs=paragraphs, metrics=metrics, tables=tables)
