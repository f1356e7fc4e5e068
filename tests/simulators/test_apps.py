"""The simulator app over real HTTP: a uvicorn on a free loopback port, a tiny world.

Every test builds a three-store world from a scenario written into ``tmp_path`` (fixed
latencies, no random faults), serves it with ``run_sim_server`` at 10x speed and talks to
it with httpx. Times in scenario seconds are ten times the wall-clock ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import statistics
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from harness.runtime.world import World, build_world
from harness.scenario import load_scenario
from simulators.apps import create_sim_app, run_sim_server

SPEED = 10.0
FAST = {
    "latency": {"kind": "fixed", "mean": 0.05},
    "error_rate": 0,
    "timeout_rate": 0,
    "lost_ack_rate": 0,
}
ENDPOINTS: dict[str, dict[str, Any]] = {
    "erp": dict(FAST),
    "pos": {**FAST, "capacity": 4},
    "ecommerce": {**FAST, "ack_delay": {"kind": "fixed", "mean": 1.0}},
    "loyalty": dict(FAST),
    "marketplace": {**FAST, "ack_delay": {"kind": "fixed", "mean": 2.0}},
}


def scenario_file(tmp_path: Path, **endpoints: dict[str, Any]) -> Path:
    """A three-store scenario; ``endpoints`` replace the channel profiles above."""
    doc = {
        "name": "apps-test",
        "seed": 7,
        "duration": 600,
        "estate": {
            "stores": 3,
            "products": 20,
            "regions": [
                {
                    "name": "east",
                    "timezone": "America/New_York",
                    "batch_share": 0.0,
                    "link": "healthy-pos",
                }
            ],
        },
        "endpoints": {**ENDPOINTS, **endpoints},
        "promotions": [promotion("P1")],
        "timeline": [{"at": 0, "action": "create", "promo": "P1"}],
        "traffic": {"kind": "none"},
    }
    path = tmp_path / "apps-test.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def promotion(pid: str = "P1", version: int = 1, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": pid,
        "version": version,
        "name": "Flash 10%",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-29T00:00:00",
            "timezone": "America/New_York",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty", "marketplace"]},
        "benefit": {"type": "percent_off", "percent": "10"},
    }
    data.update(over)
    return data


def delivery(
    op: str = "apply", pid: str = "P1", version: int = 1, key: str | None = None
) -> dict[str, Any]:
    return {
        "delivery_id": f"d-{op}-{pid}-{version}",
        "idempotency_key": key or f"k-{op}-{pid}-{version}",
        "op": op,
        "promo": pid,
        "version": version,
        "attempt": 1,
        "payload": promotion(pid, version) if op == "apply" else None,
    }


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, callback_url: str | None = None, **endpoints: dict[str, Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, World]]:
    world = build_world(load_scenario(scenario_file(tmp_path, **endpoints)))
    app = create_sim_app(world, callback_url=callback_url, callback_key="secret", speed=SPEED)
    server = await run_sim_server(app)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
            yield client, world
    finally:
        await server.stop()


def run_async(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def truth(client: httpx.AsyncClient, since: int = 0) -> list[dict[str, Any]]:
    body = (await client.get("/truth", params={"since": since})).json()
    assert body["next"] == since + len(body["records"])
    return body["records"]


def kinds(records: list[dict[str, Any]], endpoint: str) -> list[tuple[str, int]]:
    """The ground-truth changes at ``endpoint``, in order."""
    return [
        (r["kind"], r["version"])
        for r in records
        if r["endpoint"] == endpoint and r["kind"] in ("applied", "removed")
    ]


# --- POS: the version rule and idempotency over HTTP -----------------------------------------


@run_async
async def test_apply_duplicate_revoke_and_late_apply(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        r = await client.post("/stores/S0001/promotions", json=delivery("apply", version=1))
        assert (r.status_code, r.json()) == (200, {"outcome": "ok", "effect": "applied"})
        assert kinds(await truth(client), "S0001") == [("applied", 1)]
        assert (await client.get("/truth/active")).json()["S0001"] == {"P1": 1}

        again = await client.post("/stores/S0001/promotions", json=delivery("apply", version=1))
        assert (again.status_code, again.json()["effect"]) == (200, "ignored")
        assert kinds(await truth(client), "S0001") == [("applied", 1)]

        r = await client.post("/stores/S0001/promotions", json=delivery("revoke", version=2))
        assert (r.status_code, r.json()["effect"]) == (200, "removed")
        assert kinds(await truth(client), "S0001") == [("applied", 1), ("removed", 1)]

        late = delivery("apply", version=1, key="k-late-retry")
        r = await client.post("/stores/S0001/promotions", json=late)
        # The endpoint answers, but the tombstone wins, and the answer says so.
        assert (r.status_code, r.json()["effect"]) == (200, "ignored")
        records = await truth(client)
        assert kinds(records, "S0001") == [("applied", 1), ("removed", 1)]
        assert (await client.get("/truth/active")).json()["S0001"] == {}
        assert (await truth(client, since=1)) == records[1:]


@run_async
async def test_uniform_alias_and_channel_routes(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        r = await client.post("/endpoints/S0002/deliveries", json=delivery())
        assert r.status_code == 200
        r = await client.post("/loyalty/promotions", json=delivery())
        assert r.status_code == 200
        active = (await client.get("/truth/active")).json()
        assert active["S0002"] == {"P1": 1} and active["loyalty"] == {"P1": 1}
        inventory = (await client.get("/truth/inventory")).json()["records"]
        assert {r["endpoint"] for r in inventory if r["kind"] == "endpoint"} == {
            "erp",
            "S0001",
            "S0002",
            "S0003",
            "web",
            "loyalty",
            "mkt-amazon",
        }
        assert (await client.get("/healthz")).json() == {"ok": True}


@run_async
async def test_a_reply_does_not_wait_out_a_delayed_ack(tmp_path: Path) -> None:
    # 5 ms of service (0.05 scenario s at 10x); without TCP_NODELAY on the listening
    # socket's connections each reply would take about 40 ms more on loopback.
    async with serving(tmp_path) as (client, _):
        took = []
        for version in range(1, 12):
            began = time.perf_counter()
            r = await client.post("/stores/S0001/promotions", json=delivery(version=version))
            took.append(time.perf_counter() - began)
            assert r.status_code == 200
        assert statistics.median(took) < 0.03


# --- capacity ---------------------------------------------------------------------------------


@run_async
async def test_capacity_one_store_queues_the_second_request(tmp_path: Path) -> None:
    pos = {**FAST, "latency": {"kind": "fixed", "mean": 1.0}, "capacity": 1}  # 0.1 s wall
    async with serving(tmp_path, pos=pos) as (client, _):
        began = time.monotonic()

        async def send(pid: str) -> float:
            r = await client.post("/stores/S0001/promotions", json=delivery(pid=pid))
            assert r.status_code == 200
            return time.monotonic() - began

        tasks = [asyncio.create_task(send(pid)) for pid in ("P1", "P2")]
        await asyncio.sleep(0.05)
        row = next(e for e in (await client.get("/admin/endpoints")).json() if e["id"] == "S0001")
        assert (row["capacity"], row["in_flight"], row["queued"]) == (1, 1, 1)
        first, second = sorted(await asyncio.gather(*tasks))
        assert 0.08 <= first < 0.6
        assert 0.07 <= second - first < 0.6  # one service time (0.1 s wall) later
        applied = [r["t"] for r in await truth(client) if r["kind"] == "applied"]
        assert len(applied) == 2
        assert applied[1] - applied[0] == pytest.approx(1.0, abs=0.5)  # scenario seconds


# --- ERP: validation, quota, outages switched at run time -----------------------------------


@run_async
async def test_erp_validate_quota_and_outage_switched_by_admin(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        r = await client.post("/erp/validate", json=promotion())
        assert r.json() == {"ok": True, "reasons": []}
        bad = promotion(conditions={"skus": ["NOPE-1"]})
        r = await client.post("/erp/validate", json=bad)
        assert r.json() == {"ok": False, "reasons": ["unknown sku NOPE-1"]}

        r = await client.post("/admin/faults", json={"kind": "quota", "rate": 0.01, "on": True})
        assert r.json() == {"kind": "quota", "on": True, "targets": ["erp"]}
        assert (await client.post("/erp/pricebook", json=delivery())).status_code == 200
        r = await client.post("/erp/pricebook", json=delivery(version=2))
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["retry_after"] > 1.0
        assert (await client.post("/erp/validate", json=promotion())).status_code == 429
        await client.post("/admin/faults", json={"kind": "quota", "rate": 0.01, "on": False})
        assert (await client.post("/erp/pricebook", json=delivery(version=2))).status_code == 200

        off = {"kind": "endpoint_offline", "endpoints": ["erp"], "on": True}
        assert (await client.post("/admin/faults", json=off)).status_code == 200
        r = await client.post("/erp/pricebook", json=delivery(version=3))
        assert (r.status_code, r.json()["outcome"]) == (503, "unavailable")
        assert (await client.post("/erp/validate", json=promotion())).status_code == 503
        row = next(e for e in (await client.get("/admin/endpoints")).json() if e["id"] == "erp")
        assert row["offline"] is True
        await client.post("/admin/faults", json={**off, "on": False})
        assert (await client.post("/erp/pricebook", json=delivery(version=3))).status_code == 200

        records = await truth(client)
        [fault] = [r for r in records if r["kind"] == "fault"]
        assert (fault["endpoint"], fault["detail"]) == ("erp", "quota:0.01")
        [outage] = [r for r in records if r["kind"] == "outage"]
        assert outage["endpoint"] == "erp" and outage["value"] > 0
        assert kinds(records, "erp") == [("applied", 1), ("applied", 2), ("applied", 3)]


@run_async
async def test_admin_rejects_bad_fault_bodies(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        r = await client.post("/admin/faults", json={"kind": "region_offline", "on": True})
        assert r.status_code == 422 and "region" in r.text
        r = await client.post(
            "/admin/faults", json={"kind": "endpoint_offline", "endpoints": ["X9"], "on": True}
        )
        assert r.status_code == 422 and "X9" in r.text
        r = await client.post(
            "/admin/faults", json={"kind": "region_offline", "region": "east", "on": True}
        )
        assert r.json()["targets"] == ["S0001", "S0002", "S0003"]
        r = await client.post("/stores/S0003/promotions", json=delivery())
        assert r.status_code == 503


# --- asynchronous endpoints ---------------------------------------------------------------------


@run_async
async def test_ecommerce_accepts_then_pushes_a_webhook(tmp_path: Path) -> None:
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put((request.headers.get("X-API-Key", ""), await request.json()))
        return web.json_response({"ok": True})

    callback = web.Application()
    callback.router.add_post("/acks", hook)
    runner = web.AppRunner(callback, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/acks"
        async with serving(tmp_path, callback_url=url) as (client, _):
            r = await client.post("/web/promotions", json=delivery())
            assert (r.status_code, r.json()) == (202, {"outcome": "accepted"})
            assert kinds(await truth(client), "web") == []  # not yet: the site indexes first
            key, body = await asyncio.wait_for(received.get(), timeout=3.0)
            assert key == "secret"
            assert body == {
                "endpoint": "web",
                "promo": "P1",
                "version": 1,
                "op": "apply",
                "detail": "webhook",
            }
            [applied] = [
                r for r in await truth(client) if r["endpoint"] == "web" and r["kind"] != "received"
            ]
            assert applied["kind"] == "applied" and applied["t"] >= 1.0
    finally:
        await runner.cleanup()


@run_async
async def test_marketplace_offer_is_pending_until_activation(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        r = await client.post("/marketplace/offers", json=delivery())
        assert r.status_code == 202
        status = (await client.get("/marketplace/offers/P1")).json()
        assert status == {
            "promo": "P1",
            "state": "pending",
            "version": 1,
            "pending_op": "apply",
            "pending_version": 1,
        }
        await asyncio.sleep(2.0 / SPEED + 0.15)
        status = (await client.get("/marketplace/offers/P1")).json()
        assert (status["state"], status["version"], status["pending_op"]) == ("active", 1, None)
        assert kinds(await truth(client), "mkt-amazon") == [("applied", 1)]
        unknown = (await client.get("/marketplace/offers/NOPE")).json()
        assert unknown["state"] == "unknown"


# --- bad requests, ghosts, shutdown -------------------------------------------------------------


@run_async
async def test_bad_bodies_are_422_naming_the_field_and_unknown_stores_404(tmp_path: Path) -> None:
    async with serving(tmp_path) as (client, _):
        body = delivery()
        del body["promo"]
        r = await client.post("/stores/S0001/promotions", json=body)
        assert r.status_code == 422
        assert ["body", "promo"] in [e["loc"] for e in r.json()["detail"]]

        r = await client.post("/stores/S0001/promotions", json={**delivery(), "op": "upsert"})
        assert ["body", "op"] in [e["loc"] for e in r.json()["detail"]]

        bad = {**delivery(), "payload": promotion(benefit={"type": "percent_off", "percent": 200})}
        r = await client.post("/stores/S0001/promotions", json=bad)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][:2] == ["body", "payload"]

        r = await client.post("/stores/S0001/promotions", content=b"{not json")
        assert r.status_code == 422

        no_payload = {**delivery(), "payload": None}  # well-formed, but the model refuses it
        r = await client.post("/stores/S0001/promotions", json=no_payload)
        assert r.json() == {"outcome": "rejected", "detail": "apply without a payload"}

        assert (await client.post("/stores/S9999/promotions", json=delivery())).status_code == 404
        assert (await client.post("/stores/web/promotions", json=delivery())).status_code == 404
        r = await client.post("/endpoints/nope/deliveries", json=delivery())
        assert r.status_code == 404


@run_async
async def test_lost_reply_applies_and_a_hang_does_not_block_shutdown(tmp_path: Path) -> None:
    ghostly = {**FAST, "lost_ack_rate": 1.0}
    hanging = {**FAST, "timeout_rate": 1.0}
    world = build_world(load_scenario(scenario_file(tmp_path, pos=ghostly, loyalty=hanging)))
    server = await run_sim_server(create_sim_app(world, speed=SPEED))
    async with httpx.AsyncClient(base_url=server.url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/stores/S0001/promotions", json=delivery(), timeout=0.5)
        assert kinds(await truth(client), "S0001") == [("applied", 1)]  # the ghost

        # A client still waiting on a hang hears 503 when the server shuts down.
        waiting = asyncio.create_task(client.post("/loyalty/promotions", json=delivery()))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        await server.stop()
        assert time.monotonic() - began < 3.0
        r = await waiting
        assert r.status_code == 503
    assert world.models["loyalty"].active() == {}


@run_async
async def test_shutdown_ends_queued_and_serving_deliveries_without_error_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A live run ends with deliveries still queued for a store's capacity or in their
    modelled service: stopping must not wait out uvicorn's 10 s graceful timeout and then
    log a traceback per request (hundreds of lines at the end of a live run)."""
    slow = {**FAST, "latency": {"kind": "fixed", "mean": 1000.0}, "capacity": 1}
    world = build_world(load_scenario(scenario_file(tmp_path, pos=slow)))
    server = await run_sim_server(create_sim_app(world, speed=SPEED))
    async with httpx.AsyncClient(base_url=server.url) as client:
        pending = [
            asyncio.create_task(client.post("/stores/S0001/promotions", json=delivery(pid=p)))
            for p in ("P1", "P2", "P3")
        ]
        await asyncio.sleep(0.2)
        row = next(e for e in (await client.get("/admin/endpoints")).json() if e["id"] == "S0001")
        assert (row["in_flight"], row["queued"]) == (1, 2)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            began = time.monotonic()
            await server.stop()
            took = time.monotonic() - began
        await asyncio.gather(*pending, return_exceptions=True)
    assert took < 8.0  # a hang guard only: left to uvicorn it is 10 s and a cancel
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_price_checks_follow_what_is_applied_and_checkouts_write_sales(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A store prices with its applied promotions at that instant; a checkout is recorded."""
    tiny = Path(__file__).parents[1] / "runtime" / "tiny.yaml"
    scenario = load_scenario(tiny)
    world = build_world(scenario)
    product = world.estate.catalog[0]
    basket = {"tax_mode": "net", "lines": [product.to_line(2).model_dump(mode="json")]}
    promo = scenario.promotions[0].model_dump(mode="json", by_alias=True)

    async def scenario_run() -> tuple[dict, dict, list]:
        server = await run_sim_server(create_sim_app(world, speed=10.0), 0)
        try:
            async with httpx.AsyncClient(base_url=server.url) as http:
                before = (await http.post("/stores/S0001/price", json=basket)).json()
                body = {
                    "delivery_id": "d1",
                    "idempotency_key": "d1",
                    "op": "apply",
                    "promo": "P1",
                    "version": 1,
                    "payload": promo,
                }
                assert (await http.post("/stores/S0001/promotions", json=body)).status_code == 200
                after = (await http.post("/stores/S0001/price?checkout=true", json=basket)).json()
                assert (await http.post("/stores/S9999/price", json=basket)).status_code == 404
                truth = (await http.get("/truth")).json()["records"]
        finally:
            await server.stop()
        return before, after, truth

    before, after, truth = asyncio.run(scenario_run())
    list_amount = Decimal(str(product.price)) * 2
    assert Decimal(before["discount_total"]) == 0 and before["active"] == []
    # 10% off everything, by hand: the line's discount is a tenth of its list amount.
    assert Decimal(after["discount_total"]) == (list_amount / 10).quantize(Decimal("0.01"))
    assert after["active"] == ["P1@1"]
    kinds = [r["kind"] for r in truth]
    assert kinds.count("sale") == 1 and kinds.count("discount") == 1
