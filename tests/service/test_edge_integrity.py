"""The API's edge over real HTTP: bodies it must refuse field by field, errors that stay
JSON and keep the connection, acknowledgements of what was never sent, RFC 3339 times.

Each test talks over one httpx client, i.e. one keep-alive connection; that it really is
the same connection throughout is checked by its local port.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from harness.runtime.store import NotDurable
from tests.service.live_stack import Stack, promotion_body, wait_for


def _port(r: httpx.Response) -> int:
    """The client's local port of the connection that carried ``r``."""
    return r.extensions["network_stream"].get_extra_info("client_addr")[1]  # type: ignore[no-any-return]


def _post_raw(client: httpx.Client, path: str, text: str) -> httpx.Response:
    return client.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def _valid_promo_text(promo: str, **raw: str) -> str:
    """A valid promotion's JSON with some values replaced by raw JSON-ish text."""
    body: dict[str, Any] = promotion_body(promo)
    placeholders = {}
    for i, (path, text) in enumerate(raw.items()):
        marker = f"@@{i}@@"
        placeholders[f'"{marker}"'] = text
        node = body
        *parents, leaf = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = marker
    out = json.dumps(body)
    for marker, text in placeholders.items():
        out = out.replace(marker, text)
    return out


def test_non_finite_and_oversized_numbers_are_422_naming_the_field(stack: Stack) -> None:
    cases = [
        # (path, body text, expected loc, expected type)
        (
            "/v1/promotions",
            _valid_promo_text("N1", benefit__percent="NaN"),
            ["body", "benefit", "percent"],
            "finite_number",
        ),
        (
            "/v1/promotions",
            _valid_promo_text("N2", benefit__percent="-Infinity"),
            ["body", "benefit", "percent"],
            "finite_number",
        ),
        (
            "/v1/promotions",
            _valid_promo_text("N3", benefit__percent="1e999"),
            ["body", "benefit", "percent"],
            "finite_number",
        ),
        (
            "/v1/promotions",
            _valid_promo_text("N4", version="18446744073709551616"),
            ["body", "version"],
            "int_range",
        ),
        (
            "/v1/promotions",
            _valid_promo_text("N5", version="9" * 4000),
            ["body", "version"],
            "int_range",
        ),
        # Beyond Python's own 4,300-digit limit: a parse error without the guard (400).
        (
            "/v1/promotions",
            _valid_promo_text("N6", conditions__min_quantity="1" * 5000),
            ["body", "conditions", "min_quantity"],
            "int_range",
        ),
        # Within 64 bits but over a version's bound: pydantic's own 422.
        (
            "/v1/promotions",
            _valid_promo_text("N7", version=str(5 * 10**18)),
            ["body", "version"],
            "less_than_equal",
        ),
        (
            "/v1/promotions/N1/rollback",
            '{"deadline": Infinity}',
            ["body", "deadline"],
            "finite_number",
        ),
        (
            "/v1/promotions/N1/schedule",
            '{"publish_at": NaN, "regions": [1e400]}',
            ["body", "publish_at"],
            "finite_number",
        ),
    ]
    ports = set()
    with stack.client("merch") as client:
        for path, text, loc, kind in cases:
            r = _post_raw(client, path, text)
            assert r.status_code == 422, (path, text[:80], r.status_code, r.text[:300])
            assert r.headers["content-type"] == "application/json"
            errors = r.json()["detail"]
            assert any(e["loc"] == loc and e["type"] == kind for e in errors), errors
            ports.add(_port(r))
            # The next request on the same keep-alive connection still works.
            health = client.get("/healthz")
            assert health.status_code == 200
            ports.add(_port(health))
        # Both refused numbers of one body are named.
        r = _post_raw(client, "/v1/promotions/N1/schedule", '{"publish_at": NaN, "x": [1e400]}')
        locs = [e["loc"] for e in r.json()["detail"]]
        assert ["body", "publish_at"] in locs and ["body", "x", 0] in locs
    assert len(ports) == 1  # one connection throughout: never reset
    with stack.client("viewer") as viewer:
        listed = {p["id"] for p in viewer.get("/v1/promotions").json()["promotions"]}
    assert not listed & {f"N{i}" for i in range(1, 8)}  # nothing was created


def test_an_unexpected_error_is_a_json_500_and_the_connection_survives(stack: Stack) -> None:
    runtime = stack.runtime

    async def broken(event: object) -> None:
        raise RuntimeError("injected: the runtime failed")

    with stack.client("merch") as client:
        assert client.get("/healthz").status_code == 200
        runtime.submit = broken  # type: ignore[method-assign]
        try:
            r = client.post("/v1/promotions", json=promotion_body("BOOM"))
        finally:
            del runtime.submit  # back to the class's method
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "internal server error"}
        after = client.post("/v1/promotions", json=promotion_body("AFTER-BOOM"))
        assert after.status_code == 201, after.text
        assert _port(after) == _port(r)


