"""The forgetting experiment: seeds as one population against a loop over seeds, in one run.

``python -m bench.forgetting_bench [--repeat R] [--seeds E] [--epochs K] [--quick] [--no-peer]``

Workload (float32, fixed shapes): the full experiment of issue 9 without references —
5-task permuted MNIST-1D (``mnist1d()``, permutations from ``stream("data", 0)``), task-incremental,
the first 1000 training and 500 test signals per task; MLP 40-100-100-50 (HAT: with two Gates);
SGD lr 0.1 momentum 0.9, batch 64, ``--epochs`` (2) epochs per task; four strategies: naive, EWC
(λ 10, true Fisher on 200 samples), replay (reservoir, 1000), HAT (s_max 400, c 0.75); E seeds
(default 4). Each strategy fills the full accuracy matrix (25 evaluations on 500 test signals).

Implementations, per available backend (cpu, reference):

- ``population``: :func:`pyquirk.forgetting.run_experiment(..., population=True)`: every strategy
  trains its E seeds in lockstep, one engine call per step for all of them;
- ``per-seed loop``: ``population=False``, E separate runs per strategy (the same numbers).

Peer (``--no-peer`` skips it; needs PyTorch): naive fine-tuning only, the same net, data, order
and optimizer written as a PyTorch user would (``nn.Sequential`` with a head slice per task, a
Python loop over seeds and batches, ``torch.optim.SGD``), against pyquirk's naive population.
Avalanche is not timed (it downloads its data and has no HAT).

Each row is the median of ``--repeat`` full runs after a small warm-up (bench/harness.py). The
machine is shared: read the ratios, which come from one run.
"""
from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

from .harness import Row, median_time, sgemm_gflops, table

STRATEGIES = {"naive": {}, "ewc": {"lam": 10.0}, "replay": {"memory_size": 1000}, "hat": {}}


def scenario(n_train=1000, n_test=500):
    from pyquirk.data import mnist1d
    from pyquirk.forgetting import permuted
    return permuted(mnist1d(), 5, seed=0, n_train=n_train, n_test=n_test)


def experiment(sc, seeds, epochs, population, backend, strategies=STRATEGIES):
    from pyquirk.forgetting import run_experiment
    from pyquirk.train import SGD
    return run_experiment(sc, strategies, seeds=seeds, references=(), population=population, hidden=(100, 100),
                          epochs=epochs, batch_size=64, optimizer=SGD(0.1, momentum=0.9), backend=backend)


def torch_naive(sc, seeds, epochs):
    """Naive fine-tuning in plain PyTorch, one seed after another (the peer)."""
    import torch
    torch.set_num_threads(1)
    from pyquirk.seeds import as_seeds, stream
    X = [torch.from_numpy(t.X_train.reshape(len(t.X_train), -1)) for t in sc.tasks]
    Y = [torch.from_numpy(t.y_train) for t in sc.tasks]
    Xt = [torch.from_numpy(t.X_test.reshape(len(t.X_test), -1)) for t in sc.tasks]
    Yt = [torch.from_numpy(t.y_test) for t in sc.tasks]
    heads = sc.heads
    R = np.zeros((len(seeds), sc.n_tasks, sc.n_tasks))
    for e, s in enumerate(seeds):
        torch.manual_seed(as_seeds(s).init)
        model = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                                    torch.nn.ReLU(), torch.nn.Linear(100, sc.n_outputs))
        rng = stream("order", as_seeds(s).order, 0)
        for t in range(sc.n_tasks):
            lo, hi = heads[t]
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            for _ in range(epochs):
                perm = torch.from_numpy(rng.permutation(len(Y[t])))
                for j in range(0, len(perm), 64):
                    b = perm[j:j + 64]
                    loss = torch.nn.functional.cross_entropy(model(X[t][b])[:, lo:hi], Y[t][b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                for k in range(sc.n_tasks):
                    lo_k, hi_k = heads[k]
                    R[e, t, k] = (model(Xt[k])[:, lo_k:hi_k].argmax(1) == Yt[k]).double().mean().item()
    return R


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.forgetting_bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="200 training signals per task, 1 epoch, 1 repeat")
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args(argv)
    from pyquirk import backends
    from pyquirk.seeds import Seeds

    n_train, epochs, repeat = (200, 1, 1) if args.quick else (1000, args.epochs, args.repeat)
    sc = scenario(n_train)
    seeds = [Seeds(init=e, order=e, probes=e) for e in range(args.seeds)]
    impls = [b for b in ("cpu", "reference") if backends.available()[b] is None]
    roof = sgemm_gflops()
    work = f"5 tasks × 4 strategies, E={len(seeds)} (permuted MNIST-1D, {n_train}/task, {epochs} ep)"
    rows, secs = [], {}
    for b in impls:
        experiment(scenario(64, 50), seeds[:2], 1, True, b)                  # warm-up: load, build, JIT
        for population in (True, False):
            mode = "population" if population else "per-seed loop"
            s = median_time(lambda: experiment(sc, seeds, epochs, population, b), warmup=0, repeat=repeat,
                            budget_s=0)
            secs[(b, mode)] = s
            impl = "pyquirk-reference" if (b, population) == ("reference", True) else f"pyquirk-{b} {mode}"
            rows.append(Row(work, impl, s, per=len(seeds)))
            print(f"  {b:9s} {mode:14s} {s:8.2f} s", file=sys.stderr, flush=True)
    peer = None
    if not args.no_peer:
        try:
            import torch  # noqa: F401  (the peer needs it)
            naive = {"naive": {}}
            pw = f"naive only, E={len(seeds)}"
            b = impls[0]
            s_pq = median_time(lambda: experiment(sc, seeds, epochs, True, b, naive), warmup=0, repeat=repeat,
                               budget_s=0)
            torch_naive(scenario(64, 50), seeds[:1], 1)                        # warm-up
            s_t = median_time(lambda: torch_naive(sc, seeds, epochs), warmup=0, repeat=repeat, budget_s=0)
            rows += [Row(pw, f"pyquirk-{b} population", s_pq, per=len(seeds)),
                     Row(pw, "torch per-seed loop (1 thread)", s_t, per=len(seeds))]
            peer = (b, s_pq, s_t)
        except ImportError:
            pass
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s; BLAS/OpenMP pools limited to 1 thread "
          f"inside learn (its default)\n")
    print(table(rows, roof))
    print()
    for b in impls:
        pop, loop = secs[(b, "population")], secs[(b, "per-seed loop")]
        print(f"- {b}: population {pop:.2f} s vs per-seed loop {loop:.2f} s: {loop / pop:.2f}× faster")
    if peer:
        print(f"- naive only: pyquirk-{peer[0]} population {peer[1]:.2f} s vs torch per-seed loop "
              f"{peer[2]:.2f} s: {peer[2] / peer[1]:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
