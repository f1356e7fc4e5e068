"""Kill and restart: the orchestrator service, a subprocess, gets SIGKILL in the middle of a
600-store publish and is restarted on the same state. Every endpoint must end with the
version applied exactly once, and the audit trail must be whole.

The simulators run in their own process and survive the kill, like a real estate.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from harness.domain.eventlog import Record
from harness.orchestrator.commands import WriteRecord
from harness.runtime import codec
from harness.runtime.store import Store
from harness.runtime.world import build_world
from harness.scenario import load_scenario

SCENARIO = Path(__file__).with_name("crash.yaml")
VIEW = {"X-API-Key": "viewer-demo-key"}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(component: str, api: int, sim: int, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "serve",
            str(SCENARIO),
            "--component",
            component,
            "--api-port",
            str(api),
            "--sim-port",
            str(sim),
            "--state",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None  # type: ignore[assignment]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def up(url: str) -> bool:
    return httpx.get(f"{url}/healthz", timeout=1).status_code == 200


def post(api: str, path: str, key: str, body: object = None) -> None:
    r = httpx.post(f"{api}{path}", json=body, headers={"X-API-Key": key}, timeout=30)
    assert r.status_code < 400, r.text


PROMOTION = {
    "id": "CRASH-1",
    "name": "crash test: 10% off everything",
    "validity": {
        "start": "2026-11-28T00:00:00",
        "end": "2026-11-29T00:00:00",
        "timezone": "America/New_York",
    },
    "scope": {"channels": ["pos", "ecommerce"]},
    "benefit": {"type": "percent_off", "percent": 10},
}


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)


def test_sigkill_mid_publish_then_restart(tmp_path: Path) -> None:
    api_port, sim_port = free_port(), free_port()
    api, sim_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    state = tmp_path / "orchestrator.db"
    sim = spawn("sim", api_port, sim_port, state)
    service = spawn("api", api_port, sim_port, state)
    procs = [service, sim]
    try:
        wait_for(lambda: up(sim_url), 60, "the simulators")
        wait_for(lambda: up(api), 60, "the service")
        post(api, "/v1/promotions", "merch-demo-key", PROMOTION)
        post(api, "/v1/promotions/CRASH-1/submit", "merch-demo-key")
        post(api, "/v1/promotions/CRASH-1/validate", "merch-demo-key")
        wait_for(
            lambda: (
                httpx.get(f"{api}/v1/promotions/CRASH-1?endpoints=false", headers=VIEW).json()[
                    "state"
                ]
                == "validated"
            ),
            30,
            "validation",
        )
        post(api, "/v1/promotions/CRASH-1/approve", "approver-demo-key")
        post(api, "/v1/promotions/CRASH-1/publish", "operator-demo-key", {})

        def stores_with_it() -> int:
            active = httpx.get(f"{sim_url}/truth/active").json()
            return sum(
                1 for ep, promos in active.items() if ep.startswith("S") and "CRASH-1" in promos
            )

        # Mid-publish: 40 in flight at a time, 1 s each — kill once ~100 stores have it.
        before = wait_for(lambda: (n := stores_with_it()) >= 100 and n, 60, "a partial publish")
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        assert 0 < before < 600

        service = spawn("api", api_port, sim_port, state)
        procs[0] = service
        wait_for(lambda: up(api), 60, "the restarted service")
        wait_for(
            lambda: (
                httpx.get(f"{api}/v1/promotions/CRASH-1?endpoints=false", headers=VIEW).json()[
                    "state"
                ]
                == "active"
            ),
            120,
            "full activation after the restart",
        )
        truth = httpx.get(f"{sim_url}/truth").json()["records"]
    finally:
        stop(procs)

    # Every store and the web shop applied version 1 exactly once: the deliveries re-sent
    # after the restart carried the same idempotency keys and were dropped as duplicates.
    applied = Counter(
        (r["endpoint"], r["version"])
        for r in truth
        if r["kind"] == "applied" and r["promo"] == "CRASH-1"
    )
    world = build_world(load_scenario(SCENARIO))
    targets = {m.id for m in world.delivery_models if m.channel in ("pos", "ecommerce", "erp")}
    assert set(ep for ep, _ in applied) == targets
    assert set(applied.values()) == {1}
    assert {v for _, v in applied} == {1}

    # The audit trail is whole: record numbers have no gap, and replaying the journal
    # through a fresh core yields exactly the stored records, in order.
    store = Store(state)
    stored = store.records()
    assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
    orch = world.orchestrator(random.Random(f"{world.seed}:orchestrator"))
    replayed: list[Record] = []
    for _, t, text in store.journal():
        replayed += [
            c.record for c in orch.handle(codec.decode(text), t) if isinstance(c, WriteRecord)
        ]
    assert replayed == [r for _, r in stored]
    per_store: dict[str, set[str]] = {}
    for r in replayed:
        per_store.setdefault(r.endpoint, set()).add(r.kind)
    assert all({"target", "send", "result", "ack"} <= per_store[ep] for ep in targets)
    assert orch.status("CRASH-1") == "active"
    store.close()
