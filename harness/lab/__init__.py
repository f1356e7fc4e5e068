"""Lab experiments: published results re-run against promoharness's own policies.

Each experiment lives in its own module (``backoff``: Brooker's contention experiment with
our ``Backoff``; ``metastable``: Huang et al.'s retry metastability experiment with our
endpoint model and delivery policies). This package also holds ``app``, the
``promoharness lab ...`` Typer group; the main CLI mounts it with
``app.add_typer(lab_app, name="lab")``. Each command validates its own options and hands
its experiment to ``command.run_lab_command``, which does what every lab does alike (Dask
workers, progress, exit 3 for a cell failing twice, the output folder). The experiment
modules are imported inside the commands, so mounting the group costs little at start-up.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from harness.lab.command import Shared, run_lab_command

if TYPE_CHECKING:
    from harness.lab.command import Phases

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


# Options every lab shares, so they read and behave the same in each.
JobsOption = Annotated[
    int, typer.Option(min=0, help="Local Dask worker processes; 0 = every available CPU.")
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="Run on an existing Dask cluster: its scheduler, tcp://HOST:8786."),
]
OutOption = Annotated[
    Path | None,
    typer.Option(help="Output folder. Default: reports/lab-<lab>-<UTC timestamp>."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


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
    jobs: JobsOption = 0,
    scheduler: SchedulerOption = None,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Brooker's "Exponential Backoff And Jitter" contention experiment, with our Backoff.

    Writes lab.csv, lab_calls.png, lab_completion.png and lab.md. Exit code 3 when a cell
    failed twice (it is named; nothing is written).
    """
    from harness.inputs import InputError
    from harness.lab.backoff import run_lab, write_lab
    from harness.orchestrator.delivery import Backoff

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

    def compute(progress: Phases, workers: int, address: str | None) -> list[dict[str, Any]]:
        progress("simulating", 0, len(chosen) * len(clients) * runs)  # workers start in it
        return run_lab(
            clients,
            chosen,
            runs=runs,
            seed=seed,
            progress=lambda done, total: progress("simulating", done, total),
            jobs=workers,
            base=base,
            cap=cap,
            scheduler=address,
        )

    def show(rows: list[dict[str, Any]], _paths: list[Path], console: Any) -> str:
        from rich.table import Table

        table = Table(title=f"calls (mean) / completion (ms, mean) — {runs} runs per cell")
        table.add_column("N", justify="right")
        for kind in chosen:
            table.add_column(kind, justify="right")
        cell = {(row["kind"], row["clients"]): row for row in rows}
        for n in clients:
            table.add_row(
                str(n),
                *(
                    f"{cell[kind, n]['calls_mean']:.0f} / "
                    f"{cell[kind, n]['completion_mean'] * 1000:.0f}"
                    for kind in chosen
                ),
            )
        console.print(table)
        return f"{len(rows)} cells x {runs} runs"

    shared = Shared(jobs, scheduler, out, quiet)
    run_lab_command("backoff", {"simulating": "runs"}, compute, write_lab, show, shared)


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
    jobs: JobsOption = 0,
    scheduler: SchedulerOption = None,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Huang et al.'s retry metastability experiment (OSDI 2022), with our endpoint and policies.

    Calibrates the primary's capacity on the two published calibration runs, predicts the
    others, draws the phase diagram over the cut (X, D) and the request interval, and
    compares client policies on the metastable case. Writes metastable.csv, metastable.md
    and four PNGs. Exit code 3 when a cell failed twice (it is named; nothing is written).
    """
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

    def compute(progress: Phases, workers: int, address: str | None) -> dict[str, Any]:
        return run_study(
            base,
            capacity=capacity,
            jobs=workers,
            scheduler=address,
            progress=progress,
            **grid,  # type: ignore[arg-type]
        )

    def show(study: dict[str, Any], paths: list[Path], console: Any) -> str:
        text = paths[1].read_text(encoding="utf-8")
        # The markdown is the printed summary, so screen and file never disagree.
        console.print(text[text.find("## ") :], markup=False, highlight=False, soft_wrap=True)
        cells = sum(len(study[k]) for k in ("published", "phase", "interval", "policies"))
        return f"{cells + len(study['policies'])} cells"

    shared = Shared(jobs, scheduler, out, quiet)
    run_lab_command(
        "metastable",
        {"calibrating": "points", "simulating": "cells"},
        compute,
        write_lab,
        show,
        shared,
    )


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
