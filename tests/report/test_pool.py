"""Plots rendered in worker processes (harness/report/pool.py) are the plots rendered in
process: the same files, byte for byte; a plot that fails there fails here."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.metrics import to_frame
from harness.report import plots
from harness.report.pool import PlotPool
from harness.runner import run_scenario, simulate
from harness.scenario import load_scenario

TINY = Path(__file__).parent.parent / "runtime" / "tiny.yaml"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".png"}


def _all_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


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
    # The workers built the log and wrote the gated files (a handoff): byte for byte too.
    assert pooled.events is None
    assert _all_files(tmp_path / "alone") == _all_files(tmp_path / "pooled")
    assert pooled.summary == alone.summary


def test_a_plot_failing_in_a_worker_raises_in_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(frame: object, out: Path) -> Path | None:
        raise ValueError("no such figure")

    # Patched before the fork, so the workers run it too; the caller reruns it and raises.
    monkeypatch.setitem(plots.PLOTS, "coverage", broken)
    with PlotPool(workers=2) as pool, pytest.raises(ValueError, match="no such figure"):
        run_scenario(load_scenario(str(TINY)), out=tmp_path / "run", pool=pool)
    # ...after the gated files are written, as in one process (the page is not).
    written = set(_all_files(tmp_path / "run"))
    assert {"summary.json", "events.parquet", "junit.xml"} <= written
    assert "report.html" not in written


def _sleep(frame: object, out: Path) -> Path | None:
    time.sleep(600)  # a plot that is still being drawn when the pool is stopped
    return None


def _busy_pool(monkeypatch: pytest.MonkeyPatch) -> tuple[PlotPool, list[psutil.Process]]:
    """A started pool given a frame whose every plot is still being drawn, and its
    processes: the lead and the workers it forked once the frame came."""
    for name in plots.PLOTS:  # patched before the fork: the workers run them too
        monkeypatch.setitem(plots.PLOTS, name, _sleep)
    pool = PlotPool(workers=2).start()
    pool.submit(to_frame([]), Path("unused"), list(plots.PLOTS))
    return pool, _pool_processes(pool)


def _pool_processes(pool: PlotPool) -> list[psutil.Process]:
    """The lead and, once it has warmed, read the frame and forked them, its workers."""
    (lead,) = pool._procs
    deadline = time.monotonic() + 120  # a hang guard only: the lead forks after warming
    me = psutil.Process(lead.pid)
    while time.monotonic() < deadline and len(me.children()) < pool.workers - 1:
        time.sleep(0.05)
    return [me, *me.children()]


def _all_gone(procs: list[psutil.Process]) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=60)  # a hang guard only
    return not alive


def test_a_pool_never_given_work_closes_at_once() -> None:
    with PlotPool(workers=2) as pool:
        (lead,) = pool._procs
        procs = [psutil.Process(lead.pid)]
    assert pool._procs == []
    assert _all_gone(procs), "the lead outlived its pool"


def test_the_workers_are_forked_with_the_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    pool, procs = _busy_pool(monkeypatch)
    try:
        assert len(procs) == 2  # the lead and the worker it forked, the frame in hand
    finally:
        pool.close(force=True)
    assert _all_gone(procs), "a worker outlived its pool"


def test_a_pool_forced_to_close_leaves_no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in plots.PLOTS:  # patched before the fork: the workers run them too
        monkeypatch.setitem(plots.PLOTS, name, _sleep)
    with pytest.raises(KeyboardInterrupt), PlotPool(workers=2) as pool:
        pool.submit(to_frame([]), Path("unused"), list(plots.PLOTS))
        procs = _pool_processes(pool)
        assert len(procs) == 2
        raise KeyboardInterrupt
    assert _all_gone(procs), "a worker outlived its pool"


def test_the_workers_die_with_a_killed_command() -> None:
    """SIGKILL leaves no atexit: the lead dies with the command, its worker with the lead
    (they wrote into the dead command's folder before), and they stay in its process
    group, so a signal to the group reaches them too."""
    script = (
        "import os, time\n"
        "from pathlib import Path\n"
        "from harness.metrics import to_frame\n"
        "from harness.report import plots\n"
        "from harness.report.pool import PlotPool\n"
        "for name in plots.PLOTS:\n"
        "    plots.PLOTS[name] = lambda frame, out: time.sleep(600)\n"
        "pool = PlotPool(workers=2).start()\n"
        "pool.submit(to_frame([]), Path('unused'), list(plots.PLOTS))\n"
        "print(pool._procs[0].pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    command = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert command.stdout is not None
        lead = psutil.Process(int(command.stdout.readline()))
        deadline = time.monotonic() + 120  # a hang guard only
        while time.monotonic() < deadline and not lead.children():
            time.sleep(0.05)
        procs = [lead, *lead.children()]
        assert len(procs) == 2
        assert {os.getpgid(p.pid) for p in procs} == {os.getpgid(command.pid)}
    finally:
        command.kill()
        command.wait()
    assert _all_gone(procs), "a worker outlived the command"


def test_one_worker_renders_in_process(tmp_path: Path) -> None:
    scenario = load_scenario(str(TINY))
    events = simulate(scenario).events
    with PlotPool(workers=1) as pool:
        assert not pool.parallel
        pool.submit(events, tmp_path, list(plots.PLOTS))
        done = dict(pool.results(events, plots.PLOTS))
    assert list(done) == list(plots.PLOTS)
    assert all(path is None or path.is_file() for path in done.values())


# --- handoff: the workers build the log and write the gated files --------------------------

SMALL_WEEKEND = ["estate.stores=30", "duration=3600"]  # shoppers too, in ~1 s


def test_a_handoff_with_shoppers_writes_the_same_files(tmp_path: Path) -> None:
    scenario = load_scenario("weekend-private-label", SMALL_WEEKEND)
    alone = run_scenario(scenario, out=tmp_path / "alone")
    assert alone.events is not None and (alone.events["kind"] == "sale").any()
    with PlotPool(workers=2) as pool:
        pooled = run_scenario(scenario, out=tmp_path / "pooled", pool=pool)
    assert pooled.events is None  # handed off: this process built no frame
    assert list(pooled.files or {}) == list(alone.files or {})
    assert _all_files(tmp_path / "pooled") == _all_files(tmp_path / "alone")


def test_a_files_task_failing_in_the_workers_is_done_by_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import harness.report.pool as pool_module

    me = os.getpid()
    real = pool_module.summary_files

    def only_here(*args: object, **kwargs: object) -> object:
        if os.getpid() != me:
            raise RuntimeError("worker lost its disk")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    # Patched before the fork: the workers fail the task, the caller does it itself.
    monkeypatch.setattr(pool_module, "summary_files", only_here)
    scenario = load_scenario(str(TINY))
    alone = run_scenario(scenario, out=tmp_path / "alone")
    with PlotPool(workers=2) as pool:
        pooled = run_scenario(scenario, out=tmp_path / "pooled", pool=pool)
    assert pooled.summary == alone.summary
    assert _all_files(tmp_path / "pooled") == _all_files(tmp_path / "alone")


def test_plot_names_are_the_plots() -> None:
    from harness.report.handoff import PLOT_NAMES

    assert list(PLOT_NAMES) == list(plots.PLOTS)


def test_run_never_imports_pandas_in_the_command(tmp_path: Path) -> None:
    """``promoharness run`` leaves pandas (and numpy) to its workers: checked in the
    command's own process as it exits, with its report written."""
    import subprocess
    import sys

    probe = (
        "import atexit, os, sys\n"
        "me = os.getpid()\n"
        "atexit.register(lambda: os.getpid() == me and print('LOADED',"
        " sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'matplotlib') if m in sys.modules),"
        " file=sys.stderr))\n"
        "from harness.cli import main\n"
        "main()\n"
    )
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", probe, "run", str(TINY), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "LOADED []" in done.stderr, done.stderr
    assert {"summary.json", "events.parquet", "junit.xml", "report.html"} <= {
        p.name for p in out.iterdir()
    }


def test_a_log_too_large_to_hand_off_is_built_here_and_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.runner

    scenario = load_scenario(str(TINY))
    alone = run_scenario(scenario, out=tmp_path / "alone")
    monkeypatch.setattr(harness.runner, "HANDOFF_ROWS", 0)  # every log is "too large"
    with PlotPool(workers=2) as pool:
        pooled = run_scenario(scenario, out=tmp_path / "pooled", pool=pool)
    assert pooled.events is not None  # built in this process, as before the handoff
    assert list(pooled.files or {}) == list(alone.files or {})
    assert _all_files(tmp_path / "pooled") == _all_files(tmp_path / "alone")


# The library's scenarios but erp-brownout's long tail and Black Friday's peak, on 30
# stores: every kind of fault, rollback and channel mix, in seconds.
EARLY_CASES = [
    "batch-vs-event",
    "erp-brownout-metastable",
    "erp-quota-retry-storm",
    "inconsistent-channels",
    "regional-outage-rollback",
    "weekend-private-label",
]


@pytest.mark.parametrize("name", EARLY_CASES)
def test_early_plots_from_the_records_alone_are_the_whole_logs(name: str, tmp_path: Path) -> None:
    """What lets a worker draw the EARLY_PLOTS before the whole log exists: from the
    delivery records' frame they are the same PNGs, byte for byte."""
    from harness.metrics.frame import shared_results
    from harness.progress import Stages
    from harness.report.handoff import EARLY_PLOTS, Handoff, ShopperLists
    from harness.runner import _simulate

    _, records, shoppers = _simulate(
        load_scenario(name, ["estate.stores=30"]), None, None, Stages.off()
    )
    handoff = Handoff(records, ShopperLists(shoppers))
    assert handoff.records_suffice()
    whole, alone = handoff.frame(), handoff.records_frame()
    assert len(alone) < len(whole)  # shopper rows were left out
    drawn = 0
    for plot in sorted(EARLY_PLOTS):
        with shared_results():
            a = plots.PLOTS[plot](whole, tmp_path / f"{plot}-whole.png")
        with shared_results():
            b = plots.PLOTS[plot](alone, tmp_path / f"{plot}-records.png")
        assert (a is None) == (b is None), plot
        if a is not None and b is not None:
            assert a.read_bytes() == b.read_bytes(), plot
            drawn += 1
    assert drawn >= 2


def test_records_do_not_suffice_for_a_shopper_at_an_unlisted_endpoint() -> None:
    from types import SimpleNamespace

    from harness.domain.eventlog import Record
    from harness.report.handoff import Handoff, ShopperLists

    records = [Record(0.0, "endpoint", endpoint="S1", channel="pos", value=5.0)]
    sale = {"t": [1.0], "kind": ["sale"], "promo": [""], "version": [0], "channel": ["pos"]}
    sale |= {"region": ["r"], "value": [1.0], "detail": ["b0"]}
    listed = ShopperLists(SimpleNamespace(**sale, endpoint=["S1"]))
    unlisted = ShopperLists(SimpleNamespace(**sale, endpoint=["S2"]))
    assert Handoff(records, listed).records_suffice()
    assert not Handoff(records, unlisted).records_suffice()
    assert not Handoff(records, None).records_suffice()
