"""Figures of landscapes, drawn on headless ``matplotlib.figure.Figure`` objects (no pyplot state).

- :func:`draw_contour`: contour or filled contour of ``Surface.loss`` (α on x, β on y), with the
  trajectory overlay when present; a line (1-D surface) is drawn as a curve.
- :func:`draw_surface3d`: the 3-D surface.
- :func:`draw_interpolation`: 1-D loss and accuracy curves (Goodfellow et al. 2015, Fig. 1 style).
- :func:`draw_overlay_check`: the overlay's own vs surface loss along training, and its distance
  from the plane.
- :func:`save_surface_figures`: all of a surface's PNGs into one folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _new_figure(size=(6.4, 4.8)):
    from matplotlib.figure import Figure
    return Figure(figsize=size, layout="constrained")


def _levels(Z, n: int = 24):
    """Contour levels: log-spaced when the loss spans more than a decade and a half, else linear."""
    z = Z[np.isfinite(Z)]
    lo, hi = float(z.min()), float(z.max())
    if hi <= lo:
        return None
    if lo > 0 and hi / lo > 30:
        return np.geomspace(lo, hi, n)
    return np.linspace(lo, hi, n)


def draw_contour(fig, s, *, filled: bool = False, metric: str = "loss") -> None:
    Z = np.asarray(getattr(s, metric), dtype=np.float64)
    ax = fig.add_subplot()
    if Z.shape[1] == 1:                     # a line
        ax.plot(s.alphas, Z[:, 0], color="C0")
        ax.set(xlabel="α (along d₁)", ylabel=metric, title=f"{s.plane.kind} direction: {metric}")
        ax.grid(alpha=0.3)
        return
    A, B = np.meshgrid(s.alphas, s.betas, indexing="ij")
    levels = _levels(Z)
    if levels is None:
        ax.text(0.5, 0.5, f"constant {metric}", transform=ax.transAxes, ha="center")
    elif filled:
        cs = ax.contourf(A, B, Z, levels=levels, cmap="viridis")
        fig.colorbar(cs, ax=ax, label=metric)
    else:
        cs = ax.contour(A, B, Z, levels=levels, cmap="viridis", linewidths=0.9)
        ax.clabel(cs, cs.levels[::4], fontsize=6, fmt="%.3g")
    if s.trajectory is not None and s.trajectory.coords.shape[1] == 2:
        draw_path(ax, s.trajectory)
    ax.plot([0], [0], marker="*", color="red", ms=10, ls="none", label="origin")
    norm = s.plane.info.get("norm")
    label = f" ({norm}-normalised)" if norm in ("filter", "layer") else ""
    ax.set(xlabel="α (along d₁)", ylabel="β (along d₂)", aspect="auto",
           title=f"{s.plane.kind} plane{label}: {metric}")
    ax.legend(loc="upper right", fontsize="small")


def draw_path(ax, t) -> None:
    """The projected trajectory: a line through the snapshots, start and end marked."""
    c = t.coords
    ax.plot(c[:, 0], c[:, 1], "-", color="white", lw=2.6, zorder=3)
    ax.plot(c[:, 0], c[:, 1], ".-", color="C3", lw=1.2, ms=4, zorder=4, label="trajectory (projected)")
    ax.plot(c[:1, 0], c[:1, 1], "o", color="C1", ms=6, zorder=5, label=f"step {int(t.steps[0])}")


def draw_surface3d(fig, s, *, metric: str = "loss", log: bool = False) -> None:
    Z = np.asarray(getattr(s, metric), dtype=np.float64)
    ax = fig.add_subplot(projection="3d")
    A, B = np.meshgrid(s.alphas, s.betas, indexing="ij")
    Zp = np.log10(np.maximum(Z, 1e-12)) if log else Z
    ax.plot_surface(A, B, Zp, cmap="viridis", linewidth=0, antialiased=True, rcount=80, ccount=80)
    ax.set(xlabel="α", ylabel="β", zlabel=("log₁₀ " if log else "") + metric,
           title=f"{s.plane.kind} plane: {metric} surface")
    ax.view_init(elev=35, azim=-60)


def draw_interpolation(fig, r) -> None:
    ax_l, ax_a = fig.subplots(1, 2)
    for split, color in (("train", "C0"), ("test", "C1")):
        loss, acc = getattr(r, f"{split}_loss"), getattr(r, f"{split}_acc")
        if loss is None:
            continue
        ax_l.plot(r.alphas, loss, color=color, label=split)
        ax_a.plot(r.alphas, acc, color=color, label=split)
    a_lab, b_lab = (list(r.labels) + ["θ_a", "θ_b"])[:2]
    for ax in (ax_l, ax_a):
        for x in (0.0, 1.0):
            ax.axvline(x, color="0.6", lw=0.7, ls=":")
        ax.set_xticks(sorted({float(r.alphas[0]), 0.0, 1.0, float(r.alphas[-1])}))
        ax.set_xlabel(f"α   (0 = {a_lab}, 1 = {b_lab})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    ax_l.set(ylabel="loss", yscale="log", title="loss along (1 − α)θ_a + αθ_b")
    _plain_log_ticks(ax_l)
    ax_a.set(ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")


def _plain_log_ticks(ax) -> None:
    """Log axis labelled with plain numbers (mathtext labels are slow to render)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def draw_overlay_check(fig, t) -> None:
    ax_l, ax_r = fig.subplots(1, 2)
    ax_l.plot(t.steps, t.own_loss, "o-", ms=3, label="own loss L(θ_t)")
    ax_l.plot(t.steps, t.surface_loss, "s--", ms=3, label="surface loss at projection")
    ax_l.set(xlabel="step", ylabel="loss", yscale="log", title="trajectory vs contours")
    _plain_log_ticks(ax_l)
    ax_l.legend(fontsize="small")
    ax_r.plot(t.steps, t.residual, "o-", ms=3, color="C2")
    ax_r.set(xlabel="step", ylabel="‖θ_t − proj‖ / ‖θ_t − θ‖", ylim=(-0.02, 1.02),
             title="distance from the plane")
    for ax in (ax_l, ax_r):
        ax.grid(alpha=0.3)


def save_surface_figures(s, directory, *, dpi: int = 120) -> dict:
    """Write the surface's PNGs into ``directory``: ``contour``, ``filled_contour``, ``surface_3d``
    (2-D planes), ``curve`` (lines), ``trajectory`` (with an overlay). Returns ``{name: Path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    jobs = []
    if s.loss.shape[1] == 1:
        jobs.append(("curve", lambda f: draw_contour(f, s)))
    else:
        jobs += [("contour", lambda f: draw_contour(f, s)),
                 ("filled_contour", lambda f: draw_contour(f, s, filled=True)),
                 ("surface_3d", lambda f: draw_surface3d(f, s))]
    if s.trajectory is not None:
        jobs.append(("trajectory", lambda f: draw_overlay_check(f, s.trajectory)))
    paths = {}
    for name, draw in jobs:
        fig = _new_figure((9.0, 3.6) if name == "trajectory" else (6.4, 4.8))
        draw(fig)
        paths[name] = directory / f"{name}.png"
        fig.savefig(paths[name], dpi=dpi, format="png")
    return paths


__all__ = ["draw_contour", "draw_surface3d", "draw_interpolation", "draw_overlay_check", "draw_path",
           "save_surface_figures"]
