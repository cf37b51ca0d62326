"""Compression workloads: pruning API vs peers, sparse vs dense logits, k-means and Huffman twins.

``python -m bench.compression_bench [--repeat R] [--only SUBSTRING ...]``

Workloads (float32, fixed shapes; issue 8 targets in brackets):

- **global pruning** of 90 % of the weights of a net of 10 Dense(1024) layers (10 × 1024² weights +
  biases, θ of 10.5 M entries), the full API call ``prune_magnitude(net, θ, 0.9)`` including its
  validation and the mask [≥ 50× faster than ``torch.nn.utils.prune.global_unstructured`` (L1); ≥ 3.5×
  faster than ``np.partition`` on the concatenated magnitudes]. Peers: ``np.partition`` (concatenate
  |θ| of the weights, partition at k, mask = |θ| > threshold: inexact under ties; concatenation and
  mask creation timed) and ``torch prune`` (``global_unstructured`` on 10 ``nn.Linear``, modules rebuilt
  off the clock before each call);
- **sparse vs dense logits**: the 1024-1024-1024-10 MLP (ReLU, 2.1 M weights) pruned globally to 90 %
  and 98 %, N = 256 and N = 1: ``net.logits`` (native dense passes, BLAS; its input checks scan all of θ,
  about 2 ms here) and the cpu backend's ``logits`` called directly (no checks: the speed-ups use this
  one) against the CSR path
  (``SparseNet.logits``: native kernel ``pyquirk-cpu``, and its NumPy twin ``pyquirk-reference``) and
  ``scipy.sparse`` CSR as a peer;
- **k-means** of 1 M weights into 32 clusters (Numba twin vs NumPy twin);
- **Huffman code lengths** of 256 symbols (Numba two-queue vs heapq twin).

Each row is the median of repeated calls after a warm-up (bench/harness.py). The machine is shared:
read the ratios, which come from one run; rerun on a quiet machine for absolute figures.
"""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

from pyquirk.compression import SparseNet, apply_mask, huffman_lengths, kmeans_1d, prune_magnitude
from pyquirk.compression.sparse import native_reason
from pyquirk.nn import Dense, Net, ReLU

from .harness import parse_args, run_benches, sgemm_gflops, speedup, table
from .kernels_bench import GlobalMagnitudeSelect


def dense_stack(layers=10, width=1024):
    """``layers`` Dense(width) layers on a width-wide input: layers × width² weights."""
    body = [Dense(width), ReLU()] * (layers - 1)
    return Net(body + [Dense(width)], input_shape=(width,))


