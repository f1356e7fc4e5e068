"""Random estates and random scopes for the scope property tests (virtual time and live).

A third statement of docs/scope.md lives here, in ``expected_removals``: plain loops over
the inventory, written from the table and not from either implementation it checks
(``harness.domain.scope.covers``, used by the orchestrator, and
``harness.metrics.rollback.covered_endpoints``, used by the oracle).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

REGIONS = (
    ("east", "America/New_York"),
    ("west", "America/Los_Angeles"),
    ("hawaii", "Pacific/Honolulu"),
)
SALES_CHANNELS = ("pos", "ecommerce", "loyalty", "marketplace")
ALL_CHANNELS = ("erp", *SALES_CHANNELS)
FAST = {"kind": "fixed", "mean": 0.1}
CLEAN = {"error_rate": 0, "timeout_rate": 0, "lost_ack_rate": 0}


@st.composite
def estates_and_scopes(draw: st.DrawFn) -> dict[str, Any]:
    """An estate (1–3 regions, 1–6 stores), a promotion's channels and a rollback scope
    drawn from the estate's own names (the unknown-name case has tests of its own)."""
    regions = draw(st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True))
    stores = draw(st.integers(min_value=len(regions), max_value=6))
    channels = draw(st.lists(st.sampled_from(SALES_CHANNELS), min_size=1, unique=True))
    store_ids = [f"S{n:04d}" for n in range(1, stores + 1)]
    scope = {
        "channels": draw(st.lists(st.sampled_from(ALL_CHANNELS), max_size=3, unique=True)),
        "regions": draw(
            st.lists(st.sampled_from([r for r, _ in regions]), max_size=2, unique=True)
        ),
        "stores": draw(st.lists(st.sampled_from(store_ids), max_size=2, unique=True)),
    }
    return {"regions": regions, "stores": stores, "channels": channels, "scope": scope}


def scenario_data(
    case: dict[str, Any], name: str = "scope-property", settle: float = 0.0
) -> dict[str, Any]:
    """A fault-free scenario: publish everywhere at 20, roll back ``case['scope']`` at 40.

    ``settle`` moves the approval and everything after it that many seconds later. Live,
    scenario time is wall-clock time: the ERP's validation (asked for at t=2) must have
    answered before the approval, or the approval is refused (409); at 20x the 8 s
    between them are 0.4 s, less than a busy machine's event loop was seen to stall."""
    profile = {"latency": FAST, "capacity": 50, **CLEAN}
    return {
        "name": name,
        "seed": 1,
        "start": "2026-11-28T14:00:00Z",
        "duration": 120 + settle,
        "estate": {
            "stores": case["stores"],
            "products": 20,
            "regions": [
                {"name": r, "timezone": tz, "batch_share": 0.0, "link": "healthy-pos"}
                for r, tz in case["regions"]
            ],
        },
        "endpoints": {ch: dict(profile) for ch in ALL_CHANNELS},
        "promotions": [
            {
                "id": "P1",
                "name": "10% off",
                "validity": {
                    "start": "2026-11-28T00:00:00",
                    "end": "2026-11-30T00:00:00",
                    "timezone": "America/New_York",
                },
                "scope": {"channels": case["channels"]},
                "benefit": {"type": "percent_off", "percent": 10},
            }
        ],
        "timeline": [
            {"at": 0, "action": "create", "promo": "P1"},
            {"at": 1, "action": "submit", "promo": "P1"},
            {"at": 2, "action": "validate", "promo": "P1"},
            {"at": 10 + settle, "action": "approve", "promo": "P1"},
            {"at": 20 + settle, "action": "publish", "promo": "P1"},
            {
                "at": 40 + settle,
                "action": "rollback",
                "promo": "P1",
                "scope": case["scope"],
                "deadline": 30,
            },
        ],
        "traffic": {"kind": "none"},
    }


def expected_removals(
    inventory: list[tuple[str, str, str]], scope: dict[str, list[str]], carrying: set[str]
) -> set[str]:
    """Endpoints (id, channel, region) the rollback must take P from: those it covers
    that carry P. A store is an endpoint with a region; its id is the store id."""
    out = set()
    for endpoint, channel, region in inventory:
        if endpoint not in carrying:
            continue
        if scope["channels"] and channel not in scope["channels"]:
            continue
        if region:
            if scope["stores"]:
                if endpoint not in scope["stores"]:
                    continue
            elif scope["regions"] and region not in scope["regions"]:
                continue
        elif (scope["regions"] or scope["stores"]) and not scope["channels"]:
            continue
        out.add(endpoint)
    return out


def removal_sets(
    records: Any, t_rollback: float
) -> tuple[set[str], set[str], list[tuple[str, str, str]]]:
    """(carrying P at the rollback, removed after it, the inventory) from an event frame."""
    df = records
    inv = df[df["kind"] == "endpoint"]
    inventory = [(r.endpoint, str(r.channel), r.region) for r in inv.itertuples()]
    truth = df[(df["promo"] == "P1") & df["kind"].isin(["applied", "removed"])].sort_values(
        "t", kind="stable"
    )
    before = truth[truth["t"] <= t_rollback]
    last = before.groupby("endpoint")["kind"].last()
    carrying = {e for e, k in last.items() if k == "applied"}
    removed = set(truth[(truth["kind"] == "removed") & (truth["t"] > t_rollback)]["endpoint"])
    return carrying, removed, inventory


def ever_applied(records: Any) -> set[str]:
    """Endpoints that applied P1 at any time in the run."""
    df = records
    return set(df[(df["promo"] == "P1") & (df["kind"] == "applied")]["endpoint"])


def rollback_time(records: Any) -> float:
    """When the orchestrator recorded the rollback (live: when the operator's call landed)."""
    df = records
    return float(df[df["kind"] == "rollback"]["t"].iloc[0])


def scope_json(scope: dict[str, list[str]]) -> str:
    return json.dumps(scope)
