"""Scopes over HTTP: a region rollback takes the promotion off that region's stores only,
and a scope naming what the estate lacks is a 422 naming the field that changes nothing.

The stack is tests/service/estate.yaml: stores S0001..S0006 over east and west, the ERP,
a web shop, loyalty and a marketplace.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.live_stack import Stack, promotion_body, wait_for


def _propagation(client: httpx.Client, promo: str) -> dict[str, Any]:
    r = client.get(f"/v1/promotions/{promo}")
    assert r.status_code == 200
    return r.json()


def _active(stack: Stack, promo: str) -> None:
    merch, approver, operator = (stack.client(w) for w in ("merch", "approver", "operator"))
    viewer = stack.client("viewer")
    assert merch.post("/v1/promotions", json=promotion_body(promo)).status_code == 201
    merch.post(f"/v1/promotions/{promo}/submit")
    merch.post(f"/v1/promotions/{promo}/validate")
    wait_for(lambda: _propagation(viewer, promo)["state"] == "validated")
    approver.post(f"/v1/promotions/{promo}/approve")
    assert operator.post(f"/v1/promotions/{promo}/publish", json={}).status_code == 202
    wait_for(lambda: _propagation(viewer, promo)["state"] == "active")


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"regions": ["Atlantis"]}, "regions", "Atlantis"),
        ({"stores": ["S9999"]}, "stores", "S9999"),
        ({"channels": ["pos"], "regions": ["east", "Atlantis"]}, "regions", "Atlantis"),
    ],
)
def test_unknown_places_are_422_and_change_nothing(
    stack: Stack, body: dict[str, Any], field: str, value: str
) -> None:
    promo = f"SCOPE-BAD-{field}-{len(body)}"
    _active(stack, promo)
    operator, viewer = stack.client("operator"), stack.client("viewer")
    before = stack.runtime.records(0, None, promo)
    r = operator.post(f"/v1/promotions/{promo}/rollback", json={**body, "deadline": 30})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", field] and error["input"] == value
    assert value in error["msg"]
    assert stack.runtime.records(0, None, promo) == before
    assert _propagation(viewer, promo)["state"] == "active"


def test_a_region_rollback_leaves_the_other_regions_and_channels_alone(stack: Stack) -> None:
    promo = "SCOPE-REGION"
    _active(stack, promo)
    operator, viewer = stack.client("operator"), stack.client("viewer")
    r = operator.post(f"/v1/promotions/{promo}/rollback", json={"regions": ["east"]})
    assert r.status_code == 202
    inventory = [c.record for c in stack.runtime.orchestrator.endpoint_records(0.0)]
    east = {r.endpoint for r in inventory if r.region == "east"}
    assert east and all(e.startswith("S") for e in east)

    def settled() -> bool:
        rows = _propagation(viewer, promo)["propagation"]["endpoints"]
        return all(row["state"] in ("acked", "revoked") for row in rows)

    wait_for(settled)
    rows = {row["endpoint"]: row for row in _propagation(viewer, promo)["propagation"]["endpoints"]}
    revoked = {e for e, row in rows.items() if row["state"] == "revoked"}
    assert revoked == east
    # The web shop, loyalty and the ERP price book still carry it, per the ground truth too.
    active = httpx.get(f"{stack.runtime.endpoints.base_url}/truth/active").json()
    carrying = {e for e, promos in active.items() if promo in promos}
    assert carrying == set(rows) - east
    assert {"web", "loyalty", "erp"} <= carrying
