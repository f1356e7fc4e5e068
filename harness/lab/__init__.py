"""Lab experiments: published results re-run against promoharness's own policies.

Each experiment lives in its own module (``backoff``: Brooker's contention experiment with
our ``Backoff``; ``metastable``: Huang et al.'s retry metastability experiment with our
endpoint model and delivery policies). This package also holds ``app``, the
``promoharness lab ...`` Typer group; the main CLI mounts it with
``app.add_typer(lab_app, name="lab")``. The experiment modules are imported inside the
commands, so mounting the group costs nothing at start-up.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Lab experiments: re-run published results with promoharness's own policies.",
    no_args_is_help=True,
)


@app.callback()
def _lab() -> None:
    """Lab experiments: re-run published results with promoharness's own policies."""
    # A callback keeps ``lab`` a group even while it holds a single command, so the command
    # line reads ``promoharness lab backoff`` rather than collapsing to ``promoharness lab``.


def _available_cpus() -> int:
    # The affinity mask, not cpu_count(): a container or taskset may allow fewer cores.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@app.command("backoff")
def backoff_command(
    n_min: Annotated[int, typer.Option("--n-min", min=1, help="Fewest clients.")] = 10,
    n_max: Annotated[int, typer.Option("--n-max", min=1, help="Most clients.")] = 190,
    n_step: Annotated[int, typer.Option("--n-step", min=1, help="Step in clients.")] = 10,
    kinds: Annotated[
        str, typer.Option(help="Comma-separated backoff kinds to compare.")
    ] = "exponential,full_jitter,equal_jitter,decorrelated_jitter",
    with_none: Annotated[
        bool, typer.Option("--with-none", help="Also run 'none' (retry at once).")
    ] = False,
    runs: Annotated[int, typer.Option(min=1, help="Runs per (strategy, N) cell.")] = 100,
    seed: Annotated[int, typer.Option(help="Master seed; each run's seed derives from it.")] = 0,
    base: Annotated[float, typer.Option(help="Backoff base, seconds.")] = 0.005,
    cap: Annotated[float, typer.Option(help="Backoff cap, seconds.")] = 2.0,
    jobs: Annotated[
        int, typer.Option(min=0, help="Local Dask worker processes; 0 = every available CPU.")
    ] = 0,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run on an existing Dask cluster: its scheduler, tcp://HOST:8786."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder. Default: reports/lab-backoff-<UTC timestamp>."),
    ] = None,
) -> None:
    """Brooker's "Exponential Backoff And Jitter" contention experiment, with our Backoff.

    Writes lab.csv, lab_calls.png, lab_completion.png and lab.md.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from harness.distributed import CellsFailed, check_scheduler
    from harness.inputs import InputError
    from harness.lab.backoff import run_lab, write_lab
    from harness.orchestrator.delivery import Backoff

    scheduler = check_scheduler(scheduler)
    if n_max < n_min:
        raise InputError(f"must be >= --n-min ({n_min}), got {n_max}", field="--n-max")
    # The option at fault, before the kinds are tried with it.
    if not (math.isfinite(base) and base > 0):
        raise InputError(f"must be a finite number > 0, got {base}", field="--base")
    if not (math.isfinite(cap) and cap >= base):
        raise InputError(f"must be a finite number >= --base ({base}), got {cap}", field="--cap")
    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    if with_none and "none" not in chosen:
        chosen.append("none")
    if not chosen:
        raise InputError("name at least one backoff kind", field="--kinds")
    for kind in chosen:
        try:
            Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"{kind}: {exc}", field="--kinds") from None
    clients = list(range(n_min, n_max + 1, n_step))
    workers = jobs or _available_cpus()
    folder = out or Path("reports") / (
        "lab-backoff-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    )

    console = Console()
    started = dt.datetime.now(dt.UTC)
    with Progress(
        TextColumn("backoff lab"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=len(chosen) * len(clients) * runs)
        try:
            rows = run_lab(
                clients,
                chosen,
                runs=runs,
                seed=seed,
                progress=lambda done, _total: bar.update(task, completed=done),
                jobs=workers,
                base=base,
                cap=cap,
                scheduler=scheduler,
            )
        except CellsFailed as exc:  # named, and no half table written
            console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(3) from None
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    paths = write_lab(rows, folder)

    table = Table(title=f"calls (mean) / completion (ms, mean) — {runs} runs per cell")
    table.add_column("N", justify="right")
    for kind in chosen:
        table.add_column(kind, justify="right")
    cell = {(row["kind"], row["clients"]): row for row in rows}
    for n in clients:
        table.add_row(
            str(n),
            *(
                f"{cell[kind, n]['calls_mean']:.0f} / {cell[kind, n]['completion_mean'] * 1000:.0f}"
                for kind in chosen
            ),
        )
    console.print(table)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {workers} process(es)"
    console.print(f"{len(rows)} cells x {runs} runs in {elapsed:.1f} s {where}")
    for path in paths:
        console.print(f"wrote {path}")


@app.command("metastable")
def metastable_command(
    capacity: Annotated[
        float | None,
        typer.Option(min=1.0, help="Primary's requests/s at 2 cores; default: calibrate it."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A coarser phase diagram (about a third of the runs).")
    ] = False,
    scale: Annotated[
        float,
        typer.Option(min=0.0001, max=1.0, help="Simulate rates at this fraction of the real."),
    ] = 0.005,
    service: Annotated[
        str, typer.Option(help="Service-time distribution: fixed or exponential.")
    ] = "fixed",
    cuts: Annotated[
        str | None, typer.Option(help="Comma-separated X (cores during the trigger, of 2).")
    ] = None,
    durations: Annotated[
        str | None, typer.Option(help="Comma-separated trigger lengths D, seconds.")
    ] = None,
    intervals: Annotated[
        str | None, typer.Option(help="Comma-separated request intervals, microseconds.")
    ] = None,
    policies: Annotated[
        str | None, typer.Option(help="Comma-separated client policies to compare.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for service times and jitter.")] = 0,
    jobs: Annotated[
        int, typer.Option(min=0, help="Worker processes; 0 = every available CPU.")
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder. Default: reports/lab-metastable-<UTC timestamp>."),
    ] = None,
) -> None:
    """Huang et al.'s retry metastability experiment (OSDI 2022), with our endpoint and policies.

    Calibrates the primary's capacity on the two published calibration runs, predicts the
    others, draws the phase diagram over the cut (X, D) and the request interval, and
    compares client policies on the metastable case. Writes metastable.csv, metastable.md
    and four PNGs.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.inputs import InputError
    from harness.lab.metastable import POLICIES, Experiment
    from harness.lab.metastable_report import write_lab
    from harness.lab.metastable_study import run_study

    if service not in ("fixed", "exponential"):
        raise InputError(f"must be fixed or exponential, got {service!r}", field="--service")
    base = Experiment(capacity=capacity or 1.0, scale=scale, service=service, seed=seed)  # type: ignore[arg-type]
    grid: dict[str, object] = {}
    if quick:
        grid = {
            "cuts": (0.30, 0.40, 0.45, 0.50, 0.60),
            "durations": (4.0, 8.0, 9.0, 10.0, 15.0, 20.0),
            "intervals": tuple(us * 1e-6 for us in (60, 75, 80, 100, 120)),
        }
    for option, key, text, unit, top in (
        ("--cuts", "cuts", cuts, 1.0, base.cores),
        ("--durations", "durations", durations, 1.0, 3600.0),
        ("--intervals", "intervals", intervals, 1e-6, 1e6),
    ):
        if text is not None:
            grid[key] = tuple(v * unit for v in _numbers(text, option, top))
    if policies is not None:
        chosen = [p.strip() for p in policies.split(",") if p.strip()]
        unknown = [p for p in chosen if p not in POLICIES]
        if unknown or not chosen:
            raise InputError(
                f"unknown {unknown or 'empty list'}; known: {', '.join(POLICIES)}",
                field="--policies",
            )
        grid["policies"] = tuple(chosen)
    workers = jobs or _available_cpus()
    folder = out or Path("reports") / (
        "lab-metastable-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    console = Console()
    started = dt.datetime.now(dt.UTC)
    with Progress(
        TextColumn("metastable lab: {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("calibrating", total=1)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        study = run_study(base, capacity=capacity, jobs=workers, progress=progress, **grid)  # type: ignore[arg-type]
        bar.update(task, description="writing plots", completed=0, total=1)
        paths = write_lab(study, folder)
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    text = paths[1].read_text(encoding="utf-8")
    # The markdown is the printed summary, so screen and file never disagree.
    console.print(text[text.find("## ") :], markup=False, highlight=False, soft_wrap=True)
    console.print(f"{elapsed:.1f} s with {workers} process(es)")
    for path in paths:
        console.print(f"wrote {path}")


def _numbers(text: str, option: str, top: float) -> list[float]:
    """Comma-separated numbers in (0, top], or an InputError naming ``option``."""
    from harness.inputs import InputError

    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise InputError(f"{part!r} is not a number", field=option) from None
        if not 0 < value <= top:
            raise InputError(f"{part} is not in (0, {top:g}]", field=option)
        out.append(value)
    if not out:
        raise InputError("give at least one number", field=option)
    return out