def test_ack_of_a_delivery_never_sent_is_409_and_recorded_as_stale(stack: Stack) -> None:
    promo = "ACK-FORGED"
    merch, approver = stack.client("merch"), stack.client("approver")
    operator, pos, viewer = stack.client("operator"), stack.client("pos"), stack.client("viewer")

    def status() -> str:
        return viewer.get(f"/v1/promotions/{promo}", params={"endpoints": "false"}).json()["state"]

    assert merch.post("/v1/promotions", json=promotion_body(promo)).status_code == 201
    merch.post(f"/v1/promotions/{promo}/submit")
    merch.post(f"/v1/promotions/{promo}/validate")
    wait_for(lambda: status() == "validated")
    approver.post(f"/v1/promotions/{promo}/approve")
    # The reproduction: pause pos, publish, acknowledge S0001 with the pos key.
    operator.post(f"/v1/promotions/{promo}/pause", json={"channel": "pos"})
    assert operator.post(f"/v1/promotions/{promo}/publish", json={}).status_code == 202
    ack = {"endpoint": "S0001", "promo": promo, "version": 1, "op": "apply"}
    r = pos.post("/v1/callbacks/ack", json=ack)
    assert r.status_code == 409
    body = r.json()
    assert body["reason"] == "not_sent"
    assert body["delivery_state"] == "held"
    assert "never sent" in body["detail"]
    # A version never published, and a revoke never asked for, likewise.
    r = pos.post("/v1/callbacks/ack", json={**ack, "version": 7})
    assert (r.status_code, r.json()["reason"]) == (409, "not_current")
    r = pos.post("/v1/callbacks/ack", json={**ack, "op": "revoke"})
    assert (r.status_code, r.json()["reason"]) == (409, "not_current")
    # Nothing moved: the others settle (the web shop by its real webhook), the stores wait.
    wait_for(
        lambda: (
            viewer.get(f"/v1/promotions/{promo}").json()["propagation"]["states"]
            == {"acked": 3, "held": 6}
        )
    )
    assert status() == "publishing"
    audit = viewer.get("/v1/audit", params={"promo": promo}).json()["records"]
    stale = [(r["endpoint"], r["version"], r["detail"]) for r in audit if r["kind"] == "stale"]
    assert stale == [
        ("S0001", 1, "apply:not_sent"),
        ("S0001", 7, "apply:not_current"),
        ("S0001", 1, "revoke:not_current"),
    ]
    # Sent for real: the stores answer in the reply, the promotion goes active; the
    # adapter's late ack is then a duplicate.
    operator.post(f"/v1/promotions/{promo}/resume", json={"channel": "pos"})
    wait_for(lambda: status() == "active")
    r = pos.post("/v1/callbacks/ack", json=ack)
    assert (r.status_code, r.json()["reason"], r.json()["delivery_state"]) == (
        409,
        "settled",
        "acked",
    )
    for c in (merch, approver, operator, pos, viewer):
        c.close()


def test_rfc3339_times_in_offsets_out(stack: Stack) -> None:
    validity = {
        "start": "2026-11-28T05:00:00Z",  # midnight in New York
        "end": "2026-11-28T19:00:00.5-05:00",
        "timezone": "America/New_York",
    }
    with stack.client("merch") as merch:
        r = merch.post("/v1/promotions", json=promotion_body("RFC3339", validity=validity))
        assert r.status_code == 201, r.text
        got = merch.get("/v1/promotions/RFC3339").json()["promotion"]
        assert got["validity"]["start"] == "2026-11-28T00:00:00-05:00"
        assert got["validity"]["end"] == "2026-11-28T19:00:00.500000-05:00"
        # What the API answers, it takes back unchanged.
        again = {**got, "id": "RFC3339-AGAIN"}
        assert merch.post("/v1/promotions", json=again).status_code == 201
        back = merch.get("/v1/promotions/RFC3339-AGAIN").json()["promotion"]
        assert back == again
        # Wall-clock times without an offset (the file form) still work.
        naive = promotion_body("RFC3339-NAIVE")
        assert merch.post("/v1/promotions", json=naive).status_code == 201
        # An offset with no zone to read it in stays an error naming the field.
        bad = {**validity, "timezone": "Mars/Olympus"}
        r = merch.post("/v1/promotions", json=promotion_body("RFC3339-BAD", validity=bad))
        assert r.status_code == 422
        assert ["body", "validity", "timezone"] in [e["loc"] for e in r.json()["detail"]]


def test_a_refused_journal_write_is_503_and_changes_nothing(stack: Stack) -> None:
    """The journal refuses the submit (a full disk, say): the client hears 503 with
    Retry-After, and the promotion is still a draft — in memory, in the API, and after."""
    runtime = stack.runtime
    store = runtime.store
    promo = "DISK-FULL"
    refused: list[str] = []

    def full(t: float, event: str, records: object) -> int:
        refused.append(event)
        raise NotDurable("injected: database or disk is full")

    with stack.client("merch") as merch:
        assert merch.post("/v1/promotions", json=promotion_body(promo)).status_code == 201
        store.append = full  # type: ignore[method-assign]
        try:
            r = merch.post(f"/v1/promotions/{promo}/submit")
        finally:
            del store.append  # back to the class's method
        assert refused, "the journal was never asked"
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "nothing changed" in r.json()["detail"]
        state = merch.get(f"/v1/promotions/{promo}", params={"endpoints": "false"}).json()
        assert state["state"] == "draft"
        assert merch.post(f"/v1/promotions/{promo}/submit").json()["state"] == "submitted"
