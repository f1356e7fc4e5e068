"""The governed promotion API end to end: real uvicorn, real LiveRuntime, real simulators."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.service.live_stack import KEYS, ROOT, Stack, promotion_body, running_stack, wait_for

# --- refused requests change nothing -------------------------------------------------------


def _absent(stack: Stack, promo: str) -> None:
    with stack.client("viewer") as viewer:
        assert viewer.get(f"/v1/promotions/{promo}").status_code == 404
        listed = [p["id"] for p in viewer.get("/v1/promotions").json()["promotions"]]
        assert promo not in listed
    assert not stack.runtime.records(0, None, promo)


def test_invalid_promotion_is_422_naming_the_field(stack: Stack) -> None:
    with stack.client("merch") as merch:
        r = merch.post(
            "/v1/promotions",
            json=promotion_body("BAD-PCT", benefit={"type": "percent_off", "percent": 101}),
        )
        assert r.status_code == 422
        locs = [e["loc"] for e in r.json()["detail"]]
        assert any("percent" in loc for loc in locs), locs
        r = merch.post("/v1/promotions", json={**promotion_body("BAD-EXTRA"), "colour": "red"})
        assert r.status_code == 422
        assert any("colour" in e["loc"] for e in r.json()["detail"])
        r = merch.post("/v1/promotions", json=promotion_body("bad id with spaces"))
        assert r.status_code == 422
        assert any("id" in e["loc"] for e in r.json()["detail"])
    with stack.client("operator") as operator:
        r = operator.post("/v1/promotions/BAD-PCT/pause", json={"channel": "fax"})
        assert r.status_code == 422
        assert any("channel" in e["loc"] for e in r.json()["detail"])
        r = operator.post("/v1/promotions/BAD-PCT/rollback", json={"deadline": -1})
        assert r.status_code == 422
        assert any("deadline" in e["loc"] for e in r.json()["detail"])
    _absent(stack, "BAD-PCT")
    _absent(stack, "BAD-EXTRA")


def test_oversized_bodies_are_413_before_parsing(stack: Stack) -> None:
    huge = promotion_body("TOO-BIG", name="x" * 100, conditions={"skus": ["s"] * 100_000})
    with stack.client("merch") as merch:
        r = merch.post("/v1/promotions", json=huge)  # declared Content-Length
        assert r.status_code == 413
        assert "limit" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:
        yield b'{"id": "TOO-BIG", "name": "'
        for _ in range(40):
            yield b"y" * 8192
        yield b'"}'

    with stack.client("merch") as merch:  # chunked: no length declared, bytes counted
        r = merch.post("/v1/promotions", content=chunks(), headers={"Content-Type": "json"})
        assert r.status_code == 413
    _absent(stack, "TOO-BIG")


def test_small_chunked_body_still_works(stack: Stack) -> None:
    body = json.dumps(promotion_body("CHUNKED")).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 50):
            yield body[i : i + 50]

    with stack.client("merch") as merch:
        r = merch.post(
            "/v1/promotions", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 201, r.text
        assert r.json() == {"id": "CHUNKED", "version": 1, "state": "draft"}


def test_illegal_transition_is_409_and_changes_nothing(stack: Stack) -> None:
    with stack.client("merch") as merch:
        assert merch.post("/v1/promotions", json=promotion_body("ILLEGAL")).status_code == 201
        r = merch.post("/v1/promotions", json=promotion_body("ILLEGAL"))
        assert r.status_code == 409  # the id is taken
    before = len(stack.runtime.records())
    with stack.client("approver") as approver:
        r = approver.post("/v1/promotions/ILLEGAL/approve")
    assert r.status_code == 409
    body = r.json()
    assert "'draft'" in body["detail"] and "'approve'" in body["detail"]
    assert (body["state"], body["event"]) == ("draft", "approve")
    assert len(stack.runtime.records()) == before
    with stack.client("viewer") as viewer:
        assert viewer.get("/v1/promotions/ILLEGAL").json()["state"] == "draft"
    with stack.client("operator") as operator:
        r = operator.post("/v1/promotions/NOPE/publish", json={})
        assert r.status_code == 404
        assert "NOPE" in r.json()["detail"]


# --- the lifecycle through real HTTP ----------------------------------------------------------


def _get(client: httpx.Client, promo: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/v1/promotions/{promo}", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_lifecycle_end_to_end(stack: Stack) -> None:
    merch = stack.client("merch")
    approver = stack.client("approver")
    operator = stack.client("operator")
    finance = stack.client("finance")
    viewer = stack.client("viewer")
    promo = "E2E-1"

    r = merch.post("/v1/promotions", json=promotion_body(promo))
    assert r.status_code == 201
    assert r.json() == {"id": promo, "version": 1, "state": "draft"}
    assert merch.post(f"/v1/promotions/{promo}/submit").json()["state"] == "submitted"
    r = merch.post(f"/v1/promotions/{promo}/validate")
    assert r.status_code == 202
    wait_for(lambda: _get(viewer, promo, endpoints="false")["state"] == "validated")
    assert approver.post(f"/v1/promotions/{promo}/approve").json()["state"] == "approved"
    r = operator.post(f"/v1/promotions/{promo}/publish", json={})
    assert r.status_code == 202
    assert r.json()["state"] == "publishing"

    wait_for(lambda: _get(viewer, promo, endpoints="false")["state"] == "active")
    detail = _get(viewer, promo)
    assert detail["promotion"]["id"] == promo
    assert detail["promotion"]["class"] == "product"  # the canonical form, aliases included
    prop = detail["propagation"]
    # In scope: ERP (system of record), 6 stores, the web shop (acked by webhook), loyalty.
    assert prop["total"] == 9
    assert prop["states"] == {"acked": 9}
    assert prop["by_channel"] == {
        "erp": {"acked": 1},
        "pos": {"acked": 6},
        "ecommerce": {"acked": 1},
        "loyalty": {"acked": 1},
    }
    rows = {row["endpoint"]: row for row in prop["endpoints"]}
    assert set(rows) == {"erp", "web", "loyalty"} | {f"S000{i}" for i in range(1, 7)}
    assert all(row["state"] == "acked" and row["version"] == 1 for row in rows.values())
    assert rows["web"]["channel"] == "ecommerce" and rows["web"]["attempt"] >= 1

    # Counts without rows; rows a page at a time.
    counts = _get(viewer, promo, endpoints="false")["propagation"]
    assert counts["endpoints"] is None and counts["states"] == {"acked": 9}
    page = _get(viewer, promo, limit=4)["propagation"]
    assert len(page["endpoints"]) == 4 and page["next_offset"] == 4
    last = _get(viewer, promo, offset=8, limit=4)["propagation"]
    assert len(last["endpoints"]) == 1 and last["next_offset"] is None

    # The web shop answered 202; its ack came back through /v1/callbacks/ack with the
    # ecommerce key (and only the web shop's did: the others acked in their replies).
    records = stack.runtime.records(0, None, promo)
    accepted = [r.endpoint for r in records if r.kind == "result" and r.outcome == "accepted"]
    assert accepted == ["web"]
    metrics = viewer.get("/metrics").text
    assert 'route="/v1/callbacks/ack",status="202"} 1.0' in metrics

    listed = {p["id"]: p for p in viewer.get("/v1/promotions").json()["promotions"]}
    assert listed[promo]["state"] == "active"
    assert listed[promo]["name"].startswith(promo)

    # Pause/resume a channel, roll a region back, then take it all back and close it out.
    assert operator.post(f"/v1/promotions/{promo}/pause", json={"channel": "pos"}).is_success
    assert operator.post(f"/v1/promotions/{promo}/resume", json={"channel": "pos"}).is_success
    r = operator.post(f"/v1/promotions/{promo}/rollback", json={"deadline": 30})
    assert r.status_code == 202 and r.json()["state"] == "rolling_back"
    wait_for(lambda: _get(viewer, promo, endpoints="false")["state"] == "rolled_back")
    assert _get(viewer, promo, endpoints="false")["propagation"]["states"] == {"revoked": 9}
    assert operator.post(f"/v1/promotions/{promo}/end").json()["state"] == "ended"
    assert merch.post(f"/v1/promotions/{promo}/settle").status_code == 403
    assert finance.post(f"/v1/promotions/{promo}/settle").json()["state"] == "settled"
    assert finance.post(f"/v1/promotions/{promo}/reconcile").json()["state"] == "reconciled"

    # The audit trail tells the story, in order, a page at a time.
    kinds = _audit_kinds(viewer, promo)
    story = [k for k in kinds if k in {"create", "submit", "approve", "publish", "rollback"}]
    assert story == ["create", "submit", "approve", "publish", "rollback"]
    assert kinds == [r.kind for r in stack.runtime.records(0, None, promo)]
    assert kinds.count("ack") == 18 and "validated" in kinds  # 9 applies, 9 revokes
    for client in (merch, approver, operator, finance, viewer):
        client.close()


def _audit_kinds(client: httpx.Client, promo: str) -> list[str]:
    kinds: list[str] = []
    since = 0
    while True:
        r = client.get("/v1/audit", params={"since": since, "limit": 7, "promo": promo})
        assert r.status_code == 200
        page = r.json()
        kinds.extend(rec["kind"] for rec in page["records"])
        assert all(rec["promo"] == promo for rec in page["records"])
        if not page["records"]:
            return kinds
        assert page["next"] > since
        since = page["next"]


def test_audit_cursor_reads_the_whole_log_once(stack: Stack) -> None:
    everything = stack.runtime.records()
    seen: list[dict[str, Any]] = []
    since = 0
    with stack.client("viewer") as viewer:
        while True:
            page = viewer.get("/v1/audit", params={"since": since, "limit": 13}).json()
            if not page["records"]:
                break
            seen.extend(page["records"])
            since = page["next"]
        assert since == len(everything)
        assert [s["kind"] for s in seen] == [r.kind for r in everything[: len(seen)]]
        assert viewer.get("/v1/audit", params={"limit": 0}).status_code == 422


def test_dead_letters_list_and_replay(stack: Stack) -> None:
    with stack.client("viewer") as viewer:
        r = viewer.get("/v1/dead-letters")
        assert r.status_code == 200
        assert r.json() == {"dead_letters": []}
        assert viewer.post("/v1/dead-letters/replay", json={}).status_code == 403
    with stack.client("operator") as operator:
        r = operator.post("/v1/dead-letters/replay", json={"promo": "E2E-1"})
        assert r.status_code == 202
        assert r.json() == {"matched": 0, "remaining": 0}
    assert stack.runtime.records()[-1].kind == "replay"


def test_metrics_and_health(stack: Stack) -> None:
    with stack.client() as anonymous:
        health = anonymous.get("/healthz").json()
        assert health["status"] == "ok" and health["now"] > 0
        assert anonymous.get("/metrics").status_code == 401
    with stack.client("viewer") as viewer:
        viewer.get("/v1/promotions")
        viewer.get("/v1/promotions/NOPE")
        text = viewer.get("/metrics").text
    assert 'promoharness_http_requests_total{method="GET",route="/v1/promotions",status="200"}' in (
        text
    )
    assert 'route="/v1/promotions/{promo}",status="404"' in text
    assert "promoharness_http_request_duration_seconds_bucket" in text
    assert "promoharness_runtime_sends " in text
    assert "promoharness_runtime_dead_letters " in text


def test_openapi_declares_the_api_key_scheme(stack: Stack) -> None:
    with stack.client() as anonymous:
        spec = anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key; its role decides what it may do.",
    }
    assert spec["paths"]["/v1/promotions/{promo}/approve"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


# --- status reads while a 600-store publish runs ------------------------------------------


def test_status_reads_answer_throughout_a_600_store_publish(tmp_path: Path) -> None:
    """The estate and the readers run in processes of their own; this process only serves
    the API (and its runtime), as `promoharness serve` would. How MANY reads per second is
    a benchmark figure (`promoharness bench live`), not asserted here: a timed test on a
    shared machine measures the machine."""
    overrides = [
        "estate.stores=600",
        # Each store takes 8 s (a fixed sleep, under the 10 s timeout): the publish lasts
        # at least that on any machine, well past the 2.5 s of reads however late the
        # reader process starts, and however much faster reads get once it is over.
        "endpoints.pos.latency.mean=8.0",
        "endpoints.pos.capacity=1",
    ]
    with running_stack(
        tmp_path / "state.db",
        overrides=overrides,
        speed=1.0,
        separate_simulators=True,
        rate=10_000,
        burst=10_000,
    ) as big:
        promo = "LOAD-1"
        with big.client("merch") as merch:
            assert merch.post("/v1/promotions", json=promotion_body(promo)).status_code == 201
            merch.post(f"/v1/promotions/{promo}/submit").raise_for_status()
            merch.post(f"/v1/promotions/{promo}/validate").raise_for_status()
        with big.client("viewer") as viewer:
            wait_for(lambda: _get(viewer, promo, endpoints="false")["state"] == "validated")
        with big.client("approver") as approver:
            approver.post(f"/v1/promotions/{promo}/approve").raise_for_status()
        load = ["harness.bench.readload", big.url, KEYS["viewer"], promo, "2.5", "32"]
        readers = subprocess.Popen(
            [sys.executable, "-m", *load],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)  # the readers are up and reading "approved"
        with big.client("operator") as operator:
            r = operator.post(f"/v1/promotions/{promo}/publish", json={})
            assert r.status_code == 202
        out, _ = readers.communicate(timeout=60)
        result = json.loads(out)
        with big.client("viewer") as viewer:
            prop = _get(viewer, promo, endpoints="false")["propagation"]
        assert prop["by_channel"]["pos"] and sum(prop["by_channel"]["pos"].values()) == 600
    states = result["states"]
    publishing = states.count("publishing")
    assert result["errors"] == 0
    assert publishing > 0.5 * len(states), "the publish was not running while reading"
    # The reads saw the lifecycle move forward only, never back.
    order = ["approved", "publishing", "active"]
    seen = [order.index(s) for s in states if s in order]
    assert seen == sorted(seen)
