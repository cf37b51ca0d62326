"""``python -m bench [--only SUBSTRING] [--repeat R]``: run the workloads, print one markdown table.

The implementations of a workload are timed interleaved (:func:`harness.interleaved_times`), so
their ratios compare the same moments of a shared machine.
"""
from __future__ import annotations

import platform
import statistics
import sys

import numpy as np

from .harness import Row, interleaved_times, parse_args, progress, selected, sgemm_gflops, table
from .workloads import WORKLOADS


def main(argv=None) -> int:
    args = parse_args("python -m bench", 7, argv)
    roof = sgemm_gflops()
    rows = []
    for name, (make, fl) in WORKLOADS.items():
        if not selected(name, args.only):
            continue
        made = {impl: (fn, per) for impl, fn, per in make()}
        times = interleaved_times({impl: fn for impl, (fn, _) in made.items()}, repeat=args.repeat)
        for impl, (_, per) in made.items():
            secs = statistics.median(times[impl])
            rows.append(Row(name, impl, secs, fl, per, rounds=times[impl]))
            progress(name, impl, secs)
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
