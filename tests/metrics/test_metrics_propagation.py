"""Tests for harness.metrics.propagation, with hand-derived oracles."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.eventlog import Record
from harness.metrics.propagation import coverage_curve, propagation, time_to_share


def publish(t: float, promo: str, endpoints: dict[str, str], version: int = 1) -> list[Record]:
    """A publish record and its apply targets (endpoint -> channel)."""
    recs = [Record(t, "publish", promo=promo, version=version)]
    recs += [
        Record(t, "target", promo=promo, version=version, endpoint=e, channel=c, outcome="apply")
        for e, c in endpoints.items()
    ]
    return recs


def applied(t: float, promo: str, endpoint: str) -> Record:
    return Record(t, "applied", promo=promo, version=1, endpoint=endpoint)


def ack(t: float, promo: str, endpoint: str, outcome: str = "apply") -> Record:
    return Record(t, "ack", promo=promo, version=1, endpoint=endpoint, outcome=outcome)


FOUR = {"a": "pos", "b": "pos", "c": "pos", "d": "ecommerce"}


def test_time_to_share_integer_rank() -> None:
    # 20 latencies 1..20: k = ceil(p * 20 / 100) -> 10, 19, 20, 20.
    lat = np.arange(1.0, 21.0)
    assert [time_to_share(lat, p) for p in (50, 95, 99, 100)] == [10.0, 19.0, 20.0, 20.0]
    assert time_to_share([], 50) is None
    assert time_to_share([1.0, None], 50) == 1.0
    assert time_to_share([1.0, None], 100) is None


def test_t_values_on_four_endpoints() -> None:
    # Publish at 10; applied at 11, 12, 14, 20 -> latencies 1, 2, 4, 10.
    # T50: 2 of 4 -> 2; T95/T99/T100: 4 of 4 -> 10.
    log = [
        *publish(10.0, "P", FOUR),
        applied(11.0, "P", "a"),
        applied(12.0, "P", "b"),
        applied(14.0, "P", "c"),
        applied(20.0, "P", "d"),
    ]
    res = propagation(log)["overall"]
    assert (res["t50"], res["t95"], res["t99"], res["t100"]) == (2.0, 10.0, 10.0, 10.0)
    assert res["targets"] == 4 and res["applied"] == 4


def test_t100_none_when_one_endpoint_never_applies() -> None:
    log = [
        *publish(10.0, "P", FOUR),
        applied(11.0, "P", "a"),
        applied(12.0, "P", "b"),
        applied(14.0, "P", "c"),
    ]
    res = propagation(log)
    o = res["overall"]
    # Latencies 1, 2, 4, never: 2 of 4 by 2 s; 95 % needs all 4.
    assert (o["t50"], o["t95"], o["t99"], o["t100"]) == (2.0, None, None, None)
    pos = res["by_channel"]["pos"]
    assert (pos["t50"], pos["t100"]) == (2.0, 4.0)
    eco = res["by_channel"]["ecommerce"]
    assert (eco["t50"], eco["t100"], eco["applied"]) == (None, None, 0)


def test_applied_before_publish_does_not_count() -> None:
    # A stale "applied" at 5 precedes the publish at 10; the first one at or after 10 is 13.
    log = [applied(5.0, "P", "a"), *publish(10.0, "P", {"a": "pos"}), applied(13.0, "P", "a")]
    assert propagation(log)["overall"]["t100"] == 3.0


def test_acked_vs_truth() -> None:
    # Truth latencies 1, 2, 4, 10; acks at 1.5, 2.5, 4.5, 10.5 -> acked T95 = 10.5.
    log = publish(10.0, "P", FOUR)
    for e, lat in zip("abcd", (1.0, 2.0, 4.0, 10.0), strict=True):
        log += [applied(10.0 + lat, "P", e), ack(10.5 + lat, "P", e)]
    o = propagation(log)["overall"]
    assert o["t95"] == 10.0
    assert o["acked_t95"] == 10.5
    assert o["ghosts"]["applied_not_acked"] == 0 and o["ghosts"]["acked_not_applied"] == 0


def test_ghosts_both_kinds() -> None:
    # a: applied, never acked. b: acked, never applied. c: both. d: neither.
    # A revoke ack at a does not acknowledge the publish.
    log = [
        *publish(0.0, "P", FOUR),
        applied(1.0, "P", "a"),
        ack(9.0, "P", "a", outcome="revoke"),
        ack(2.0, "P", "b"),
        applied(1.0, "P", "c"),
        ack(1.5, "P", "c"),
    ]
    g = propagation(log)["overall"]["ghosts"]
    assert g["applied_not_acked"] == 1
    assert g["acked_not_applied"] == 1
    assert [(x["endpoint"], x["kind"]) for x in g["examples"]] == [
        ("a", "applied_not_acked"),
        ("b", "acked_not_applied"),
    ]


def test_channel_from_inventory_when_target_leaves_it_blank() -> None:
    log = [Record(0.0, "endpoint", endpoint="w", channel="marketplace", value=10.0)]
    log += [*publish(1.0, "P", {"w": ""}), applied(4.0, "P", "w")]
    assert propagation(log)["by_channel"]["marketplace"]["t100"] == 3.0


def test_several_publishes_aggregate_against_their_own_publish() -> None:
    # P at 0: a after 1, b after 3. Q at 100: a after 5. Overall latencies 1, 3, 5.
    log = publish(0.0, "P", {"a": "pos", "b": "pos"}) + publish(100.0, "Q", {"a": "pos"})
    log += [applied(1.0, "P", "a"), applied(3.0, "P", "b"), applied(105.0, "Q", "a")]
    res = propagation(log)
    assert (res["overall"]["t50"], res["overall"]["t100"]) == (3.0, 5.0)
    assert res["by_promo"]["P"]["t100"] == 3.0
    assert res["by_promo"]["Q"]["t100"] == 5.0
    assert res["by_promo"]["Q"]["late_for_start"] is None


def test_late_for_start() -> None:
    # Start at 15: a applied at 12 (on time), b at 16 (late), c never (late).
    log = [Record(0.0, "schedule", promo="P", value=15.0)]
    log += publish(10.0, "P", {"a": "pos", "b": "pos", "c": "pos"})
    log += [applied(12.0, "P", "a"), applied(16.0, "P", "b")]
    late = propagation(log)["by_promo"]["P"]["late_for_start"]
    assert late == {"start": 15.0, "count": 2, "endpoints": ["b", "c"]}


def test_applied_exactly_at_start_is_on_time() -> None:
    log = [Record(0.0, "schedule", promo="P", value=15.0)]
    log += [*publish(10.0, "P", {"a": "pos"}), applied(15.0, "P", "a")]
    late = propagation(log)["by_promo"]["P"]["late_for_start"]
    assert late["count"] == 0 and late["endpoints"] == []


def test_coverage_curve_steps() -> None:
    log = [*publish(10.0, "P", FOUR), applied(11.0, "P", "a"), applied(14.0, "P", "d")]
    curve = coverage_curve(log)
    overall = curve[curve["channel"] == "all"]
    assert list(overall["t"]) == [0.0, 1.0, 4.0]
    assert list(overall["coverage"]) == [0.0, 0.25, 0.5]
    eco = curve[curve["channel"] == "ecommerce"]
    assert list(eco["coverage"]) == [0.0, 1.0]


def test_no_publish() -> None:
    res = propagation([Record(0.0, "endpoint", endpoint="a", value=1.0)])
    assert res["overall"]["t50"] is None and res["overall"]["targets"] == 0
    assert res["by_channel"] == {} and res["by_promo"] == {}
    assert coverage_curve([]).empty


latency = st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(latency, st.sampled_from(["pos", "ecommerce"])), min_size=1, max_size=30))
def test_coverage_monotone_and_t_values_ordered(points) -> None:
    endpoints = {f"e{i}": ch for i, (_, ch) in enumerate(points)}
    log = publish(7.0, "P", endpoints)
    log += [
        applied(7.0 + lat, "P", f"e{i}") for i, (lat, _) in enumerate(points) if lat is not None
    ]
    curve = coverage_curve(log)
    for _, g in curve.groupby("channel"):
        assert g["t"].is_monotonic_increasing
        assert g["coverage"].is_monotonic_increasing
        assert g["coverage"].between(0.0, 1.0).all()
    res = propagation(log)
    for stats in [res["overall"], *res["by_channel"].values()]:
        ts = [stats[k] for k in ("t50", "t95", "t99", "t100")]
        defined = [t for t in ts if t is not None]
        assert defined == sorted(defined)
        # Once a share is unreachable, every larger share is too.
        assert ts[: len(defined)] == defined
    # T50 against a brute-force reading of "the time by which half were applied".
    lats = [7.0 + lat - 7.0 for lat, _ in points if lat is not None]
    n = len(points)
    reached = [t for t in sorted(lats) if sum(x <= t for x in lats) * 2 >= n]
    expected = reached[0] if reached else None
    got = res["overall"]["t50"]
    assert (got is None and expected is None) or math.isclose(got, expected)
