"""``python -m bench.attack_bench [--repeat R] [--only SUBSTRING]``: PGD against torchattacks.

Workloads (issue 6; fixed shapes, float32, random He-initialised MLPs, inputs uniform in [0, 1]):

- ``PGD 784-512-512-10 N=1024``: L∞ PGD, 40 steps, ε = 0.3, α = 0.01, random start;
- ``PGD 40-100-100-10 N=1000``: the same on the MNIST-1D-sized MLP;
- ``PGD ε-curve x10 40-100-100-10 N=1000``: ten ε values (0.03 … 0.3), one batched pyquirk
  pass (ε stacked on the population axis) against ten separate torchattacks runs.

Every pyquirk backend available runs (``pyquirk-<backend>``); the peer is ``torchattacks.PGD``
(torch CPU, its default threads). Implementations run interleaved
(``harness.interleaved_times``). Reported: median wall time, examples per second and the median
per-round ratio pyquirk / torchattacks in examples per second, all from this one run (absolute times are only
comparable within a run on a shared machine). Targets: ≥ 1.2×, ≥ 3×, ≥ 2× respectively.
"""
from __future__ import annotations

import platform
import statistics
import sys

import numpy as np

import pyquirk
from pyquirk.adversarial import Model, pgd

from .harness import Row, interleaved_times, parse_args, selected, sgemm_gflops, speedup, table
from .workloads import flops, mlp

STEPS, EPS, ALPHA = 40, 0.3, 0.01
CURVE = np.linspace(0.03, 0.3, 10)
TARGETS = {"PGD 784-512-512-10 N=1024": 1.2, "PGD 40-100-100-10 N=1000": 3.0,
           "PGD eps-curve x10 40-100-100-10 N=1000": 2.0}


def _problem(sizes, N, seed=0):
    net = mlp(sizes)
    rng = np.random.default_rng(seed)
    theta = net.init(seed)
    X = rng.uniform(0, 1, (N, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], N)
    return net, theta, X, y


def _backends():
    return [b for b, why in pyquirk.available().items() if why is None]


def workload(sizes, N, eps):
    """Yield (implementation, callable, examples per call) for one PGD workload."""
    net, theta, X, y = _problem(sizes, N)
    K = np.size(eps)
    for b in _backends():
        model = Model(net, theta, (0.0, 1.0), backend=b)
        yield f"pyquirk-{b}", (lambda model=model: pgd(model, X, y, eps, steps=STEPS, alpha=ALPHA,
                                                       random_start=True, seed=0)), K * N
    try:
        import torch
        import torchattacks
    except ImportError as e:  # a missing peer is reported, not an error
        print(f"  torchattacks peer unavailable: {e}", file=sys.stderr)
        return
    from pyquirk.interop.torch import to_torch
    tm = to_torch(net, theta)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    atks = [torchattacks.PGD(tm, eps=float(e), alpha=ALPHA, steps=STEPS, random_start=True)
            for e in np.atleast_1d(eps)]

    def run():
        return [a(Xt, yt) for a in atks]

    yield f"torchattacks{' x' + str(K) + ' runs' if K > 1 else ''}", run, K * N


WORKLOADS = {
    "PGD 784-512-512-10 N=1024": ((784, 512, 512, 10), 1024, EPS),
    "PGD 40-100-100-10 N=1000": ((40, 100, 100, 10), 1000, EPS),
    "PGD eps-curve x10 40-100-100-10 N=1000": ((40, 100, 100, 10), 1000, CURVE),
}


def main(argv=None) -> int:
    args = parse_args("python -m bench.attack_bench", 3, argv)
    roof = sgemm_gflops()
    rows, summary = [], []
    for name, (sizes, N, eps) in WORKLOADS.items():
        if not selected(name, args.only):
            continue
        fl = STEPS * np.size(eps) * flops(sizes, N, "input_grad")
        made = {impl: (fn, per) for impl, fn, per in workload(sizes, N, eps)}
        rounds = interleaved_times({impl: fn for impl, (fn, _) in made.items()}, repeat=args.repeat,
                                   budget_s=120.0)
        here = {}
        for impl, (_, per) in made.items():
            here[impl] = row = Row(name, impl, statistics.median(rounds[impl]), fl, per, rounds=rounds[impl])
            rows.append(row)
            print(f"  {name:42s} {impl:26s} {row.seconds:8.3f} s  {per / row.seconds:10.0f} ex/s", file=sys.stderr)
        peer = next((r for impl, r in here.items() if impl.startswith("torchattacks")), None)
        for impl, row in here.items():
            if peer is not None and impl.startswith("pyquirk"):
                ratio = speedup(row, peer) * row.per / peer.per
                met = "yes" if ratio >= TARGETS[name] else "no"
                summary.append(f"| {name} | {impl} | {row.per / row.seconds:,.0f} | {peer.per / peer.seconds:,.0f} | "
                               f"{ratio:.2f}× | ≥ {TARGETS[name]}× | {met} |")
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s; PGD L∞ {STEPS} steps, ε={EPS} "
          f"(curve: {len(CURVE)} values {CURVE[0]:.2f}…{CURVE[-1]:.2f}), α={ALPHA}, random start\n")
    print(table(rows, roof))
    if summary:
        print("\n| workload | implementation | pyquirk ex/s | torchattacks ex/s | ratio | target | met |")
        print("|---|---|---:|---:|---:|---:|---|")
        print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
