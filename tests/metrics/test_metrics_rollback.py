"""Tests for the rollback oracle (harness.metrics.rollback), one violation kind at a time.

Every log carries an estate inventory: stores a, b (east), c, d, e (west), the ERP price
book "erp" and the web shop "web". The oracle's scope S comes from that inventory and the
rollback's declared scope, never from the orchestrator's "target" records — several tests
below write misleading targets on purpose to show they are not read.
"""

from __future__ import annotations

import json

import pytest

from harness.domain.eventlog import Record
from harness.metrics.rollback import rollback_correctness, rollback_report, rollback_timeline

REGION = {"a": "east", "b": "east", "c": "west", "d": "west", "e": "west"}


def estate() -> list[Record]:
    inv = [Record(0.0, "endpoint", endpoint=s, channel="pos", region=r) for s, r in REGION.items()]
    inv += [Record(0.0, "endpoint", endpoint="erp", channel="erp")]
    inv += [Record(0.0, "endpoint", endpoint="web", channel="ecommerce")]
    return inv


def scope(channels=(), regions=(), stores=()) -> str:
    return json.dumps(
        {"channels": list(channels), "regions": list(regions), "stores": list(stores)}
    )


def rollback(t: float, deadline: float = 5.0, **kw) -> Record:
    return Record(t, "rollback", promo="P", version=1, value=deadline, detail=scope(**kw))


def truth(t: float, kind: str, e: str, promo: str = "P") -> Record:
    return Record(t, kind, promo=promo, version=1, endpoint=e)


def base() -> list[Record]:
    """P published everywhere at 0 and applied at a, b, c, d, web at 1; rolled back at 10
    with scope {stores: [a, b]} and deadline 5; a removed at 12, b at 14."""
    log = [*estate(), Record(0.0, "publish", promo="P", version=1, detail=scope())]
    log += [truth(1.0, "applied", e) for e in ("a", "b", "c", "d", "web")]
    log += [rollback(10.0, stores=["a", "b"])]
    log += [truth(12.0, "removed", "a"), truth(14.0, "removed", "b")]
    return log


def only(log: list[Record]) -> dict:
    (res,) = rollback_correctness(log)
    return res


def found(res: dict) -> list[tuple[str, float, str]]:
    return [(v["endpoint"], v["t"], v["property"]) for v in res["violations"]]


def test_clean_rollback_passes() -> None:
    res = only(base())
    assert res["verdict"] == "pass"
    assert res["violations"] == []
    assert res["promo"] == "P"
    assert res["scope"] == {"channels": [], "regions": [], "stores": ["a", "b"]}
    assert res["scope_endpoints"] == 2
    assert res["leakage_value"] == 0.0


def test_removal_exactly_at_deadline_is_in_time() -> None:
    log = [r for r in base() if not (r.kind == "removed" and r.endpoint == "b")]
    log.append(truth(15.0, "removed", "b"))
    assert only(log)["verdict"] == "pass"


def test_late_removal() -> None:
    log = [r for r in base() if not (r.kind == "removed" and r.endpoint == "b")]
    log.append(truth(16.0, "removed", "b"))
    res = only(log)
    assert res["verdict"] == "fail"
    assert found(res) == [("b", 15.0, "not_removed_by_deadline")]
    assert "removed late at 16" in res["violations"][0]["detail"]


def test_never_removed() -> None:
    log = [r for r in base() if not (r.kind == "removed" and r.endpoint == "a")]
    (v,) = only(log)["violations"]
    assert (v["endpoint"], v["property"]) == ("a", "not_removed_by_deadline")
    assert "never removed" in v["detail"]
    assert "active at the rollback" in v["detail"]


def test_scope_endpoint_that_never_carried_it_is_fine() -> None:
    # e is in a {regions: [west]} scope but P never reached it: nothing to remove.
    log = [r for r in base() if r.kind != "rollback" and r.kind != "removed"]
    log += [rollback(10.0, regions=["west"])]
    log += [truth(12.0, "removed", "c"), truth(13.0, "removed", "d")]
    res = only(log)
    assert res["verdict"] == "pass"
    assert res["scope_endpoints"] == 3  # c, d, e: the stores of the west


