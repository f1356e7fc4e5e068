"""Tests for harness.metrics.storm, with hand-derived oracles."""

from __future__ import annotations

import pytest

from harness.domain.eventlog import Record
from harness.metrics.storm import attempts_per_second, retry_storm


def endpoint(name: str, capacity: float, channel: str = "pos", region: str = "") -> Record:
    return Record(0.0, "endpoint", endpoint=name, channel=channel, region=region, value=capacity)


def send(t: float, e: str, attempt: int, op: str = "apply", version: int = 1) -> Record:
    return Record(t, "send", promo="P", version=version, endpoint=e, attempt=attempt, outcome=op)


def test_amplification_counts_deliveries_per_op() -> None:
    # Deliveries: (P,1,a,apply) x3 attempts, (P,1,b,apply) x1, (P,1,a,revoke) x1 -> 5 / 3.
    log = [
        send(1.0, "a", 1),
        send(2.0, "a", 2),
        send(4.0, "a", 3),
        send(1.0, "b", 1),
        send(9.0, "a", 1, op="revoke"),
    ]
    res = retry_storm(log)
    assert res["attempts"] == 5
    assert res["deliveries"] == 3
    assert res["amplification"] == pytest.approx(5 / 3)
    # Retries: attempts 2 and 3 of a's apply -> 2 of 5.
    assert res["retry_share"]["overall"] == pytest.approx(0.4)


def test_no_sends() -> None:
    res = retry_storm([endpoint("a", 2.0)])
    assert res["amplification"] is None
    assert res["peak_attempt_rate_over_capacity"] is None
    assert res["retry_share"]["overall"] is None


def test_peak_rate_over_capacity() -> None:
    # a (capacity 2): 3 sends in window [1, 2) -> 1.5; 1 send in [2, 3).
    # b (capacity 1): 1 send per window -> 1.0.
    # c (capacity 0, unknown): 10 sends in one window, skipped.
    log = [endpoint("a", 2.0), endpoint("b", 1.0), endpoint("c", 0.0)]
    log += [send(1.0, "a", 1), send(1.4, "a", 2), send(1.99, "a", 3), send(2.0, "a", 4)]
    log += [send(1.0, "b", 1), send(5.5, "b", 2)]
    log += [send(3.0 + i / 100, "c", i + 1) for i in range(10)]
    res = retry_storm(log)
    assert res["peak_attempt_rate_over_capacity"] == pytest.approx(1.5)
    assert res["peak"] == {"endpoint": "a", "t": 1.0, "attempts": 3, "capacity": 2.0}


def test_retry_share_during_and_after_an_outage() -> None:
    # Outage of a over [10, 15]; "after" is (15, 75].
    # a@11 retry (during), a@12 first try (during), a@20 retry (after), a@100 retry (outside),
    # b@11 retry (outside: b had no outage).
    log = [endpoint("a", 5.0), endpoint("b", 5.0)]
    log += [Record(10.0, "outage", endpoint="a", value=5.0, detail="power")]
    log += [send(11.0, "a", 2), send(12.0, "a", 1), send(20.0, "a", 3), send(100.0, "a", 2)]
    log += [send(11.0, "b", 2)]
    share = retry_storm(log)["retry_share"]
    assert share["overall"] == pytest.approx(4 / 5)
    assert share["during_outage"] == pytest.approx(1 / 2)
    assert share["after_outage"] == pytest.approx(1.0)
    assert share["outage_window"] == pytest.approx(2 / 3)


def test_channel_wide_outage_record() -> None:
    # An outage with a blank endpoint covers every endpoint of its channel.
    log = [endpoint("s1", 5.0, "pos"), endpoint("web", 5.0, "ecommerce")]
    log += [Record(0.0, "outage", channel="ecommerce", value=10.0)]
    log += [send(5.0, "web", 2), send(5.0, "s1", 1), send(6.0, "web", 1)]
    share = retry_storm(log)["retry_share"]
    assert share["during_outage"] == pytest.approx(1 / 2)
    assert share["after_outage"] is None


def test_dead_letters_and_protection_counts() -> None:
    log = [
        Record(5.0, "dlq", promo="P", endpoint="a"),
        Record(6.0, "dlq", promo="P", endpoint="b"),
        Record(3.0, "breaker", endpoint="a", outcome="open"),
        Record(4.0, "breaker", endpoint="a", outcome="half_open"),
        Record(3.5, "budget", endpoint="a", outcome="exhausted"),
        Record(2.0, "throttle", endpoint="a", outcome="rate"),
    ]
    res = retry_storm(log)
    assert res["dead_lettered"] == 2
    assert res["breaker_opened"] == 1
    assert res["budget_exhausted"] == 1
    assert res["throttled"] == 1


def test_attempts_per_second_series() -> None:
    log = [endpoint("a", 2.0), endpoint("w", 2.0, "ecommerce")]
    log += [send(1.2, "a", 1), send(1.7, "a", 2), send(1.5, "w", 1), send(3.0, "a", 3)]
    s = attempts_per_second(log)
    rows = list(s.itertuples(index=False, name=None))
    assert rows == [(1.0, "ecommerce", 1, 0), (1.0, "pos", 2, 1), (3.0, "pos", 1, 1)]
