"""The estate as a target for any system: admin token, its clock, the endpoint listing, a
per-channel webhook a system under test declares, and "received" ground truth for every
delivery attempt (the retry storm as the endpoints saw it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from test_apps import SPEED, delivery, run_async, scenario_file

from harness.runtime.world import build_world
from harness.scenario import load_scenario
from simulators.apps import create_sim_app, run_sim_server

TOKEN = "estate-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def estate(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    world = build_world(load_scenario(scenario_file(tmp_path)))
    server = await run_sim_server(create_sim_app(world, speed=SPEED, admin_token=TOKEN))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
            yield client
    finally:
        await server.stop()


@run_async
async def test_truth_and_admin_need_the_token(tmp_path: Path) -> None:
    async with estate(tmp_path) as client:
        for path in ("/truth", "/truth/active", "/truth/inventory", "/admin/endpoints"):
            assert (await client.get(path)).status_code == 401, path
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.get(path, headers=wrong)).status_code == 401, path
            assert (await client.get(path, headers=ADMIN)).status_code == 200, path
        fault = {"kind": "error_rate", "channel": "pos", "rate": 0.5}
        assert (await client.post("/admin/faults", json=fault)).status_code == 401
        # Deliveries, prices and the listing stay open: they are what a system uses.
        assert (await client.post("/endpoints/S0001/deliveries", json=delivery())).is_success
        assert (await client.get("/estate/endpoints")).status_code == 200


@run_async
async def test_clock_and_listing(tmp_path: Path) -> None:
    async with estate(tmp_path) as client:
        first = (await client.get("/clock")).json()
        await asyncio.sleep(0.2)
        second = (await client.get("/clock")).json()
        assert second["t"] > first["t"] and second["speed"] == SPEED
        assert first["at"].startswith("2026-11-28T")
        rows = {r["id"]: r for r in (await client.get("/estate/endpoints")).json()["endpoints"]}
        assert set(rows) == {"erp", "S0001", "S0002", "S0003", "web", "loyalty", "mkt-amazon"}
        s1 = rows["S0001"]
        assert (s1["channel"], s1["region"], s1["store"]) == ("pos", "east", "S0001")
        assert s1["timezone"] == "America/New_York" and s1["acknowledges"] == "in_reply"
        assert s1["delivery_url"] == f"{client.base_url}/endpoints/S0001/deliveries"
        assert rows["web"]["acknowledges"] == "webhook"
        assert rows["mkt-amazon"]["acknowledges"] == "polled"
        assert rows["web"]["region"] is None


@run_async
async def test_received_records_count_every_attempt(tmp_path: Path) -> None:
    async with estate(tmp_path) as client:
        for attempt in (1, 2):
            body = {**delivery(), "attempt": attempt}
            assert (await client.post("/endpoints/S0002/deliveries", json=body)).is_success
        records = (await client.get("/truth", headers=ADMIN)).json()["records"]
        got = [
            (r["kind"], r["attempt"], r["outcome"], r["detail"])
            for r in records
            if r["endpoint"] == "S0002"
        ]
        assert got == [
            ("received", 1, "ok", "apply:k-apply-P1-1"),
            ("applied", 0, "", ""),
            ("received", 2, "ok", "apply:k-apply-P1-1"),
        ]


@run_async
async def test_a_system_declares_where_webhooks_go(tmp_path: Path) -> None:
    got: list[tuple[dict[str, Any], str]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.json(), request.headers.get("X-Relay-Key", "")))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/acks", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with estate(tmp_path) as client:
            body = {"url": f"http://127.0.0.1:{port}/acks", "headers": {"X-Relay-Key": "k1"}}
            assert (await client.put("/admin/callbacks/ecommerce", json=body)).status_code == 401
            r = await client.put("/admin/callbacks/ecommerce", json=body, headers=ADMIN)
            assert r.status_code == 200
            bad = await client.put("/admin/callbacks/pos", json=body, headers=ADMIN)
            assert bad.status_code == 422 and "ecommerce" in bad.text
            r = await client.post("/web/promotions", json=delivery())
            assert (r.status_code, r.json()) == (202, {"outcome": "accepted"})
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert got == [
        (
            {"endpoint": "web", "promo": "P1", "version": 1, "op": "apply", "detail": "webhook"},
            "k1",
        )
    ]
