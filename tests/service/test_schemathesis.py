"""Schemathesis against the live API's /openapi.json: no input may cause a 5xx, and every
answer matches the documented schema (status codes, bodies, content types).

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

from tests.service.live_stack import KEYS, Stack, running_stack  # noqa: E402

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