class GlobalPrune(GlobalMagnitudeSelect):
    """The selection workload of :mod:`bench.kernels_bench` (its θ, scope and peers) on a real net,
    through the full pruning API."""

    name = "prune_magnitude 90% of 10×1024² (f32)"

    def setup(self):
        self.net = dense_stack(self.layers, self.cols)
        rng = np.random.default_rng(0)
        self.P = self.net.n_params
        self.theta = (rng.standard_normal(self.P) * 0.02).astype(np.float32)
        self.segments = [(s.offset, s.size) for s in self.net.layout if s.kind == "weight"]
        self.k = round(self.fraction * sum(size for _, size in self.segments))

    def impls(self):
        return [(f"pyquirk-{b}", (lambda b=b: prune_magnitude(self.net, self.theta, self.fraction, backend=b)))
                for b in ("cpu", "reference")] + [("np.partition", self.partition)]

    def torch_calls(self, repeat):
        return max(3, repeat // 2)


class SparseLogits:
    def __init__(self, sparsity, N):
        self.sparsity, self.N = sparsity, N
        self.name = f"logits 1024-1024-1024-10 at {sparsity:.0%}, N={N} (f32)"

    def setup(self):
        self.net = Net([Dense(1024), ReLU(), Dense(1024), ReLU(), Dense(10)], input_shape=(1024,))
        theta = self.net.init(0)
        self.mask = prune_magnitude(self.net, theta, self.sparsity)
        self.theta = apply_mask(theta, self.mask)
        self.sp = SparseNet(self.net, self.theta, self.mask)
        self.X = np.random.default_rng(1).standard_normal((self.N, 1024)).astype(np.float32)
        self.flops = 2 * self.N * sum(s.size for s in self.net.layout if s.kind == "weight")

    def scipy_csr(self):
        import scipy.sparse as sps
        mats = [(sps.csr_matrix((rec[3], rec[2], rec[1]), shape=(rec[1].size - 1, self.net.layers[j].in_features)),
                 rec[4]) for j, rec in enumerate(self.sp.layers) if rec[0] == "csr"]
        X = self.X

        def run():
            h = X.T
            for j, (W, b) in enumerate(mats):
                h = W @ h + b[:, None]
                if j < len(mats) - 1:
                    h = np.maximum(h, 0)
            return h.T
        return run

    def impls(self):
        from pyquirk import backends
        cpu, th, X3 = backends.get("cpu"), self.theta[None], self.X[None]
        out = [("dense net.logits (cpu)", lambda: self.net.logits(self.theta, self.X, backend="cpu")),
               ("dense cpu backend, no checks", lambda: cpu.logits(self.net, th, X3))]
        if native_reason() is None:
            out.append(("pyquirk-cpu", lambda: self.sp.logits(self.X, backend="cpu")))
        out.append(("pyquirk-reference", lambda: self.sp.logits(self.X, backend="reference")))
        out.append(("scipy.sparse CSR", self.scipy_csr()))
        return out


class KMeans:
    name = "k-means 1M weights → 32 clusters (f32)"

    def setup(self):
        self.x = (np.random.default_rng(2).standard_normal(1 << 20) * 0.02).astype(np.float32)

    def impls(self):
        return [(f"pyquirk-{b}", (lambda b=b: kmeans_1d(self.x, 32, max_iter=20, backend=b)))
                for b in ("cpu", "reference")]


class Huffman:
    name = "Huffman lengths, 256 symbols"

    def setup(self):
        self.counts = np.random.default_rng(3).integers(0, 10_000, 256)

    def impls(self):
        return [(f"pyquirk-{b}", (lambda b=b: huffman_lengths(self.counts, backend=b))) for b in ("cpu", "reference")]


BENCHES = [GlobalPrune, lambda: SparseLogits(0.9, 256), lambda: SparseLogits(0.98, 256),
           lambda: SparseLogits(0.9, 1), lambda: SparseLogits(0.98, 1),
           lambda: SparseLogits(0.5, 256), lambda: SparseLogits(0.7, 256), lambda: SparseLogits(0.8, 256),
           KMeans, Huffman]


def _targets(rows) -> str:
    t = {r.impl: r for r in rows if r.workload == GlobalPrune.name}
    lines = ["| target | measured | met |", "|---|---:|:---:|"]
    if "pyquirk-cpu" in t:
        for peer, need in (("torch prune", 50.0), ("np.partition", 3.5)):
            if peer in t:
                ratio = speedup(t["pyquirk-cpu"], t[peer])
                lines.append(f"| pruning API ≥ {need:g}× faster than {peer} | {ratio:.1f}× | "
                             f"{'yes' if ratio >= need else 'no'} |")
    for r in rows:
        if r.impl == "pyquirk-cpu" and r.workload.startswith("logits"):
            dense = next(x for x in rows if x.workload == r.workload and x.impl.startswith("dense cpu"))
            lines.append(f"| CSR speed-up over dense (cpu backend, no checks), {r.workload} | "
                         f"{speedup(r, dense):.1f}× | – |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args("python -m bench.compression_bench", 15, argv)
    roof = sgemm_gflops()
    rows = run_benches(BENCHES, args, widths=(52, 24))
    import numba
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; numpy {np.__version__}, numba {numba.__version__}; "
          f"native CSR kernel: {native_reason() or 'available'}; roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    print("\nTargets (issue 8):\n")
    print(_targets(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
