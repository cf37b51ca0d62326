"""The memorization experiment with the population axis against a per-seed loop.

``python -m bench.population_bench [--threads N] [--repeat R] [--steps S] [--backends ...] [--torch]
[--only tour|small]``

Workloads (float32, fixed shapes): Zhang et al.'s experiment as :func:`pyquirk.memorization.memorization`
runs it on MNIST-1D with SGD (lr 0.05, momentum 0.9), the 9 default corruptions × 2 seeds = 18
training runs, a fixed number of steps (no early stop, so both ways do the same work), full
training-set evaluation every 10 steps:

- ``tour``: 1000 training examples, MLP 40-128-128-10 (23 050 parameters), batch 100 (the tour's
  normal setting);
- ``small``: 400 training examples, MLP 40-32-32-10 (2 698 parameters), batch 32, where the
  per-call overhead that the population axis removes dominates.

- ``population``: one ``fit`` on θ ``[18, P]`` with per-member data ``[18, N, 40]``: one engine
  call per step for all runs (``population=True``);
- ``per-seed loop``: 18 separate ``fit`` calls (``population=False``); on the reference backend
  the two give bit-identical results (tests/test_memorization.py);
- ``torch loop`` (``--torch``, when installed): the same 18 runs as a Python loop over seeds
  with ``nn.Sequential`` + ``torch.optim.SGD``, the way a PyTorch user would write it.

The row ``pyquirk-reference`` is the per-seed loop on the reference backend: the table's last
column is every row's speed-up against it. GEMM FLOPs per step (18 runs): forward 2·B·Σin·out,
backward 2× that except the first layer's input gradient; evaluation adds 2·N·Σin·out per run
every 10 steps. Absolute times on a shared machine are noise; read the ratios.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

from .harness import pin_threads

CONFIGS = {"tour": {"sizes": (40, 128, 128, 10), "n_train": 1000, "batch": 100},
           "small": {"sizes": (40, 32, 32, 10), "n_train": 400, "batch": 32}}
SEEDS, EVAL_EVERY = 2, 10


def gemm_flops(cfg: dict, steps: int, members: int) -> float:
    sizes = cfg["sizes"]
    u = [2 * i * o for i, o in zip(sizes[:-1], sizes[1:])]
    train = cfg["batch"] * (3 * sum(u) - u[0])                # forward + backward (no input grad)
    evals = (steps // EVAL_EVERY + 1) * cfg["n_train"] * sum(u)
    return members * (steps * train + evals)


def pyquirk_impl(cfg: dict, steps: int, population: bool, backend: str):
    from pyquirk.memorization import memorization

    def run():
        return memorization(n_train=cfg["n_train"], hidden=cfg["sizes"][1:-1], n_seeds=SEEDS,
                            batch_size=cfg["batch"], steps=steps, eval_every=EVAL_EVERY,
                            stop_when_fit=False, population=population, backend=backend)
    return run


def torch_impl(cfg: dict, steps: int):
    """The same runs (corrupted data from pyquirk, so identical inputs) as a per-seed torch loop."""
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from pyquirk.data import mnist1d
    from pyquirk.data.corruptions import make_corruption
    from pyquirk.memorization import DEFAULT_CORRUPTIONS, member_seeds

    SIZES, N_TRAIN, BATCH = cfg["sizes"], cfg["n_train"], cfg["batch"]
    ds = mnist1d().subset(n_train=N_TRAIN)
    runs = member_seeds(None, SEEDS)
    data = [make_corruption(c)(ds, r) for c in DEFAULT_CORRUPTIONS for r in runs]
    tensors = [(torch.from_numpy(d.X_train), torch.from_numpy(d.y_train)) for d in data]

    def run():
        for e, (X, y) in enumerate(tensors):
            torch.manual_seed(e)
            layers = []
            for j, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
                layers.append(torch.nn.Linear(i, o))
                if j < len(SIZES) - 2:
                    layers.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*layers)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            gen = np.random.default_rng(e)
            perm, nb = gen.permutation(N_TRAIN), -(-N_TRAIN // BATCH)
            for step in range(steps):
                j = step % nb
                if j == 0:
                    perm = gen.permutation(N_TRAIN)
                idx = torch.from_numpy(perm[j * BATCH:(j + 1) * BATCH])
                loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if (step + 1) % EVAL_EVERY == 0:
                    with torch.no_grad():
                        (model(X).argmax(1) == y).float().mean().item()
    return run


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.population_bench")
    ap.add_argument("--threads", type=int, default=None, help="limit every thread pool to N")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per run")
    ap.add_argument("--backends", nargs="*", default=None, help="pyquirk backends (default: all available)")
    ap.add_argument("--torch", action="store_true", help="also time a PyTorch per-seed loop")
    ap.add_argument("--only", default=None, help="substring of the workload name (tour, small)")
    args = ap.parse_args(argv)
    if args.threads:
        pin_threads(args.threads, "bench.population_bench", argv)
    import numpy as np

    import pyquirk
    from bench.harness import Row, median_time, sgemm_gflops, table

    backends = args.backends or [b for b, why in pyquirk.available().items() if why is None]
    members = 9 * SEEDS
    roof = sgemm_gflops()
    rows, summary = [], []
    for name, cfg in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        workload = f"memorization {name} {'-'.join(map(str, cfg['sizes']))} E={members} steps={args.steps}"
        impls = [("pyquirk-reference", pyquirk_impl(cfg, args.steps, False, "reference"),
                  "per-seed loop [reference]"),
                 ("population [reference]", pyquirk_impl(cfg, args.steps, True, "reference"), "")]
        for b in backends:
            if b != "reference":
                impls += [(f"per-seed loop [{b}]", pyquirk_impl(cfg, args.steps, False, b), ""),
                          (f"population [{b}]", pyquirk_impl(cfg, args.steps, True, b), "")]
        if args.torch:
            fn = torch_impl(cfg, args.steps)
            if fn is None:
                print("  torch not installed", file=sys.stderr)
            else:
                impls.append(("torch per-seed loop", fn, ""))
        secs = {}
        for impl, fn, note in impls:
            t = median_time(fn, warmup=1, repeat=args.repeat, budget_s=60.0)
            secs[impl] = t
            rows.append(Row(workload, impl, t, gemm_flops(cfg, args.steps, members), members, note))
            print(f"  {name:6s} {impl:28s} {t:8.2f} s", file=sys.stderr)
        loops = {"reference": secs["pyquirk-reference"],
                 **{b: secs.get(f"per-seed loop [{b}]") for b in backends if b != "reference"}}
        for b, loop in loops.items():
            pop = secs.get(f"population [{b}]")
            if loop and pop:
                summary.append(f"- {name}, {b}: population {pop:.2f} s vs per-seed loop {loop:.2f} s: "
                               f"{loop / pop:.2f}× faster")
        if "torch per-seed loop" in secs:
            best = min(v for k, v in secs.items() if k.startswith("population"))
            summary.append(f"- {name}: best population vs torch per-seed loop: "
                           f"{secs['torch per-seed loop'] / best:.2f}×")
    threads = os.environ.get("PYQUIRK_BENCH_THREADS", "default")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, threads: "
          f"{threads}; numpy {np.__version__}; roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
