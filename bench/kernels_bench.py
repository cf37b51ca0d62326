"""The data-parallel kernels: Numba twin vs NumPy twin vs peers, in one run.

``python -m bench.kernels_bench [--repeat R] [--only SUBSTRING ...]``

Workloads (float32, fixed shapes; issue 3 targets in brackets):

- global magnitude selection of 90 % of 10 × (1024×1024) weights: θ is one flat vector of 10 layers
  of 1024×1024 weights + 1024 biases, the scope is the weights only, the mask is created
  [numba ≤ 15 ms; ≥ 3.5× faster than ``np.partition`` on the concatenated magnitudes; ≥ 50× faster
  than ``torch.nn.utils.prune.global_unstructured``]. Implementations:
  ``pyquirk-cpu`` (Numba radix select), ``pyquirk-reference`` (stable argsort),
  ``np.partition`` (concatenate |θ| of the scope, partition at k, mask = |θ| > threshold: not
  exact under ties, timed including the concatenation and the mask),
  ``torch prune`` (``global_unstructured(..., L1Unstructured, amount=0.9)`` on 10 ``nn.Linear``;
  the modules are rebuilt outside the clock before every call);
- mask application in place on the same θ; the NumPy idiom ``np.multiply(θ, mask, out=θ)`` as peer;
- grid points, a tile of T=16 points of the 784-512-512-10 MLP (P = 669,706);
- PGD pieces on ``[1024, 784]`` (the attack workload's batch): L∞/L2 steepest step, L∞/L2
  projection, L2 random start (and its twins alone, on draws made once);
- filter normalization of one direction of the 784-512-512-10 MLP.

Each row is the median of rounds in which every implementation runs once, interleaved after a
warm-up (bench/harness.py, ``interleaved_times``). ``pyquirk-cpu 1 thread``
rows run the Numba twin with one thread (its serial path: no parallel launch). The machine is
shared: read the ratios, which come from one run, and rerun on a quiet machine for absolute figures.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import numpy as np

from pyquirk import kernels

from .harness import parse_args, run_benches, sgemm_gflops, speedup, table

IMPLS = ("cpu", "reference")


def _pyquirk(fn, *args, **kw):
    """(implementation name, callable) for each twin of a pyquirk kernel, plus the Numba twin on
    one thread (its serial path: no parallel launch, which costs milliseconds on a busy machine)."""
    return [(f"pyquirk-{b}", (lambda b=b: fn(*args, backend=b, **kw))) for b in IMPLS] + \
           [("pyquirk-cpu 1 thread", _one_thread(lambda: fn(*args, backend="cpu", **kw)))]


def _one_thread(fn):
    import numba

    def run():
        n = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(n)
    return run


class GlobalMagnitudeSelect:
    """Exact-k global magnitude selection over the weights of a flat θ, mask included."""

    name = "global magnitude select 90% of 10×1024² (f32)"
    layers, rows, cols, fraction = 10, 1024, 1024, 0.9

    def setup(self):
        rng = np.random.default_rng(0)
        block = self.rows * self.cols + self.rows                     # weight, then bias
        self.P = self.layers * block
        self.theta = (rng.standard_normal(self.P) * 0.02).astype(np.float32)
        self.segments = [(j * block, self.rows * self.cols) for j in range(self.layers)]
        self.k = round(self.fraction * self.layers * self.rows * self.cols)

    def partition(self):
        t, k = self.theta, self.k
        mags = np.concatenate([np.abs(t[o:o + s]) for o, s in self.segments])
        thr = np.partition(mags, k - 1)[k - 1]
        mask = np.ones(self.P, dtype=bool)
        for o, s in self.segments:
            mask[o:o + s] = np.abs(t[o:o + s]) > thr
        return mask

    def impls(self):
        out = _pyquirk(kernels.magnitude_select, self.theta, self.k, self.segments)
        out.append(("np.partition", self.partition))
        return out

    def peers(self, repeat):
        """torch's global L1 pruning, :meth:`torch_calls` calls; nothing without torch."""
        secs = self.torch_prune(self.torch_calls(repeat))
        return [] if secs is None else [("torch prune", secs)]

    def torch_calls(self, repeat):
        return 3

    def torch_prune(self, calls=3):
        """Median seconds of torch's global L1 pruning (modules rebuilt off the clock), or None."""
        try:
            import torch
            from torch.nn.utils import prune
        except ImportError:
            return None
        weights = [torch.from_numpy(self.theta[o:o + s].reshape(self.rows, self.cols).copy())
                   for o, s in self.segments]

        def fresh():
            mods = [torch.nn.Linear(self.cols, self.rows) for _ in weights]
            with torch.no_grad():
                for m, w in zip(mods, weights):
                    m.weight.copy_(w)
            return [(m, "weight") for m in mods]

        def run(params):
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=self.fraction)

        run(fresh())                                                    # warm-up
        times = []
        for _ in range(calls):                                          # seconds per call
            params = fresh()
            t0 = time.perf_counter()
            run(params)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


