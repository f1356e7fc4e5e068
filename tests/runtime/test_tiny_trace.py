"""A whole event log derived by hand (SimPy style) from tests/runtime/tiny.yaml.

Two realtime stores and every channel with fixed latencies, no faults, no shoppers. The
network delays are the runtime's constants: 0.02 s one way to a store, 0.01 s to the ERP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner import simulate
from harness.scenario import load_scenario

TINY = Path(__file__).with_name("tiny.yaml")
SCOPE_ALL = '{"channels":[],"regions":[],"stores":[]}'
SCOPE_S2 = '{"channels":[],"regions":[],"stores":["S0002"]}'


def E(
    t,
    kind,
    promo="",
    version=0,
    endpoint="",
    channel="",
    region="",
    attempt=0,
    outcome="",
    value=0.0,
    detail="",
):  # type: ignore[no-untyped-def]
    return (t, kind, promo, version, endpoint, channel, region, attempt, outcome, value, detail)


def expected_log() -> list[tuple]:
    s1, s2 = ("S0001", "pos", "east"), ("S0002", "pos", "east")
    erp = ("erp", "erp", "")
    a1 = {ep[0]: f"P1:1:{ep[0]}:apply" for ep in (s1, s2, erp)}
    return [
        # Inventory: capacity = servers / fixed service time.
        E(0, "endpoint", endpoint="erp", channel="erp", value=20 / 0.25, detail="realtime"),
        E(
            0,
            "endpoint",
            endpoint="S0001",
            channel="pos",
            region="east",
            value=1 / 0.1,
            detail="realtime",
        ),
        E(
            0,
            "endpoint",
            endpoint="S0002",
            channel="pos",
            region="east",
            value=1 / 0.1,
            detail="realtime",
        ),
        E(0, "endpoint", endpoint="web", channel="ecommerce", value=2 / 0.2, detail="realtime"),
        E(0, "endpoint", endpoint="loyalty", channel="loyalty", value=1 / 0.5, detail="realtime"),
        E(
            0,
            "endpoint",
            endpoint="mkt-amazon",
            channel="marketplace",
            value=1 / 1.0,
            detail="realtime",
        ),
        # The operator's path to approval; validation is a round trip to the ERP:
        # 0.01 s there, 0.25 s of service, answered at 2.26.
        E(0, "create", "P1", 1),
        E(0, "state", "P1", 1, detail="->draft"),
        E(1, "submit", "P1", 1),
        E(1, "state", "P1", 1, detail="draft->submitted"),
        E(2, "validate", "P1", 1),
        E(2.26, "validated", "P1", 1, outcome="ok"),
        E(2.26, "state", "P1", 1, detail="submitted->validated"),
        E(10, "approve", "P1", 1),
        E(10, "state", "P1", 1, detail="validated->approved"),
        # Publish: the ERP price book and both stores (the promotion's scope is pos).
        E(20, "publish", "P1", 1, detail=SCOPE_ALL),
        E(20, "state", "P1", 1, detail="approved->publishing"),
        *[E(20, "target", "P1", 1, *ep, outcome="apply", detail=a1[ep[0]]) for ep in (erp, s1, s2)],
        *[
            E(20, "send", "P1", 1, *ep, attempt=1, outcome="apply", detail=a1[ep[0]])
            for ep in (erp, s1, s2)
        ],
        # Stores: 0.02 out + 0.1 service = applied at 20.12; reply 0.02 back at 20.14.
        E(20.12, "applied", "P1", 1, *s1),
        E(20.12, "applied", "P1", 1, *s2),
        E(20.14, "result", "P1", 1, *s1, attempt=1, outcome="ok", value=0.14, detail=a1["S0001"]),
        E(20.14, "ack", "P1", 1, *s1, attempt=1, outcome="apply", detail=a1["S0001"]),
        E(20.14, "result", "P1", 1, *s2, attempt=1, outcome="ok", value=0.14, detail=a1["S0002"]),
        E(20.14, "ack", "P1", 1, *s2, attempt=1, outcome="apply", detail=a1["S0002"]),
        # ERP: 0.01 + 0.25 = applied at 20.26, answered at 20.27; then all three are acked.
        E(20.26, "applied", "P1", 1, *erp),
        E(20.27, "result", "P1", 1, *erp, attempt=1, outcome="ok", value=0.27, detail=a1["erp"]),
        E(20.27, "ack", "P1", 1, *erp, attempt=1, outcome="apply", detail=a1["erp"]),
        E(20.27, "state", "P1", 1, detail="publishing->active"),
        # Roll one store back: a tombstone version 2 goes to S0002 only (the ERP keeps its
        # price book for a partial rollback); the store removes version 1.
        E(40, "rollback", "P1", 1, value=5.0, detail=SCOPE_S2),
        E(40, "state", "P1", 1, detail="active->rolling_back"),
        E(40, "target", "P1", 2, *s2, outcome="revoke", detail="P1:2:S0002:revoke"),
        E(40, "send", "P1", 2, *s2, attempt=1, outcome="revoke", detail="P1:2:S0002:revoke"),
        E(40.12, "removed", "P1", 1, *s2),
        E(
            40.14,
            "result",
            "P1",
            2,
            *s2,
            attempt=1,
            outcome="ok",
            value=0.14,
            detail="P1:2:S0002:revoke",
        ),
        E(40.14, "ack", "P1", 2, *s2, attempt=1, outcome="revoke", detail="P1:2:S0002:revoke"),
        # S0001 still carries it: back to active.
        E(40.14, "state", "P1", 1, detail="rolling_back->active"),
    ]


@pytest.fixture(scope="module")
def tiny_run():  # type: ignore[no-untyped-def]
    return simulate(load_scenario(TINY))


def test_whole_event_log_matches_the_hand_derivation(tiny_run) -> None:  # type: ignore[no-untyped-def]
    got = [tuple(row) for row in tiny_run.events.itertuples(index=False)]
    want = expected_log()
    assert [r[1:] for r in got] == [(*w[1:9], pytest.approx(w[9]), w[10]) for w in want]
    assert [r[0] for r in got] == pytest.approx([w[0] for w in want], abs=1e-9)


def test_figures_of_the_tiny_run(tiny_run) -> None:  # type: ignore[no-untyped-def]
    prop = tiny_run.summary["propagation"]["overall"]
    # Truth latencies 0.12, 0.12 (stores) and 0.26 (ERP): T50 is the 2nd smallest.
    assert prop["t50"] == pytest.approx(0.12)
    assert prop["t100"] == pytest.approx(0.26)
    assert prop["acked_t95"] == pytest.approx(0.27)
    storm = tiny_run.summary["retry_storm"]
    assert storm["amplification"] == 1.0 and storm["dead_lettered"] == 0
    (rollback,) = tiny_run.summary["rollbacks"]
    assert rollback["verdict"] == "pass" and rollback["violations"] == []
    assert tiny_run.summary["leakage_value"] == 0
