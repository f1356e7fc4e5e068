"""What every ``promoharness lab ...`` command does around its own experiment.

A lab command validates its options, then hands ``run_lab_command`` three functions:
``compute`` runs the experiment's cells (on ``harness.distributed``'s Dask workers,
reporting progress by phase), ``write`` writes its files and ``show`` prints its summary.
The rest is the same for every lab: --scheduler and --out checked before any work,
progress on stderr (a bar in a terminal, a line per stage with its wall time in a pipe),
a cell that failed twice named on one line with exit code 3 and nothing written, no half
folder left by a failed write, and the closing lines (how long, where, which files).

Heavy imports (rich, Dask, the experiments) happen inside the functions: the main CLI
imports this module for ``--help``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import typer

__all__ = ["Phases", "Shared", "run_lab_command"]


class Shared(NamedTuple):
    """The options every lab takes (--jobs, --scheduler, --out, --quiet)."""

    jobs: int  # 0 = every available CPU
    scheduler: str | None
    out: Path | None
    quiet: bool


class Phases:
    """``progress(phase, done, total)`` for an experiment, as one stage per phase.

    A new phase name ends the stage before it and opens its own, so a pipe shows one line
    per phase with its wall time (and a line per tenth of a long one); ``units`` names
    each phase's measure ("cells", "runs"). Use as a context manager around the work:
    a failure ends the open stage as failed.
    """

    def __init__(self, stages: Any, units: dict[str, str]) -> None:
        self.stages = stages
        self.units = units
        self.stack = contextlib.ExitStack()
        self.phase: str | None = None
        self.tick: Callable[[float, float | None], None] = lambda _d, _t=None: None

    def __enter__(self) -> Phases:
        self.stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self.stack.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.stack.close()  # the previous phase ends here, successfully
            unit = self.units.get(phase, "")
            stage = self.stages.stage(
                f"{phase} {total} {unit}".strip(), total, fmt=lambda d, t: f"{d:.0f}/{t:.0f}"
            )
            self.tick = self.stack.enter_context(stage)
            self.phase = phase
        self.tick(done, total)


def run_lab_command(
    name: str,
    units: dict[str, str],
    compute: Callable[[Phases, int, str | None], Any],
    write: Callable[[Any, Path], list[Path]],
    show: Callable[[Any, list[Path], Any], str],
    options: Shared,
) -> None:
    """Run one lab: ``compute(progress, workers, scheduler)``, ``write(result, folder)``,
    then ``show(result, paths, console)``, which prints the summary and returns what was
    computed ("76 cells x 100 runs") for the closing line."""
    from harness.cli.common import check_out, console, err, fresh_folder
    from harness.distributed import CellsFailed, available_cpus, check_scheduler
    from harness.progress import Stages

    scheduler = check_scheduler(options.scheduler)
    check_out(options.out)
    workers = options.jobs or available_cpus()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = options.out or Path("reports") / f"lab-{name}-{stamp}"
    started = time.perf_counter()
    with Stages(err, quiet=options.quiet) as stages:
        try:
            with Phases(stages, units) as progress:
                result = compute(progress, workers, scheduler)
        except CellsFailed as exc:  # named, and no half table written
            err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(3) from None
        elapsed = time.perf_counter() - started
        with fresh_folder(folder), stages.stage(f"writing {folder}"):
            paths = write(result, folder)
    what = show(result, paths, console)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {workers} process(es)"
    console.print(f"{what} in {elapsed:.1f} s {where}", highlight=False, markup=False)
    for path in paths:
        console.print(f"wrote {path}", highlight=False, markup=False, soft_wrap=True)
