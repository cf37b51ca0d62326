"""Timing and reporting for the benchmark suite.

All figures of one table come from one process run: medians of repeated calls after a warm-up,
reported as ratios against the reference backend, the peers and the machine's sgemm roofline.
Absolute times are only comparable within one run on shared machines.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def parse_args(prog: str, repeat: int, argv=None) -> argparse.Namespace:
    """The suite's command line: ``--only SUBSTRING ...`` (workloads to run) and ``--repeat R``."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names to run")
    ap.add_argument("--repeat", type=int, default=repeat)
    return ap.parse_args(argv)


def selected(name: str, only) -> bool:
    """Whether workload ``name`` runs under ``--only`` (all do when no substrings are given)."""
    return not only or any(s in name for s in only)


def run_benches(benches, args, *, widths=(48, 24), slow=lambda bench, impl: False) -> list[Row]:
    """Time the workloads of a bench module selected by ``args`` (:func:`parse_args`).

    Each entry of ``benches`` makes a workload object with ``name``, ``setup()`` and ``impls()``
    (pairs ``(implementation, callable)``, timed by :func:`median_time`, 3 repeats where
    ``slow(bench, impl)``, else ``args.repeat``), optionally ``flops`` per call and
    ``peers(repeat)``: pairs ``(implementation, seconds)`` that it times itself. Each row is shown
    on stderr as it is measured, ``widths`` being those of the workload and implementation columns.
    """
    rows = []
    for make in benches:
        bench = make()
        if not selected(bench.name, args.only):
            continue
        bench.setup()
        for impl, fn in bench.impls():
            secs = median_time(fn, repeat=3 if slow(bench, impl) else args.repeat)
            rows.append(Row(bench.name, impl, secs, getattr(bench, "flops", None)))
            progress(bench.name, impl, secs, widths)
        for impl, secs in (bench.peers(args.repeat) if hasattr(bench, "peers") else ()):
            rows.append(Row(bench.name, impl, secs))
            progress(bench.name, impl, secs, widths)
    return rows


def progress(workload: str, impl: str, secs: float, widths=(48, 24)) -> None:
    """One measured row on stderr, as the suite shows it while it runs."""
    print(f"  {workload:{widths[0]}s} {impl:{widths[1]}s} {secs * 1e3:9.2f} ms", file=sys.stderr)


def table(rows: list[Row], roofline: float) -> str:
    """Markdown table: time, per-item time, GFLOP/s and % of roofline, speed-up vs reference."""
    ref = {r.workload: r.seconds for r in rows if r.impl == "pyquirk-reference"}
    lines = ["| workload | implementation | median time | per item | GFLOP/s | % roofline | speed-up vs reference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        gf = r.flops / r.seconds / 1e9 if r.flops else None
        ratio = ref.get(r.workload, float("nan")) / r.seconds
        lines.append(f"| {r.workload} | {r.impl}{(' ' + r.note) if r.note else ''} | {_fmt(r.seconds)} | "
                     f"{_fmt(r.seconds / r.per)} | {'' if gf is None else f'{gf:.1f}'} | "
                     f"{'' if gf is None else f'{100 * gf / roofline:.0f} %'} | {ratio:.2f}× |")
    return "\n".join(lines)


def _fmt(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