class ApplyMask:
    name = "apply mask in place, θ 10.5M (f32)"

    def setup(self):
        sel = GlobalMagnitudeSelect()
        sel.setup()
        self.theta = sel.theta.copy()
        self.mask = kernels.magnitude_select(sel.theta, sel.k, sel.segments)

    def impls(self):
        t, m = self.theta, self.mask
        return _pyquirk(kernels.apply_mask, t, m, out=t) + \
            [("np.multiply(θ, mask, out=θ)", lambda: np.multiply(t, m, out=t))]


class GridPoints:
    name = "grid points T=16, P=669,706 (f32)"

    def setup(self):
        rng = np.random.default_rng(1)
        P = 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
        self.args = (rng.standard_normal(P).astype(np.float32), *rng.standard_normal((2, P)).astype(np.float32),
                     rng.uniform(-1, 1, 16), rng.uniform(-1, 1, 16))
        self.out = np.empty((16, P), np.float32)

    def impls(self):
        return _pyquirk(kernels.grid_points, *self.args, out=self.out)


class AttackPieces:
    """One kernel of a PGD iteration on the attack workload's batch."""

    def __init__(self, kind, norm):
        self.kind, self.norm = kind, norm
        self.name = f"{kind} {norm} [1024, 784] (f32)"

    def setup(self):
        rng = np.random.default_rng(2)
        self.x0 = rng.uniform(0, 1, (1024, 784)).astype(np.float32)
        self.x = np.clip(self.x0 + 0.05 * rng.standard_normal(self.x0.shape), 0, 1).astype(np.float32)
        self.g = rng.standard_normal(self.x0.shape).astype(np.float32)

    def impls(self):
        eps = 8 / 255 if self.norm == "linf" else 0.5
        if self.kind == "step":
            return _pyquirk(kernels.steepest_step, self.x, self.g, eps / 4, self.norm)
        if self.kind == "project":
            fn = kernels.project_linf if self.norm == "linf" else kernels.project_l2
            return _pyquirk(fn, self.x, self.x0, eps)
        return _pyquirk(kernels.random_start, self.x0, eps, self.norm, 0)


class RandomStartTwins:
    """The random start's arithmetic alone: both twins on draws made once (the public function
    spends most of its time in NumPy's Generator, the same for both)."""

    name = "random start l2, twins only (draws made once) [1024, 784] (f32)"

    def setup(self):
        rng = np.random.default_rng(4)
        self.x0 = rng.uniform(0, 1, (1024, 784)).astype(np.float32)
        self.draws = (np.full(1024, 0.5), "l2", rng.standard_normal((1024, 784)), rng.random(1024), 0.0, 1.0)

    def impls(self):
        from pyquirk.backends import numba_kernels, reference_kernels
        return [("pyquirk-cpu", lambda: numba_kernels.random_start(self.x0, *self.draws)),
                ("pyquirk-reference", lambda: reference_kernels.random_start(self.x0, *self.draws))]


class FilterNormalize:
    name = "filter normalize 784-512-512-10 (f32)"

    def setup(self):
        from bench.workloads import mlp
        self.net = mlp((784, 512, 512, 10))
        self.theta = self.net.init(0)
        self.d = np.random.default_rng(3).standard_normal(self.net.n_params).astype(np.float32)

    def impls(self):
        return _pyquirk(kernels.filter_normalize, self.d, self.theta, self.net)


BENCHES = [GlobalMagnitudeSelect, ApplyMask, GridPoints,
           lambda: AttackPieces("step", "linf"), lambda: AttackPieces("step", "l2"),
           lambda: AttackPieces("project", "linf"), lambda: AttackPieces("project", "l2"),
           lambda: AttackPieces("random start", "l2"), RandomStartTwins, FilterNormalize]


def _targets(rows) -> str:
    """The issue-3 selection targets, measured against this run's peers (all threads and one)."""
    t = {r.impl: r for r in rows if r.workload == GlobalMagnitudeSelect.name}
    ours = {k: t[k] for k in ("pyquirk-cpu", "pyquirk-cpu 1 thread") if k in t}
    if not ours:
        return ""
    lines = ["| target | " + " | ".join(ours) + " |", "|---|" + "---:|" * len(ours)]
    cell = lambda ok, text: f"{text} {'✓' if ok else '✗'}"
    lines.append("| numba ≤ 15 ms | " +
                 " | ".join(cell(r.seconds <= 0.015, f"{r.seconds * 1e3:.2f} ms") for r in ours.values()) + " |")
    for peer, need in (("np.partition", 3.5), ("torch prune", 50.0)):
        if peer in t:
            lines.append(f"| ≥ {need:g}× faster than {peer} | " +
                         " | ".join(cell(speedup(r, t[peer]) >= need, f"{speedup(r, t[peer]):.1f}×")
                                    for r in ours.values()) + " |")
        else:
            lines.append(f"| ≥ {need:g}× faster than {peer} | " + " | ".join("not installed" for _ in ours) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args("python -m bench.kernels_bench", 15, argv)
    import numba
    roof = sgemm_gflops()
    rows = run_benches(BENCHES, args, widths=(48, 28))
    try:
        layer = numba.threading_layer()
    except ValueError:                      # no parallel kernel ran
        layer = "unused"
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; numpy {np.__version__}, numba {numba.__version__} "
          f"(threading layer {layer}, {numba.get_num_threads()} threads); "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    targets = _targets(rows)
    if targets:
        print("\nSelection targets (issue 3):\n")
        print(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
