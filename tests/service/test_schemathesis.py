"""Schemathesis against the live API's /openapi.json: no input may cause a 5xx, and every
answer matches the documented schema (status codes, bodies, content types). All of
Schemathesis's checks run, response conformance included (status code, content type,
response schema, headers), with a fixed seed (``derandomize``) and bounded examples.

Generated ids rarely name a real promotion, so a second test drives one through its
lifecycle with explicit cases, checking every answer the same way: a promotion's detail
(RFC 3339 validity times), propagation rows, audit records, a refused acknowledgement.

The same from the command line (one key for every operation, so the other roles' routes
only answer 401/403 there; 2,441 cases, nothing found):

    promoharness serve tests/service/estate.yaml --state /tmp/st.db --speed 10
    schemathesis run http://127.0.0.1:8700/openapi.json --checks all \
        --exclude-checks positive_data_acceptance -H 'X-API-Key: operator-demo-key' \
        --max-examples 40 --generation-deterministic --rate-limit 40/s

Each operation is called with a key whose role may use it, so that generated bodies get
past the role check and reach validation and the runtime; Schemathesis also probes the
operations without a key (the ``ignored_auth`` check expects the 401).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

from tests.service.live_stack import (  # noqa: E402
    KEYS,
    Stack,
    promotion_body,
    running_stack,
    wait_for,
)

# The role each operation needs (see harness/service/auth.py); reads take any key.
_ROLE_BY_ACTION = {
    "submit": "merch",
    "validate": "merch",
    "approve": "approver",
    "reject": "approver",
    "schedule": "operator",
    "publish": "operator",
    "pause": "operator",
    "resume": "operator",
    "rollback": "operator",
    "end": "operator",
    "settle": "finance",
    "reconcile": "finance",
}


def key_for(method: str, path: str) -> str:
    if method.upper() != "POST":  # reads, and the methods Schemathesis probes (TRACE...)
        return KEYS["viewer"]
    if path == "/v1/promotions":
        return KEYS["merch"]
    if path == "/v1/callbacks/ack":
        return KEYS["ecommerce"]
    if path == "/v1/dead-letters/replay":
        return KEYS["operator"]
    return KEYS[_ROLE_BY_ACTION.get(path.rsplit("/", 1)[-1], "viewer")]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    db = tmp_path_factory.mktemp("schemathesis") / "state.db"
    with running_stack(Path(db), rate=100_000, burst=100_000) as stack:
        yield stack


@pytest.fixture(scope="module")
def api_schema(live: Stack):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.auth(refresh_interval=None)  # no caching: the key depends on the operation
class KeyByRole:
    """Each operation gets a key whose role may use it (Schemathesis leaves it off where
    it tests what happens without one)."""

    def get(self, case, ctx) -> str:  # type: ignore[no-untyped-def]
        return key_for(case.method, case.operation.path)

    def set(self, case, data: str, ctx) -> None:  # type: ignore[no-untyped-def]
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_answers_match_the_schema(case) -> None:  # type: ignore[no-untyped-def]
    excluded = []
    if (case.method, case.operation.path) == ("POST", "/v1/promotions"):
        # A canonical promotion has rules JSON Schema cannot state (end after start, no
        # UTC offset on wall-clock times, a channel listed once, class vs benefit...):
        # schema-valid bodies that break them are rightly 422.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(excluded_checks=excluded)


def test_a_real_promotion_s_answers_match_the_schema(live: Stack, api_schema) -> None:  # type: ignore[no-untyped-def]
    promo = "SCHEMA-REAL"
    # Schema-valid date-times with Z and an offset: RFC 3339 as the schema declares.
    validity = {
        "start": "2026-11-28T05:00:00Z",
        "end": "2026-11-29T00:00:00-05:00",
        "timezone": "America/New_York",
    }

    def call(method: str, path: str, who: str, **kw):  # type: ignore[no-untyped-def]
        case = api_schema[path][method].Case(headers={"X-API-Key": KEYS[who]}, **kw)
        if "body" in kw:
            case.media_type = "application/json"
        return case.call_and_validate()

    def state() -> str:
        r = call("GET", "/v1/promotions/{promo}", "viewer", path_parameters={"promo": promo})
        return r.json()["state"]  # type: ignore[no-any-return]

    one = {"path_parameters": {"promo": promo}}
    r = call("POST", "/v1/promotions", "merch", body=promotion_body(promo, validity=validity))
    assert r.status_code == 201
    call("POST", "/v1/promotions/{promo}/submit", "merch", **one)
    call("POST", "/v1/promotions/{promo}/validate", "merch", **one)
    wait_for(lambda: state() == "validated")
    call("POST", "/v1/promotions/{promo}/approve", "approver", **one)
    call("POST", "/v1/promotions/{promo}/pause", "operator", body={"channel": "pos"}, **one)
    r = call("POST", "/v1/promotions/{promo}/publish", "operator", body={}, **one)
    assert r.status_code == 202
    ack = {"endpoint": "S0001", "promo": promo, "version": 1, "op": "apply"}
    r = call("POST", "/v1/callbacks/ack", "pos", body=ack)
    assert (r.status_code, r.json()["reason"]) == (409, "not_sent")

    detail = call("GET", "/v1/promotions/{promo}", "viewer", query={"limit": 3}, **one).json()
    # Read in New York: 05:00Z is midnight there; the answer carries the offset.
    assert detail["promotion"]["validity"]["start"] == "2026-11-28T00:00:00-05:00"
    assert detail["promotion"]["validity"]["end"] == "2026-11-29T00:00:00-05:00"
    call("GET", "/v1/promotions", "viewer")
    call("GET", "/v1/audit", "viewer", query={"promo": promo})
    call("GET", "/v1/dead-letters", "viewer")
    call("POST", "/v1/promotions/{promo}/resume", "operator", body={"channel": "pos"}, **one)
    wait_for(lambda: state() == "active")
    call("POST", "/v1/promotions/{promo}/rollback", "operator", body={"regions": ["east"]}, **one)
    call("GET", "/v1/promotions/{promo}", "viewer", query={"endpoints": "false"}, **one)
