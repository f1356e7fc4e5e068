"""``promoharness estate SCENARIO``: the scenario's whole estate as a target for any system.

It serves the ERP, every store, the web shop, loyalty and the marketplace on 127.0.0.1
with the scenario's faults (outages in the endpoints' profiles from the start, rate
faults switched at their scenario times), for any orchestrator to deliver to; the
delivery API is the published contract (``promoharness contract estate``). Nothing is
delivered by promoharness itself: the system under test does that, and the estate's
ground truth (``/truth``, behind the admin token) says what really happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.common import ScenarioArg, SetOption, app, check_seed, console
from harness.inputs import InputError

if TYPE_CHECKING:
    from harness.runtime.world import World
    from simulators.served import Fault


@app.command()
def estate(
    scenario: ScenarioArg = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1.")] = 8701,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Scenario seconds per wall second.")
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
) -> None:
    """Serve a scenario's whole estate on 127.0.0.1 for YOUR system to deliver to.

    Prints the URLs (deliveries, endpoint listing, clock, contract, ground truth) and the
    admin token; Ctrl-C stops it cleanly. The delivery API: `promoharness contract estate`.
    """
    import asyncio
    import secrets
    import signal

    from harness.runtime.world import build_world
    from harness.scenario import load_scenario
    from simulators.apps import HOST, create_sim_app, run_sim_server

    check_seed(seed)
    if admin_token is not None and not admin_token.strip():
        raise InputError("must not be empty", field="--admin-token")
    chosen = load_scenario(scenario, overrides or [])
    world = build_world(chosen, seed)
    callbacks = parse_callbacks(callback or [], world)
    token = admin_token or secrets.token_urlsafe(18)

    async def main() -> None:
        app_ = create_sim_app(world, speed=speed, admin_token=token)
        state = app_.state.sim
        for channel, url in callbacks.items():
            state.set_callback(channel, url, {})
        try:
            server = await run_sim_server(app_, port)
        except OSError as exc:
            raise InputError(
                f"cannot serve on {HOST}:{port}: {exc.strerror or exc}", field="--port"
            ) from None
        schedule = rate_faults(world)
        if schedule:
            state.spawn(app_.state.faults.play(schedule))
        print_banner(world, server.url, token, speed, callbacks, len(schedule))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            console.print("stopping…")
            await server.stop()

    asyncio.run(main())


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
    """The scenario's faults that are switched at run time (outages are in the profiles)."""
    from simulators.served import OUTAGE_FAULTS, Fault

    return [
        (
            f.start,
            f.end,
            Fault(f.kind, f.region, f.channel, tuple(f.endpoints), f.rate, f.mode),
        )
        for f in world.scenario.faults
        if f.kind not in OUTAGE_FAULTS
    ]


def print_banner(
    world: World, url: str, token: str, speed: float, callbacks: dict[str, str], faults: int
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
    console.print("Ctrl-C to stop.")
