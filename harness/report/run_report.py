"""A virtual-time run's report folder, from its simulation's output (``runner.run_scenario``).

Three ways, by where the event log is built: ``write_run`` from a frame built in this
process (``write_report``, plots in a started pool if given); ``figures_here`` for a log
too large to hand off (over ``runner.HANDOFF_ROWS`` rows: the frame and summary built
here, streamed to the pool for the plots); ``handed_off`` for the rest with a parallel
pool, whose workers build the log and write the summary files from the raw output
(``handoff``) while this process, which never imports pandas, waits and writes the page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.progress import Stages

if TYPE_CHECKING:
    import pandas as pd

    from harness.report.pool import PlotPool
    from harness.runner import RunResult
    from harness.runtime.world import World
    from harness.scenario import Scenario

__all__ = ["figures_here", "handed_off", "title", "write_run"]


def figures_here(
    scenario: Scenario, world: World, handoff: Any, out_dir: Path, pool: PlotPool
) -> RunResult:
    """``simulate``'s figures for a log too large to hand off: the frame built here."""
    from harness.metrics import summarise
    from harness.report.handoff import PLOT_NAMES
    from harness.runner import RunResult, event_frame, summary_args

    events = event_frame(handoff.records, handoff.shoppers, consume=True)
    del handoff
    out_dir.mkdir(parents=True, exist_ok=True)
    pool.submit(events, out_dir, list(PLOT_NAMES))
    return RunResult(summarise(events, **summary_args(scenario, world)), events, world)


def write_run(
    scenario: Scenario,
    result: RunResult,
    out_dir: Path,
    stages: Stages | None,
    pool: PlotPool | None,
) -> RunResult:
    """``result``'s report folder written from its event log (``write_report``)."""
    from harness.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    assert result.events is not None
    result.files = write_report(
        out_dir,
        result.summary,
        result.events,
        title=title(scenario, result.world),
        description=scenario.description,
        stages=stages,
        pool=pool,
    )
    result.out_dir = out_dir
    return result


def handed_off(
    scenario: Scenario,
    world: World,
    handoff: Any,
    out_dir: Path,
    stages: Stages,
    pool: PlotPool,
) -> RunResult:
    """The report written by the pool's workers from the raw ``handoff``; this process
    waits for the summary and the plots, then writes report.html."""
    from harness.report.handoff import FILES, PLOT_NAMES, write_page
    from harness.runner import RunResult, summary_args

    out_dir.mkdir(parents=True, exist_ok=True)
    pool.submit(handoff, out_dir, list(PLOT_NAMES), files=summary_args(scenario, world))

    def plot_functions() -> Any:
        from harness.report.plots import PLOTS

        return PLOTS

    def frame() -> pd.DataFrame:  # only if a worker failed: then built here
        return handoff.frame()

    rendered: dict[str, Path | None] = {}
    summary: dict[str, Any] | None = None
    with stages.stage("computing figures, writing summary.json, events.parquet, junit.xml"):
        done = pool.results(frame, _LazyPlots(plot_functions))
        for name, value in done:
            if name == FILES:
                summary = value
                break
            rendered[name] = value
    assert summary is not None
    files = {name: out_dir / name for name in ("summary.json", "events.parquet", "junit.xml")}
    with stages.stage("plotting", len(PLOT_NAMES), fmt=_plotted) as tick:
        tick(len(rendered))
        for name, value in done:
            rendered[name] = value
            tick(len(rendered))
    heading = title(scenario, world)
    files.update(write_page(out_dir, summary, rendered, heading, scenario.description, (), stages))
    return RunResult(summary, None, world, out_dir=out_dir, files=files)


class _LazyPlots(dict):  # type: ignore[type-arg]
    """``plots.PLOTS``, imported (with pandas) only when a plot is rendered here."""

    def __init__(self, load: Callable[[], Any]) -> None:
        super().__init__()
        self._load = load

    def __missing__(self, name: str) -> Any:
        return self._load()[name]


def title(scenario: Scenario, world: World) -> str:
    """The report page's title for a virtual-time run."""
    return f"{scenario.name} — virtual-time run (seed {world.seed})"


def _plotted(done: float, total: float) -> str:
    return f"{done:.0f}/{total:.0f} plots"
