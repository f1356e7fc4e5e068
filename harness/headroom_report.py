"""The "harness headroom" part of a live or load report: tables and the plot of the
harness's own event-loop lag and Locust CPU (``harness/selfwatch.py``), and the console
lines naming a saturated component. Kept apart from ``harness/report`` (the ``run``
report) because only the live and load runs watch themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.load.figures import headroom_tables
from harness.load.plots import CAPTIONS, plot_headroom
from harness.report.html import render_html

__all__ = ["HEADROOM_PNG", "headroom_tables", "rewrite_page", "with_headroom"]

HEADROOM_PNG = "harness_headroom.png"


def with_headroom(
    images: Mapping[str, Path],
    out: Path,
    section: Mapping[str, Any],
    lag: Sequence[Mapping[str, Any]],
    cpu: Mapping[str, Sequence[tuple[float, float]]],
    origin: float,
) -> dict[str, Path]:
    """``images`` plus the headroom plot (written to ``out/harness_headroom.png``)."""
    png = plot_headroom(lag, cpu, section, origin=origin, out=out / HEADROOM_PNG)
    return {**images, **({"harness headroom": png} if png is not None else {})}


def rewrite_page(
    out: Path,
    summary: Mapping[str, Any],
    images: Mapping[str, Path],
    *,
    title: str,
    description: str,
    extra_tables: Sequence[tuple[str, pd.DataFrame]],
) -> Path:
    """report.html again, with ``images`` (the load plots, the headroom) captioned."""
    page = render_html(
        summary, images, title=title, description=description, extra_tables=extra_tables
    )
    for name, caption in CAPTIONS.items():  # captions: the page falls back to the name
        page = page.replace(
            f"<figcaption>{name}</figcaption>", f"<figcaption>{caption}</figcaption>"
        )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
