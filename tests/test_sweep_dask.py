"""Sweeps on a Dask cluster of other processes (harness.distributed, ``sweep --scheduler``).

A ``dask scheduler`` and two ``dask worker`` processes (``--nthreads 1``) on 127.0.0.1 stand
in for other machines: the sweep must give byte-identical sweep.csv and summary.csv to the
in-process run of the same grid and seeds; a run whose worker dies under it is retried and
changes nothing; a cell that fails every attempt is named, not lost. The scheduler runs with
``allowed-failures`` 0, as the README tells a cluster operator to, so that a worker death
comes back to promoharness's own retry at once. Timeouts only guard against hangs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cli_driver import assert_one_line_error, run_cli
from test_sweep import EXTRA_METRIC, GRID, SEED, write_tiny
from typer.testing import CliRunner

from harness import sweep as sw
from harness.cli import app
from harness.distributed import CellFailure, map_cells

START_SECONDS = 180.0  # for the processes to start and the workers to join
HANG_SECONDS = 600.0  # a sweep of 8 tiny runs: only a hang takes this long


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bounded(fn: Callable[[], Any], seconds: float = HANG_SECONDS) -> Any:
    """``fn()`` in a daemon thread; a hang fails the test instead of stalling the suite."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"no answer from the Dask cluster within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tcp://127.0.0.1:PORT of a scheduler with two single-threaded workers."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    # Dask pickles the cell functions below by reference (test_sweep_dask.dies_once): the
    # workers import them from this folder, as a real cluster imports harness.
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
        "PYTHONPATH": path,
        # Dask's self-observation, which nothing here reads: the workers' statistical
        # profiler (a sample every 10 ms), the 20 ms loop-blocked tick, the 500 ms system
        # monitor. Idle, the five processes spent ~5 CPU-s a minute on them; ~1 without.
        "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
        "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
        "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",
        "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED": "False",
    }
    bin_dir = Path(sys.executable).parent
    dask = str(bin_dir / "dask") if (bin_dir / "dask").exists() else "dask"
    commands = [
        [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
        *(
            [
                *(dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"),
                *("--memory-limit", "0", "--name", f"stand-in-{i}"),
                *("--local-directory", str(folder / f"w{i}"), "--death-timeout", "60"),
            ]
            for i in (1, 2)
        ),
    ]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            log = (folder / f"{len(procs)}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [*command, "--no-dashboard"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: the nanny's worker goes with it
                )
            )
        deadline = time.monotonic() + START_SECONDS
        client = None
        while client is None:
            try:
                client = Client(address, timeout="5s")
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with client:
            client.wait_for_workers(2, timeout=START_SECONDS)
        yield address
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from harness.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=HANG_SECONDS)


