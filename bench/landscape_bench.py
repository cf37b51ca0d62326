"""Landscape grid throughput: grid points per second, pyquirk vs PyTorch vs JAX, in one run.

``python -m bench.landscape_bench [--threads N] [--repeat R] [--only SUBSTRING] [--backends ...]``

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
- ``jax vmap``: ``jax.jit(jax.vmap(point -> loss, accuracy))`` over all the points in one call.

FLOPs per point count GEMMs only: the full forward ``Σ 2·N·in·out``; with the shortcut, the layers
after the first plus the ``[T, 3] @ [3, N·h₁]`` coefficient product (the three first-layer
products are computed once per grid and not counted per point). The roofline is NumPy's sgemm on
1024³ measured in the same run. Absolute times on a shared machine are noise; read the ratios.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _pin_threads(n: int, argv) -> None:
    """Re-run this process with every thread pool limited to n (env vars must precede imports)."""
    if os.environ.get("PYQUIRK_BENCH_THREADS") == str(n):
        return
    env = dict(os.environ, PYQUIRK_BENCH_THREADS=str(n), **{v: str(n) for v in THREAD_VARS})
    if n == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    os.execve(sys.executable, [sys.executable, "-m", "bench.landscape_bench", *argv], env)


import numpy as np  # noqa: E402

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


def jax_impl(sizes, plane, X, y):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
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

    f = jax.jit(jax.vmap(lambda a, b: loss_acc(th + a * d1 + b * d2)))
    return lambda a, b: np.asarray(jax.block_until_ready(f(jnp.asarray(a, jnp.float32),
                                                           jnp.asarray(b, jnp.float32)))[0])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.landscape_bench")
    ap.add_argument("--threads", type=int, default=None, help="limit every thread pool to N")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=None, help="substring of the workload name")
    ap.add_argument("--backends", nargs="*", default=None, help="pyquirk backends (default: all available)")
    args = ap.parse_args(argv)
    if args.threads:
        _pin_threads(args.threads, argv)
    from bench.harness import median_time, sgemm_gflops
    import pyquirk
    if args.backends is None:
        args.backends = [b for b, why in pyquirk.available().items() if why is None]

    roof = sgemm_gflops()
    lines = ["| workload | implementation | median time | points | points/s | GFLOP/s | % roofline "
             "| vs best peer |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    summary = []
    for name, (sizes, N, n_points, target) in MLPS.items():
        if args.only and args.only not in name:
            continue
        net, plane, X, y, a, b = problem(sizes, N, n_points)
        impls = {}
        for b_name in args.backends:
            impls[f"pyquirk shortcut [{b_name}]"] = pyquirk_impl(net, plane, X, y, True, b_name)
            impls[f"pyquirk full [{b_name}]"] = pyquirk_impl(net, plane, X, y, False, b_name)
        impls["torch loop (vector_to_parameters)"] = torch_impl(sizes, plane, X, y)
        impls["jax vmap (jit)"] = jax_impl(sizes, plane, X, y)
        ref = pyquirk_impl(net, plane, X, y, False, "reference")(a, b)
        rates = {}
        for impl, fn in impls.items():
            if fn is None:
                print(f"  {name}: {impl} not installed", file=sys.stderr)
                continue
            err = float(np.max(np.abs(fn(a, b) - ref) / np.abs(ref)))
            secs = median_time(lambda: fn(a, b), warmup=1, repeat=args.repeat)
            rates[impl] = (secs, n_points / secs, err)
            print(f"  {name:24s} {impl:36s} {n_points / secs:9.1f} points/s  (max rel. diff {err:.1e})",
                  file=sys.stderr)
        peers = [v[1] for k, v in rates.items() if not k.startswith("pyquirk")]
        best = max(peers) if peers else float("nan")
        for impl, (secs, rate, _) in rates.items():
            fl = flops_per_point(sizes, N, impl.startswith("pyquirk shortcut")) * rate / 1e9
            lines.append(f"| {name} | {impl} | {secs * 1e3:.1f} ms | {n_points} | {rate:.1f} | {fl:.1f} | "
                         f"{100 * fl / roof:.0f} % | {rate / best:.2f}× |")
        ours = max(v[1] for k, v in rates.items() if k.startswith("pyquirk shortcut"))
        met = "met" if ours / best >= target else "NOT met"
        summary.append(f"- {name}: pyquirk (best backend) {ours:.1f} points/s, best peer {best:.1f} "
                       f"points/s: {ours / best:.2f}× (target ≥ {target:g}×: {met}); "
                       f"GEMM FLOPs per point {flops_per_point(sizes, N, False) / 1e6:.0f} M full, "
                       f"{flops_per_point(sizes, N, True) / 1e6:.0f} M with the shortcut "
                       f"(ratio {flops_per_point(sizes, N, False) / flops_per_point(sizes, N, True):.2f}).")
    threads = os.environ.get("PYQUIRK_BENCH_THREADS", "default")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads: {threads}; numpy {np.__version__}; roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print("\n".join(lines))
    print()
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
