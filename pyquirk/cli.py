"""The ``pyquirk`` command line (DESIGN §6).

::

    pyquirk tour [--out report] [--quick] [--only NAME ...] [--seed N] [--no-progress]
    pyquirk <section> [--out report/<section>] [--quick] [--seed N] [section options]
    pyquirk --version

``pyquirk tour`` runs every registered section and writes ``<out>/index.html`` and
``<out>/results.json``; ``pyquirk <section>`` runs one section into its own folder (so it never
overwrites a full tour's report). Exit codes: 0 success, 1 a section failed (the report is still
written), 2 a usage error (unknown subcommand or section name, bad option), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", default=default_out, metavar="DIR",
                   help=f"report directory (default: {default_out})")
    p.add_argument("--quick", action="store_true",
                   help="run the small version of each section (smoke test, CI)")
    p.add_argument("--seed", type=_seed, default=None, metavar="N",
                   help="seed for every RNG stream (default: 0 for each stream)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars or status lines")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per registered tour section."""
    from . import __version__
    from .report import tour

    parser = argparse.ArgumentParser(
        prog="pyquirk", allow_abbrev=False,
        description="A laboratory for the unintuitive properties of deep neural networks.")
    parser.add_argument("--version", action="version", version=f"pyquirk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    secs = tour.sections()
    p = sub.add_parser("tour", allow_abbrev=False, help="run every quirk; write an HTML report",
                       description="Run every registered section on MNIST-1D and write "
                                   "OUT/index.html and OUT/results.json.")
    _common(p, "report")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help=f"run only these sections (known: {', '.join(s.name for s in secs)})")
    for s in secs:
        sp = sub.add_parser(s.name, allow_abbrev=False, help=s.title,
                            description=f"{s.title}. Runs the tour's {s.name!r} section alone.")
        _common(sp, f"report/{s.name}")
        if s.arguments is not None:
            s.arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pyquirk`` console script and ``python -m pyquirk``; returns the exit code."""
    from ._native import keep_freed_memory
    from .report import tour

    keep_freed_memory()  # this process is pyquirk's own: see pyquirk/_native.py
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed usage or the version already
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)

    options = {}
    if args.command == "tour":
        only = args.only
    else:
        only = [args.command]
        common = {"command", "out", "quick", "seed", "progress"}
        options = {k: v for k, v in vars(args).items() if k not in common}
    try:
        summary = tour.run_tour(args.out, quick=args.quick, only=only, seeds=args.seed,
                                options=options, progress=args.progress)
    except tour.UnknownSectionError as e:  # a usage error, raised before any work
        print(f"pyquirk: error: {e}", file=sys.stderr)
        return 2
    except tour.TourError as e:  # the report is written; the failures are in it
        print(f"pyquirk: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pyquirk: error: cannot write the report: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyquirk: interrupted", file=sys.stderr)
        return 130
    return 0 if summary is not None else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
