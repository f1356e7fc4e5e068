"""The ``load`` and ``bench load`` commands (Typer), kept out of ``harness/cli`` so that
they can be mounted where the CLI owner chooses::

    from harness.load.cli import bench_load_command, load_command
    app.command("load")(load_command)
    bench_app.command("load")(bench_load_command)

``load_app`` carries both on its own (``python -m harness.load.cli load ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.inputs import InputError

console = Console()
load_app = typer.Typer(help="Peak-load campaigns with Locust.", no_args_is_help=True)


def _print_summary(summary: dict, out: Path) -> None:
    load = summary["load"]
    via = f" via {summary['sut']}" if summary.get("sut") else ""
    table = Table(title=f"load: {load['campaign']}{via}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "requests", "rps_mean", "rps_peak", "rate_target_peak", "p50_ms", "p95_ms", "p99_ms",
        "error_rate", "stale_price_rate", "missed_arrivals", "operator_steps",
        "operator_refused", "callbacks",
    ):  # fmt: skip
        value = load.get(key)
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    for reason, count in sorted(load["failures_by_reason"].items()):
        console.print(f"  failures: {reason}: {count}")
    blame = load.get("stale_attribution")
    if blame and blame["samples"]:
        causes = ", ".join(f"{c} {n}" for c, n in blame["by_cause"].items())
        console.print(
            f"  wrong prices explained by the model: {blame['explained']} of "
            f"{blame['samples']}, unexplained {blame['unexplained']} ({causes})",
            highlight=False,
        )
    for slo in summary["slos"]:
        mark = "[green]PASS[/green]" if slo["passed"] else "[red]FAIL[/red]"
        if slo.get("status") == "not measured":  # no verdict: harness.agreement
            mark = "[yellow]NOT MEASURED[/yellow]"  # the reason follows, on its own line
        elif not slo.get("trusted", True):
            mark += " [red](untrustworthy: harness saturated)[/red]"
        console.print(f"  {mark} {slo['name']}: {slo['metric']} = {slo['value']!r} "
                      f"(required {slo['op']} {slo['threshold']})")  # fmt: skip
        if slo.get("status") == "not measured":
            console.print(f"    {slo['reason']}", highlight=False)
        if slo.get("expect") == "fail":
            console.print(f"    expected: fails because {slo['because']}", highlight=False)
    harness = summary.get("harness")
    if harness:
        for row in harness["loop_lag"]:
            console.print(
                f"  headroom: {row['component']} event-loop lag p50 {_ms(row['p50_s'])} "
                f"p99 {_ms(row['p99_s'])}",
                highlight=False,
            )
        for row in harness["cpu"]:
            console.print(
                f"  headroom: {row['process']} CPU mean {row['mean_percent']} % "
                f"max {row['max_percent']} %",
                highlight=False,
            )
        from harness.saturation import describe

        for line in describe(harness):
            console.print(f"[red]harness saturated:[/red] {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {out}/report.html", highlight=False, soft_wrap=True)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


@load_app.command("load")
def load_command(
    scenario: Annotated[
        str, typer.Argument(help="A campaign (loadtests/campaigns) or a scenario name/file.")
    ] = "ci-smoke",
    users: Annotated[int | None, typer.Option(min=1, help="Concurrent shopper ceiling.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="Shopper requests/s at the curve's peak.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=1, max=3600, help="Wall seconds of load.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="Local Locust workers (0: one process).")
    ] = 0,
    host: Annotated[
        str | None, typer.Option(help="A running orchestrator API (default: start the stack).")
    ] = None,
    sim_host: Annotated[
        str | None, typer.Option(help="Its simulators (default: the API port + 1).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Scenario override path.to.key=value.")
    ] = None,
    sut: Annotated[
        str | None,
        typer.Option(
            help="Load YOUR system instead of the reference orchestrator: a driver file "
            "(driver.yaml) or a Python driver (file.py:Class); the estate serves on "
            "--estate-port and every figure comes from its ground truth."
        ),
    ] = None,
    estate_port: Annotated[
        int, typer.Option(help="With --sut: the estate's port on 127.0.0.1.")
    ] = 8701,
    estate_shards: Annotated[
        int,
        typer.Option(
            "--estate-shards",
            help="Serve the simulated estate from N processes (0: inside the stack's "
            "process); the shoppers go straight to each store's shard.",
        ),
    ] = 0,
    sim_token: Annotated[
        str | None,
        typer.Option(
            help="With --host: the admin token its simulators serve ground truth behind "
            "(`serve --admin-token`, needed with `serve --bind`).",
        ),
    ] = None,
) -> None:
    """Run a peak-load campaign with Locust against the live stack (or, with --sut, the
    estate while your system delivers the timeline to it).

    Exit 0 when every scenario SLO and load gate passed, 1 when one failed, 2 for bad
    input, 4 when the harness itself saturated (an estate or orchestrator event loop, or a
    Locust process's CPU, past its bound: the report's "harness headroom" says which and
    when, and the gates it touched are untrustworthy, not failed)."""
    from harness.load.campaign import load_campaign
    from harness.load.run import LoadOptions, run_load
    from harness.runner import default_out_dir
    from harness.saturation import exit_code

    try:
        campaign = load_campaign(scenario)
        options = LoadOptions(
            users,
            rate,
            duration,
            workers,
            host,
            sim_host,
            tuple(overrides or ()),
            estate_shards,
            sim_token,
        )
        if sim_token is not None and host is None:
            raise InputError(
                "reads the truth of --host's simulators: give --host", field="--sim-token"
            )
        if estate_shards and (sut is not None or host is not None):
            raise InputError(
                "shards the estate this command starts: not with --sut or --host (start "
                "`promoharness serve --estate-shards N` and give --host/--sim-host instead)",
                field="--estate-shards",
            )
        if estate_shards:
            from harness.load.campaign import resolve_scenario
            from harness.runtime.world import build_world
            from harness.shards import check_count

            world = build_world(resolve_scenario(campaign, list(overrides or ())), None)
            check_count(estate_shards, len(world.delivery_models))
        if sut is not None:
            summary, out_dir = _load_sut(campaign, sut, options, out, estate_port)
        else:
            out_dir = out or default_out_dir(f"{campaign.name}-load")
            summary = run_load(campaign, out_dir, options)
    except InputError as exc:
        # stderr, as every other command's one-line error (a pipe of the report keeps it out)
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _print_summary(summary, out_dir)
    raise typer.Exit(exit_code(summary))


def _load_sut(
    campaign: Any, sut: str, options: Any, out: Path | None, port: int
) -> tuple[dict[str, Any], Path]:
    """``load --sut``: every mistake of the driver, and a system that is down, is an
    ``InputError`` (exit 2) before Locust starts."""
    from harness.load.sut import run_sut_load
    from harness.runner import default_out_dir
    from harness.sut.driver import Unreachable
    from harness.sut.load import load_driver

    if options.host or options.sim_host:
        raise InputError("--sut serves the estate itself: drop --host/--sim-host", field="--sut")
    driver = load_driver(sut)
    slug = "".join(c if c.isalnum() else "-" for c in driver.name.lower()).strip("-") or "sut"
    out_dir = out or default_out_dir(f"{campaign.name}-{slug}-load")
    try:
        summary = run_sut_load(campaign, out_dir, options, driver, estate_port=port)
    except Unreachable as exc:
        raise InputError(str(exc), field="--sut") from None
    except OSError as exc:
        raise InputError(
            f"cannot serve the estate on 127.0.0.1:{port}: {exc.strerror or exc}",
            field="--estate-port",
        ) from None
    for line in summary["load"].get("refused", []):
        console.print(f"[yellow]refused:[/yellow] {line}", highlight=False, soft_wrap=True)
    if summary.get("not_measured"):
        console.print(
            "not measured (needs the system's own view or internals): "
            + ", ".join(summary["not_measured"]),
            highlight=False,
            soft_wrap=True,
        )
    return summary, out_dir


@load_app.command("bench-load")
def bench_load_command(
    seconds: Annotated[float, typer.Option(min=2, max=120, help="Seconds per target.")] = 10,
    users: Annotated[int, typer.Option(min=1, max=1000, help="Locust users.")] = 20,
    workers: Annotated[int, typer.Option(min=0, max=64, help="Local Locust workers.")] = 0,
) -> None:
    """Requests/s Locust shoppers reach against a bare uvicorn endpoint and the stack.

    Both in one run: closed loop, no pacing, the same users and checks."""
    from harness.load.bench import bench_load

    rows = bench_load(seconds=seconds, users=users, workers=workers)
    table = Table(title=f"bench load: {users} users, {seconds:g} s each, workers {workers}")
    for col in ("target", "requests", "req/s", "p50 ms", "p95 ms", "failures"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)


if __name__ == "__main__":
    load_app()
