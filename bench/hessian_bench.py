"""Top-k Hessian eigenvalues: pyquirk's block Lanczos against scipy eigsh driven by torch.func HVPs.

``python -m bench.hessian_bench [--quick] [--k 10] [--tol 1e-3]``

Every available pyquirk backend is timed (block sizes 1 and 2 by default). Workload (issue 4): the 10 largest eigenvalues of the Hessian of the mean CE of MLP 784-512-512-10
(float32, θ from ``net.init(0)``) on N = 1024 random inputs. The peer is what a PyTorch user writes
without pyquirk: ``scipy.sparse.linalg.eigsh(LinearOperator(matvec=one torch.func HVP), k, which="LA")``
(ARPACK, implicitly restarted Lanczos). Both use the same tolerance rule (ARPACK's:
``‖Hx − θx‖ ≤ tol·|θ|``), both start from a seeded random vector, and each is run once (the
workload takes seconds to minutes; there is no warm-up beyond one HVP each). Reported: wall time,
HVPs, the worst true relative residual, the largest relative difference between the two sets of
eigenvalues, and the speed-up ratio. ``--quick`` shrinks the net (784-64-64-10, N = 256) so the
script can be smoke-tested.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from .harness import Row, table
from .workloads import mlp

FULL = {"sizes": (784, 512, 512, 10), "N": 1024}
QUICK = {"sizes": (784, 64, 64, 10), "N": 256}


def problem(sizes, N, seed=0):
    net = mlp(sizes)
    rng = np.random.default_rng(seed)
    theta = net.init(seed)
    X = rng.standard_normal((N, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], N)
    return net, theta, X, y


def run_pyquirk(net, theta, X, y, k, tol, seed=0, block_size=None, backend=None):
    from pyquirk.hessian import Curvature, lanczos
    curv = Curvature(net, theta, (X, y), backend=backend)
    curv.matmat(np.zeros((1, curv.dim)))                    # warm-up: one HVP
    t0 = time.perf_counter()
    res = lanczos(curv, k, "largest", tol=tol, seed=seed, keep_vectors=False, block_size=block_size)
    seconds = time.perf_counter() - t0
    rel = float(np.max(res.residuals / np.abs(res.eigenvalues)))
    return {"seconds": seconds, "eigenvalues": np.sort(res.eigenvalues)[::-1], "hvps": res.counts["hvps"],
            "max_rel_residual": rel, "converged": res.all_converged, "iterations": res.iterations,
            "block_size": res.semantics["block_size"]}


def run_torch_eigsh(sizes, theta, X, y, k, tol, seed=0):
    """eigsh over a LinearOperator whose matvec is one torch.func HVP (float32), or None without torch."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from .peers import torch_peer
    peer = torch_peer()
    if peer is None:
        return None
    torch = peer["torch"]
    f = peer["make"](sizes)
    th, Xt, yt = torch.from_numpy(theta), torch.from_numpy(X), torch.from_numpy(y)
    calls = [0]

    def matvec(v):
        calls[0] += 1
        out = f["hvp"](th, Xt, yt, torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32).ravel()))
        return out.detach().numpy().astype(np.float64)

    P = theta.size
    op = LinearOperator((P, P), matvec=matvec, dtype=np.float64)
    op.matvec(np.zeros(P))                                    # warm-up: one HVP
    calls[0] = 0
    v0 = np.random.default_rng(seed).standard_normal(P)
    t0 = time.perf_counter()
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0)
    seconds = time.perf_counter() - t0
    hvps = calls[0]
    R = np.stack([matvec(vecs[:, i]) - vals[i] * vecs[:, i] for i in range(k)])
    rel = float(np.max(np.linalg.norm(R, axis=1) / np.abs(vals)))
    return {"seconds": seconds, "eigenvalues": np.sort(vals)[::-1], "hvps": hvps, "max_rel_residual": rel,
            "converged": True, "iterations": None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hessian_bench")
    ap.add_argument("--quick", action="store_true", help="small net (784-64-64-10, N=256): a smoke run")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-3, help="ARPACK-style relative residual tolerance")
    ap.add_argument("--block-size", type=int, nargs="*", default=[1, 2],
                    help="Lanczos block sizes to time (default: 1, the library default, and 2)")
    ap.add_argument("--backends", nargs="*", default=["reference", "cpu", "cuda"],
                    help="pyquirk backends to time (those available)")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    sizes, N = cfg["sizes"], cfg["N"]
    net, theta, X, y = problem(sizes, N)
    name = f"top-{args.k} eigenvalues, MLP {'-'.join(map(str, sizes))}, N={N}, tol={args.tol:g}"
    print(f"{name}: P = {net.n_params}", file=sys.stderr)
    import pyquirk
    backends = [b for b, why in pyquirk.available().items() if why is None and b in args.backends]
    rows, ours_all = [], []
    for backend in sorted(backends, key=lambda b: b != "reference"):
        for b in args.block_size:
            ours = run_pyquirk(net, theta, X, y, args.k, args.tol, block_size=b, backend=backend)
            label = f"pyquirk-{backend}" + ("" if b == args.block_size[0] else f" b={b}")
            print(f"  {label} block Lanczos b={b}: {ours['seconds']:.2f} s, {ours['hvps']} HVPs", file=sys.stderr)
            rows.append(Row(name, label, ours["seconds"], per=ours["hvps"],
                            note=f"(block Lanczos b={b}, {ours['hvps']} HVPs, "
                                 f"max rel. residual {ours['max_rel_residual']:.1e})"))
            ours_all.append((label, ours))
    peer = run_torch_eigsh(sizes, theta, X, y, args.k, args.tol)
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; one run each\n")
    if peer is None:
        print("torch is not installed: no peer to compare against\n")
    else:
        print(f"  torch.func + eigsh: {peer['seconds']:.2f} s, {peer['hvps']} HVPs", file=sys.stderr)
        rows.append(Row(name, "torch.func HVP + scipy eigsh", peer["seconds"], per=peer["hvps"],
                        note=f"({peer['hvps']} HVPs, max rel. residual {peer['max_rel_residual']:.1e})"))
    print(table(rows, roofline=float("nan")))
    if peer is not None:
        print()
        for label, ours in ours_all:
            diff = np.max(np.abs(ours["eigenvalues"] - peer["eigenvalues"]) / np.abs(peer["eigenvalues"]))
            print(f"**Speed-up of {label} (block size {ours['block_size']}) over torch.func + eigsh: "
                  f"{peer['seconds'] / ours['seconds']:.2f}×** (largest relative difference between the "
                  f"two sets of eigenvalues: {diff:.1e})")
        print("\nOne run each; 'median time' is that run; 'per item' is per HVP.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
