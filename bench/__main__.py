"""``python -m bench [--only SUBSTRING] [--repeat R]``: run the workloads, print one markdown table."""
from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

from .harness import Row, median_time, sgemm_gflops, table
from .workloads import WORKLOADS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names to run")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    roof = sgemm_gflops()
    rows = []
    for name, (make, fl) in WORKLOADS.items():
        if args.only and not any(s in name for s in args.only):
            continue
        for impl, fn, per in make():
            secs = median_time(fn, repeat=args.repeat)
            rows.append(Row(name, impl, secs, fl, per))
            print(f"  {name:48s} {impl:24s} {secs * 1e3:9.2f} ms", file=sys.stderr)
    print(f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"roofline (NumPy sgemm 1024³): {roof:.1f} GFLOP/s\n")
    print(table(rows, roof))
    return 0


if __name__ == "__main__":
    sys.exit(main())
