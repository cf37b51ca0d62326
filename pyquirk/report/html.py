"""A self-contained static ``index.html`` for a tour run.

One file with inline CSS and no scripts; figures are relative ``<img>`` links to the PNGs next to
it, so the report folder can be zipped, copied or served as it is. Every piece of text goes through
:func:`html.escape`; the only markup a section may use is ```code```, ``**bold**`` and ``- `` lists.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from .tour import Table

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:980px;
 margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.sub{color:#666} code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
nav ol{columns:2} figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.8em 0} caption{text-align:left;color:#555}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f6f6f6}
.ok{color:#176e2c} .error{color:#b00020;font-weight:600}
pre.err{background:#fff3f3;border:1px solid #f0c0c0;padding:.6em;overflow-x:auto;font-size:.85em}
details{margin:.8em 0}
"""


def write_index(out_dir: Path, summary: dict, outputs: dict) -> Path:
    """Write ``out_dir/index.html`` from the tour summary and each section's output.

    Args:
        out_dir: the report directory.
        summary: the dict :func:`pyquirk.report.tour.run_tour` writes to ``results.json``.
        outputs: ``{section name: SectionOutput}`` (sections missing here show only their entry).

    Returns:
        The path of ``index.html``.
    """
    out_dir = Path(out_dir)
    parts = [_head(summary), _toc(summary)]
    for name in summary["order"]:
        parts.append(_section(name, summary["sections"][name], outputs.get(name)))
    parts.append(_footer(summary))
    parts.append("</body></html>\n")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _head(summary: dict) -> str:
    n_fail = len(summary.get("failed", []))
    status = (f'<span class="error">{n_fail} section(s) failed</span>' if n_fail
              else '<span class="ok">all sections ran</span>')
    mode = "quick" if summary.get("quick") else "full"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>pyquirk tour</title><style>{_CSS}</style></head><body>\n"
            f"<h1>pyquirk tour</h1>\n"
            f'<p class="sub">The unintuitive properties of deep nets, measured on MNIST-1D. '
            f"pyquirk {_e(summary.get('pyquirk_version', '?'))}, {_e(mode)} run, "
            f"{_e(summary.get('created', ''))}, "
            f"{_fmt_time(summary.get('total_time_s', 0.0))} in total; {status}.</p>")


def _toc(summary: dict) -> str:
    items = []
    for name in summary["order"]:
        entry = summary["sections"][name]
        flag = ' <span class="error">(failed)</span>' if entry["status"] != "ok" else ""
        items.append(f'<li><a href="#{_anchor(name)}">{_e(entry["title"])}</a>{flag}</li>')
    items.append('<li><a href="#run">Run: seeds, versions, timings</a></li>')
    return "<nav><h2>Contents</h2><ol>\n" + "\n".join(items) + "\n</ol></nav>"


def _anchor(name: str) -> str:
    return "s-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _section(name: str, entry: dict, out) -> str:
    parts = [f'<section id="{_anchor(name)}"><h2>{_e(entry["title"])}</h2>']
    parts.append(f'<p class="sub"><code>{_e(name)}</code> · {_fmt_time(entry["time_s"])}</p>')
    if entry["status"] != "ok":
        parts.append('<p class="error">This section failed; the tour went on. Traceback:</p>'
                     f'<pre class="err">{_e(entry.get("error", ""))}</pre>')
    if out is not None:
        parts.extend(_paragraph(p) for p in out.paragraphs)
        parts.extend(_table(t) for t in out.tables)
        for fig in out.figures:
            cap = out.captions.get(fig, "")
            parts.append(f'<figure><img src="{_e(fig)}" alt="{_e(cap or fig)}" loading="lazy">'
                         + (f"<figcaption>{_inline(cap)}</figcaption>" if cap else "")
                         + "</figure>")
    if entry.get("metrics"):
        parts.append("<details><summary>Key numbers</summary>"
                     + _metrics_table(entry["metrics"]) + "</details>")
    parts.append("</section>")
    return "\n".join(parts)


def _inline(text: str) -> str:
    """Escape, then render ```code``` and ``**bold**``."""
    s = _e(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def _paragraph(text: str) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    if lines and all(ln.lstrip().startswith("- ") for ln in lines):
        return "<ul>" + "".join(f"<li>{_inline(ln.lstrip()[2:])}</li>" for ln in lines) + "</ul>"
    return f"<p>{_inline(' '.join(lines))}</p>"


def _table(t) -> str:
    """A :class:`Table`, or a plain list of rows whose first row is the header."""
    if isinstance(t, (list, tuple)):
        header, rows, caption = (list(t[0]), [list(r) for r in t[1:]], "") if t else ([], [], "")
    else:
        header, rows, caption = t.header, t.rows, t.caption
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_inline(caption)}</caption>")
    if header:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(_fmt(v))}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _metrics_table(metrics: dict) -> str:
    rows = [[k, _fmt(v) if not isinstance(v, (dict, list)) else json.dumps(v)[:200]]
            for k, v in _flatten(metrics)]
    return _table([["metric", "value"], *rows])


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    try:
        import numpy as np
        if isinstance(v, np.floating):
            return f"{float(v):.4g}"
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def _fmt_time(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _footer(summary: dict) -> str:
    seeds = [[k, v] for k, v in summary.get("seeds", {}).items()]
    vers = []
    for k, v in summary.get("versions", {}).items():
        if isinstance(v, dict):
            vers.extend([f"{k}.{kk}", vv] for kk, vv in v.items())
        else:
            vers.append([k, v])
    times = [[summary["sections"][n]["title"], _fmt_time(summary["sections"][n]["time_s"]),
              summary["sections"][n]["status"]] for n in summary["order"]]
    times.append(["total", _fmt_time(summary.get("total_time_s", 0.0)), ""])
    return ('<section id="run"><h2>Run: seeds, versions, timings</h2>'
            "<p>Each RNG stream is separate (DESIGN §4): changing one never changes another. "
            "Rerun with <code>pyquirk tour --seed N</code> (every stream gets N). "
            "The numbers are also in <code>results.json</code>.</p>"
            + _table(Table(["stream", "seed"], seeds, "Seeds"))
            + _table(Table(["section", "time", "status"], times, "Timings"))
            + _table(Table(["component", "version"], vers, "Versions"))
            + "</section>")

