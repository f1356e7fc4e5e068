"""The estate's published contract (``promoharness contract estate``): the committed file is
what the code generates and what a served estate answers at /openapi.json; every answer a
served estate gives to provoked situations (200 applied/removed/ignored, 202, 404, 422
twice, 429, 503, 500, 401, the webhook, the listing, the clock) validates against the
document's schema for that path and status; and the version and idempotency rules the
document states in prose are what the estate does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from test_apps import SPEED, delivery, promotion, run_async, scenario_file

from harness.cli import main
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from simulators.app_contract import CONTRACT_VERSION, contract_document, snapshot_name
from simulators.apps import create_sim_app, run_sim_server

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "harness" / "certify" / "contract" / snapshot_name()
TOKEN = "contract-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DOC = contract_document()
REGISTRY: Registry = Registry().with_resource("urn:estate", DRAFT202012.create_resource(DOC))


def check(path: str, method: str, response: httpx.Response) -> None:
    """``response`` is one the contract lists for ``method path``, and its body fits."""
    operation = DOC["paths"][path][method]
    answers = operation["responses"]
    status = str(response.status_code)
    assert status in answers, f"{method} {path}: {status} is not in the contract"
    schema = answers[status]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(_rebase(schema), registry=REGISTRY)
    errors = [e.message for e in validator.iter_errors(response.json())]
    assert errors == [], (method, path, status, response.text, errors)
    for header, spec in answers[status].get("headers", {}).items():
        assert re.fullmatch(spec["schema"]["pattern"], response.headers[header])


def _rebase(schema: dict[str, Any]) -> dict[str, Any]:
    """Local ``#/components/...`` refs, resolved inside the whole document."""
    return json.loads(json.dumps(schema).replace('"#/components/', '"urn:estate#/components/'))


def check_schema(name: str, value: Any) -> None:
    schema = _rebase({"$ref": f"#/components/schemas/{name}"})
    validator = Draft202012Validator(schema, registry=REGISTRY)
    assert [e.message for e in validator.iter_errors(value)] == [], (name, value)


# --- the document --------------------------------------------------------------------------


def test_the_committed_contract_is_what_the_code_generates() -> None:
    assert json.loads(SNAPSHOT.read_text(encoding="utf-8")) == DOC, (
        "regenerate: promoharness contract estate > " + SNAPSHOT.relative_to(ROOT).as_posix()
    )
    assert DOC["info"]["version"] == CONTRACT_VERSION and DOC["openapi"] == "3.1.0"


def test_the_contract_is_valid_openapi_and_covers_the_estate() -> None:
    validate_spec(DOC)
    paths = DOC["paths"]
    for route in (
        "/endpoints/{endpoint_id}/deliveries",
        "/stores/{store_id}/promotions",
        "/erp/pricebook",
        "/web/promotions",
        "/loyalty/promotions",
        "/marketplace/offers",
    ):
        answers = paths[route]["post"]["responses"]
        assert set(answers) == {"200", "202", "404", "422", "429", "500", "503"}, route
        assert "Retry-After" in answers["429"]["headers"]
        assert set(paths[route]["post"]["x-no-answer"]) == {"hang", "lost-reply"}
    assert "ack" in DOC["webhooks"]
    for route in ("/truth", "/truth/active", "/truth/inventory", "/admin/faults"):
        [operation] = paths[route].values()
        assert operation["security"] == [{"adminToken": []}], route
    for route in ("/clock", "/estate/endpoints", "/erp/validate", "/marketplace/offers/{promo}"):
        assert route in paths
    prose = DOC["info"]["description"]
    for phrase in ("newer than the newest seen", ">= the newest seen", "stored answer"):
        assert phrase in prose


def test_the_cli_prints_it(capsys: Any) -> None:
    try:
        main(["contract", "estate"])
    except SystemExit as exc:
        assert exc.code == 0
    assert json.loads(capsys.readouterr().out) == DOC


# --- a served estate answers as documented ---------------------------------------------------


