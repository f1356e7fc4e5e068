"""``promoharness live``: play a scenario's timeline against the live stack (``serve``, which
starts that stack for a user to drive by hand, is in ``harness/cli/serve.py``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.common import (
    MAX_SPEED,
    ScenarioArg,
    SetOption,
    _print_verdicts,
    _progress,
    _run_dir,
    app,
    console,
    err,
)
from harness.inputs import InputError

if TYPE_CHECKING:
    from harness.faithful import Faithful, Overhead
    from harness.scenario import Scenario


EstateShardsOption = Annotated[
    int,
    typer.Option(
        "--estate-shards",
        help="Serve the simulated estate in N processes on this machine (serve: or through "
        "--shard-via; endpoints split round-robin; 0: inside this process; 1: one "
        "separate estate process).",
    ),
]


@app.command()
def live(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=MAX_SPEED,
            show_default=False,
            help="Compress the scenario K times (wall clock). Default: the faithful speed "
            "calibrated on this machine; with --sut, 1 (real time).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    overrides: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    sut: Annotated[
        str | None,
        typer.Option(
            help="Measure YOUR system instead of the reference orchestrator: a driver file "
            "(driver.yaml) or a Python driver (file.py:Class). See README, 'Testing your "
            "own integration stack'."
        ),
    ] = None,
    estate_port: Annotated[
        int, typer.Option(help="With --sut: the estate's port on 127.0.0.1.")
    ] = 8701,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run above the faithful speed anyway (the report says the run was forced).",
        ),
    ] = False,
    estate_shards: EstateShardsOption = 0,
) -> None:
    """Play a scenario's operator timeline against the live stack over real HTTP.

    Writes the same report as `run`, plus a sim-vs-live table of the headline figures
    (a figure summed from shoppers' sales or quotes says "not measured live": nothing buys
    in a live run). First the stack is calibrated on this machine (harness/faithful.py):
    the faithful speed is the fastest at which the harness's own overhead stays under 10%
    of the scenario's smallest modelled latency and timeout. Without --speed the run goes
    at that speed; a --speed above it exits 2 unless --force.

    The harness watches its own event loops through the run (report: "harness
    headroom"); when one saturated, its figures are marked untrustworthy and the exit code
    is 4 (0 every SLO passed, 1 one failed, 2 bad input). An SLO on a shopper figure is
    "not measured live" and left out of the exit code: nobody buys in a live run.

    With --sut, the estate serves on --estate-port, your system delivers to it, the
    timeline goes to your system through the driver, and every figure comes from the
    estate's ground truth; the speed is 1 (real time) unless --speed says otherwise.
    """
    import pandas as pd

    from harness.agreement import agreement
    from harness.headroom_report import headroom_tables
    from harness.live_calibrate import calibrate, describe
    from harness.live_run import faithful_summary, run_live, sim_vs_live
    from harness.runner import simulate
    from harness.runtime.live import run as live_loop
    from harness.runtime.live import window_hold_for
    from harness.saturation import describe as describe_saturation
    from harness.saturation import exit_code
    from harness.scenario import load_scenario

    chosen = load_scenario(scenario, overrides or [])
    if estate_shards and sut is not None:
        raise InputError(
            "not with --sut (the estate for a system under test is one process)",
            field="--estate-shards",
        )
    if estate_shards:  # a bad count exits 2 before the calibration, not after it
        from harness.runtime.world import build_world
        from harness.shards import check_count

        check_count(estate_shards, len(build_world(chosen, seed).delivery_models))
    if sut is not None:
        if speed is None:
            console.print(
                "speed 1x (real time; the default with --sut: your system's own timeouts and "
                "retries run on the wall clock; --speed K compresses the scenario K times)",
                highlight=False,
                soft_wrap=True,
            )
        _live_sut(
            chosen,
            sut,
            scenario_ref=scenario,
            speed=1.0 if speed is None else speed,
            seed=seed,
            out=out,
            port=estate_port,
            quiet=quiet,
        )
        return
    # uvloop where installed, for both: a faithful speed holds for the loop it measured.
    faithful, overhead = live_loop(calibrate(chosen, estate_shards=estate_shards))
    console.print(describe(faithful, overhead), highlight=False, soft_wrap=True)
    asked = speed is not None
    if speed is None:
        speed = chosen_speed(faithful, overhead)
        console.print(speed_line(speed, chosen.duration), highlight=False, soft_wrap=True)
    elif speed > faithful.speed and not force:
        raise InputError(faithful.reason(speed))
    out_dir = out or _run_dir(f"{chosen.name}-live")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _progress(quiet, f"live {chosen.name} at {speed:.4g}x") as tick:
        result = live_loop(
            run_live(
                chosen,
                state=out_dir / "orchestrator.db",
                speed=speed,
                seed=seed,
                progress=tick,
                estate_shards=estate_shards,
                window_hold=window_hold_for(overhead.at_concurrency),
            )
        )
    result.summary["live"] = faithful_summary(faithful, overhead, speed, asked=asked)
    sim = simulate(chosen, seed=seed).summary
    result.summary["sim_vs_live"] = agreement(sim, result.summary)
    comparison = sim_vs_live(sim, result.summary)
    title = f"{chosen.name} — live run at {speed:.4g}x (seed {result.summary['seed']})"
    tables = [
        ("Simulated vs live (same scenario and seed)", comparison),
        (
            "Faithful speed on this machine"
            + (" — FORCED above it" if result.summary["live"]["forced"] else ""),
            pd.json_normalize(result.summary["live"]),
        ),
        *headroom_tables(result.summary["harness"]),
    ]
    write_live_report(out_dir, result, title, chosen.description, tables)
    for line in result.refused:
        err.print(f"[yellow]refused:[/yellow] {line}", highlight=False)
    verdict = result.summary["sim_vs_live"]
    table = Table(
        title="sim vs live",
        caption=(
            "agreement is judged on T95, T99, acked T95, amplification, dead letters and "
            "the rollback and SLO verdicts: "
            + ("they agree" if verdict["agrees"] else "they DO NOT agree")
            + "; the other figures are reported"
        ),
    )
    for column in comparison.columns:
        table.add_column(str(column), overflow="fold")  # a long figure name whole
    for row in comparison.itertuples(index=False):
        table.add_row(
            *("—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row)
        )
    console.print(table)
    if result.summary["live"]["forced"]:
        err.print(
            f"[yellow]forced:[/yellow] run at {speed:g}x, above the faithful speed "
            f"{faithful.speed:.3g}x: figures may hold the harness's own overhead",
            highlight=False,
        )
    _print_verdicts(result.summary)
    for line in describe_saturation(result.summary["harness"]):
        err.print(f"[red]harness saturated:[/red] {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code(result.summary))


def chosen_speed(faithful: Faithful, overhead: Overhead) -> float:
    """The speed of a `live` run given no --speed: the faithful one. It is finite (the
    calibration caps it at its twin's speed); when nothing at all limited it, the twin's."""
    from harness.live_calibrate import SPEED

    if math.isfinite(faithful.speed):
        return faithful.speed
    return overhead.speed or SPEED


def speed_line(speed: float, duration: float) -> str:
    """What the console says about the speed it chose: which, why, and the wall time."""
    return (
        f"speed {speed:.3g}x: the faithful speed on this machine (no --speed given): "
        f"{_span(duration)} of scenario in about {_span(duration / speed)} of wall clock"
    )


def _span(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _live_sut(
    chosen: Scenario,
    sut: str,
    *,
    scenario_ref: str | Path | None,
    speed: float,
    seed: int | None,
    out: Path | None,
    port: int,
    quiet: bool,
) -> None:
    """``live --sut``: the user's system, measured from the estate's ground truth."""
    import asyncio

    from harness.headroom_report import headroom_tables
    from harness.saturation import describe as describe_saturation
    from harness.saturation import exit_code
    from harness.scenario import scenario_path
    from harness.sut.driver import Unreachable
    from harness.sut.load import load_driver
    from harness.sut.run import missing_actions, run_sut

    driver = load_driver(sut)
    missing = missing_actions(driver, chosen)
    if missing:
        raise InputError(
            f"the timeline uses {', '.join(missing)}, which the driver neither carries out "
            "nor declares 'skip'",
            field="--sut",
        )
    out_dir = out or _run_dir(f"{chosen.name}-{_slug(driver.name)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _progress(quiet, f"live {chosen.name} via {driver.name} at {speed:g}x") as tick:
            result = asyncio.run(
                run_sut(
                    chosen,
                    driver,
                    speed=speed,
                    seed=seed,
                    estate_port=port,
                    scenario_file=str(scenario_path(scenario_ref)),
                    work_dir=str(out_dir),
                    progress=tick,
                )
            )
    except Unreachable as exc:
        raise InputError(str(exc), field="--sut") from None
    except OSError as exc:
        raise InputError(
            f"cannot serve the estate on 127.0.0.1:{port}: {exc.strerror}", field="--estate-port"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{chosen.name} — {driver.name}, live at {speed:g}x (seed {result.summary['seed']})"
    tables = headroom_tables(result.summary["harness"])
    write_live_report(out_dir, result, title, chosen.description, tables)
    for line in result.refused:
        err.print(Text.assemble(("refused: ", "yellow"), line), highlight=False)
    if result.summary.get("not_measured"):
        console.print(
            "not measured (needs the system's own view or internals): "
            + ", ".join(result.summary["not_measured"]),
            highlight=False,
            soft_wrap=True,
        )
    _print_verdicts(result.summary)
    for line in describe_saturation(result.summary["harness"]):
        err.print(f"[red]harness saturated:[/red] {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code(result.summary))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "sut"


def write_live_report(
    out_dir: Path, result: Any, title: str, description: str, tables: list[Any]
) -> None:
    """The run's report, then its page again with the harness-headroom plot beside the
    others (the plot needs the written report's images)."""
    from harness.headroom_report import rewrite_page, with_headroom
    from harness.report import write_report

    paths = write_report(
        out_dir, result.summary, result.events, title=title, description=description,
        extra_tables=tables,
    )  # fmt: skip
    images = {k[:-4]: v for k, v in paths.items() if k.endswith(".png")}
    images = with_headroom(
        images, out_dir, result.summary["harness"], result.lag, {}, result.origin
    )
    rewrite_page(
        out_dir, result.summary, images, title=title, description=description,
        extra_tables=tables,
    )  # fmt: skip
