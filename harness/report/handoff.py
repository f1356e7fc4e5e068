"""``promoharness run``'s report without pandas in the command's own process.

Importing pandas and pyarrow costs the command ~0.4 CPU-s before its simulation can
start; the simulation itself needs neither. So a run with a parallel ``PlotPool`` hands
its raw output (delivery records and the shopper columns, a ``Handoff``) to the pool's
workers, which imported pandas and matplotlib on the other core while it simulated: each
builds the event log (``runner.event_frame``, the same frame as in one process), one
computes the summary and writes summary.json, events.parquet and junit.xml
(``summary_files``), and they share the plots. The command then writes report.html
(``write_page``) and exits with the summary's verdict. The files are those
``write_report`` writes in one process, byte for byte (tests/report/test_pool.py).

Nothing here imports pandas at module level; ``Handoff.frame`` and ``summary_files``
import it when they run (in a worker, or in the command when a worker failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from harness.report.atomic import write_text

if TYPE_CHECKING:
    import pandas as pd

    from harness.progress import Stages

__all__ = ["EARLY_PLOTS", "PLOT_NAMES", "Handoff", "ShopperLists", "summary_files", "write_page"]

# ``plots.PLOTS``'s names in report order (plots.py imports pandas; a test holds them equal).
PLOT_NAMES = ("coverage", "latency_cdf", "attempts", "recovery", "heatmap", "rollback", "sales")
# The plots that read no shopper row (sale, discount, quote) and nothing of the log as a
# whole (its last instant, its length): drawn from the delivery records' frame alone, the
# same PNGs as from the whole log's when ``Handoff.records_suffice`` (tests/report/
# test_pool.py), so a worker can draw them while the whole log is still being built.
# Not recovery (it ends at the log's last instant) nor rollback (leakage reads discounts).
EARLY_PLOTS = frozenset({"coverage", "latency_cdf", "attempts", "heatmap"})
FILES = "@files"  # the pool task that computes the summary and writes the gated files


class ShopperLists:
    """The shopper columns as plain lists (``runtime.shoppers.Columns``'s fields): a
    worker unpickles them without importing the simulation's modules."""

    FIELDS = ("t", "kind", "promo", "version", "endpoint", "channel", "region", "value", "detail")

    def __init__(self, columns: Any) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(columns, name))  # the same lists, not copies

    def __len__(self) -> int:
        return len(self.t)  # type: ignore[attr-defined]


class Handoff(NamedTuple):
    """A simulation's raw output: what ``runner.event_frame`` turns into the event log."""

    records: list[Any]
    shoppers: ShopperLists | None

    @property
    def rows(self) -> int:
        return len(self.records) + (len(self.shoppers) if self.shoppers is not None else 0)

    def frame(self) -> pd.DataFrame:
        from harness.runner import event_frame

        return event_frame(self.records, self.shoppers)

    def records_suffice(self) -> bool:
        """Whether the delivery records' frame alone (``records_frame``) draws the
        ``EARLY_PLOTS`` as the whole log does: there are shopper rows to leave out, and
        every one's endpoint has an inventory record and its channel is in the records,
        so the endpoint inventory and the channel categories are the whole log's."""
        if self.shoppers is None or not len(self.shoppers):
            return False  # nothing to leave out: the whole log is as quick to build
        listed = {r.endpoint for r in self.records if r.kind == "endpoint"}
        channels = {r.channel for r in self.records}
        shoppers = self.shoppers
        return set(shoppers.endpoint) <= listed and set(shoppers.channel) <= channels  # type: ignore[attr-defined]

    def records_frame(self) -> pd.DataFrame:
        """The event log of the delivery records alone."""
        from harness.runner import event_frame

        return event_frame(self.records, None)


def summary_files(frame: pd.DataFrame, out: Path, summary_args: Mapping[str, Any]) -> dict:
    """The run's summary (``metrics.summarise(frame, **summary_args)``) after writing
    summary.json, events.parquet and junit.xml into ``out``; returns the summary."""
    from harness.metrics import summarise
    from harness.report.write import write_files

    summary = summarise(frame, **summary_args)
    write_files(Path(out), summary, frame)
    return summary


def write_page(
    out: Path,
    summary: dict[str, Any],
    rendered: Mapping[str, Path | None],
    title: str,
    description: str,
    extra_tables: Sequence[tuple[str, pd.DataFrame]],
    stages: Stages,
    *,
    names: Sequence[str] = PLOT_NAMES,
    render: Callable[..., str] | None = None,
) -> dict[str, Path]:
    """report.html with the plots ``rendered`` (name -> PNG; None: nothing to show, and a
    stale PNG of that name is removed), shown in the order of ``names``; ``render`` is
    ``html.render_html`` unless given. Returns the PNGs and the page by file name."""
    if render is None:
        from harness.report.html import render_html as render

    paths: dict[str, Path] = {}
    images: dict[str, Path] = {}
    for name in names:  # in display order, whatever order they finished in
        png = out / f"{name}.png"
        written = rendered[name]
        if written is None:
            png.unlink(missing_ok=True)
            continue
        images[name] = paths[png.name] = written
    with stages.stage("writing report.html"):
        page = render(
            summary, images, title=title, description=description, extra_tables=extra_tables
        )
        paths["report.html"] = write_text(out / "report.html", page)
    return paths