def test_region_scope_does_not_cover_the_web_shop_or_the_erp() -> None:
    # The orchestrator bug the issue found: a region rollback that also takes the
    # promotion off the web shop. Its own "target" revokes list the web shop — the
    # oracle does not read them, so the removal is outside the scope.
    log = [r for r in base() if r.kind != "rollback" and r.kind != "removed"]
    log += [rollback(10.0, regions=["east"])]
    log += [Record(10.0, "target", promo="P", endpoint=x, outcome="revoke") for x in "ab"]
    log += [Record(10.0, "target", promo="P", endpoint="web", outcome="revoke")]
    log += [truth(11.0, "removed", "web"), truth(12.0, "removed", "a")]
    log += [truth(13.0, "removed", "b")]
    res = only(log)
    assert res["scope_endpoints"] == 2
    assert found(res) == [("web", 11.0, "touched_outside_scope")]


def test_a_rollback_naming_the_channel_reaches_the_web_shop() -> None:
    log = [r for r in base() if r.kind != "rollback" and r.kind != "removed"]
    log += [rollback(10.0, channels=["pos", "ecommerce"], regions=["east"])]
    log += [truth(11.0, "removed", "web"), truth(12.0, "removed", "a")]
    log += [truth(13.0, "removed", "b")]
    res = only(log)
    assert res["scope_endpoints"] == 3
    assert res["verdict"] == "pass"


def test_a_rollback_the_orchestrator_never_carried_out_fails() -> None:
    # Scope {regions: [east]}: no target records at all, nothing removed.
    log = [r for r in base() if r.kind != "rollback" and r.kind != "removed"]
    log += [rollback(10.0, regions=["east"])]
    assert found(only(log)) == [
        ("a", 15.0, "not_removed_by_deadline"),
        ("b", 15.0, "not_removed_by_deadline"),
    ]


def test_touched_outside_scope() -> None:
    log = [*base(), truth(13.0, "removed", "c")]
    assert found(only(log)) == [("c", 13.0, "touched_outside_scope")]


def test_removal_covered_by_another_rollback_is_not_outside_scope() -> None:
    # A second rollback at 11 covers c: its removal at 13 is inside the first rollback's
    # window but legitimately belongs to the second.
    log = [*base(), rollback(11.0, stores=["c"]), truth(13.0, "removed", "c")]
    first, second = rollback_correctness(log)
    assert first["verdict"] == "pass"
    assert second["verdict"] == "pass"


def test_outside_removal_reported_once_across_overlapping_rollbacks() -> None:
    log = [*base(), rollback(11.0, stores=["c"])]
    log += [truth(13.0, "removed", "c"), truth(14.0, "removed", "d")]
    first, second = rollback_correctness(log)
    assert first["violations"] == []
    assert [(v["endpoint"], v["property"]) for v in second["violations"]] == [
        ("d", "touched_outside_scope")
    ]


def test_resurrection_after_removal() -> None:
    # A late retry of the publish re-applies P at a (removed at 12) at 20.
    log = [*base(), truth(20.0, "applied", "a")]
    res = only(log)
    assert found(res) == [("a", 20.0, "resurrected")]
    assert "12" in res["violations"][0]["detail"]


def test_resurrection_inside_the_window_is_caught_too() -> None:
    log = [*base(), truth(13.0, "applied", "a"), truth(14.5, "removed", "a")]
    assert found(only(log)) == [("a", 13.0, "resurrected")]


def test_first_apply_after_the_deadline_is_caught_without_any_removal() -> None:
    # e never had P; a relay's retry lands there after the rollback's deadline.
    log = [*base(), rollback(10.0, stores=["e"]), truth(30.0, "applied", "e")]
    _, second = rollback_correctness(log)
    assert found(second) == [("e", 30.0, "applied_after_rollback")]


