"""``promoharness serve``: the live stack on loopback (or --bind), driven by hand."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
    MAX_SPEED,
    ScenarioArg,
    SetOption,
    _run_dir,
    app,
    console,
    until_interrupted,
)
from harness.cli.estate import BindOption, ShardViaOption
from harness.cli.live import EstateShardsOption
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
    api_port: Annotated[int, typer.Option(help="Orchestrator API port on --bind.")] = 8700,
    sim_port: Annotated[int, typer.Option(help="Simulators port on --bind.")] = 8701,
    speed: Annotated[
        float,
        typer.Option(
            min=0.001,
            max=MAX_SPEED,
            help="Scenario seconds per second (1: real time, for a stack you drive by hand; "
            "`live` calibrates its faithful speed).",
        ),
    ] = 1.0,
    state: Annotated[
        Path | None, typer.Option(help="SQLite state file (resumed if it exists).")
    ] = None,
    component: Annotated[
        Component, typer.Option(help="Run everything, or only the API or the simulators.")
    ] = Component.all,
    estate_shards: EstateShardsOption = 0,
    shard_via: ShardViaOption = None,
    bind: BindOption = "127.0.0.1",
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token for the simulators' /truth and /admin (needed with --bind; "
            "not read from the environment, so `load`'s own stack stays open to it).",
        ),
    ] = None,
) -> None:
    """Start the live stack on loopback: endpoint simulators and the orchestrator API.

    Prints the URLs and the demo API keys; Ctrl-C stops it cleanly. Operator actions go
    through the API (the scenario's timeline is not played: that is `live`). With
    --component api|sim the two halves run as separate processes (the API finds the
    simulators on --sim-port, the simulators send webhooks to --api-port). --bind 0.0.0.0
    (with --admin-token) serves them to other machines: README "Load on several machines".
    """
    import asyncio

    from harness.runtime.live import LiveClock
    from harness.runtime.world import build_world
    from harness.scenario import load_scenario
    from harness.service.auth import DEMO_KEYS
    from harness.shards import check_network
    from harness.stack import (
        launch_shards,
        open_state,
        start_clock,
        start_estate,
        start_service,
    )
    from simulators.apps import reachable_host

    if admin_token is not None and not admin_token.strip():
        raise InputError("must not be empty", field="--admin-token")
    check_network(bind, shard_via or (), admin_token)
    if shard_via and not estate_shards:
        raise InputError("starts shards: give --estate-shards N too", field="--shard-via")
    host = reachable_host(bind)
    chosen = load_scenario(scenario, overrides or [])
    if estate_shards and component is Component.api:
        raise InputError("the API alone serves no estate to shard", field="--estate-shards")
    if component is not Component.sim:
        state = state or _run_dir(f"serve-{chosen.name}") / "orchestrator.db"
        state.parent.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        world = build_world(chosen, seed)
        servers = []
        store = shards = sim = None
        # Both halves here, on a new state file: t=0 once both serve (restart_clock).
        fresh = component is Component.all and state is not None and not state.exists()
        try:
            # Before the clock starts: the shards' start-up costs no scenario time.
            shards = await launch_shards(
                world,
                estate_shards,
                api_url=f"http://{host}:{api_port}",
                admin_token=admin_token,
                via=shard_via or (),
                bind=bind,
            )
            if component is Component.sim:
                clock = LiveClock(speed=speed)
            else:
                assert state is not None
                store, clock = open_state(
                    state, chosen, world.seed, speed, endpoints=world.endpoint_infos()
                )
            if component is not Component.api:
                sim = await start_estate(
                    world,
                    api_url=f"http://{host}:{api_port}",
                    clock=clock,
                    port=sim_port,
                    admin_token=admin_token,
                    shards=shards,
                    bind=bind,
                    play=component is Component.sim,
                )
                servers.append(sim)
                console.print(
                    f"  simulators        {sim.url}   (truth: /truth, faults: /admin/faults)"
                )
                for shard in shards.describe() if shards else ():
                    console.print(
                        f"    shard {shard['index']}         {shard['url']}   "
                        f"({len(shard['endpoints'])} endpoints, pid {shard['pid']})"
                    )
            if component is not Component.sim:
                runtime, api = await start_service(
                    world,
                    store,
                    clock,
                    sim_url=f"http://{host}:{sim_port}",
                    port=api_port,
                    shards=shards,
                    bind=bind,
                )
                servers.append(api)
                console.print(
                    f"  orchestrator API  {api.url}/v1   (OpenAPI: {api.url}"
                    "/openapi.json, metrics: /metrics)"
                )
                console.print(f"  dashboard         {api.url}/dashboard (when installed)")
                console.print(f"  state             {state}")
            if sim is not None and store is not None:
                start_clock(store, clock, sim, world, shards, fresh=fresh)
        except BaseException as exc:
            # Start-up failed (a port in use, a bad state file): one line, no traceback,
            # and nothing left half-open to complain at exit.
            for server in reversed(servers):
                await server.stop()
            if shards is not None:
                shards.stop()
            if store is not None:
                store.close()
            if isinstance(exc, OSError):
                raise InputError(f"cannot bind a port on {bind}: {exc}") from None
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
        await until_interrupted()
        for server in reversed(servers):
            await server.stop()
        if shards is not None:
            await asyncio.to_thread(shards.stop)
        if component is not Component.sim:
            await runtime.close()
            store.close()

    from harness.runtime.live import full_collections_deferred

    with full_collections_deferred():  # no full-collection stalls while serving
        asyncio.run(main())
