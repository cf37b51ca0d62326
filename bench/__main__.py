"""``python -m bench [--only SUBSTRING] [--repeat R]``: run the workloads, print one markdown table."""
from __future__ import annotations

import platform
import sys

import numpy as np

from .harness import Row, median_time, parse_args, progress, selected, sgemm_gflops, table
from .workloads import WORKLOADS


def main(argv=None) -> int:
    args = parse_args("python -m bench", 7, argv)
    roof = sgemm_gflops()
    rows = []
    for name, (make, fl) in WORKLOADS.items():
        if not selected(name, args.only):
            continue
        for impl, fn, per in make():
            secs = median_time(fn, repeat=args.repeat)
            rows.append(Row(name, impl, secs, fl, per))
            progress(name, impl, secs)
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
