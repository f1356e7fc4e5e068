"""Progress per stage (harness.progress), and what the report's figures and the sweep
report say: dead letters counted in the heatmap, retry-free channels out of attempts.png,
failed SLOs named and no empty plot in a sweep. Logs and tables are built by hand."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from harness.domain.eventlog import Record
from harness.progress import PIPE_EVERY, Stages
from harness.report import storm_plot
from harness.report.plots import plot_heatmap
from harness.report.sweep_report import render_html, write_sweep
from harness.sweep import failed_slos


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def piped(**kw: object) -> tuple[Stages, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=False, width=200)
    return Stages(console, clock=clock, **kw), out, clock  # type: ignore[arg-type]


def test_a_pipe_gets_one_timed_line_per_stage() -> None:
    stages, out, clock = piped()
    with stages:
        with stages.stage("simulating x", 100.0) as tick:
            tick(50.0)
            clock.now = 2.5
            tick(100.0)
        with stages.stage("plotting"):
            clock.now = 4.0
    assert out.getvalue().splitlines() == ["simulating x (100/100): 2.5 s", "plotting: 1.5 s"]


def test_a_long_stage_in_a_pipe_shows_signs_of_life_at_most_every_few_seconds() -> None:
    stages, out, clock = piped()
    with stages, stages.stage("runs", 10.0) as tick:
        for done in range(1, 11):
            clock.now += PIPE_EVERY / 2  # a run every half interval
            tick(float(done))
    lines = out.getvalue().splitlines()
    # one line per interval (every other run), none at 100 %, then the stage's line
    assert lines[-1] == "runs (10/10): 50.0 s"
    assert [re.match(r"runs: (\d+)/10", x).group(1) for x in lines[:-1]] == ["2", "4", "6", "8"]


def test_a_failed_stage_says_so_and_quiet_says_nothing() -> None:
    stages, out, clock = piped()
    with pytest.raises(RuntimeError), stages, stages.stage("writing"):
        clock.now = 1.0
        raise RuntimeError("disk full")
    assert out.getvalue() == "writing: failed after 1.0 s\n"
    quiet, out, _ = piped(quiet=True)
    with quiet, quiet.stage("simulating", 1.0) as tick:
        tick(1.0)
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_per_stage() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with Stages(console) as stages:
        with stages.stage("simulating x", 4.0, fmt=lambda d, t: f"t={d:g} of {t:g}") as tick:
            tick(4.0)
        with stages.stage("plotting"):
            pass
    text = out.getvalue()
    assert "simulating x" in text and "t=4 of 4" in text and "plotting" in text
    assert stages.lines == []  # no pipe lines in a terminal


def test_run_writes_every_stage_to_a_pipe(tmp_path: Path) -> None:
    from harness.runner import run_scenario
    from harness.scenario import load_scenario

    tiny = Path(__file__).resolve().parents[1] / "runtime" / "tiny.yaml"
    stages, out, _ = piped()
    with stages:
        run_scenario(load_scenario(str(tiny)), out=tmp_path / "run", stages=stages)
    names = [line.split(":")[0].split(" (")[0] for line in out.getvalue().splitlines()]
    assert names == [
        "simulating tiny",
        "computing figures",
        "writing summary.json, events.parquet, junit.xml",
        "plotting",
        "writing report.html",
    ]


# --- figures ------------------------------------------------------------------------------


def estate_log() -> list[Record]:
    """Three east stores published at 10: a1 applied at once; a2 dead-lettered at 50 and
    applied after a replay at 300; a3 dead-lettered and never applied."""
    log = [
        Record(0.0, "endpoint", endpoint=s, channel="pos", region="east", value=5.0)
        for s in ("a1", "a2", "a3")
    ]
    log.append(Record(10.0, "publish", promo="P", version=1))
    for s in ("a1", "a2", "a3"):
        log.append(
            Record(
                10.0,
                "target",
                promo="P",
                version=1,
                endpoint=s,
                channel="pos",
                region="east",
                outcome="apply",
            )
        )
        log.append(
            Record(
                10.0,
                "send",
                promo="P",
                version=1,
                endpoint=s,
                channel="pos",
                region="east",
                attempt=1,
                outcome="apply",
            )
        )
    log.append(Record(11.0, "applied", promo="P", version=1, endpoint="a1", channel="pos"))
    for s in ("a2", "a3"):
        log.append(
            Record(
                20.0,
                "send",
                promo="P",
                version=1,
                endpoint=s,
                channel="pos",
                region="east",
                attempt=2,
                outcome="apply",
            )
        )
        log.append(
            Record(
                50.0,
                "dlq",
                promo="P",
                version=1,
                endpoint=s,
                channel="pos",
                region="east",
                attempt=2,
            )
        )
    log.append(Record(300.0, "applied", promo="P", version=1, endpoint="a2", channel="pos"))
    return log


def test_the_heatmap_counts_every_dead_lettered_store(tmp_path: Path, monkeypatch) -> None:
    seen: list[str] = []
    real = storm_plot.save  # the heatmap saves through the same helper module

    import harness.report.plots as plots_mod

    def keep(fig, out):  # type: ignore[no-untyped-def]
        from matplotlib.text import Text

        fig.canvas.draw()  # tick labels exist once drawn
        seen.extend(t.get_text() for t in fig.findobj(Text))
        return real(fig, out)

    monkeypatch.setattr(plots_mod, "save", keep)
    assert plot_heatmap(estate_log(), tmp_path / "h.png") is not None
    # two stores were dead-lettered (one applied after the replay); "never" counts stores
    # never applied that no dead letter explains: none here
    stats = [t for t in seen if "DLQ" in t]
    assert stats and all(t == "T95 not reached · 2 DLQ (1 replayed) · 0 never" for t in stats)


def test_attempts_png_names_retry_free_channels_instead_of_empty_rows() -> None:
    rows = [
        {
            "channel": "erp",
            "endpoint": "",
            "retries": pd.Series([0.0]).to_numpy(),
            "first": pd.Series([2.0]).to_numpy(),
        },
        {
            "channel": "pos",
            "endpoint": "",
            "retries": pd.Series([1.0]).to_numpy(),
            "first": pd.Series([600.0]).to_numpy(),
        },
        {
            "channel": "pos",
            "endpoint": "S1",
            "retries": pd.Series([1.0]).to_numpy(),
            "first": pd.Series([1.0]).to_numpy(),
        },
    ]
    kept, quiet = storm_plot._busy_rows(rows)
    assert [(r["channel"], r["endpoint"]) for r in kept] == [("pos", ""), ("pos", "S1")]
    assert quiet == ["erp 2 attempts"]
    # nothing retried at all: every channel keeps its row
    calm = [dict(r, retries=r["retries"] * 0) for r in rows[:2]]
    assert storm_plot._busy_rows(calm) == (calm, [])


# --- sweep report -------------------------------------------------------------------------


def sweep_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame(
        {
            "cell": [0, 0, 1, 1],
            "k": ["a", "a", "b", "b"],
            "seed": [1, 2, 1, 2],
            "passed": [True, False, False, False],
            "leakage_value": [None, None, None, None],
            "retry_storm.amplification": [1.0, 1.2, 2.0, 2.2],
            "failed_slos": ["", "leakage", "leakage|storm", "storm"],
        }
    )
    cells = []
    for cell, group in runs.groupby("cell"):
        cells.append(
            {
                "cell": cell,
                "k": group["k"].iloc[0],
                "runs": 2,
                "passed_runs": int(group["passed"].sum()),
                "failed_slos": failed_slos(group),
                "leakage_value.mean": None,
                "leakage_value.sd": None,
                "leakage_value.min": None,
                "leakage_value.max": None,
                "leakage_value.n": 0,
                "retry_storm.amplification.mean": group["retry_storm.amplification"].mean(),
                "retry_storm.amplification.sd": 0.1,
                "retry_storm.amplification.min": 1.0,
                "retry_storm.amplification.max": 2.2,
                "retry_storm.amplification.n": 2,
            }
        )
    return runs, pd.DataFrame(cells)


def test_failed_slos_are_counted_per_cell() -> None:
    _runs, cells = sweep_tables()
    assert list(cells["failed_slos"]) == ["leakage (1/2)", "leakage (1/2); storm (2/2)"]


def test_the_sweep_report_names_failed_slos_and_draws_no_empty_plot(tmp_path: Path) -> None:
    runs, cells = sweep_tables()
    figures = ["leakage_value", "retry_storm.amplification", "passed"]
    files = write_sweep(
        tmp_path, runs, cells, grid=[("k", ["a", "b"])], figures=figures, seeds=[1, 2], title="t"
    )
    assert "leakage_value" not in files  # no run produced it: no empty axes
    assert "retry_storm.amplification" in files
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<b>leakage</b> failed in 2 runs" in page and "<b>storm</b> failed in 2 runs" in page
    assert "Not plotted: <code>leakage_value</code>" in page
    again = render_html(
        title="t",
        description="",
        grid=[("k", ["a", "b"])],
        seeds=[1, 2],
        cells=cells,
        figures=figures,
        pngs={},
    )
    assert "leakage (1/2); storm (2/2)" in again
