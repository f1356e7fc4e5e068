"""Shared figure machinery for the report's plots: backend, colours, time axes, saving.

Kept apart from the plots themselves so every figure of a report looks alike (same
channel colours, same time units, same size and dpi) and is written the same safe way.
Figures are ``matplotlib.figure.Figure`` objects on the Agg backend: no display needed,
and no pyplot figure registry that could leak memory across the plots of a long sweep.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DLQ",
    "DPI",
    "NEVER",
    "RETRY",
    "TITLE_Y",
    "colour",
    "figure",
    "fmt_duration",
    "lay_out",
    "log_time_axis",
    "mark_operators",
    "save",
    "time_scale",
]

DPI = 110
# Fixed colours so a channel looks the same in every figure of a report.
CHANNEL_COLOURS = {
    "all": "#222222",
    "pos": "#1f77b4",
    "ecommerce": "#ff7f0e",
    "loyalty": "#2ca02c",
    "marketplace": "#9467bd",
    "erp": "#8c564b",
    "unknown": "#7f7f7f",
}
_SPARE = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f")
# A title's height given (``set_title(..., y=TITLE_Y)``), not searched for. Left to
# matplotlib, a title is placed above any top tick labels of its axes, found by measuring
# every axis's labels at each layout pass and at the draw (~7 % of a plot); the report's
# axes have none up there, so it lands at 1.0 either way: the same PNG, byte for byte
# (tests/report/test_figure_save.py).
TITLE_Y = 1.0
RETRY = "#d62728"
NEVER = "#9e9e9e"
DLQ = "#b2182b"
# Tick positions for log time axes, so they read "1 s, 1 min, 1 h" rather than "10^2".
DURATION_TICKS = (0.001, 0.01, 0.1, 1, 10, 60, 600, 3600, 36000, 86400)


def colour(channel: str) -> str:
    """The channel's colour; an unknown channel gets a stable spare one."""
    known = CHANNEL_COLOURS.get(channel)
    return known or _SPARE[sum(map(ord, channel)) % len(_SPARE)]


def figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A new figure (inches) on the Agg backend, constrained layout unless told otherwise.

    It gets its Agg canvas now: a bare ``Figure`` has a base canvas, and then the layout
    engine and savefig each make an Agg canvas of their own, so every text was measured
    by one renderer for the layout and again by another for the drawing (~4 % of a plot).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    _canvas()(fig)
    return fig


@functools.cache
def _canvas() -> Any:
    """An Agg canvas whose renderers share one mathtext parser. Each Agg renderer makes
    its own, and its parse cache with it, so every figure parsed its log-axis tick labels
    ("10^2") again: a fifth of the attempts plot. A parse depends on the text, font and
    dpi only (the cache's key), not on the renderer: the same pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    shared: list[Any] = []  # the first renderer's parser, as this matplotlib makes it

    class Canvas(FigureCanvasAgg):
        def get_renderer(self) -> Any:
            renderer = super().get_renderer()
            if not shared:
                shared.append(renderer.mathtext_parser)
            renderer.mathtext_parser = shared[0]
            return renderer

    return Canvas


def save(fig: Any, out: Path) -> Path:
    """Write ``fig`` as PNG to ``out`` without ever leaving a half-written file there."""
    out = Path(out)
    lay_out(fig)
    with atomic_path(out) as tmp:
        # zlib level 1: a tenth of a second less per plot for files about 12 % larger
        fig.savefig(tmp, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return out


def lay_out(fig: Any) -> None:
    """Run the figure's layout engine once and remove it, so that saving draws once.

    savefig with a layout engine draws the figure twice: once unrendered to lay it out,
    then for real, laying it out again. Laid out once here, it draws once: the same
    pixels (tests/report/test_figure_save.py), ~7 % less CPU per plot.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine(None)  # none (not "none": its placeholder still pre-draws)


def time_scale(span_s: float) -> tuple[float, str]:
    """Divisor and unit for a time axis covering ``span_s`` seconds."""
    if span_s <= 180:
        return 1.0, "s"
    if span_s <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def fmt_duration(seconds: float) -> str:
    """A duration for a label: "850 ms", "12 s", "4.5 min", "2 h"."""
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"


def duration_ticks(axis: Any, lo: float, hi: float, per: float = 1.0) -> None:
    """Put duration-named ticks ("10 s", "1 min") on a log ``axis`` whose unit is ``per`` s."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [t / per for t in DURATION_TICKS if lo <= t / per <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_duration(v * per)))
    axis.set_minor_formatter(NullFormatter())


def log_time_axis(ax: Any, lo: float, hi: float) -> None:
    """A log x axis in seconds from ``lo`` to ``hi`` with duration-named ticks."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    duration_ticks(ax.xaxis, lo, hi)


def mark_operators(ax: Any, df: pd.DataFrame, scale: float, label: bool) -> None:
    """Vertical lines at publishes and rollbacks, for context on time-of-run axes."""
    for kind, line in (("publish", "#2ca02c"), ("rollback", RETRY)):
        times = sorted(set(df.loc[df["kind"] == kind, "t"].tolist()))
        for i, t in enumerate(times):
            name = kind if (label and i == 0) else None
            ax.axvline(t / scale, color=line, ls=":", lw=1.4, label=name)