def test_sweep_through_scheduler_matches_the_local_run(cluster: str, tmp_path: Path) -> None:
    scenario = write_tiny(tmp_path)
    grid = [*GRID, "--repeats", "2", "--metric", EXTRA_METRIC, "-q"]
    # The reference in this process (the real entry point); the cluster run as a user's.
    local = run_cli("sweep", str(scenario), *grid, "--jobs", "1", "--out", str(tmp_path / "local"))
    assert local.code == 0, local.stderr
    out = tmp_path / "remote"
    remote = cli("sweep", str(scenario), *grid, "--scheduler", cluster, "--out", str(out))
    assert remote.returncode == 0, remote.stderr
    for name in ("sweep.csv", "summary.csv"):
        assert (out / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert len(pd.read_csv(out / "sweep.csv")) == 8
    assert f"on the Dask cluster at {cluster}" in (out / "report.html").read_text("utf-8")


def tiny_jobs(folder: Path) -> tuple[list[sw.RunSpec], list[sw.Job]]:
    scenario = write_tiny(folder)
    varies = [sw.parse_vary(GRID[1]), sw.parse_vary(GRID[3])]
    path, _ = sw.validate_grid(scenario, [], varies)
    specs = sw.expand_grid(varies, 2, SEED)
    return specs, sw.grid_jobs(path, [], specs, sw.figures_of([EXTRA_METRIC]))


def dies_once(job: sw.Job, *, victim: int, folder: str) -> dict[str, Any]:
    """The sweep's own cell function, except that run ``victim`` kills its worker process
    the first time it runs (a marker file remembers, across processes)."""
    spec = job[1]
    if spec.cell * 100 + spec.seed == victim:
        with Path(folder, "attempts").open("a") as log:
            log.write(f"{os.getpid()}\n")
        marker = Path(folder, "killed")
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-run, as on OOM or a lost machine
    return sw.run_job(job)


def test_a_worker_dying_mid_sweep_has_its_run_retried(cluster: str, tmp_path: Path) -> None:
    specs, jobs = tiny_jobs(tmp_path)
    expected = [sw.run_job(job) for job in jobs]  # in this process, no Dask
    victim = specs[5].cell * 100 + specs[5].seed
    fn = partial(dies_once, victim=victim, folder=str(tmp_path))
    done: list[int] = []
    mapped = bounded(
        lambda: map_cells(fn, jobs, scheduler=cluster, on_done=lambda i, _r: done.append(i))
    )
    assert mapped.failures == []
    assert mapped.results == expected  # every figure, exactly
    attempts = (tmp_path / "attempts").read_text().split()
    killed = (tmp_path / "killed").read_text()
    assert attempts[0] == killed and len(attempts) == 2  # died once, then ran to the end
    assert attempts[1] != killed  # in another worker process
    assert sorted(done) == list(range(len(jobs)))  # progress saw every run once


def always_fails(job: sw.Job, *, victim: int, folder: str) -> dict[str, Any]:
    spec = job[1]
    if spec.cell == victim:
        with Path(folder, f"attempts-{spec.seed}").open("a") as log:
            log.write("x\n")
        raise RuntimeError(f"cell {spec.cell} cannot be computed")
    return sw.run_job(job)


def test_a_cell_that_always_fails_is_named_not_lost(cluster: str, tmp_path: Path) -> None:
    specs, jobs = tiny_jobs(tmp_path)
    fn = partial(always_fails, victim=2, folder=str(tmp_path))
    mapped = bounded(lambda: map_cells(fn, jobs, scheduler=cluster))
    lost = [i for i, spec in enumerate(specs) if spec.cell == 2]
    assert mapped.failures == [
        CellFailure(i, "RuntimeError: cell 2 cannot be computed", 2) for i in lost
    ]
    for i in lost:
        assert mapped.results[i] is None
        assert (tmp_path / f"attempts-{specs[i].seed}").read_text() == "x\n" * 2  # tried twice
    kept = [i for i in range(len(jobs)) if i not in lost]
    assert [mapped.results[i] for i in kept] == [sw.run_job(jobs[i]) for i in kept]


def always_dies(job: sw.Job, *, folder: str) -> dict[str, Any]:
    with Path(folder, "deaths").open("a") as log:
        log.write(f"{os.getpid()}\n")
    os._exit(1)


def test_a_run_that_kills_every_worker_it_lands_on_is_reported(
    cluster: str, tmp_path: Path
) -> None:
    _specs, jobs = tiny_jobs(tmp_path)
    fn = partial(always_dies, folder=str(tmp_path))
    mapped = bounded(lambda: map_cells(fn, jobs[:1], scheduler=cluster))
    assert mapped.results == [None]
    [failure] = mapped.failures
    assert failure.index == 0 and failure.attempts == 2
    assert failure.error.startswith("KilledWorker")
    assert len((tmp_path / "deaths").read_text().split()) == 2  # two deaths, then no more


def test_failed_runs_are_rows_in_the_report_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process (--jobs 1), so the sweep's own run function can be replaced.
    real = sw.run_one

    def broken(scenario: Any, spec: sw.RunSpec, figures: tuple[str, ...]) -> dict[str, Any]:
        if spec.cell == 1:
            raise RuntimeError("the estate fell over")
        return real(scenario, spec, figures)

    monkeypatch.setattr(sw, "run_one", broken)
    scenario = write_tiny(tmp_path)
    out = tmp_path / "out"
    args = ["sweep", str(scenario), *GRID, "--repeats", "2", "--jobs", "1", "-q"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 3
    runs = pd.read_csv(out / "sweep.csv")
    failed = runs[runs["error"].notna()]
    assert list(failed["cell"]) == [1, 1] and list(failed["seed"]) == [SEED, SEED + 1]
    assert all(
        e == "failed 2 times, last: RuntimeError: the estate fell over" for e in failed.error
    )
    assert failed["propagation.overall.t50"].isna().all()
    assert runs[runs["error"].isna()]["propagation.overall.t50"].notna().all()
    cells = pd.read_csv(out / "summary.csv").set_index("cell")
    assert list(cells["errored_runs"]) == [0, 2, 0, 0]
    assert cells.loc[1, "passed_runs"] == 0 and cells.loc[0, "passed_runs"] == 2
    page = (out / "report.html").read_text("utf-8")
    assert page.count("RuntimeError: the estate fell over") == 2
    assert "sweep cell 1 (faults.0.rate=0.0, policies.pos.backoff.kind=full_jitter)" in page


def test_backoff_lab_through_scheduler_matches_one_process(cluster: str) -> None:
    from harness.lab.backoff import run_lab

    small = {"clients": [5, 20], "kinds": ("exponential", "full_jitter"), "runs": 5, "seed": 11}
    seen: list[int] = []
    remote = bounded(
        lambda: run_lab(**small, scheduler=cluster, progress=lambda d, _t: seen.append(d))
    )
    assert remote == run_lab(**small, jobs=1)
    assert seen == [5, 10, 15, 20]  # one tick per finished cell, in runs


def test_a_malformed_scheduler_address_exits_2_naming_the_option(tmp_path: Path) -> None:
    scenario = write_tiny(tmp_path)
    # In this process (the real entry point, its exit code and stderr): no cluster needed.
    for bad in ("127.0.0.1", "tcp://127.0.0.1:http", "udp://127.0.0.1:8786"):
        args = [str(scenario), *GRID, "--scheduler", bad, "--out", str(tmp_path / "x")]
        assert_one_line_error(run_cli("sweep", *args), "--scheduler")
        assert not (tmp_path / "x").exists()


def test_metastable_lab_through_scheduler_matches_one_process(cluster: str) -> None:
    from harness.lab.metastable import PUBLISHED, Experiment
    from harness.lab.metastable_study import calibrate, run_study

    # A coarse bracket: five bisection runs per calibration point.
    coarse = {"lo": 30_000.0, "hi": 40_000.0, "tol": 2_500.0}
    base = Experiment(capacity=1.0)
    seen: list[tuple[int, int]] = []
    remote = bounded(lambda: calibrate(base, **coarse, scheduler=cluster, progress=_note(seen)))
    assert remote == calibrate(base, **coarse, jobs=1)
    assert seen == [(1, 2), (2, 2)]
    grid = {"cuts": (0.4, 0.6), "durations": (10.0,), "intervals": (100e-6,)}
    small = {"capacity": 35_500.0, "policies": (PUBLISHED, "retry_budget"), **grid}
    phases: list[tuple[str, int, int]] = []
    study = bounded(
        lambda: run_study(base, **small, scheduler=cluster, progress=lambda *p: phases.append(p))
    )
    assert study == run_study(base, **small, jobs=1)
    cells = 4 + 2 + 1 + 2 * 2  # published, phase, interval, policies with and without a cut
    assert phases == [("simulating", n, cells) for n in range(cells + 1)]


def _note(sink: list[tuple[int, int]]) -> Callable[[int, int], None]:
    return lambda done, total: sink.append((done, total))


class _Answers:
    """A client whose workers have this promoharness and whose scheduler has none: the
    answers ``Client.run`` and ``Client.run_on_scheduler`` give on such a cluster."""

    def run(self, fn: Callable[[], str], on_error: str) -> dict[str, str]:
        return {"tcp://10.0.0.2:40000": fn()}

    def run_on_scheduler(self, fn: Callable[[], str]) -> str:
        raise ModuleNotFoundError("No module named 'harness'")

    def close(self) -> None:
        pass


def test_a_scheduler_without_promoharness_is_refused_before_any_cell() -> None:
    from harness.distributed import _Connection
    from harness.inputs import InputError

    connection = _Connection("tcp://10.0.0.1:8786", 1)
    connection.client = _Answers()
    with pytest.raises(InputError) as caught:
        connection._check_workers()
    assert caught.value.field == "--scheduler"
    assert caught.value.reason.endswith(
        "the scheduler has no promoharness (ModuleNotFoundError: No module named 'harness')"
    )
    assert connection.client is None  # closed


def test_lab_command_through_scheduler_writes_the_local_table(cluster: str, tmp_path: Path) -> None:
    grid = ["lab", "backoff", "--n-min", "5", "--n-max", "10", "--n-step", "5", "--runs", "3"]
    local = run_cli(*grid, "--jobs", "1", "--out", str(tmp_path / "local"))  # in this process
    assert local.code == 0, local.stderr
    remote = cli(*grid, "--scheduler", cluster, "--out", str(tmp_path / "remote"))
    assert remote.returncode == 0, remote.stderr
    for name in ("lab.csv", "lab.md"):
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert f"on the Dask cluster at {cluster}" in remote.stdout
