"""Top-k Hessian eigenvalues: pyquirk's Lanczos against scipy eigsh driven by torch.func HVPs.

``python -m bench.hessian_bench [--quick] [--k 10] [--tol 1e-3] [--repeat 3] [--threads 1 default]``

Workload (issue 4): the 10 largest eigenvalues of the Hessian of the mean CE of MLP 784-512-512-10
(float32, θ = ``net.init(0)``, N = 1024 random inputs: ``bench.workloads._problem``, the suite's
own builder). Implementations, all in float32 HVPs with the eigensolver's own arithmetic in float64
where it chooses:

- ``pyquirk``: :func:`pyquirk.hessian.lanczos` (block size 1) on a :class:`Curvature` with its
  defaults (the primal pass computed once and reused by every product);
- ``pyquirk, engine HVP per call``: the same, ``reuse_primal=False`` (each product is one
  ``net.hvp`` call on the native cpu backend, primal pass included);
- the peer, ``torch.func HVP + eigsh``: what a PyTorch user writes without pyquirk,
  ``eigsh(LinearOperator(matvec=one torch.func HVP), k, which="LA", tol)`` (ARPACK);
- ``torch.func.linearize + eigsh``: the same with torch's own primal reuse (``linearize`` traces
  the HVP once and replays its tangent part), so the primal-reuse lever is shown for both sides.

Same tolerance: ARPACK's rule ``‖Hx − θx‖ ≤ tol·|θ|`` (tol = 1e-3 by default) is the stopping rule
of both solvers, and after timing every result's *true* residuals are recomputed with one
independent operator (pyquirk's reference engine, full pass) and the eigenvalue sets are compared.
Each thread setting runs in its own subprocess (BLAS, OpenMP and torch limited to that many
threads); within it the implementations are interleaved ``--repeat`` times and medians reported,
both wall and process CPU time. ``--per-vector`` also prints the cost per tangent of a block HVP
for k = 1, 4, 8, 16, 32. ``--quick`` shrinks the net (784-64-64-10, N = 256) for a smoke run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from .workloads import _problem

FULL = {"sizes": (784, 512, 512, 10), "N": 1024}
QUICK = {"sizes": (784, 64, 64, 10), "N": 256}
IMPLS = ("pyquirk", "pyquirk-engine", "torch-eigsh", "torch-linearize-eigsh")
LABELS = {"pyquirk": "pyquirk Lanczos b=1 (primal pass reused)",
          "pyquirk-engine": "pyquirk Lanczos b=1, engine HVP per call (cpu backend)",
          "torch-eigsh": "torch.func HVP + scipy eigsh (the peer)",
          "torch-linearize-eigsh": "torch.func.linearize + scipy eigsh"}
PEER = "torch-eigsh"


class Timer:
    """Wall and process-CPU seconds of a block, plus the time spent inside the HVPs."""

    def __init__(self):
        self.hvp_wall = 0.0

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0

    def timed(self, fn):
        def wrapped(*a):
            t0 = time.perf_counter()
            out = fn(*a)
            self.hvp_wall += time.perf_counter() - t0
            return out
        return wrapped


def run_pyquirk(net, theta, X, y, k, tol, *, reuse_primal=None, block_size=1, seed=0):
    from pyquirk.hessian import Curvature, lanczos
    curv = Curvature(net, theta, (X, y), backend="cpu", reuse_primal=reuse_primal)
    curv.matmat(np.zeros((1, curv.dim), dtype=theta.dtype))      # warm-up (and the primal cache)
    timer = Timer()
    curv.matmat = timer.timed(curv.matmat)
    with timer:
        res = lanczos(curv, k, "largest", tol=tol, seed=seed, block_size=block_size)
    return _result(timer, res.eigenvalues, res.eigenvectors, res.counts["hvps"])


def _torch_matvec(torch, hvp, counter):
    def matvec(v):
        counter[0] += 1
        out = hvp(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32).ravel()))
        return out.detach().numpy().astype(np.float64)
    return matvec


def run_torch(sizes, theta, X, y, k, tol, *, linearize=False, seed=0):
    """eigsh over a LinearOperator whose matvec is one torch.func HVP (float32)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from .peers import torch_peer
    peer = torch_peer()
    torch = peer["torch"]
    f = peer["make"](sizes)
    th, Xt, yt = torch.from_numpy(theta), torch.from_numpy(X), torch.from_numpy(y)
    if linearize:
        _, hvp = torch.func.linearize(lambda t: f["grad"](t, Xt, yt), th)
    else:
        hvp = lambda v: f["hvp"](th, Xt, yt, v)                    # noqa: E731
    counter = [0]
    P = theta.size
    matvec = _torch_matvec(torch, hvp, counter)
    matvec(np.zeros(P))                                          # warm-up: one HVP
    counter[0] = 0
    timer = Timer()
    op = LinearOperator((P, P), matvec=timer.timed(matvec), dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(P)
    with timer:
        vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(vals)[::-1]
    return _result(timer, vals[order], vecs[:, order].T, counter[0])


def _result(timer, vals, vecs, hvps):
    return {"wall": timer.wall, "cpu": timer.cpu, "hvp_wall": timer.hvp_wall, "hvps": int(hvps),
            "eigenvalues": np.asarray(vals, dtype=np.float64), "vectors": vecs}


def true_residuals(net, theta, X, y, vals, vecs):
    """``‖Hx − θx‖ / |θ|`` per pair, H from the reference engine (one full pass per block)."""
    X64 = np.asarray(vecs, dtype=np.float64)
    HX = net.hvp(theta, X, y, X64.astype(theta.dtype), backend="reference").astype(np.float64)
    return np.linalg.norm(HX - vals[:, None] * X64, axis=1) / np.abs(vals)


def run_impl(name, cfg, problem, k, tol):
    net, theta, X, y = problem
    if name == "pyquirk":
        return run_pyquirk(net, theta, X, y, k, tol)
    if name == "pyquirk-engine":
        return run_pyquirk(net, theta, X, y, k, tol, reuse_primal=False)
    return run_torch(cfg["sizes"], theta, X, y, k, tol, linearize=name == "torch-linearize-eigsh")


def per_vector(problem, ks=(1, 4, 8, 16, 32), repeat=3):
    """Median seconds per tangent of one block HVP of k tangents: engine (cpu) and primal reused."""
    from pyquirk.hessian.primal import PrimalCache
    net, theta, X, y = problem
    cache = PrimalCache(net, theta, X, y)
    rows = {}
    for k in ks:
        V = np.random.default_rng(k).standard_normal((k, net.n_params)).astype(theta.dtype)
        fns = {"engine (cpu)": lambda: net.hvp(theta, X, y, V, backend="cpu"), "primal reused": lambda: cache.hvp(V)}
        rows[k] = {}
        for label, fn in fns.items():
            fn()
            times = []
            for _ in range(repeat):
                t0 = time.process_time()
                fn()
                times.append(time.process_time() - t0)
            rows[k][label] = statistics.median(times) / k
    return rows


def child(args) -> dict:
    """One thread setting: interleaved repeats of every implementation (run in a subprocess)."""
    if args.threads != "default":
        import torch
        torch.set_num_threads(int(args.threads))
    cfg = QUICK if args.quick else FULL
    problem = _problem(cfg["sizes"], cfg["N"])
    out = {"load_before": os.getloadavg(), "runs": {n: [] for n in args.impls}, "checks": {}}
    for rep in range(args.repeat):
        for name in args.impls:
            r = run_impl(name, cfg, problem, args.k, args.tol)
            if rep == 0:
                out["checks"][name] = {"eigenvalues": r["eigenvalues"].tolist(),
                                       "rel_residuals": true_residuals(*problem, r["eigenvalues"],
                                                                        r["vectors"]).tolist()}
            out["runs"][name].append({key: r[key] for key in ("wall", "cpu", "hvp_wall", "hvps")})
            print(f"  [{args.threads} threads, rep {rep}] {name}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s cpu, "
                  f"{r['hvps']} HVPs", file=sys.stderr, flush=True)
    if args.per_vector:
        out["per_vector"] = per_vector(problem)
    out["load_after"] = os.getloadavg()
    return out


def spawn(threads: str, argv: list) -> dict:
    env = dict(os.environ)
    if threads != "default":
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = threads
    cmd = [sys.executable, "-m", "bench.hessian_bench", "--child", "--threads", threads] + argv
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True)
    return json.loads(proc.stdout)


