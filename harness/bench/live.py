"""``promoharness bench live``: the live stack against a bare aiohttp-to-uvicorn fan-out.

* One promotion published to 600 stores and the 4 other channels (ERP, ecommerce,
  loyalty, marketplace) with no injected latency: the time from the publish call to full
  *acknowledged* activation (every target acked), against the time a bare aiohttp client
  takes to POST 604 requests to a bare uvicorn app in the same run (target <= 2x).
* Status reads answered per second by the API while that publish runs, from a reader in a
  process of its own (target >= 500/s).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness.scenario import Scenario, StepSpec, load_scenario
from simulators.apps import run_sim_server

READER = Path(__file__).with_name("readload.py")


def bench_scenario() -> Scenario:
    quiet = "latency: {kind: fixed, mean: 0.0005}, error_rate: 0, timeout_rate: 0, lost_ack_rate: 0"
    base = load_scenario(
        "weekend-private-label",
        [
            "traffic.kind=none",
            "faults=[]",
            f"endpoints.pos={{{quiet}, random_outages: null}}",
            f"endpoints.erp={{{quiet}}}",
            f"endpoints.loyalty={{{quiet}}}",
            f"endpoints.ecommerce={{{quiet}, ack_delay: {{kind: fixed, mean: 0.0005}}}}",
            f"endpoints.marketplace={{{quiet}, ack_delay: {{kind: fixed, mean: 0.0005}},"
            " rate_limit: {rate: 1000, burst: 1000}}",
            "estate.regions=[{name: east, timezone: America/New_York, batch_share: 0,"
            " link: healthy-pos}]",
        ],
    )
    promo = base.promotions[0].model_copy(
        update={
            "scope": base.promotions[0].scope.model_copy(
                update={"channels": ["pos", "ecommerce", "loyalty", "marketplace"]}
            )
        }
    )
    return base.model_copy(
        update={
            "promotions": [promo],
            "timeline": [StepSpec(at=0, action="create", promo=promo.id)],
            "slos": [],
            "series": {},
        }
    )


async def bare_fan_out(n: int) -> float:
    """Wall seconds for ``n`` concurrent POSTs from one aiohttp session to a bare app."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"outcome":"ok"}'})

    server = await run_sim_server(app, 0)
    body = json.dumps({"delivery_id": "x" * 40, "payload": {"id": "P" * 20}})
    try:
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one(i: int) -> None:
                async with http.post(
                    f"{server.url}/endpoints/S{i:04d}/deliveries",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as r:
                    await r.read()

            await asyncio.gather(*(one(i) for i in range(20)))  # warm the pool like ours
            began = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return time.perf_counter() - began
    finally:
        await server.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def publish_to_activation(seconds_of_reads: float = 0.0) -> dict[str, Any]:
    """The estate's simulators run in a process of their own (as a real estate is not in
    the orchestrator's process); the orchestrator API and runtime run here."""
    from harness.runtime.world import build_world
    from harness.stack import open_state, start_service

    scenario = bench_scenario()
    promo = scenario.promotions[0]
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.yaml"
        spec.write_text(json.dumps(scenario.model_dump(mode="json", by_alias=True)))
        api_port, sim_port = _free_port(), _free_port()
        sim = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from harness.cli import main; main()",
                "serve",
                str(spec),
                "--component",
                "sim",
                "--api-port",
                str(api_port),
                "--sim-port",
                str(sim_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        world = build_world(scenario)
        store, clock = open_state(Path(tmp) / "state.db", scenario, world.seed, 1.0)
        runtime = api = None
        try:
            await _wait_up(f"http://127.0.0.1:{sim_port}")
            runtime, api = await start_service(
                world,
                store,
                clock,
                sim_url=f"http://127.0.0.1:{sim_port}",
                port=api_port,
                rate=1e6,
                burst=10**6,
                poll_seconds=0.01,
            )
            targets = len(world.delivery_models)
            async with aiohttp.ClientSession(base_url=api.url) as http:

                async def call(path: str, key: str, body: object = None) -> None:
                    async with http.post(path, json=body, headers={"X-API-Key": key}) as r:
                        assert r.status < 400, await r.text()

                await call(
                    "/v1/promotions", "merch-demo-key", promo.model_dump(mode="json", by_alias=True)
                )
                await call(f"/v1/promotions/{promo.id}/submit", "merch-demo-key")
                await call(f"/v1/promotions/{promo.id}/validate", "merch-demo-key")
                while runtime.orchestrator.status(promo.id) != "validated":
                    await asyncio.sleep(0.01)
                await call(f"/v1/promotions/{promo.id}/approve", "approver-demo-key")
                reader = None
                if seconds_of_reads:
                    reader = subprocess.Popen(
                        [
                            sys.executable,
                            str(READER),
                            api.url,
                            "viewer-demo-key",
                            promo.id,
                            str(seconds_of_reads),
                            "8",
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    await asyncio.sleep(0.5)  # let the reader connect and get going
                wall_began = time.time()
                began = time.perf_counter()
                await call(f"/v1/promotions/{promo.id}/publish", "operator-demo-key", {})
                while runtime.orchestrator.status(promo.id) != "active":
                    await asyncio.sleep(0.002)
                activation = time.perf_counter() - began
                reads = None
                if reader is not None:
                    out, _ = await asyncio.to_thread(reader.communicate)
                    answer = json.loads(out)
                    # Reads answered while the publish was running.
                    window = [
                        t for t in answer["times"] if wall_began <= t <= wall_began + activation
                    ]
                    reads = {
                        "reads_per_s": len(window) / activation,
                        "errors": answer["errors"],
                        "during_publish": len(window),
                    }
            return {"targets": targets, "activation_s": activation, "reads": reads}
        finally:
            if api is not None:
                await api.stop()
            if runtime is not None:
                await runtime.close()
            store.close()
            sim.terminate()
            sim.wait(20)


async def bench_live(repeats: int = 3) -> dict[str, Any]:
    best_ours = best_bare = float("inf")
    targets = 0
    for _ in range(repeats):
        ours = await publish_to_activation()
        targets = ours["targets"]
        best_ours = min(best_ours, ours["activation_s"])
        best_bare = min(best_bare, await bare_fan_out(targets))
    loaded = await publish_to_activation(seconds_of_reads=3.0)
    reads = loaded["reads"] or {}
    return {
        "targets": targets,
        "activation_s": best_ours,
        "bare_fan_out_s": best_bare,
        "ratio": best_ours / best_bare,
        "target_ratio": 2.0,
        "reads_per_s": reads.get("reads_per_s", 0.0),
        "read_errors": reads.get("errors", 0),
        "target_reads_per_s": 500.0,
    }


async def faithful_speeds(names: list[str] | None = None) -> list[dict[str, Any]]:
    """The faithful speed of each library scenario on this machine (harness/faithful.py),
    calibrated one after another, with what limits it and the load average."""
    import os

    from harness.faithful import faithful_speed, limits_of
    from harness.live_calibrate import calibrate
    from harness.runtime.world import build_world
    from harness.scenario import library_names

    rows = []
    for name in names or library_names():
        scenario = load_scenario(name)
        faithful, overhead = await calibrate(scenario)
        limit = faithful.limit
        # What the timeouts alone would allow (the latencies set the faithful speed when
        # the harness's per-delivery cost is a tenth of a store's service time).
        timeouts = [lim for lim in limits_of(build_world(scenario)) if lim.kind == "timeout"]
        rows.append(
            {
                "scenario": name,
                "endpoints": overhead.burst,
                "twin_speed": overhead.speed,
                "isolated_ms": overhead.isolated * 1000,
                "burst_p95_ms": overhead.at_concurrency * 1000,
                "burst_wall_s": overhead.burst_wall,
                "faithful_speed": faithful.speed,
                "timeouts_only_speed": faithful_speed(timeouts, overhead).speed,
                "limited_by": f"{limit.name} ({limit.seconds:.3g} s)" if limit else "—",
                "wall_for_run_s": scenario.duration / faithful.speed,
                "load_average": os.getloadavg()[0],
            }
        )
    return rows
