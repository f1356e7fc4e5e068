"""``promoharness estate SCENARIO``: the scenario's whole estate as a target for any system.

It serves the ERP, every store, the web shop, loyalty and the marketplace on 127.0.0.1
(or ``--bind``) with the scenario's faults (outages in the endpoints' profiles from the start, rate
faults switched at their scenario times), for any orchestrator to deliver to; the
delivery API is the published contract (``promoharness contract estate``). Nothing is
delivered by promoharness itself: the system under test does that, and the estate's
ground truth (``/truth``, behind the admin token) says what really happened.

With ``--estate-shards N`` the endpoints are served by N processes (``harness/shards.py``)
and ``--port`` is their front (``harness/estate_front.py``): ``/estate/endpoints`` gives
each endpoint's delivery URL on its own shard; truth, faults and callbacks go through it.
``--shard-via "ssh b.example"`` starts shards on other machines and ``--bind`` puts the
servers on an address they can be reached at (``harness/shards.py``; README "Estate shards
on several machines").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from harness.cli.common import (
    MAX_SPEED,
    ScenarioArg,
    SetOption,
    app,
    check_seed,
    console,
    until_interrupted,
)
from harness.inputs import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.runtime.world import World
    from simulators.served import Fault


ShardViaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--shard-via",
        help="A command prefix that starts a shard elsewhere, e.g. 'ssh b.example' "
        "(repeatable: shard i uses the i-th modulo their number; promoharness installed "
        "there at the same commit; shards on other machines need --bind 0.0.0.0).",
    ),
]
BindOption = Annotated[
    str,
    typer.Option(
        "--bind",
        help="IP address the servers listen on (0.0.0.0: every interface, reached by this "
        "machine's name); other than 127.0.0.1 only with --admin-token.",
    ),
]


@app.command()
def estate(
    scenario: ScenarioArg = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on --bind.")] = 8701,
    speed: Annotated[
        float, typer.Option(min=0.001, max=MAX_SPEED, help="Scenario seconds per wall second.")
    ] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    overrides: SetOption = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="PROMOHARNESS_ESTATE_TOKEN",
            help="Bearer token for /truth and /admin (default: a new one, printed).",
        ),
    ] = None,
    callback: Annotated[
        list[str] | None,
        typer.Option(
            "--callback",
            help="CHANNEL=URL: where that channel's webhook acks go (repeatable; a system "
            "can also declare it with PUT /admin/callbacks/{channel}).",
        ),
    ] = None,
    estate_shards: Annotated[
        int,
        typer.Option(
            "--estate-shards",
            help="Serve the endpoints from N processes, --port being their "
            "front (0: all in this process).",
        ),
    ] = 0,
    shard_via: ShardViaOption = None,
    bind: BindOption = "127.0.0.1",
) -> None:
    """Serve a scenario's whole estate on 127.0.0.1 (or --bind) for YOUR system to deliver to.

    Prints the URLs (deliveries, endpoint listing, clock, contract, ground truth) and the
    admin token; Ctrl-C stops it cleanly. The delivery API: `promoharness contract estate`.
    """
    import asyncio
    import secrets

    from harness.runtime.world import build_world
    from harness.scenario import load_scenario
    from harness.shards import check_network
    from simulators.apps import create_sim_app, run_sim_server

    check_seed(seed)
    if admin_token is not None and not admin_token.strip():
        raise InputError("must not be empty", field="--admin-token")
    check_network(bind, shard_via or (), admin_token)
    if shard_via and not estate_shards:
        raise InputError("starts shards: give --estate-shards N too", field="--shard-via")
    chosen = load_scenario(scenario, overrides or [])
    world = build_world(chosen, seed)
    callbacks = parse_callbacks(callback or [], world)
    token = admin_token or secrets.token_urlsafe(18)
    if estate_shards:
        _serve_shards(
            world, estate_shards, port, speed, token, callbacks, via=shard_via or (), bind=bind
        )
        return

    async def main() -> None:
        app_ = create_sim_app(world, speed=speed, admin_token=token)
        state = app_.state.sim
        for channel, url in callbacks.items():
            state.set_callback(channel, url, {})
        try:
            server = await run_sim_server(app_, port, bind)
        except OSError as exc:
            raise InputError(
                f"cannot serve on {bind}:{port}: {exc.strerror or exc}", field="--port"
            ) from None
        schedule = rate_faults(world)
        if schedule:
            state.spawn(app_.state.faults.play(schedule))
        print_banner(world, server.url, token, speed, callbacks, len(schedule))
        try:
            await until_interrupted()
        finally:
            await server.stop()

    from harness.runtime.live import full_collections_deferred

    with full_collections_deferred():  # no full-collection stalls while serving
        asyncio.run(main())


def _serve_shards(
    world: World,
    count: int,
    port: int,
    speed: float,
    token: str,
    callbacks: dict[str, str],
    *,
    via: Sequence[str] = (),
    bind: str = "127.0.0.1",
) -> None:
    """``estate --estate-shards N``: N shard processes (through ``via``), their front on
    ``bind``:``port``."""
    import asyncio
    import time

    import aiohttp

    from harness.estate_front import create_front_app
    from harness.shards import ShardSet, check_count
    from simulators.apps import run_sim_server

    check_count(count, len(world.delivery_models))
    shards = ShardSet.launch(world, count, admin_token=token, play_faults=True, via=via, bind=bind)

    async def main() -> None:
        try:
            server = await run_sim_server(create_front_app(shards), port, bind)
        except OSError as exc:
            raise InputError(
                f"cannot serve on {bind}:{port}: {exc.strerror or exc}", field="--port"
            ) from None
        try:
            shards.go(time.time(), speed)
            async with aiohttp.ClientSession() as http:
                for channel, url in callbacks.items():
                    async with http.put(
                        f"{server.url}/admin/callbacks/{channel}",
                        json={"url": url},
                        headers={"Authorization": f"Bearer {token}"},
                    ) as resp:
                        resp.raise_for_status()
            print_banner(
                world,
                server.url,
                token,
                speed,
                callbacks,
                len(rate_faults(world)),
                shards=shards.describe(),
            )
            await until_interrupted()
        finally:
            await server.stop()

    from harness.runtime.live import full_collections_deferred

    try:
        with full_collections_deferred():  # no full-collection stalls while serving
            asyncio.run(main())
    finally:
        shards.stop()


def parse_callbacks(items: list[str], world: World) -> dict[str, str]:
    """``CHANNEL=URL`` options -> {channel: url}; exit 2 naming the bad one."""
    pushing = sorted({m.channel for m in world.delivery_models if m.ack_via == "push"})
    out: dict[str, str] = {}
    for item in items:
        channel, sep, url = item.partition("=")
        if not sep or not url:
            raise InputError(f"{item!r} is not CHANNEL=URL", field="--callback")
        if channel not in pushing:
            raise InputError(
                f"channel {channel!r} sends no webhooks in this estate; those that do: "
                f"{', '.join(pushing) or 'none'}",
                field="--callback",
            )
        if not url.startswith(("http://", "https://")):
            raise InputError(
                f"URL must start with http:// or https://: {url!r}", field="--callback"
            )
        out[channel] = url
    return out


def rate_faults(world: World) -> list[tuple[float, float | None, Fault]]:
    """The scenario's faults switched at run time (``harness.shards.rate_faults``)."""
    from harness.shards import rate_faults as faults_of

    return faults_of(world)


