"""Plots rendered in worker processes (harness/report/pool.py) are the plots rendered in
process: the same files, byte for byte; a plot that fails there fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import plots
from harness.report.pool import PlotPool
from harness.runner import run_scenario, simulate
from harness.scenario import load_scenario

TINY = Path(__file__).parent.parent / "runtime" / "tiny.yaml"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".png"}


def test_pool_writes_the_same_report_as_one_process(tmp_path: Path) -> None:
    scenario = load_scenario(str(TINY))
    alone = run_scenario(scenario, out=tmp_path / "alone")
    with PlotPool(workers=2) as pool:
        assert pool.parallel  # Linux has fork: the workers are real
        pooled = run_scenario(scenario, out=tmp_path / "pooled", pool=pool)
    assert set(alone.files or {}) == set(pooled.files or {})
    assert _files(tmp_path / "alone") == _files(tmp_path / "pooled")
    assert _files(tmp_path / "alone")  # the tiny run has plots to compare
    page = (tmp_path / "pooled" / "report.html").read_text()
    assert page == (tmp_path / "alone" / "report.html").read_text()


def test_a_plot_failing_in_a_worker_raises_in_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(frame: object, out: Path) -> Path | None:
        raise ValueError("no such figure")

    # Patched before the fork, so the workers run it too; the caller reruns it and raises.
    monkeypatch.setitem(plots.PLOTS, "coverage", broken)
    with PlotPool(workers=2) as pool, pytest.raises(ValueError, match="no such figure"):
        run_scenario(load_scenario(str(TINY)), out=tmp_path / "run", pool=pool)


def test_a_pool_never_given_work_closes_at_once() -> None:
    with PlotPool(workers=2) as pool:
        assert len(pool._procs) == 2
    assert pool._procs == []


def test_one_worker_renders_in_process(tmp_path: Path) -> None:
    scenario = load_scenario(str(TINY))
    events = simulate(scenario).events
    with PlotPool(workers=1) as pool:
        assert not pool.parallel
        pool.submit(events, tmp_path, list(plots.PLOTS))
        done = dict(pool.results(events, plots.PLOTS))
    assert list(done) == list(plots.PLOTS)
    assert all(path is None or path.is_file() for path in done.values())
