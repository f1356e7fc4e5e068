"""Virtual-time commands: ``run`` one scenario, ``sweep`` a grid of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    ScenarioArg,
    SetOption,
    _print_verdicts,
    _run_dir,
    app,
    check_out,
    check_seed,
    console,
    err,
    fresh_folder,
)
from harness.inputs import InputError
from harness.progress import Stages


@app.command()
def run(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default reports/<scenario>-<UTC time>).")
    ] = None,
    overrides: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Run a flash-sale scenario in virtual time and write its report.

    Exit code 0 when every SLO passed, 1 when one failed, 2 for bad input.
    """
    from harness.report.pool import PlotPool

    check_seed(seed)
    check_out(out)
    # Forked now, while the process is small and before the scenario's modules (pydantic,
    # the runtime) load: the workers load pandas and matplotlib during the simulation,
    # then build the log, the summary files and the plots (harness/report/handoff.py).
    with PlotPool() as pool:
        from harness.runner import run_scenario
        from harness.scenario import load_scenario

        chosen = load_scenario(scenario, overrides or [])  # every input checked: exit 2 here
        out = out or _run_dir(chosen.name)
        with fresh_folder(out), Stages(err, quiet=quiet) as stages:
            try:
                result = run_scenario(chosen, seed=seed, out=out, stages=stages, pool=pool)
            except BaseException:
                # Stopped before fresh_folder removes the half-written folder, not after:
                # a worker still writing would otherwise leave files in it again.
                pool.close(force=True)
                raise
    _print_verdicts(result.summary)
    console.print(
        f"report: {result.out_dir}/report.html", highlight=False, soft_wrap=True, markup=False
    )
    raise typer.Exit(0 if result.summary["passed"] else 1)


@app.command()
def sweep(
    scenario: ScenarioArg = None,
    vary: Annotated[
        list[str] | None,
        typer.Option(help="A scenario path and its values: key=v1,v2,... (repeatable)."),
    ] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs per cell, with seeds seed, seed+1, ...")
    ] = 1,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Local Dask worker processes (default: CPU count; 1 = none)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run on an existing Dask cluster: its scheduler, tcp://HOST:8786."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="First seed (default: the scenario's).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default reports/sweep-<scenario>-<UTC time>)."),
    ] = None,
    overrides: SetOption = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Another summary.json dotted path to report (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario over a grid of values (cartesian product of --vary), repeated per seed.

    Writes sweep.csv, summary.csv, one PNG per figure and report.html. Exit code 0 when
    every run passed its SLOs, 1 when one failed, 2 for bad input, 3 when a run failed
    twice (an error, or its worker dying) and so has no figures; the report names it.
    """
    import time

    from harness import sweep as sw
    from harness.report.sweep_report import write_sweep
    from harness.runner import default_out_dir

    if not vary:
        raise InputError("give at least one --vary key=v1,v2,...", field="--vary")
    check_seed(seed)
    check_out(out)
    from harness.distributed import check_scheduler

    scheduler = check_scheduler(scheduler)
    varies = [sw.parse_vary(text) for text in vary]
    figures = sw.figures_of(metric or [])
    base = overrides or []
    path, chosen = sw.validate_grid(scenario, base, varies)
    first = chosen.seed if seed is None else seed
    specs = sw.expand_grid(varies, repeats, first)
    started = time.perf_counter()
    with Stages(err, quiet=quiet) as stages:
        label = f"simulating {len(specs)} runs of {chosen.name}"
        with stages.stage(label, len(specs), fmt=sw.runs_done) as tick:
            runs = sw.run_grid(
                path,
                base,
                specs,
                figures,
                jobs=jobs,
                scheduler=scheduler,
                on_done=sw.counter(tick),
            )
        wall = time.perf_counter() - started
        errors = sw.run_errors(runs, specs)
        with stages.stage("computing the cell table"):
            keys = [v.key for v in varies]
            cells = sw.cell_table(runs, keys, figures)
        out_dir = out or default_out_dir(f"sweep-{chosen.name}")
        seeds = list(range(first, first + repeats))
        with fresh_folder(out_dir):  # a failed write leaves no half report folder
            write_sweep(
                out_dir,
                runs,
                cells,
                grid=[(v.key, v.values) for v in varies],
                figures=figures,
                seeds=seeds,
                title=f"sweep of {chosen.name}",
                description=chosen.description,
                notes=[
                    f"{len(specs)} runs in {wall:.1f} s wall time"
                    + (f" on the Dask cluster at {scheduler}" if scheduler else ""),
                    *(f"no figures, the run failed: {line}" for line in errors),
                ],
                stages=stages,
            )
    failed = sw.failed_cells(cells)
    named = "; ".join(
        f"{', '.join(f'{k}={row[k]}' for k in keys)}: {row['failed_slos']}"
        for _, row in cells.iterrows()
        if row["failed_slos"]
    )
    console.print(
        f"{len(specs)} runs ({len(cells)} cells x {repeats} seeds) in {wall:.1f} s; "
        + (f"{failed} of {len(cells)} cells failed an SLO" if failed else "every run passed"),
        highlight=False,
        markup=False,
    )
    if named:
        console.print(f"failed SLOs (runs): {named}", highlight=False, markup=False, soft_wrap=True)
    for line in errors:
        err.print(f"run failed: {line}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(3 if errors else 1 if failed else 0)
