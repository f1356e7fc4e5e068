"""The live stack on loopback: endpoint simulators, the orchestrator service, the live runtime.

``start_stack`` builds the scenario's world once and serves it twice over real HTTP on
127.0.0.1: the simulator app (every endpoint model, real sleeps) and the orchestrator API
(FastAPI) over a ``LiveRuntime`` journalled in SQLite. Both share one scenario clock, so
ground truth from the simulators and the orchestrator's records line up in one event log.
Used by ``promoharness serve`` and ``promoharness live``. With ``estate_shards`` N > 0 the
simulators run in N processes (``harness/shards.py``) behind a front on the simulators'
port (``harness/estate_front.py``); the orchestrator delivers to each endpoint's shard.
Either way the estate switches the scenario's rate faults at their times, as the SimPy
runtime does (``live_faults``). ``bind`` (``serve --bind``) puts every server on another
address than 127.0.0.1, so the stack can be reached from other machines.

A state file remembers whose it is: the scenario's name, the seed and a digest of the
estate's endpoint inventory. Reopening it for another scenario (or the same one with
``--set estate.stores=10``) would replay its journal against endpoints that are not there,
so ``open_state`` refuses it with one ``BadState`` line naming both identities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.domain.eventlog import Record
from harness.orchestrator.state import EndpointInfo
from harness.runtime.live import WINDOW_HOLD, EndpointDirectory, LiveClock, LiveRuntime
from harness.runtime.store import BadState, Store
from harness.runtime.world import World, build_world
from harness.scenario import Scenario
from harness.service import KeyRing, create_app
from harness.service.auth import DEMO_KEYS
from simulators.apps import SimServer, create_sim_app, reachable_host, run_sim_server

if TYPE_CHECKING:
    from harness.shards import ShardSet
    from simulators.served import Fault

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def channel_keys() -> dict[str, str]:
    """The demo channel keys the simulated adapters acknowledge with, per channel."""
    return {p.channel: key for key, p in DEMO_KEYS.items() if p.role == "channel" and p.channel}


@dataclass
class Stack:
    world: World
    runtime: LiveRuntime
    store: Store
    clock: LiveClock
    sim: SimServer
    api: SimServer
    sim_token: str | None = None  # the simulators' admin token (ground truth, faults)
    shards: ShardSet | None = None  # the estate's processes when sharded (sim is their front)

    @property
    def api_url(self) -> str:
        return self.api.url

    @property
    def sim_url(self) -> str:
        return self.sim.url

    async def stop(self) -> None:
        if self.sim.sim is not None:
            # The estate hears of the stop first, so a webhook it sends to the orchestrator's
            # API, stopped next, fails quietly instead of warning of a dead orchestrator. Not
            # release(): hung deliveries answered 503 now would be journalled (and retried)
            # by an orchestrator that is still running, after the run's end.
            self.sim.sim.webhooks_quiet = True
        await self.api.stop()
        await self.runtime.close()
        await self.sim.stop()
        if self.shards is not None:
            await asyncio.to_thread(self.shards.stop)
        self.store.close()


async def start_simulators(
    world: World,
    *,
    api_url: str,
    clock: LiveClock,
    port: int = 0,
    admin_token: str | None = None,
    bind: str = HOST,
    play: bool = True,
) -> SimServer:
    """Serve every endpoint model of ``world`` on ``bind``; webhooks go to ``api_url``. With
    ``admin_token``, ground truth and the fault API need it (``fetch_truth(token=)``).
    ``play=False``: the faults wait for ``play_estate`` (the caller fixes t=0 first).

    The scenario's rate faults (error rate, lost acks, quota, capacity) are switched on and
    off at their times for the server's lifetime, as the SimPy runtime switches them
    (``FaultSwitch.play``, cancelled with the server's other tasks when it stops)."""
    app = create_sim_app(
        world,
        callback_url=f"{api_url}/v1/callbacks/ack",
        callback_key=channel_keys(),
        speed=clock.speed,
        t0=clock.monotonic_origin(),
        admin_token=admin_token,
    )
    server = await run_sim_server(app, port, bind)
    if play:
        _play_faults(server, world, clock)
    return server


def _play_faults(server: SimServer, world: World, clock: LiveClock) -> None:
    app = server.config.app
    schedule = live_faults(world, clock.now())
    if schedule:
        app.state.sim.spawn(app.state.faults.play(schedule))


def play_estate(
    sim: SimServer, world: World, clock: LiveClock, shards: ShardSet | None = None
) -> None:
    """Start the estate's scenario clock at ``clock``'s t=0 and play its rate faults: the
    in-process simulators' clock follows ``clock``; shards get its epoch (``ShardSet.go``)."""
    if shards is not None:
        shards.go(clock.epoch, clock.speed)
        return
    if sim.sim is not None:
        sim.sim.clock.t0 = clock.monotonic_origin()
    _play_faults(sim, world, clock)


def live_faults(world: World, now: float) -> list[tuple[float, float | None, Fault]]:
    """The rate faults a live estate still has to switch at scenario time ``now``.

    A window already over (a restart from a state file) is left off rather than played on
    and off at once (a zero-length record the SimPy run never writes); one under way is
    switched on now. An open-ended fault is switched off at the scenario's end: the SimPy
    runtime records it with that duration, and ``FaultSwitch`` records a fault when it ends.
    """
    from harness.shards import rate_faults

    duration = world.scenario.duration
    return [
        (start, duration if end is None else end, fault)
        for start, end, fault in rate_faults(world, now)
        if end is not None or duration > now
    ]


async def launch_shards(
    world: World,
    count: int,
    *,
    api_url: str,
    admin_token: str | None = None,
    via: Sequence[str] = (),
    bind: str = HOST,
) -> ShardSet | None:
    """``count`` estate processes listening, their clock not yet set (``start_estate``
    sets it): launched before the state file fixes t=0, their start costs no scenario
    time. None when ``count`` is 0 (the estate runs in this process). ``via``/``bind``:
    ``--shard-via`` prefixes and the shards' bind address (``harness/shards.py``)."""
    if not count:
        return None
    from harness.shards import ShardSet

    return await asyncio.to_thread(
        ShardSet.launch,
        world,
        count,
        callback_url=f"{api_url}/v1/callbacks/ack",
        callback_key=channel_keys(),
        admin_token=admin_token,
        play_faults=True,  # the scenario's rate faults, as in-process (start_simulators)
        via=via,
        bind=bind,
    )


async def start_estate(
    world: World,
    *,
    api_url: str,
    clock: LiveClock,
    port: int = 0,
    admin_token: str | None = None,
    shards: ShardSet | None = None,
    bind: str = HOST,
    play: bool = True,
) -> SimServer:
    """The simulators on ``bind``: in this process, or ``shards`` (``launch_shards``) on
    ``clock`` behind a front on ``port`` that answers for the whole estate. ``play=False``:
    their clock and faults wait for ``play_estate``."""
    if shards is None:
        return await start_simulators(
            world,
            api_url=api_url,
            clock=clock,
            port=port,
            admin_token=admin_token,
            bind=bind,
            play=play,
        )
    from harness.estate_front import create_front_app

    if play:
        shards.go(clock.epoch, clock.speed)
    return await run_sim_server(create_front_app(shards), port, bind)


def state_identity(
    scenario: Scenario, seed: int, endpoints: Sequence[EndpointInfo]
) -> dict[str, object]:
    """Whose journal a state file holds: scenario, seed and the estate's endpoints."""
    inventory = json.dumps([dataclasses.astuple(e) for e in endpoints], separators=(",", ":"))
    digest = hashlib.sha256(inventory.encode()).hexdigest()[:16]
    return {"scenario": scenario.name, "seed": seed, "estate": digest, "endpoints": len(endpoints)}


def describe_identity(identity: dict[str, object]) -> str:
    return (
        f"scenario '{identity.get('scenario')}' (seed {identity.get('seed')}, "
        f"{identity.get('endpoints', '?')} endpoints, estate {identity.get('estate', '?')})"
    )


def open_state(
    state: Path,
    scenario: Scenario,
    seed: int,
    speed: float,
    *,
    endpoints: Sequence[EndpointInfo] | None = None,
) -> tuple[Store, LiveClock]:
    """The SQLite state and the scenario clock it carries (a restart resumes both).

    Raises ``BadState`` for a file that is not a usable state file or that belongs to
    another scenario, seed or estate (``endpoints``: the estate's inventory)."""
    store = Store(state, check=True)
    try:
        identity = state_identity(scenario, seed, endpoints or ())
        epoch = store.get("epoch")
        if epoch is None:
            epoch_value = time.time()
            store.put("epoch", epoch_value)
            store.put("scenario", scenario.name)
            store.put("seed", seed)
            store.put("speed", speed)
            store.put("identity", json.dumps(identity))
        else:
            _check_identity(store, identity, endpoints is not None)
            epoch_value, speed = _number(store, "epoch"), _number(store, "speed", speed)
    except BaseException:
        store.close()
        raise
    return store, LiveClock(epoch_value, speed)


def restart_clock(store: Store, clock: LiveClock) -> None:
    """Make now scenario t=0, for a state file this process created, once every part
    serves: start-up (seconds on a busy machine, a minute of scenario time at 20x) would
    otherwise make the first timeline steps overdue and fire them back to back, refusing
    those that wait on an earlier step's effect. A restart keeps the clock it resumes
    (its downtime is scenario time), so only a new file's clock is restarted."""
    clock.epoch = time.time()
    store.put("epoch", clock.epoch)


def start_clock(
    store: Store,
    clock: LiveClock,
    sim: SimServer,
    world: World,
    shards: ShardSet | None,
    *,
    fresh: bool,
) -> None:
    """Once the estate and the API serve: t=0 now for a new state file
    (``restart_clock``), then the estate's clock and rate faults on it (``play_estate``)."""
    if fresh:
        restart_clock(store, clock)
    play_estate(sim, world, clock, shards)


def _number(store: Store, key: str, default: float | None = None) -> float:
    text = store.get(key)
    try:
        value = float(text) if text is not None else default
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise BadState(f"meta '{key}' is {text!r}, not a number", path=store.path)
    if key == "speed" and value <= 0:
        raise BadState(f"meta 'speed' is {text!r}, not > 0", path=store.path)
    return value


def _check_identity(store: Store, identity: dict[str, object], full: bool) -> None:
    text = store.get("identity")
    if text is None:
        # Written before state files carried an identity: name and seed are all it has.
        stored: dict[str, object] = {"scenario": store.get("scenario"), "seed": store.get("seed")}
        mine = {"scenario": identity["scenario"], "seed": str(identity["seed"])}
        if stored != mine:
            raise BadState(
                f"holds {describe_identity(stored)}, not {describe_identity(identity)}; "
                "use another --state, or the scenario, seed and --set overrides it was made with",
                path=store.path,
            )
        if full:
            store.put("identity", json.dumps(identity))
        return
    try:
        stored = json.loads(text)
        assert isinstance(stored, dict)
    except (ValueError, AssertionError):
        raise BadState(f"meta 'identity' is not JSON: {text[:60]!r}", path=store.path) from None
    keys = ("scenario", "seed", "estate", "endpoints") if full else ("scenario", "seed")
    if any(stored.get(k) != identity[k] for k in keys):
        raise BadState(
            f"holds {describe_identity(stored)}, not {describe_identity(identity)}; "
            "use another --state, or the scenario, seed and --set overrides it was made with",
            path=store.path,
        )


async def start_service(
    world: World,
    store: Store,
    clock: LiveClock,
    *,
    sim_url: str,
    port: int = 0,
    rate: float = 200.0,
    burst: int = 400,
    poll_seconds: float = 60.0,
    window_hold: float = WINDOW_HOLD,
    shards: ShardSet | None = None,
    bind: str = HOST,
) -> tuple[LiveRuntime, SimServer]:
    """The live runtime over ``store`` (recovering its journal) and the API serving it on
    ``bind``; with ``shards`` it delivers to each endpoint's shard directly, not through
    the front. ``window_hold``: wall s a delivery may hold its place in the runtime's
    window (``harness.runtime.live.window_hold_for``)."""
    polled = frozenset(m.id for m in world.delivery_models if m.ack_via == "poll")
    directory = shards.directory(sim_url, polled) if shards else EndpointDirectory(sim_url, polled)
    runtime = LiveRuntime(
        world.orchestrator,
        store,
        directory,
        clock,
        poll_seconds=poll_seconds,
        window_hold=window_hold,
    )
    if port:
        _check_port(port, bind)  # before the replay re-sends anything
    await runtime.start()
    try:
        app = create_app(runtime, KeyRing.demo(), rate=rate, burst=burst)
        api = await run_sim_server(app, port, bind)
    except BaseException:
        await runtime.close()
        raise
    return runtime, api


def _check_port(port: int, bind: str = HOST) -> None:
    """OSError now if ``port`` is taken, rather than after the journal was replayed."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))


async def start_stack(
    scenario: Scenario,
    *,
    state: Path,
    seed: int | None = None,
    speed: float = 1.0,
    api_port: int = 0,
    sim_port: int = 0,
    rate: float = 200.0,
    burst: int = 400,
    poll_seconds: float = 60.0,
    window_hold: float = WINDOW_HOLD,
    admin_token: str | None = None,
    estate_shards: int = 0,
    shard_via: Sequence[str] = (),
    bind: str = HOST,
) -> Stack:
    """Start simulators, runtime and API; ``state`` is the SQLite file (resumed if it has a
    journal: a restarted service continues its clock and its deliveries). ``admin_token``
    guards the simulators' truth and faults (``Stack.sim_token``). ``estate_shards`` > 0:
    the simulators in that many processes (``harness/shards.py``), started through
    ``shard_via``; every server listens on ``bind``."""
    world = build_world(scenario, seed)
    api_port = api_port or free_port()
    api_url = f"http://{reachable_host(bind)}:{api_port}"
    shards = await launch_shards(
        world, estate_shards, api_url=api_url, admin_token=admin_token, via=shard_via, bind=bind
    )
    sim = store = None
    fresh = not Path(state).exists()
    try:
        store, clock = open_state(
            state, scenario, world.seed, speed, endpoints=world.endpoint_infos()
        )
        sim = await start_estate(
            world,
            api_url=api_url,
            clock=clock,
            port=sim_port,
            admin_token=admin_token,
            shards=shards,
            bind=bind,
            play=False,
        )
        runtime, api = await start_service(
            world,
            store,
            clock,
            sim_url=sim.url,
            port=api_port,
            rate=rate,
            burst=burst,
            poll_seconds=poll_seconds,
            window_hold=window_hold,
            shards=shards,
            bind=bind,
        )
        start_clock(store, clock, sim, world, shards, fresh=fresh)
    except BaseException:
        if sim is not None:
            await sim.stop()
        if shards is not None:
            await asyncio.to_thread(shards.stop)
        if store is not None:
            store.close()
        raise
    return Stack(world, runtime, store, clock, sim, api, admin_token, shards)


async def fetch_truth(session: Any, sim_url: str, token: str | None = None) -> list[Record]:
    """Ground truth from the simulators: inventory, outages, applied/removed, faults
    (``token``: the simulators' admin token, when they run with one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out: list[Record] = []
    async with session.get(f"{sim_url}/truth/inventory", headers=headers) as resp:
        resp.raise_for_status()
        out.extend(Record(**r) for r in (await resp.json())["records"])
    async with session.get(f"{sim_url}/truth", headers=headers) as resp:
        resp.raise_for_status()
        out.extend(Record(**r) for r in (await resp.json())["records"])
    return out
