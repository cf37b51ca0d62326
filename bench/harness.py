"""Timing and reporting for the benchmark suite.

All figures of one table come from one process run: medians of repeated calls after a warm-up,
reported as ratios against the reference backend, the peers and the machine's sgemm roofline.
Absolute times are only comparable within one run on shared machines.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import numpy as np


def median_time(fn, *, warmup: int = 1, repeat: int = 7, budget_s: float = 20.0) -> float:
    """Median wall time of ``fn()`` in seconds (fewer repeats if one call eats the budget)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_clocks(fns: dict, *, warmup: int = 1, repeat: int = 7, burst: int = 3,
                       budget_s: float = 60.0) -> dict:
    """Wall and process-CPU times of several implementations of one workload, taken round-robin.

    Each round runs every implementation in a burst of ``burst`` consecutive calls and keeps the
    burst's medians, the order reversed every other round. Round-robin makes load drifting on a
    shared machine hit the implementations alike, so a round's ratios compare one moment; the
    burst measures each one warm, as a loop calls it (a first call after another library's
    threads ran measured 1.5-1.8x slower: its thread pool and caches are cold, or the other
    library's threads still spin). Returns ``{name: ([wall s per round], [CPU s per round])}``
    (at least 3 rounds, fewer than ``repeat`` when the rounds eat ``budget_s``).
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: ([], []) for name in names}
    start = time.perf_counter()
    for r in range(repeat):
        if r >= 3 and time.perf_counter() - start > budget_s:
            break
        for name in (names if r % 2 == 0 else names[::-1]):
            wall, cpu = [], []
            for _ in range(burst):
                t0, c0 = time.perf_counter(), time.process_time()
                fns[name]()
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            times[name][0].append(statistics.median(wall))
            times[name][1].append(statistics.median(cpu))
    return times


def interleaved_times(fns: dict, **kw) -> dict:
    """The wall times of :func:`interleaved_clocks` (same arguments): ``{name: [seconds per round]}``."""
    return {name: wall for name, (wall, _) in interleaved_clocks(fns, **kw).items()}


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def pin_threads(n: int, module: str, argv) -> None:
    """Re-run ``python -m module argv`` with every thread pool limited to n, unless this process
    already is that run (thread counts are read when the pools start, so they go in through the
    environment of a fresh process). One thread also turns off XLA's multi-threaded Eigen."""
    if os.environ.get("PYQUIRK_BENCH_THREADS") == str(n):
        return
    env = dict(os.environ, PYQUIRK_BENCH_THREADS=str(n), **{v: str(n) for v in THREAD_VARS})
    if n == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def sgemm_gflops(n: int = 1024, dtype=np.float32) -> float:
    """The roofline: NumPy (BLAS) GEMM n³ throughput in GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, n, n)).astype(dtype)
    return 2 * n ** 3 / median_time(lambda: a @ b, repeat=9) / 1e9


@dataclasses.dataclass
class Row:
    workload: str
    impl: str
    seconds: float
    flops: float | None = None
    per: int = 1           # items per call (vectors, members, points) for per-item figures
    note: str = ""
    rounds: list[float] | None = None  # per-round times of an interleaved run (interleaved_times)


def parse_args(prog: str, repeat: int, argv=None) -> argparse.Namespace:
    """The suite's command line: ``--only SUBSTRING ...`` (workloads to run) and ``--repeat R``."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names to run")
    ap.add_argument("--repeat", type=int, default=repeat)
    return ap.parse_args(argv)


def selected(name: str, only) -> bool:
    """Whether workload ``name`` runs under ``--only`` (all do when no substrings are given)."""
    return not only or any(s in name for s in only)


def run_benches(benches, args, *, widths=(48, 24)) -> list[Row]:
    """Time the workloads of a bench module selected by ``args`` (:func:`parse_args`).

    Each entry of ``benches`` makes a workload object with ``name``, ``setup()`` and ``impls()``
    (pairs ``(implementation, callable)``, timed together by :func:`interleaved_times`,
    ``args.repeat`` rounds or fewer when they exceed its time budget), optionally ``flops`` per call and
    ``peers(repeat)``: pairs ``(implementation, seconds)`` that it times itself. Each row is shown
    on stderr as it is measured, ``widths`` being those of the workload and implementation columns.
    """
    rows = []
    for make in benches:
        bench = make()
        if not selected(bench.name, args.only):
            continue
        bench.setup()
        for impl, rounds in interleaved_times(dict(bench.impls()), repeat=args.repeat).items():
            secs = statistics.median(rounds)
            rows.append(Row(bench.name, impl, secs, getattr(bench, "flops", None), rounds=rounds))
            progress(bench.name, impl, secs, widths)
        for impl, secs in (bench.peers(args.repeat) if hasattr(bench, "peers") else ()):
            rows.append(Row(bench.name, impl, secs))
            progress(bench.name, impl, secs, widths)
    return rows


def progress(workload: str, impl: str, secs: float, widths=(48, 24)) -> None:
    """One measured row on stderr, as the suite shows it while it runs."""
    print(f"  {workload:{widths[0]}s} {impl:{widths[1]}s} {secs * 1e3:9.2f} ms", file=sys.stderr)


def table(rows: list[Row], roofline: float) -> str:
    """Markdown table: time, per-item time, GFLOP/s, % of roofline and two speed-ups.

    "vs reference" is how much faster the row is than pyquirk-reference; "cpu vs it" is how much
    faster pyquirk-cpu is than the row (the figure the issues' targets name). Rows measured
    interleaved (``rounds``) give the median of the per-round ratios, others the ratio of medians.
    """
    by = {(r.workload, r.impl): r for r in rows}
    lines = ["| workload | implementation | median time | per item | GFLOP/s | % roofline | speed-up vs reference "
             "| pyquirk-cpu speed-up over it |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gf = r.flops / r.seconds / 1e9 if r.flops else None
        vs_ref = speedup(r, by.get((r.workload, "pyquirk-reference")))
        cpu_vs = speedup(by.get((r.workload, "pyquirk-cpu")), r)
        lines.append(f"| {r.workload} | {r.impl}{(' ' + r.note) if r.note else ''} | {_fmt(r.seconds)} | "
                     f"{_fmt(r.seconds / r.per)} | {'' if gf is None else f'{gf:.1f}'} | "
                     f"{'' if gf is None else f'{100 * gf / roofline:.0f} %'} | {vs_ref:.2f}× | {cpu_vs:.2f}× |")
    return "\n".join(lines)


def speedup(fast: Row | None, slow: Row | None) -> float:
    """How many times faster ``fast`` ran than ``slow``: the median per-round ratio when both come
    from one interleaved run, else the ratio of medians; NaN when either is missing."""
    if fast is None or slow is None:
        return float("nan")
    if fast.rounds and slow.rounds and len(fast.rounds) == len(slow.rounds):
        return statistics.median(s / f for f, s in zip(fast.rounds, slow.rounds))
    return slow.seconds / fast.seconds


def _fmt(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
