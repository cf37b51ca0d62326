"""A helper the tour sections share: save a result and its figure in one call."""
from __future__ import annotations


def save_and_plot(ctx, result_name: str, result, figure_name: str, caption: str) -> None:
    """Save ``result`` as ``results/<section>/<result_name>`` and its plot, drawn on a fresh
    constrained-layout ``Figure`` (the result sets its own size), as figure ``figure_name``."""
    from matplotlib.figure import Figure

    ctx.save_result(result_name, result)
    fig = Figure(layout="constrained")
    result.plot(fig=fig)
    ctx.figure(figure_name, fig, caption=caption)