def test_first_apply_inside_the_window_that_stays_is_not_removed() -> None:
    log = [*base(), rollback(10.0, stores=["e"]), truth(11.0, "applied", "e")]
    _, second = rollback_correctness(log)
    assert found(second) == [("e", 15.0, "not_removed_by_deadline")]
    assert "applied at 11 after the rollback" in second["violations"][0]["detail"]


def test_an_in_flight_apply_taken_back_by_the_deadline_is_fine() -> None:
    log = [*base(), rollback(10.0, stores=["e"])]
    log += [truth(11.0, "applied", "e"), truth(12.0, "removed", "e")]
    _, second = rollback_correctness(log)
    assert second["verdict"] == "pass"


def test_republish_is_not_resurrection() -> None:
    log = [*base(), Record(18.0, "publish", promo="P", version=3, detail=scope(stores=["a"]))]
    log += [truth(20.0, "applied", "a")]
    assert only(log)["verdict"] == "pass"


def test_republish_elsewhere_does_not_excuse_a_resurrection() -> None:
    log = [*base(), Record(18.0, "publish", promo="P", version=3, detail=scope(stores=["c"]))]
    log += [truth(20.0, "applied", "a")]
    assert found(only(log)) == [("a", 20.0, "resurrected")]


def test_leakage_sum() -> None:
    # After the rollback at 10 at scope endpoints: 2.50 at a, 1.25 at b -> 3.75.
    # Not leakage: 100 at a before the rollback, 7 at c (outside scope), 4 for another promo.
    log = [
        *base(),
        Record(11.0, "discount", promo="P", endpoint="a", value=2.5, detail="s1"),
        Record(13.0, "discount", promo="P", endpoint="b", value=1.25, detail="s2"),
        Record(9.0, "discount", promo="P", endpoint="a", value=100.0, detail="s0"),
        Record(12.0, "discount", promo="P", endpoint="c", value=7.0, detail="s3"),
        Record(12.0, "discount", promo="Q", endpoint="a", value=4.0, detail="s4"),
    ]
    results, total = rollback_report(log)
    assert results[0]["leakage_value"] == pytest.approx(3.75)
    assert total == pytest.approx(3.75)
    assert results[0]["verdict"] == "pass"  # leakage is a figure, not a violation


def test_leakage_total_counts_each_discount_once() -> None:
    # Two rollbacks both cover a: the 2.5 after both is in each, once in the total.
    log = [*base(), rollback(11.0, stores=["a"])]
    log += [Record(11.5, "discount", promo="P", endpoint="a", value=2.5)]
    results, total = rollback_report(log)
    assert [r["leakage_value"] for r in results] == [2.5, 2.5]
    assert total == 2.5


def test_no_rollback() -> None:
    assert rollback_report([Record(0.0, "publish", promo="P")]) == ([], 0.0)
    assert rollback_timeline([]).empty


def test_timeline() -> None:
    # At 10 two scope endpoints are active; a removed at 12 -> 1; b at 14 -> 0;
    # a resurrected at 20 -> 1.
    log = [*base(), truth(20.0, "applied", "a")]
    tl = rollback_timeline(log)
    assert list(tl["t"]) == [10.0, 12.0, 14.0, 20.0]
    assert list(tl["since"]) == [0.0, 2.0, 4.0, 10.0]
    assert list(tl["active"]) == [2, 1, 0, 1]


def test_an_apply_and_its_removal_at_one_instant_is_no_violation() -> None:
    # A batch store picks up the queued publish and the revoke in one pick-up, after the
    # deadline: applied and removed at the same t, it never carried the promotion.
    log = [*base(), rollback(10.0, stores=["e"])]
    log += [truth(30.0, "applied", "e"), truth(30.0 + 1e-9, "removed", "e")]
    _, second = rollback_correctness(log)
    assert second["verdict"] == "pass"


def test_a_removal_then_an_apply_at_one_instant_is_a_resurrection() -> None:
    log = [*base(), truth(20.0, "removed", "a"), truth(20.0, "applied", "a")]
    assert found(only(log)) == [("a", 20.0, "resurrected")]
