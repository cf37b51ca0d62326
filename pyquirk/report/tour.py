"""The tour: every quirk on MNIST-1D, one section each, into one static HTML report (DESIGN §6).

A section is a function ``fn(ctx: TourContext) -> SectionOutput`` registered with :func:`section`::

    @section("baseline", "Baseline: an MLP and a CNN on MNIST-1D", order=10)
    def baseline(ctx):
        ...
        ctx.figure("curves", fig, caption="Learning curves")
        return SectionOutput(paragraphs=["..."], metrics={"test_acc": 0.9})

Section modules are listed in :data:`SECTION_MODULES` and imported lazily by :func:`load_sections`
(so ``import pyquirk`` stays cheap); a later quirk appends its module name there.

Error policy: a section that raises does not stop the tour. Its traceback is recorded in the
report (``index.html`` and ``results.json``, status ``"error"``), the remaining sections run, both
files are written, and then :func:`run_tour` raises :class:`TourError` (chained to the first
failure), so the CLI exits non-zero. A section module that fails to import is reported the same way.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

from ..seeds import Seeds, as_seeds

#: Modules whose import registers tour sections. Later quirks append to this tuple.
SECTION_MODULES: tuple[str, ...] = (
    "pyquirk.report.baseline",
    "pyquirk.report.landscapes",
    "pyquirk.report.adversarial",
    "pyquirk.report.curvature",
    "pyquirk.report.compression_section",
    "pyquirk.report.memorization_section",
    "pyquirk.report.init_order_section",
    "pyquirk.report.forgetting_section",
)


@dataclasses.dataclass
class Table:
    """A small table for the report: ``rows`` is ``[n_rows][n_cols]`` of scalars or strings."""

    header: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclasses.dataclass
class SectionOutput:
    """What a section hands back to the tour.

    Attributes:
        title: heading; defaults to the title the section was registered with.
        paragraphs: text paragraphs. Plain text, HTML-escaped on output; ```code``` and
            ``**bold**`` are rendered, and a paragraph whose lines all start with ``"- "`` is a list.
        figures: PNG paths relative to the output directory. Figures saved through
            ``ctx.figure`` are added automatically.
        metrics: key numbers, JSON-able (``{"mlp_test_acc": 0.68}``); go to ``results.json``.
        tables: optional :class:`Table` objects.
        captions: ``{figure path: caption}``; filled by ``ctx.figure(..., caption=...)``.
    """

    title: str = ""
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    figures: list[str] = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=dict)
    tables: list[Table] = dataclasses.field(default_factory=list)
    captions: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Section:
    """A registered section: its CLI name, report title, sort key and function."""

    name: str
    title: str
    order: float
    fn: Callable[["TourContext"], SectionOutput]
    arguments: Callable | None = None   # fn(argparse.ArgumentParser) adding section options


_SECTIONS: dict[str, Section] = {}
_LOAD_ERRORS: dict[str, str] = {}


def section(name: str, title: str, order: float = 100.0, *, arguments: Callable | None = None):
    """Decorator registering ``fn(ctx) -> SectionOutput`` as tour section ``name``.

    Args:
        name: CLI name (``pyquirk <name>``); lower-case letters, digits, ``-`` and ``_``.
        title: heading in the report.
        order: sections run and appear by ascending ``order``, then name.
        arguments: optional ``fn(parser)`` adding options for ``pyquirk <name>``; the parsed
            values reach the section as ``ctx.options``.
    """
    def decorate(fn):
        register_section(Section(name, title, order, fn, arguments))
        return fn
    return decorate


def register_section(sec: Section) -> Section:
    """Register ``sec``; re-registering the same function (a module reload) replaces it.

    Raises:
        ValueError: a bad name, or a name already taken by a different function.
    """
    ok = sec.name and sec.name[0].isalpha() and all(c.isalnum() or c in "-_" for c in sec.name)
    if not ok or sec.name != sec.name.lower() or sec.name == "tour":
        raise ValueError(f"invalid section name {sec.name!r}: use lower-case letters, digits, - or _")
    old = _SECTIONS.get(sec.name)
    if old is not None and _fn_key(old.fn) != _fn_key(sec.fn):
        raise ValueError(f"section {sec.name!r} is already registered by {_fn_key(old.fn)}")
    _SECTIONS[sec.name] = sec
    return sec


def unregister_section(name: str) -> None:
    """Remove section ``name`` (for tests that register throw-away sections)."""
    _SECTIONS.pop(name, None)


def _fn_key(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def load_sections() -> dict[str, str]:
    """Import every module in :data:`SECTION_MODULES`; return ``{module: error}`` for failures."""
    for mod in SECTION_MODULES:
        if mod in sys.modules:
            continue
        try:  # retried on every call, so a dependency installed later is picked up
            importlib.import_module(mod)
            _LOAD_ERRORS.pop(mod, None)
        except Exception:  # noqa: BLE001 - reported in the tour, never swallowed silently
            _LOAD_ERRORS[mod] = traceback.format_exc()
    return dict(_LOAD_ERRORS)


def sections() -> list[Section]:
    """Registered sections in run order (loads :data:`SECTION_MODULES` first)."""
    load_sections()
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))


class TourContext:
    """What a section gets: where to write, how hard to work, which seeds, and helpers.

    Attributes:
        out_dir: the report directory (``index.html`` lives here).
        quick: do a smaller version (fewer steps, coarser grids), for smoke runs and CI.
        seeds: the named RNG streams of this run.
        options: section-specific CLI options (``{}`` inside a full tour).
        section: name of the section being run.
    """

    def __init__(self, out_dir: Path, quick: bool, seeds: Seeds, *, options: dict | None = None,
                 show_progress: bool = True, section: str = ""):
        self.out_dir = Path(out_dir)
        self.quick = bool(quick)
        self.seeds = seeds
        self.options = dict(options or {})
        self.show_progress = show_progress
        self.section = section
        self.figures: list[str] = []
        self.captions: dict[str, str] = {}

    def figure(self, name: str, fig, caption: str = "", dpi: int = 110) -> str:
        """Save matplotlib Figure ``fig`` as ``figures/<section>-<name>.png``; record it.

        Returns:
            The PNG path relative to ``out_dir`` (what the HTML links to).
        """
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"figure name {name!r} must use letters, digits, '-', '_' or '.'")
        rel = f"figures/{self.section}-{name}.png" if self.section else f"figures/{name}.png"
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, format="png")
        if rel not in self.figures:
            self.figures.append(rel)
        if caption:
            self.captions[rel] = caption
        return rel

    def save_result(self, name: str, result) -> str:
        """Save a :class:`pyquirk.results.Result` under ``results/<section>/<name>``; return it."""
        if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
            raise ValueError(f"result name {name!r} must use letters, digits, '-', '_' or '.'")
        rel = f"results/{self.section}/{name}"
        result.save(self.out_dir / rel)
        return rel

    def progress(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str | None = None, **kwargs):
        """A tqdm progress bar (on stderr), silenced when the run asked for no progress."""
        from tqdm.auto import tqdm
        kwargs.setdefault("leave", False)
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, total=total, desc=desc or self.section,
                    disable=not self.show_progress, file=sys.stderr, **kwargs)


class UnknownSectionError(ValueError):
    """A section name that is not registered (raised before anything runs)."""


class TourError(RuntimeError):
    """Raised by :func:`run_tour` after the report is written when some section failed.

    Attributes:
        failed: names of the sections (or modules) that failed.
        summary: the summary dict that was written to ``results.json``.
    """

    def __init__(self, failed: list[str], summary: dict):
        super().__init__(f"{len(failed)} tour section(s) failed: {', '.join(failed)} "
                         f"(see {summary.get('out_dir', 'the report')})")
        self.failed = failed
        self.summary = summary


def run_tour(out_dir: str | os.PathLike = "report", quick: bool = False,
             only: Iterable[str] | None = None, seeds: Seeds | int | dict | None = None, *,
             options: dict | None = None, progress: bool = True,
             log: Callable[[str], None] | None = None) -> dict:
    """Run the registered sections in order and write ``index.html`` and ``results.json``.

    Args:
        out_dir: report directory (created).
        quick: ask sections for their small version.
        only: section names to run (in registry order); None runs all.
        seeds: a Seeds, an int (every stream) or a dict of stream seeds; default ``Seeds()``.
        options: section options (used by ``pyquirk <section>``).
        progress: show tqdm bars.
        log: one-line status messages (default: stderr when ``progress``).

    Returns:
        The summary written to ``results.json``: ``{"sections": {name: {"title", "status",
        "metrics", "figures", "time_s", "error"?}}, "seeds", "versions", "quick", ...}``.

    Raises:
        UnknownSectionError: an unknown name in ``only`` (a ValueError; nothing is run).
        TourError: after writing the report, if any section (or section module) failed.
    """
    from . import html

    seeds = Seeds() if seeds is None else as_seeds(seeds)
    if log is None:
        log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    load_errors = load_sections()
    todo = _select(sections(), only, load_errors)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    summary: dict = {
        "pyquirk_version": _version(), "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "out_dir": str(out_dir), "quick": bool(quick), "seeds": seeds.to_dict(),
        "versions": versions(), "sections": {}, "order": [], "failed": [],
    }
    outputs: dict[str, SectionOutput] = {}
    failures: list[BaseException] = []
    if only is None:  # a module that could not be imported is a failed part of the full tour
        for mod, err in load_errors.items():
            summary["sections"][mod] = {"title": f"import {mod}", "status": "error",
                                        "metrics": {}, "figures": [], "time_s": 0.0, "error": err}
            summary["order"].append(mod)
            summary["failed"].append(mod)
            failures.append(ImportError(f"could not import section module {mod}"))
    t_tour = time.perf_counter()
    for i, sec in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {sec.name}: {sec.title}")
        ctx = TourContext(out_dir, quick, seeds, options=options, show_progress=progress,
                          section=sec.name)
        entry, out, err = _run_one(sec, ctx)
        summary["sections"][sec.name] = entry
        summary["order"].append(sec.name)
        outputs[sec.name] = out
        if err is not None:
            summary["failed"].append(sec.name)
            failures.append(err)
            log(f"    {sec.name} FAILED after {entry['time_s']:.1f} s: {type(err).__name__}: {err}")
        else:
            log(f"    {sec.name} done in {entry['time_s']:.1f} s")
    summary["total_time_s"] = time.perf_counter() - t_tour

    _write_json(out_dir / "results.json", summary)
    index = html.write_index(out_dir, summary, outputs)
    log(f"report: {index}")
    if failures:
        raise TourError(summary["failed"], summary) from failures[0]
    return summary


def _select(todo: list[Section], only, load_errors: dict) -> list[Section]:
    if only is None:
        return todo
    only = list(dict.fromkeys([only] if isinstance(only, str) else only))
    known = {s.name for s in todo}
    unknown = [n for n in only if n not in known]
    if unknown:
        msg = (f"unknown section(s) {', '.join(map(repr, unknown))}; "
               f"known: {', '.join(sorted(known)) or 'none'}")
        if load_errors:
            msg += f" (modules that failed to import: {', '.join(load_errors)})"
        raise UnknownSectionError(msg)
    return [s for s in todo if s.name in only]


def _run_one(sec: Section, ctx: TourContext):
    """Run one section; return (summary entry, SectionOutput, exception or None)."""
    t0 = time.perf_counter()
    err = None
    try:
        out = sec.fn(ctx)
        if not isinstance(out, SectionOutput):
            raise TypeError(f"section {sec.name!r} returned {type(out).__name__}, "
                            "expected SectionOutput")
        metrics = _jsonable(out.metrics, f"{sec.name} metrics")
    except Exception as e:  # noqa: BLE001 - recorded, then re-raised by run_tour as TourError
        err = e
        out = SectionOutput(paragraphs=[])
        metrics = {}
    elapsed = time.perf_counter() - t0
    out.title = out.title or sec.title
    out.figures = list(dict.fromkeys([*ctx.figures, *map(str, out.figures)]))
    out.captions = {**ctx.captions, **out.captions}
    entry = {"title": out.title, "status": "ok" if err is None else "error",
             "metrics": metrics, "figures": out.figures, "time_s": elapsed}
    if err is not None:
        entry["error"] = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return entry, out, err


def _jsonable(value, where: str):
    from ..results import _encode
    try:
        return _encode(value, where, None)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None


def _write_json(path: Path, doc: dict) -> None:
    import json
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _version() -> str:
    from .. import __version__
    return __version__


def versions() -> dict:
    """Versions of Python, pyquirk and its main dependencies, the platform, and the backends."""
    import numpy
    info = {"python": platform.python_version(), "pyquirk": _version(),
            "numpy": numpy.__version__, "platform": platform.platform(),
            "machine": platform.machine()}
    for name in ("scipy", "matplotlib", "numba", "cupy", "torch"):
        mod = sys.modules.get(name)
        if mod is None and name in ("matplotlib", "scipy"):
            try:
                mod = importlib.import_module(name)
            except ImportError:
                mod = None
        if mod is not None:
            info[name] = getattr(mod, "__version__", "?")
    try:
        from .. import backends
        info["backends"] = {k: ("available" if v is None else v)
                            for k, v in backends.available().items()}
    except Exception as e:  # noqa: BLE001 - the report must not die on a version probe
        info["backends"] = f"unknown ({type(e).__name__}: {e})"
    return info


__all__ = ["SECTION_MODULES", "Section", "SectionOutput", "Table", "TourContext", "TourError",
           "UnknownSectionError",
           "section", "register_section", "unregister_section", "load_sections", "sections",
           "run_tour", "versions"]
