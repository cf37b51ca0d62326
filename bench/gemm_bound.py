"""``python -m bench.gemm_bound [--repeat R] [--workers W]``: the GEMM-only bound of the small-net passes.

For each DESIGN §5 workload on MLP 40-100-100-10 whose target is in doubt, this lists the GEMMs that
one item of the native pass issues (one GEMM per slot, docs/native.md §3: a shard of N = 1000,
500 samples or 125 for an HVP, with a k = 16 block in chunks of 8 tangents that each repeat the
primal slot; or one 100-sample member of the E = 64 population), times each distinct shape on the
GEMM the pass uses (``_core.gemm``: the small-GEMM kernel) in a hot loop, and adds them up. The sum,
times the items each core runs, is the time the pass would take if it did nothing but its GEMMs
at their hot-loop rate: no activations, loss, bias sums, packing of anything else, Python or
waiting. No implementation built on these GEMMs can beat it.

The loops run in ``--workers`` processes at once (default: one per core), because one core alone
runs faster than two side by side on this shared VM (the other tenant's load and the shared
caches); the bound uses the median worker. Each call's binding cost (a 1×1×1 product) is
subtracted. The FLOPs of each list are checked against ``bench.workloads.flops`` (plus the repeated primal).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections import Counter

SIZES = (40, 100, 100, 10)
# An item of each pass (docs/native.md §3): the input gradient's shard of N = 1000 is 500 samples; an
# HVP's is 125 (small-kernel nets), and a k = 16 block runs in chunks of 8 tangents (the 3 MiB item
# scratch holds 9), each repeating the primal slot; a population member is 100 samples.
SHARD, HVP_SHARD, CHUNK, MEMBER = 500, 125, 8, 100


def gemm_list(rows: int, slots: int, sink_from: int | None, input_grad: bool) -> Counter:
    """GEMMs ``(M, N, K, ta, tb, beta) → count`` of one item, as ``cpu/dense.cpp`` issues them.

    ``slots``: 1 + tangents; ``sink_from``: first slot whose weight gradient is formed (None:
    none); ``input_grad``: whether the first layer's input gradient is formed. An HVP skips the
    second layer's primal input gradient G_0·W: below it only ReLU and the first layer, whose
    R-terms never read it (``primal_grad_needed`` in ``cpu/passes.cpp``).
    """
    out = Counter()
    for j, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        si = 1 if j == 0 else slots                                   # input slots of this layer
        for s in range(slots):                                        # forward: A_s·Wᵀ (+ A_0·dW_sᵀ)
            out[(rows, o, i, 0, 1, 0)] += 1
            if 0 < s < si:
                out[(rows, o, i, 0, 1, 1)] += 1
        if sink_from is not None:                                     # weight gradients G_sᵀ·A_0 (+ G_0ᵀ·A_s)
            for s in range(sink_from, slots):
                out[(o, i, rows, 1, 0, 0)] += 1
                if 0 < s < si:
                    out[(o, i, rows, 1, 0, 1)] += 1
        if j > 0 or input_grad:                                       # input gradient G_s·W (+ G_0·dW_s)
            out[(rows, i, o, 0, 0, 0)] += slots - (j == 1 and slots > 1 and sink_from == 1)
            out[(rows, i, o, 0, 0, 1)] += slots - 1
    return out


def gemm_flops(gemms: Counter) -> int:
    return sum(2 * M * N * K * c for (M, N, K, *_), c in gemms.items())


def workloads():
    """``name → (GEMMs of one item, items, the bench's FLOP count, FLOPs it counts that the pass skips,
    FLOPs the pass repeats)``."""
    from .workloads import flops, gemm_units
    u = gemm_units(SIZES, 1000)
    first, rest = u[0], sum(u[1:])
    chunks = 16 // CHUNK
    skipped = first + rest + u[1]     # the HVP's primal weight gradients and the second layer's G_0·W
    primal = first + rest + u[2]      # slot 0, once more per extra chunk: forward and the last G_0·W
    return {
        "hvp 40-100-100-10 N=1000": (gemm_list(HVP_SHARD, 2, 1, False), 1000 // HVP_SHARD,
                                     flops(SIZES, 1000, "hvp"), skipped, 0),
        "hvp block k=16 40-100-100-10 N=1000": (gemm_list(HVP_SHARD, 1 + CHUNK, 1, False), 1000 // HVP_SHARD * chunks,
                                                flops(SIZES, 1000, "hvp", 16), skipped, (chunks - 1) * primal),
        "PGD step 40-100-100-10 N=1000": (gemm_list(SHARD, 1, None, True), 2,
                                          flops(SIZES, 1000, "input_grad"), first + rest, 0),
        "population SGD step E=64 40-100-100-10 B=100": (gemm_list(MEMBER, 1, 0, False), 64,
                                                         64 * flops(SIZES, MEMBER, "grad"), 0, 0),
    }


def _time_shapes(args):
    """Worker: seconds per call of each shape (median over rounds of a hot loop), net of the binding."""
    shapes, repeat, barrier = args
    import numpy as np

    from pyquirk import _core
    rng = np.random.default_rng(os.getpid())

    def per_call(M, N, K, ta, tb, beta):
        A = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
        B = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
        C = np.zeros((M, N), np.float32)
        rounds = []
        for _ in range(repeat):
            n, t0 = 0, time.perf_counter()
            while n < 8 or time.perf_counter() - t0 < 0.01:
                _core.gemm(A, B, C, ta=bool(ta), tb=bool(tb), beta=float(beta))
                n += 1
            rounds.append((time.perf_counter() - t0) / n)
        return statistics.median(rounds)

    barrier.wait()
    overhead = per_call(1, 1, 1, 0, 0, 0)
    return {s: max(per_call(*s) - overhead, 0.0) for s in shapes}, overhead


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench.gemm_bound")
    ap.add_argument("--repeat", type=int, default=9, help="hot-loop rounds per shape (median)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes timing at once")
    args = ap.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    wl = workloads()
    for name, (gemms, items, bench_flops, not_done, repeated) in wl.items():
        if gemm_flops(gemms) * items != bench_flops - not_done + repeated:
            raise AssertionError(f"{name}: the GEMM list does not add up to the bench's FLOP count")
    shapes = sorted({s for g, *_ in wl.values() for s in g})
    ctx = mp.get_context("spawn")
    barrier = ctx.Manager().Barrier(args.workers)
    with ctx.Pool(args.workers) as pool:
        results = pool.map(_time_shapes, [(shapes, args.repeat, barrier)] * args.workers)
    per_shape = {s: statistics.median(r[0][s] for r in results) for s in shapes}
    overhead = statistics.median(r[1] for r in results)
    print(f"{args.workers} workers at once; binding cost {overhead * 1e6:.1f} µs per call, subtracted\n")
    print("| M × N × K | op | GFLOP/s per core |\n|---|---|---:|")
    for (M, N, K, ta, tb, beta) in shapes:
        op = ("Aᵀ" if ta else "A") + "·" + ("Bᵀ" if tb else "B") + (" + C" if beta else "")
        t = per_shape[(M, N, K, ta, tb, beta)]
        print(f"| {M} × {N} × {K} | {op} | {2 * M * N * K / t / 1e9:.1f} |")
    print("\n| workload | GEMMs per item | items | GEMM FLOPs | bound (GEMMs alone) | GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (gemms, items, *_) in wl.items():
        t = -(-items // args.workers) * sum(per_shape[s] * c for s, c in gemms.items())
        fl = gemm_flops(gemms) * items
        print(f"| {name} | {sum(gemms.values())} | {items} | {fl / 1e6:.0f} M | {t * 1e3:.2f} ms | {fl / t / 1e9:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
