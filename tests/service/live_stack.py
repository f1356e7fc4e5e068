"""Real servers for the service tests: the orchestrator API over a real LiveRuntime, and
the endpoint simulators it delivers to, both under uvicorn on 127.0.0.1.

They run on an event loop in a background thread, so tests talk to them over real
sockets with an ordinary (synchronous) httpx client. The simulators push their webhooks
to the API's /v1/callbacks/ack, each channel with its own channel's demo key.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from harness.runtime.live import EndpointDirectory, LiveClock, LiveRuntime
from harness.runtime.store import Store
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from harness.service import DEMO_KEYS, KeyRing, create_app
from simulators.apps import create_sim_app, run_sim_server

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
ESTATE = Path(__file__).with_name("estate.yaml")
SPEED = 10.0  # scenario seconds per wall second: fixed latencies of 0.05 s become 5 ms
T = TypeVar("T")

# Each simulated channel adapter acknowledges with its own channel's key.
CHANNEL_KEYS = {p.channel: key for key, p in DEMO_KEYS.items() if p.channel is not None}
KEYS = {
    "merch": "merch-demo-key",
    "approver": "approver-demo-key",
    "operator": "operator-demo-key",
    "finance": "finance-demo-key",
    "viewer": "viewer-demo-key",
    "pos": "channel-pos-demo-key",
    "ecommerce": "channel-ecommerce-demo-key",
}


def promotion_body(promo: str, **changes: Any) -> dict[str, Any]:
    """A valid canonical promotion (JSON) that the simulated ERP validates."""
    body: dict[str, Any] = {
        "id": promo,
        "name": f"{promo}: 10% off everything",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-29T00:00:00",
            "timezone": "America/New_York",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty"]},
        "benefit": {"type": "percent_off", "percent": 10},
    }
    body.update(changes)
    return body


class LoopThread:
    """An asyncio loop running in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Stack:
    url: str
    runtime: LiveRuntime
    loop: LoopThread

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"X-API-Key": KEYS.get(who, who)} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)


async def _serve(app: FastAPI, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


@contextlib.contextmanager
def _sim_process(callback_url: str, speed: float, t0: float, overrides: list[str]) -> Iterator[str]:
    """The simulators in a child process (see sim_process.py); yields their base URL."""
    args = [callback_url, str(speed), repr(t0), *overrides]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.service.sim_process", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"simulator process did not start (said {url!r})")
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def running_stack(
    db: Path,
    *,
    overrides: list[str] | None = None,
    speed: float = SPEED,
    separate_simulators: bool = False,
    **app_options: Any,
) -> Iterator[Stack]:
    """Simulators + LiveRuntime + the API, all up; torn down on exit.

    ``separate_simulators``: serve the estate from a child process instead of the
    orchestrator's own event loop (for load tests, where a 600-store estate would
    otherwise compete with the orchestrator for the loop and the GIL).
    """
    overrides = overrides or []
    loop = LoopThread()
    # Bound first: the simulators must know where to send their webhooks.
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it every response (headers and body written apart) waits out the
    # client's delayed ACK, ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    callback = f"{url}/v1/callbacks/ack"
    world = build_world(load_scenario(ESTATE, overrides))
    clock = LiveClock(speed=speed)
    store = Store(db)
    polled = frozenset(m.id for m in world.delivery_models if m.ack_via == "poll")

    async def sim_here() -> Any:
        sim_app = create_sim_app(
            world,
            callback_url=callback,
            callback_key=CHANNEL_KEYS,
            speed=speed,
            t0=clock.monotonic_origin(),
        )
        return await run_sim_server(sim_app)

    async def up(sim_url: str) -> tuple[LiveRuntime, uvicorn.Server, asyncio.Task[None]]:
        directory = EndpointDirectory(sim_url, polled)
        runtime = LiveRuntime(world.orchestrator, store, directory, clock)
        await runtime.start()
        app = create_app(runtime, KeyRing.demo(), **app_options)
        server, task = await _serve(app, sock)
        return runtime, server, task

    with contextlib.ExitStack() as exits:
        sim = None
        if separate_simulators:
            sim_url = exits.enter_context(
                _sim_process(callback, speed, clock.monotonic_origin(), overrides)
            )
        else:
            sim = loop.run(sim_here())
            sim_url = sim.url
        runtime, server, task = loop.run(up(sim_url))
        try:
            yield Stack(url, runtime, loop)
        finally:

            async def down() -> None:
                server.should_exit = True
                await task
                await runtime.close()
                if sim is not None:
                    await sim.stop()

            loop.run(down())
            store.close()
            loop.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
