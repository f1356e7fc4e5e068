"""The live stack on loopback: endpoint simulators, the orchestrator service, the live runtime.

``start_stack`` builds the scenario's world once and serves it twice over real HTTP on
127.0.0.1: the simulator app (every endpoint model, real sleeps) and the orchestrator API
(FastAPI) over a ``LiveRuntime`` journalled in SQLite. Both share one scenario clock, so
ground truth from the simulators and the orchestrator's records line up in one event log.
Used by ``promoharness serve`` and ``promoharness live``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.domain.eventlog import Record
from harness.runtime.live import EndpointDirectory, LiveClock, LiveRuntime
from harness.runtime.store import Store
from harness.runtime.world import World, build_world
from harness.scenario import Scenario
from harness.service import KeyRing, create_app
from harness.service.auth import DEMO_KEYS
from simulators.apps import SimServer, create_sim_app, run_sim_server

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

    @property
    def api_url(self) -> str:
        return self.api.url

    @property
    def sim_url(self) -> str:
        return self.sim.url

    async def stop(self) -> None:
        await self.api.stop()
        await self.runtime.close()
        await self.sim.stop()
        self.store.close()


async def start_simulators(
    world: World, *, api_url: str, clock: LiveClock, port: int = 0
) -> SimServer:
    """Serve every endpoint model of ``world``; webhooks go to ``api_url``."""
    return await run_sim_server(
        create_sim_app(
            world,
            callback_url=f"{api_url}/v1/callbacks/ack",
            callback_key=channel_keys(),
            speed=clock.speed,
            t0=clock.monotonic_origin(),
        ),
        port,
    )


def open_state(state: Path, scenario: Scenario, seed: int, speed: float) -> tuple[Store, LiveClock]:
    """The SQLite state and the scenario clock it carries (a restart resumes both)."""
    store = Store(state)
    epoch = store.get("epoch")
    if epoch is None:
        epoch_value = time.time()
        store.put("epoch", epoch_value)
        store.put("scenario", scenario.name)
        store.put("seed", seed)
        store.put("speed", speed)
    else:
        epoch_value = float(epoch)
        speed = float(store.get("speed") or speed)
    return store, LiveClock(epoch_value, speed)


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
) -> tuple[LiveRuntime, SimServer]:
    """The live runtime over ``store`` (recovering its journal) and the API serving it."""
    polled = frozenset(m.id for m in world.delivery_models if m.ack_via == "poll")
    runtime = LiveRuntime(
        world.orchestrator,
        store,
        EndpointDirectory(sim_url, polled),
        clock,
        poll_seconds=poll_seconds,
    )
    await runtime.start()
    api = await run_sim_server(create_app(runtime, KeyRing.demo(), rate=rate, burst=burst), port)
    return runtime, api


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
) -> Stack:
    """Start simulators, runtime and API; ``state`` is the SQLite file (resumed if it has a
    journal: a restarted service continues its clock and its deliveries)."""
    world = build_world(scenario, seed)
    store, clock = open_state(state, scenario, world.seed, speed)
    api_port = api_port or free_port()
    sim = await start_simulators(
        world, api_url=f"http://{HOST}:{api_port}", clock=clock, port=sim_port
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
    )
    return Stack(world, runtime, store, clock, sim, api)


async def fetch_truth(session: Any, sim_url: str) -> list[Record]:
    """Ground truth from the simulators: inventory, outages, applied/removed, faults."""
    out: list[Record] = []
    async with session.get(f"{sim_url}/truth/inventory") as resp:
        out.extend(Record(**r) for r in (await resp.json())["records"])
    async with session.get(f"{sim_url}/truth") as resp:
        out.extend(Record(**r) for r in (await resp.json())["records"])
    return out