@contextlib.asynccontextmanager
async def estate(tmp_path: Path, **endpoints: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    world = build_world(load_scenario(scenario_file(tmp_path, **endpoints)))
    server = await run_sim_server(create_sim_app(world, speed=SPEED, admin_token=TOKEN))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
            yield client
    finally:
        await server.stop()


DELIVER = "/endpoints/{endpoint_id}/deliveries"


@run_async
async def test_a_served_estate_publishes_the_same_contract(tmp_path: Path) -> None:
    async with estate(tmp_path) as client:
        assert (await client.get("/openapi.json")).json() == DOC


@run_async
async def test_every_provoked_answer_fits_the_contract(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({})

    hooks = web.Application()
    hooks.router.add_post("/acks", hook)
    runner = web.AppRunner(hooks)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with estate(tmp_path) as client:
            await provoke(client, f"http://127.0.0.1:{port}/acks")
            for _ in range(300):
                if got:
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert got, "no webhook came"
    for body in got:
        check_schema("WebhookBody", body)


async def provoke(client: httpx.AsyncClient, hook_url: str) -> None:
    async def post(endpoint: str, body: Any) -> httpx.Response:
        r = await client.post(f"/endpoints/{endpoint}/deliveries", json=body)
        check(DELIVER, "post", r)
        return r

    r = await post("S0001", delivery())
    assert (r.status_code, r.json()["effect"]) == (200, "applied")
    r = await post("S0001", delivery(version=1, key="another-key"))
    assert (r.status_code, r.json()["effect"]) == (200, "ignored")
    r = await post("S0001", delivery("revoke", version=2))
    assert (r.status_code, r.json()["effect"]) == (200, "removed")
    r = await client.post("/stores/S0002/promotions", json=delivery())
    check("/stores/{store_id}/promotions", "post", r)
    assert r.status_code == 200

    declared = {"url": hook_url, "headers": {"X-Key": "k"}}
    r = await client.put("/admin/callbacks/ecommerce", json=declared, headers=ADMIN)
    check("/admin/callbacks/{channel}", "put", r)
    r = await client.post("/web/promotions", json=delivery())
    check("/web/promotions", "post", r)
    assert r.status_code == 202

    assert (await post("NOPE", delivery())).status_code == 404
    bad_sku = {**delivery(), "payload": promotion(conditions={"skus": ["NO-SUCH-SKU"]})}
    r = await post("erp", bad_sku)
    assert (r.status_code, r.json()["outcome"]) == (422, "rejected")
    assert "NO-SUCH-SKU" in r.json()["detail"]
    r = await post("erp", {"op": "apply"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"

    quota = {"kind": "quota", "rate": 0.01, "on": True}
    check("/admin/faults", "post", await client.post("/admin/faults", json=quota, headers=ADMIN))
    statuses = {(await post("erp", delivery(version=v))).status_code for v in (5, 6)}
    assert 429 in statuses
    r = await client.post("/erp/validate", json=promotion())
    check("/erp/validate", "post", r)
    assert r.status_code == 429
    await client.post("/admin/faults", json={**quota, "on": False}, headers=ADMIN)
    r = await client.post("/erp/validate", json=promotion())
    check("/erp/validate", "post", r)
    assert r.status_code == 200

    offline = {"kind": "endpoint_offline", "endpoints": ["loyalty"], "on": True}
    await client.post("/admin/faults", json=offline, headers=ADMIN)
    assert (await post("loyalty", delivery())).status_code == 503
    await client.post("/admin/faults", json={**offline, "on": False}, headers=ADMIN)
    errors = {"kind": "error_rate", "channel": "loyalty", "rate": 1.0, "on": True}
    await client.post("/admin/faults", json=errors, headers=ADMIN)
    assert (await post("loyalty", delivery())).status_code == 500
    r = await client.post(
        "/admin/faults", json={"kind": "region_offline", "on": True}, headers=ADMIN
    )
    check("/admin/faults", "post", r)
    assert r.status_code == 422

    r = await client.post("/marketplace/offers", json=delivery())
    check("/marketplace/offers", "post", r)
    r = await client.get("/marketplace/offers/P1")
    check("/marketplace/offers/{promo}", "get", r)
    for path in ("/clock", "/estate/endpoints", "/healthz"):
        check(path, "get", await client.get(path))
    for path in ("/truth", "/truth/active", "/truth/inventory", "/admin/endpoints"):
        check(path, "get", await client.get(path, headers=ADMIN))
        r = await client.get(path)
        check(path, "get", r)
        assert r.status_code == 401
    r = await client.post("/stores/S0001/price", json={"lines": []})
    assert r.status_code in (200, 422)


@run_async
async def test_the_documented_version_and_idempotency_rules_hold(tmp_path: Path) -> None:
    """The prose of the contract, as a trace: (op, version, key) -> effect."""
    steps = [
        ("apply", 2, "a2", "applied"),
        ("apply", 2, "a2-again", "ignored"),  # the live version again
        ("apply", 1, "a1", "ignored"),  # older than the newest seen
        ("apply", 3, "a3", "applied"),  # newer: takes effect
        ("revoke", 2, "r2", "ignored"),  # a revoke older than the newest seen
        ("revoke", 3, "r3", "removed"),  # >= the newest seen: removes the live one
        ("apply", 3, "a3-late", "ignored"),  # a late apply cannot resurrect it
        ("apply", 3, "a3", "ignored"),  # a replayed key: the stored answer, no change
        ("revoke", 4, "r4", "ignored"),  # nothing live to revoke
        ("apply", 5, "a5", "applied"),
    ]
    async with estate(tmp_path) as client:
        for op, version, key, effect in steps:
            body = {**delivery(op, version=version, key=key), "delivery_id": key}
            r = await client.post("/endpoints/S0003/deliveries", json=body)
            assert (r.status_code, r.json()) == (200, {"outcome": "ok", "effect": effect}), (
                op,
                version,
                key,
            )
        active = (await client.get("/truth/active", headers=ADMIN)).json()
    assert active["S0003"] == {"P1": 5}
