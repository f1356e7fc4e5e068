"""Tests for the rollback oracle (harness.metrics.rollback), one violation kind at a time."""

from __future__ import annotations

import pytest

from harness.domain.eventlog import Record
from harness.metrics.rollback import rollback_correctness, rollback_report, rollback_timeline


def targets(t: float, endpoints: str, outcome: str, promo: str = "P") -> list[Record]:
    return [Record(t, "target", promo=promo, endpoint=e, outcome=outcome) for e in endpoints]


def truth(t: float, kind: str, e: str, promo: str = "P") -> Record:
    return Record(t, kind, promo=promo, version=1, endpoint=e)


def base() -> list[Record]:
    """P published to a, b, c, d at 0 and applied everywhere at 1; rolled back at 10 with
    scope {a, b} and deadline 5; a removed at 12, b at 14."""
    log = [Record(0.0, "publish", promo="P", version=1), *targets(0.0, "abcd", "apply")]
    log += [truth(1.0, "applied", e) for e in "abcd"]
    log += [
        Record(10.0, "rollback", promo="P", version=1, value=5.0, detail='{"stores": ["a", "b"]}')
    ]
    log += targets(10.0, "ab", "revoke")
    log += [truth(12.0, "removed", "a"), truth(14.0, "removed", "b")]
    return log


def only(log: list[Record]) -> dict:
    (res,) = rollback_correctness(log)
    return res


def test_clean_rollback_passes() -> None:
    res = only(base())
    assert res["verdict"] == "pass"
    assert res["violations"] == []
    assert res["promo"] == "P"
    assert res["scope"] == {"stores": ["a", "b"]}
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
    assert [(v["endpoint"], v["t"], v["property"]) for v in res["violations"]] == [
        ("b", 15.0, "not_removed_by_deadline")
    ]
    assert "16" in res["violations"][0]["detail"]


def test_never_removed() -> None:
    log = [r for r in base() if not (r.kind == "removed" and r.endpoint == "a")]
    (v,) = only(log)["violations"]
    assert (v["endpoint"], v["property"]) == ("a", "not_removed_by_deadline")
    assert "never removed" in v["detail"]


def test_scope_endpoint_never_applied_is_fine() -> None:
    # e is in scope but P never reached it: nothing to remove.
    log = base() + targets(0.0, "e", "apply") + targets(10.0, "e", "revoke")
    res = only(log)
    assert res["verdict"] == "pass"
    assert res["scope_endpoints"] == 3


def test_touched_outside_scope() -> None:
    log = [*base(), truth(13.0, "removed", "c")]
    res = only(log)
    assert [(v["endpoint"], v["t"], v["property"]) for v in res["violations"]] == [
        ("c", 13.0, "touched_outside_scope")
    ]


def test_removal_covered_by_another_rollback_is_not_outside_scope() -> None:
    # A second rollback at 11 revokes c: its removal at 13 is inside the first rollback's
    # window but legitimately belongs to the second.
    log = [*base(), Record(11.0, "rollback", promo="P", value=5.0), *targets(11.0, "c", "revoke")]
    log += [truth(13.0, "removed", "c")]
    first, second = rollback_correctness(log)
    assert first["verdict"] == "pass"
    assert second["verdict"] == "pass"


def test_outside_removal_reported_once_across_overlapping_rollbacks() -> None:
    log = [*base(), Record(11.0, "rollback", promo="P", value=5.0), *targets(11.0, "c", "revoke")]
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
    assert [(v["endpoint"], v["t"], v["property"]) for v in res["violations"]] == [
        ("a", 20.0, "resurrected")
    ]
    assert "12" in res["violations"][0]["detail"]


def test_republish_is_not_resurrection() -> None:
    log = [*base(), Record(18.0, "publish", promo="P", version=2), *targets(18.0, "a", "apply")]
    log += [truth(20.0, "applied", "a")]
    assert only(log)["verdict"] == "pass"


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
    log = [*base(), Record(11.0, "rollback", promo="P", value=5.0), *targets(11.0, "a", "revoke")]
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
