"""Live-stack commands: ``serve`` the stack on loopback, play a scenario ``live``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
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


class Component(StrEnum):
    all = "all"
    api = "api"
    sim = "sim"


@app.command()
def serve(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    overrides: SetOption = None,
    api_port: Annotated[int, typer.Option(help="Orchestrator API port on 127.0.0.1.")] = 8700,
    sim_port: Annotated[int, typer.Option(help="Simulators port on 127.0.0.1.")] = 8701,
    speed: Annotated[float, typer.Option(min=0.001, help="Scenario seconds per second.")] = 1.0,
    state: Annotated[
        Path | None, typer.Option(help="SQLite state file (resumed if it exists).")
    ] = None,
    component: Annotated[
        Component, typer.Option(help="Run everything, or only the API or the simulators.")
    ] = Component.all,
) -> None:
    """Start the live stack on loopback: endpoint simulators and the orchestrator API.

    Prints the URLs and the demo API keys; Ctrl-C stops it cleanly. Operator actions go
    through the API (the scenario's timeline is not played: that is `live`). With
    --component api|sim the two halves run as separate processes (the API finds the
    simulators on --sim-port, the simulators send webhooks to --api-port).
    """
    import asyncio
    import signal

    from harness.runtime.live import LiveClock
    from harness.runtime.world import build_world
    from harness.scenario import load_scenario
    from harness.service.auth import DEMO_KEYS
    from harness.stack import HOST, open_state, start_service, start_simulators

    chosen = load_scenario(scenario, overrides or [])
    if component is not Component.sim:
        state = state or _run_dir(f"serve-{chosen.name}") / "orchestrator.db"
        state.parent.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        world = build_world(chosen, seed)
        servers = []
        store = None
        try:
            if component is Component.sim:
                clock = LiveClock(speed=speed)
            else:
                assert state is not None
                store, clock = open_state(
                    state, chosen, world.seed, speed, endpoints=world.endpoint_infos()
                )
            if component is not Component.api:
                sim = await start_simulators(
                    world, api_url=f"http://{HOST}:{api_port}", clock=clock, port=sim_port
                )
                servers.append(sim)
                console.print(
                    f"  simulators        {sim.url}   (truth: /truth, faults: /admin/faults)"
                )
            if component is not Component.sim:
                runtime, api = await start_service(
                    world, store, clock, sim_url=f"http://{HOST}:{sim_port}", port=api_port
                )
                servers.append(api)
                console.print(
                    f"  orchestrator API  {api.url}/v1   (OpenAPI: {api.url}"
                    "/openapi.json, metrics: /metrics)"
                )
                console.print(f"  dashboard         {api.url}/dashboard (when installed)")
                console.print(f"  state             {state}")
        except BaseException as exc:
            # Start-up failed (a port in use, a bad state file): one line, no traceback,
            # and nothing left half-open to complain at exit.
            for server in reversed(servers):
                await server.stop()
            if store is not None:
                store.close()
            if isinstance(exc, OSError):
                raise InputError(f"cannot bind a port on {HOST}: {exc}") from None
            raise
        console.print(
            f"[bold]promoharness stack[/bold] for scenario {chosen.name} "
            f"(seed {world.seed}, speed {clock.speed:g}x)"
        )
        if component is not Component.sim:
            table = Table(title="demo API keys (header X-API-Key)")
            table.add_column("key")
            table.add_column("role")
            for key, who in DEMO_KEYS.items():
                table.add_row(key, who.role + (f" ({who.channel})" if who.channel else ""))
            console.print(table)
        console.print("Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        console.print("stopping…")
        for server in reversed(servers):
            await server.stop()
        if component is not Component.sim:
            await runtime.close()
            store.close()

    asyncio.run(main())


@app.command()
def live(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Compress the scenario K times (wall clock).")
    ] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    overrides: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Play a scenario's operator timeline against the live stack over real HTTP.

    Writes the same report as `run`, plus a sim-vs-live table of the headline figures.
    """
    import asyncio

    from harness.live_run import run_live, sim_vs_live
    from harness.report import write_report
    from harness.runner import simulate
    from harness.scenario import load_scenario

    chosen = load_scenario(scenario, overrides or [])
    out_dir = out or _run_dir(f"{chosen.name}-live")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _progress(quiet, f"live {chosen.name} at {speed:g}x") as tick:
        result = asyncio.run(
            run_live(
                chosen, state=out_dir / "orchestrator.db", speed=speed, seed=seed, progress=tick
            )
        )
    sim = simulate(chosen, seed=seed).summary
    comparison = sim_vs_live(sim, result.summary)
    write_report(
        out_dir,
        result.summary,
        result.events,
        title=f"{chosen.name} — live run at {speed:g}x (seed {result.summary['seed']})",
        description=chosen.description,
        extra_tables=[("Simulated vs live (same scenario and seed)", comparison)],
    )
    for line in result.refused:
        err.print(f"[yellow]refused:[/yellow] {line}", highlight=False)
    table = Table(title="sim vs live")
    for column in comparison.columns:
        table.add_column(str(column))
    for row in comparison.itertuples(index=False):
        table.add_row(
            *("—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row)
        )
    console.print(table)
    _print_verdicts(result.summary)
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.summary["passed"] else 1)