def report(threads: str, res: dict, tol: float) -> str:
    runs, checks = res["runs"], res["checks"]
    med = {n: {key: statistics.median(r[key] for r in rs) for key in ("wall", "cpu", "hvp_wall")}
           for n, rs in runs.items()}
    lines = [f"### {threads} thread(s) (load average {res['load_before'][0]:.2f} before, "
             f"{res['load_after'][0]:.2f} after; medians of {len(next(iter(runs.values())))})", "",
             "| implementation | HVPs | wall | CPU | per HVP (wall in HVPs) | solver overhead | worst true rel. residual | wall ratio | CPU ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, m in med.items():
        hvps = runs[n][0]["hvps"]
        ratio = (lambda key: med[PEER][key] / m[key]) if PEER in med else (lambda key: float("nan"))
        lines.append(f"| {LABELS[n]} | {hvps} | {m['wall']:.2f} s | {m['cpu']:.2f} s | "
                     f"{1e3 * m['hvp_wall'] / hvps:.0f} ms | {m['wall'] - m['hvp_wall']:.2f} s | "
                     f"{max(checks[n]['rel_residuals']):.1e} | {ratio('wall'):.2f}× | {ratio('cpu'):.2f}× |")
    if PEER in checks:
        ref = np.array(checks[PEER]["eigenvalues"])
        diffs = {n: float(np.max(np.abs(np.array(c["eigenvalues"]) - ref) / np.abs(ref))) for n, c in checks.items()}
        lines += ["", "Largest relative difference from the peer's eigenvalues: " +
                  ", ".join(f"{n} {d:.1e}" for n, d in diffs.items() if n != PEER) +
                  f" (tolerance {tol:g}); all within it: {all(d <= tol for d in diffs.values())}."]
    if "per_vector" in res:
        lines += ["", "| k | " + " | ".join(f"{lab} per tangent" for lab in next(iter(res["per_vector"].values()))) + " |",
                  "|---:|" + "---:|" * len(next(iter(res["per_vector"].values())))]
        for k, row in res["per_vector"].items():
            lines.append(f"| {k} | " + " | ".join(f"{1e3 * s:.0f} ms" for s in row.values()) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hessian_bench")
    ap.add_argument("--quick", action="store_true", help="small net (784-64-64-10, N=256): a smoke run")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-3, help="ARPACK-style relative residual tolerance")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", nargs="*", default=["1", "default"])
    ap.add_argument("--impls", nargs="*", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--per-vector", action="store_true", help="also time block HVPs per tangent")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.threads = args.threads[0]
        json.dump(child(args), sys.stdout)
        return 0
    cfg = QUICK if args.quick else FULL
    forward = [a for a in (argv if argv is not None else sys.argv[1:])]
    forward = _drop_option(forward, "--threads")
    print(f"top-{args.k} eigenvalues, MLP {'-'.join(map(str, cfg['sizes']))}, N={cfg['N']}, float32, "
          f"tol={args.tol:g}; machine: {os.cpu_count()} CPUs, numpy {np.__version__}\n")
    for threads in args.threads:
        print(report(threads, spawn(threads, forward), args.tol) + "\n", flush=True)
    return 0


def _drop_option(argv, option):
    out, skip = [], False
    for a in argv:
        if a == option:
            skip = True
        elif skip and a.startswith("--"):
            skip = False
            out.append(a)
        elif not skip:
            out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