def print_banner(
    world: World,
    url: str,
    token: str,
    speed: float,
    callbacks: dict[str, str],
    faults: int,
    shards: list[dict[str, Any]] | None = None,
) -> None:
    models = world.delivery_models
    first = next((m.id for m in models if m.channel == "pos"), models[0].id)
    pushing = sorted({m.channel for m in models if m.ack_via == "push"})
    rows = [
        ("deliveries", f"POST {url}/endpoints/{{endpoint_id}}/deliveries  (e.g. {first})"),
        ("listing", f"GET  {url}/estate/endpoints"),
        ("clock", f"GET  {url}/clock"),
        ("contract", f"GET  {url}/openapi.json  (promoharness contract estate)"),
        ("truth", f"GET  {url}/truth  (and /truth/active, /truth/inventory)"),
        ("faults", f"POST {url}/admin/faults"),
        ("callbacks", f"PUT  {url}/admin/callbacks/{{channel}}  ({', '.join(pushing)})"),
        ("admin token", f"{token}  (Authorization: Bearer <token> on /truth and /admin)"),
    ]
    console.print(
        f"promoharness estate for scenario {world.scenario.name} (seed {world.seed}, "
        f"speed {speed:g}x): {len(models)} endpoints",
        highlight=False,
        soft_wrap=True,
    )
    for name, text in rows:
        console.print(f"  {name:<12} {text}", highlight=False, markup=False, soft_wrap=True)
    for channel, target in sorted(callbacks.items()):
        console.print(f"  webhooks     {channel} -> {target}", highlight=False, markup=False)
    if faults:
        console.print(f"  {faults} scheduled rate fault(s) switch at their scenario times")
    for shard in shards or ():
        console.print(
            f"  shard {shard['index']:<6} {shard['url']}  ({len(shard['endpoints'])} endpoints, "
            f"pid {shard['pid']})",
            highlight=False,
            markup=False,
        )
    if shards:
        console.print(
            f"  the front at {url} redirects a delivery to its shard; deliver to the "
            "delivery_url /estate/endpoints gives (the shard itself) to skip the hop",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print("Ctrl-C to stop.")
