"""Landscape grid throughput: grid points per second, pyquirk vs PyTorch vs JAX, in one run.

``python -m bench.landscape_bench [--threads N] [--rounds R] [--only SUBSTRING] [--backends ...]``

Workloads (float32, fixed shapes; issue 5 targets in brackets):

- MLP 784-512-512-10, N=1024 examples per point  [pyquirk >= 3x the best peer]
- MLP 40-100-100-10, N=1000                        [pyquirk >= 4x the best peer]

Every implementation evaluates the same points ``θ + α·d₁ + β·d₂`` (mean cross-entropy and accuracy
over all N examples at each point):

- ``pyquirk shortcut [backend]``: tiles of points on the population axis with the first-layer
  shortcut (:class:`pyquirk.landscape.evaluate.Evaluator`, the path ``evaluate_grid`` uses), on
  each available backend (``--backends`` to choose);
- ``pyquirk full [backend]``: the same tiles without the shortcut (the lever's own reference);
- ``torch loop``: a per-point loop, ``vector_to_parameters(θ + α·d₁ + β·d₂)`` into an
  ``nn.Sequential`` then a forward pass under ``no_grad`` (what loss-landscape does);
- ``jax vmap``: ``jax.jit(jax.vmap(point -> loss, accuracy))`` over tiles of T points; T is the
  fastest of 1, 4, 16 and all points, chosen in the same run (XLA's batched GEMMs are not always
  faster than one point per call); every tile shape is compiled before timing;
- ``jax lax.map``: the same point function under ``jax.jit(jax.lax.map(...))`` (one point after
  the other inside one compiled call). Not the issue's peer, but a faster JAX on some shapes, so
  it counts as a peer: "best peer" is the fastest of all of them.

Timing is interleaved (`harness.interleaved_clocks`): each round runs every implementation once
(the order reversed every other round), and a round's ratios compare implementations measured
seconds apart, not minutes; the table gives
medians over rounds (≥ 3) of wall time, of process CPU time (all threads), and of the per-round
ratio to the round's best peer. The load average is printed before and after, and cpu/wall shows
how many threads an implementation really kept busy.

Two more items run in every round, as yardsticks: ``sgemm 1024³`` (NumPy; the roofline, per
round) and ``bound``: the GEMMs the shortcut still needs per point (layers 2.., one point at a
time) on NumPy's sgemm, without any element-wise work, combination product or loss. No
implementation of the shortcut on this BLAS can beat the bound, so ``bound / best peer`` is the
largest ratio the shortcut can reach in that run.

FLOPs per point count GEMMs only: the full forward ``Σ 2·N·in·out``; with the shortcut, the layers
after the first plus the ``[T, 3] @ [3, N·h₁]`` coefficient product. The three first-layer
products are computed once per grid, when the evaluator is built (outside the timed call, as
for a 51×51 grid, where they add 0.2 % per point). Absolute times on a shared machine are
noise; read the ratios.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from .harness import interleaved_clocks, pin_threads

BOUND = "bound: the shortcut's GEMMs alone (sgemm)"
ROOF = "sgemm 1024³"
MLPS = {"784-512-512-10 N=1024": ((784, 512, 512, 10), 1024, 16, 3.0),
        "40-100-100-10 N=1000": ((40, 100, 100, 10), 1000, 64, 4.0)}   # sizes, N, points, target


def flops_per_point(sizes, N, shortcut: bool) -> float:
    units = [2 * N * i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return (sum(units[1:]) + 2 * 3 * N * sizes[1]) if shortcut else sum(units)


def problem(sizes, N, n_points, seed=0):
    from pyquirk import landscape as ls
    from bench.workloads import mlp
    net = mlp(sizes)
    rng = np.random.default_rng(seed)
    theta = net.init(seed)
    X = rng.standard_normal((N, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], N)
    plane = ls.random_plane(net, theta, seed=seed)
    side = int(np.ceil(np.sqrt(n_points)))
    a, b = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side), indexing="ij")
    return net, plane, X, y, a.ravel()[:n_points], b.ravel()[:n_points]


def pyquirk_impl(net, plane, X, y, shortcut, backend):
    from pyquirk.landscape.evaluate import Evaluator, PlaneFamily
    ev = Evaluator(net, PlaneFamily(plane), X, y, shortcut=shortcut, backend=backend)
    return lambda a, b: ev(a, b)[0]


def torch_impl(sizes, plane, X, y):
    try:
        import torch
    except ImportError:
        return None
    mods = []
    for j, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(i, o))
        if j < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).eval()
    th, d1, d2 = (torch.from_numpy(np.ascontiguousarray(v)) for v in (plane.origin, plane.d1, plane.d2))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run(a, b):
        out = np.empty(len(a))
        with torch.no_grad():
            for k, (ak, bk) in enumerate(zip(a.tolist(), b.tolist())):
                torch.nn.utils.vector_to_parameters(th + ak * d1 + bk * d2, model.parameters())
                z = model(Xt)
                out[k] = torch.nn.functional.cross_entropy(z, yt).item()
                (z.argmax(1) == yt).float().mean().item()
        return out
    return run


def jax_impls(sizes, plane, X, y, n_points) -> dict:
    """The JAX peers (empty when JAX is not installed): ``jit(vmap)`` over tiles of the fastest
    tile size, and ``jit(lax.map)``; both compiled (and the tile size chosen) before timing."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    th, d1, d2 = (jnp.asarray(v) for v in (plane.origin, plane.d1, plane.d2))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss_acc(t):
        h, off = Xj, 0
        for j, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            W = t[off:off + i * o].reshape(o, i)
            b = t[off + i * o:off + i * o + o]
            off += i * o + o
            h = h @ W.T + b
            if j < len(sizes) - 2:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.take_along_axis(logp, yj[:, None], 1).mean(), (h.argmax(1) == yj).mean()

    point = lambda a, b: loss_acc(th + a * d1 + b * d2)  # noqa: E731
    vmapped = jax.jit(jax.vmap(point))
    mapped = jax.jit(lambda A, B: jax.lax.map(lambda ab: point(*ab), (A, B)))

    def tiles(T):
        def run(a, b):
            a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
            outs = [jax.block_until_ready(vmapped(a[s:s + T], b[s:s + T])) for s in range(0, len(a), T)]
            return np.concatenate([np.asarray(o[0]) for o in outs])
        return run

    def whole(a, b):
        out = jax.block_until_ready(mapped(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
        return np.asarray(out[0])

    a, b = (np.linspace(-1, 1, n_points),) * 2
    best = min((T for T in (1, 4, 16, n_points) if n_points % T == 0),
               key=lambda T: _best_of(tiles(T), a, b))
    return {f"jax vmap (jit, tiles of {best})": tiles(best), "jax lax.map (jit)": whole}


def gemm_bound(sizes, N, n_points):
    """Not an implementation: the GEMMs the shortcut still runs per point (layers 2.., each point
    its own weights) on NumPy's sgemm, with no element-wise work, no combination product and no
    loss: a lower bound on the time of any shortcut evaluation on this BLAS, hence an upper bound
    on its points per second."""
    rng = np.random.default_rng(1)
    acts = [rng.standard_normal((N, i)).astype(np.float32) for i in sizes[1:-1]]
    weights = [rng.standard_normal((o, i)).astype(np.float32) for i, o in zip(sizes[1:-1], sizes[2:])]

    def run(a, b):
        for _ in range(len(a)):
            for A, W in zip(acts, weights):
                A @ W.T
    return run


def roofline_item():
    """NumPy sgemm 1024³, timed as one more item of each round (GFLOP/s = 2·1024³ / its time)."""
    m = np.random.default_rng(0).standard_normal((2, 1024, 1024)).astype(np.float32)
    return lambda a, b: m[0] @ m[1]


def _best_of(fn, a, b, n: int = 2) -> float:
    """Fastest of n timed calls after one untimed call (which compiles)."""
    fn(a, b)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(a, b)
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(sizes, N, n_points, backends, rounds):
    """Every implementation and yardstick of one workload, interleaved: ``(impls, times, errs)``,
    ``times[k] = (wall seconds, CPU seconds)`` per round, ``errs[k]`` the largest relative
    difference of a point's loss from pyquirk's reference path."""
    net, plane, X, y, a, b = problem(sizes, N, n_points)
    impls = {}
    for b_name in backends:
        impls[f"pyquirk shortcut [{b_name}]"] = pyquirk_impl(net, plane, X, y, True, b_name)
        impls[f"pyquirk full [{b_name}]"] = pyquirk_impl(net, plane, X, y, False, b_name)
    impls["torch loop (vector_to_parameters)"] = torch_impl(sizes, plane, X, y)
    impls.update(jax_impls(sizes, plane, X, y, n_points))
    impls = {k: v for k, v in impls.items() if v is not None}
    extras = {BOUND: gemm_bound(sizes, N, n_points), ROOF: roofline_item()}
    ref = pyquirk_impl(net, plane, X, y, False, "reference")(a, b)
    errs = {k: float(np.max(np.abs(fn(a, b) - ref) / np.abs(ref))) for k, fn in impls.items()}  # warm-up
    for fn in extras.values():
        fn(a, b)
    calls = {k: (lambda fn=fn: fn(a, b)) for k, fn in {**impls, **extras}.items()}   # warm already
    return impls, interleaved_clocks(calls, warmup=0, repeat=max(3, rounds), burst=1,
                                     budget_s=float("inf")), errs


def table_rows(name, sizes, N, n_points, names, times, rates, best_peer, roof) -> list[str]:
    """Markdown rows: medians of wall and CPU time, GEMM GFLOP/s, % roofline, ratio to best peer."""
    rows = []
    for k in names:
        wall, cpu = (float(np.median(v)) for v in times[k])
        rate = n_points / wall
        fl = (flops_per_point(sizes, N, True) - 2 * 3 * N * sizes[1] if k == BOUND else
              flops_per_point(sizes, N, k.startswith("pyquirk shortcut"))) * rate / 1e9
        rows.append(f"| {name} | {k} | {wall * 1e3:.1f} ms | {n_points} | {rate:.1f} | "
                    f"{cpu / n_points * 1e3:.2f} | {cpu / wall:.2f} | {fl:.1f} | {100 * fl / roof:.0f} % | "
                    f"{float(np.median(rates[k] / best_peer)):.2f}× |")
        print(f"  {name:24s} {k:44s} {rate:9.1f} points/s", file=sys.stderr)
    return rows


def summary_line(name, sizes, N, target, rates, errs, roofs) -> str:
    """The workload's verdict: per-round ratios of pyquirk's best backend to the best peer (and to
    the issue's own peers), the bound's ratio, the FLOP counts and the agreement of the losses."""
    peers = [k for k in errs if not k.startswith("pyquirk")]
    named = [k for k in peers if k.startswith(("torch loop", "jax vmap"))]        # the peers
    ours = np.max([rates[k] for k in errs if k.startswith("pyquirk shortcut")], axis=0)
    best = np.max([rates[k] for k in peers], axis=0)
    col, med = ours / best, float(np.median(ours / best))
    vs_named = float(np.median(ours / np.max([rates[k] for k in named], axis=0))) if named else np.nan
    full, short = flops_per_point(sizes, N, False), flops_per_point(sizes, N, True)
    return (f"- {name}: pyquirk (best backend) / best peer, per round: median {med:.2f}×, range "
            f"{col.min():.2f}–{col.max():.2f}× over {len(col)} rounds (against the issue's peers, torch "
            f"loop and jax vmap, only: median {vs_named:.2f}×) "
            f"(target ≥ {target:g}×: {'met' if med >= target else 'NOT met'}); bound (the shortcut's "
            f"GEMMs alone) / best peer: median {np.median(rates[BOUND] / best):.2f}×; GEMM FLOPs per point "
            f"{full / 1e6:.0f} M full, {short / 1e6:.0f} M with the shortcut (ratio {full / short:.2f}); "
            f"sgemm roofline {np.median(roofs):.1f} GFLOP/s (median of rounds, {roofs.min():.1f}–"
            f"{roofs.max():.1f}); max rel. diff of a point's loss from the reference: "
            + ", ".join(f"{k} {v:.0e}" for k, v in errs.items()) + ".")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.landscape_bench")
    ap.add_argument("--threads", type=int, default=None, help="limit every thread pool to N")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (at least 3)")
    ap.add_argument("--only", default=None, help="substring of the workload name")
    ap.add_argument("--backends", nargs="*", default=None, help="pyquirk backends (default: all available)")
    args = ap.parse_args(argv)
    if args.threads:
        pin_threads(args.threads, "bench.landscape_bench", argv)
    import pyquirk
    if args.backends is None:
        args.backends = [b for b, why in pyquirk.available().items() if why is None]

    load0 = os.getloadavg()
    lines = ["| workload | implementation | median time | points | points/s | CPU ms/point | cpu/wall "
             "| GFLOP/s | % roofline | vs best peer (median of rounds) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summary = []
    for name, (sizes, N, n_points, target) in MLPS.items():
        if args.only and args.only not in name:
            continue
        impls, times, errs = measure(sizes, N, n_points, args.backends, args.rounds)
        rates = {k: n_points / np.array(times[k][0]) for k in [*impls, BOUND]}   # points/s per round
        peers = [k for k in impls if not k.startswith("pyquirk")]
        best_peer = np.max([rates[k] for k in peers], axis=0) if peers else np.nan
        roofs = 2 * 1024 ** 3 / np.array(times[ROOF][0]) / 1e9                   # GFLOP/s per round
        lines += table_rows(name, sizes, N, n_points, [*impls, BOUND], times, rates, best_peer,
                            float(np.median(roofs)))
        if peers and any(k.startswith("pyquirk shortcut") for k in impls):
            summary.append(summary_line(name, sizes, N, target, rates, errs, roofs))
    threads = os.environ.get("PYQUIRK_BENCH_THREADS", "default")
    load1 = os.getloadavg()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads: {threads}; numpy {np.__version__}; roofline: NumPy sgemm 1024³ timed in every "
          f"round (% roofline uses the workload's median); "
          f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end\n")
    print("\n".join(lines))
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
