"""``figures.save`` lays a figure out once and draws it once: the PNG must be the one
matplotlib's own savefig writes with the layout engine in place (which draws twice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.report.figures import DPI, TITLE_Y, figure, save


def _stock(width: float, height: float) -> object:
    """A figure as matplotlib makes it, none of ``figures.figure``'s canvas."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _busy_figure(make: Callable[[float, float], object] = figure) -> object:
    """What the report's plots use that constrained layout must make room for: two axes,
    a legend outside, a colorbar, a log axis (mathtext tick labels), an image, a figure
    legend below."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch

    fig: Any = make(9, 6)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    x = np.linspace(0.01, 100, 200)
    top.step(x, np.sqrt(x), where="post", label="a long legend label\nover two lines")
    top.set_xscale("log")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    top.set_title("a title that is rather long for the axes it sits over, on purpose")
    bottom.imshow(np.arange(40.0).reshape(1, 40), aspect="auto", extent=(0, 100, 0, 1))
    bottom.set_ylabel("two\nlines")
    fig.colorbar(ScalarMappable(LogNorm(1, 100), "viridis"), ax=bottom, fraction=0.035)
    fig.legend(handles=[Patch(label="patch")], loc="outside lower center", frameon=False)
    return fig


def test_save_writes_what_savefig_writes(tmp_path: Path) -> None:
    """Matplotlib's own figure and savefig against ``figure`` and ``save``: twice, the
    second drawn with the mathtext parses the first left in the shared parser."""
    reference = tmp_path / "reference.png"
    busy: Any = _busy_figure(_stock)
    busy.savefig(reference, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    for n in range(2):
        ours = save(_busy_figure(), tmp_path / f"ours-{n}.png")
        assert ours.read_bytes() == reference.read_bytes()


def test_save_leaves_no_layout_to_redo(tmp_path: Path) -> None:
    fig = _busy_figure()
    save(fig, tmp_path / "once.png")
    assert fig.get_layout_engine() is None  # laid out: a second draw would not move it


def _titled(y: float | None) -> object:
    """Two stacked axes sharing x (as the sales and rollback plots), a colorbar and an
    image (as the heatmap), a legend outside, a title on each axes at height ``y``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    fig = figure(9, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    top.step(np.arange(10.0), np.arange(10.0) ** 2, where="post", label="a label")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    top.set_title("the top axes, a title rather long for it on purpose", y=y)
    bottom.imshow(np.arange(40.0).reshape(1, 40), aspect="auto", extent=(0, 10, 0, 1))
    bottom.set_title("the bottom axes", fontsize=9, y=y)
    fig.colorbar(ScalarMappable(LogNorm(1, 100), "viridis"), ax=bottom, fraction=0.035)
    return fig


def test_a_given_title_height_draws_what_the_searched_one_does(tmp_path: Path) -> None:
    """``TITLE_Y``: a title placed at 1.0, not above the top tick labels matplotlib looks
    for (there are none), is the same PNG."""
    searched = save(_titled(None), tmp_path / "searched.png")
    given = save(_titled(TITLE_Y), tmp_path / "given.png")
    assert given.read_bytes() == searched.read_bytes()
