"""Whole-process figures for ``promoharness bench``: what a user waits for at the prompt.

``bench sim`` used to time the simulation inside its own process; a user runs
``promoharness run`` and waits for interpreter start, imports, the simulation, the figures
and the report. ``whole_process`` starts that command as a subprocess (best and median of
a few runs, with the child's own peak memory from ``wait4``) beside a bare ``python -c
pass`` measured in the same call, the floor no command can go under. ``stage_profile``
runs one scenario in a fresh interpreter and splits its CPU and wall time by stage
(import, build, simulate, figures, report), so a slow figure names its stage.

Run as ``python -m harness.bench.process SCENARIO [--set k=v ...]`` it prints that split
as JSON (what ``stage_profile`` reads).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["promoharness", "stage_profile", "whole_process"]

STAGES = ("import", "build", "simulate", "figures", "report")


def promoharness(*args: str) -> list[str]:
    """The argv that runs ``promoharness ARGS`` with this interpreter."""
    return [sys.executable, "-c", "from harness.cli import main; main()", *args]


def _once(argv: list[str], timeout: float) -> tuple[float, float, int, float]:
    """(wall s, peak RSS MiB, exit code, CPU s) of one run of ``argv``, its output
    discarded. The CPU seconds (user + system) include the children it waited for (the
    plot workers): on a shared machine they move far less than the wall time."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = began + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:  # a hang: kill it, report the bound
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def whole_process(argv: list[str], repeats: int = 3, timeout: float = 600.0) -> dict[str, Any]:
    """Wall seconds (best and median of ``repeats``), median CPU seconds (its waited
    children included) and peak RSS of ``argv`` as a whole process, beside ``python -c
    pass`` run alternately with it (the machine's floor), and the 1-minute load average
    after (how busy the machine was: above 2 on two cores, the wall times are inflated)."""
    walls, peaks, codes, floors, cpus = [], [], [], [], []
    for _ in range(repeats):
        wall, peak, code, cpu = _once(argv, timeout)
        walls.append(wall)
        peaks.append(peak)
        codes.append(code)
        cpus.append(cpu)
        floors.append(_once([sys.executable, "-c", "pass"], 60)[0])
    return {
        "best_s": min(walls),
        "median_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "load": os.getloadavg()[0],
        "peak_mib": max(peaks),
        "exit_codes": sorted(set(codes)),
        "python_start_s": statistics.median(floors),
        "runs": repeats,
    }


def stage_profile(scenario: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """CPU and wall seconds per stage of one run of ``scenario`` in a fresh interpreter."""
    sets = [x for o in overrides or [] for x in ("--set", o)]
    argv = [sys.executable, "-m", "harness.bench.process", scenario, *sets]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Marks:
    """A ``Stages`` stand-in that splits ``run_scenario`` into the profile's stages: build
    ends where "simulating" starts, simulate where it ends, figures where the first stage
    after the figures ("writing ..." or "plotting") starts. Not ``enabled``, as ``run -q``:
    no progress stepping."""

    enabled = False

    def __init__(self, mark: Any) -> None:
        self._mark = mark
        self._simulated = self._figured = False

    @contextlib.contextmanager
    def stage(self, name: str, total: float | None = None, **_: Any) -> Any:
        simulating = name.startswith("simulating")
        if simulating:
            self._mark("build")
        elif self._simulated and not self._figured and not name.startswith("computing"):
            self._mark("figures")
            self._figured = True
        yield lambda *_a: None
        if simulating:
            self._mark("simulate")
            self._simulated = True


def _profile(scenario: str, overrides: list[str]) -> dict[str, Any]:
    """The stages of ``promoharness run`` in this process, timed one by one: the command's
    own path (``run_scenario`` with a started ``PlotPool``), so when ``run`` hands the
    figures and files to the workers, so does this. ``workers_cpu_s``: the pool's CPU
    seconds (not in any stage's ``cpu_s``, which is this process's)."""
    out: dict[str, Any] = {}
    clock = time.perf_counter
    cpu = time.process_time
    marks = [(clock(), cpu())]

    def mark(stage: str) -> None:
        marks.append((clock(), cpu()))
        (w0, c0), (w1, c1) = marks[-2], marks[-1]
        out[stage] = {"wall_s": w1 - w0, "cpu_s": c1 - c0}

    import harness.cli  # where ``run`` starts
    from harness.report.pool import PlotPool

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as folder:
        # As ``run`` (harness/cli/runs.py): the pool forked before the scenario's modules
        # load, so its lead warms up while they import and the run simulates.
        with PlotPool() as pool:
            import harness.runtime.sim
            import harness.runtime.world  # noqa: F401
            from harness.runner import run_scenario
            from harness.scenario import load_scenario

            mark("import")
            chosen = load_scenario(scenario, overrides)
            stages: Any = _Marks(mark)
            result = run_scenario(chosen, out=Path(folder) / "run", stages=stages, pool=pool)
        mark("report")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["workers_cpu_s"] = (after.ru_utime + after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    out["handed_off"] = result.events is None  # the workers built the log and the files
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    name = args[0] if args else "weekend-private-label"
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set" and i + 1 < len(args)]
    print(json.dumps(_profile(name, sets)))
