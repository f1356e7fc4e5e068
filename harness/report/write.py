"""Write a run's output folder: summary.json, events.parquet, junit.xml, the PNG plots and
report.html (docs/architecture.md, "What a run writes").

Every file is written to a temp file in the same folder and moved into place with
``os.replace``, so a reader (CI, a dashboard polling the folder) never sees a half-written
file, and a failure leaves the previous version untouched. summary.json and junit.xml
go first: they are what CI gates on, so they exist even if a plot or the page fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.metrics import summary_json, to_frame, write_events
from harness.metrics.frame import shared_results
from harness.progress import Stages
from harness.report.atomic import atomic_path
from harness.report.atomic import write_text as _write_text
from harness.report.handoff import write_page
from harness.report.html import render_html
from harness.report.junit import write_junit
from harness.report.plots import PLOTS

if TYPE_CHECKING:
    from harness.report.pool import PlotPool

__all__ = ["atomic_path", "write_report"]


def write_report(
    out_dir: Path,
    summary: dict[str, Any],
    events: pd.DataFrame,
    *,
    title: str,
    description: str = "",
    extra_tables: Sequence[tuple[str, pd.DataFrame]] = (),
    stages: Stages | None = None,
    pool: PlotPool | None = None,
) -> dict[str, Path]:
    """Write the run's files into ``out_dir`` (which must exist); returns file name -> path.

    Names: "summary.json", "events.parquet", "junit.xml", "<plot>.png" for each plot with
    something to show (``plots.PLOTS``: coverage, latency_cdf, attempts, heatmap, rollback,
    sales) and "report.html". A plot with nothing to show is left out of the page, and
    an older PNG of that name in ``out_dir`` is removed so the folder matches the page.
    ``stages`` shows "writing summary.json, events.parquet, junit.xml", "plotting" (one
    step per plot) and "writing report.html". With a started ``pool`` (``PlotPool``) the
    plots render in its worker processes while the other files are written; the files are
    the same. A pool already given this frame (``pool.submit``) is not given it again.
    """
    stages = stages or Stages.off()
    out = Path(out_dir)
    frame = to_frame(events)
    paths: dict[str, Path] = {}
    if pool is not None and not pool.submitted:
        pool.submit(frame, out, list(PLOTS))
    with stages.stage("writing summary.json, events.parquet, junit.xml"):
        paths.update(write_files(out, summary, frame))
    rendered: dict[str, Path | None] = {}
    with stages.stage("plotting", len(PLOTS), fmt=_plots) as tick:
        done = pool.results(frame, PLOTS) if pool is not None else _in_process(frame, out)
        for name, written in done:
            rendered[name] = written
            tick(len(rendered))
    page = write_page(
        out,
        summary,
        rendered,
        title,
        description,
        extra_tables,
        stages,
        names=list(PLOTS),
        render=render_html,
    )
    paths.update(page)
    return paths


def write_files(out: Path, summary: dict[str, Any], frame: pd.DataFrame) -> dict[str, Path]:
    """summary.json, events.parquet and junit.xml into ``out`` (what CI gates on)."""
    paths = {"summary.json": _write_text(out / "summary.json", summary_json(summary))}
    target = out / "events.parquet"
    with atomic_path(target, suffix=".parquet") as tmp:
        write_events(frame, tmp)
    paths["events.parquet"] = target
    target = out / "junit.xml"
    with atomic_path(target) as tmp:
        write_junit(summary, tmp)
    paths["junit.xml"] = target
    return paths


def _in_process(frame: pd.DataFrame, out: Path) -> Iterator[tuple[str, Path | None]]:
    with shared_results():
        for name, plot in PLOTS.items():
            yield name, plot(frame, out / f"{name}.png")


def _plots(done: float, total: float) -> str:
    return f"{done:.0f}/{total:.0f} plots"
