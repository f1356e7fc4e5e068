"""Tests for price consistency and funding (harness.metrics.consistency)."""

from __future__ import annotations

import pytest

from harness.domain.eventlog import Record
from harness.metrics.consistency import funding, price_consistency

INVENTORY = [
    Record(0.0, "endpoint", endpoint="s1", channel="pos", value=5.0),
    Record(0.0, "endpoint", endpoint="s2", channel="pos", value=5.0),
    Record(0.0, "endpoint", endpoint="web", channel="ecommerce", value=50.0),
]


def quote(e: str, price: float, sample: str) -> Record:
    return Record(30.0, "quote", endpoint=e, value=price, detail=sample)


def test_three_samples_one_mismatch() -> None:
    # A@1: all 9.99. A@2: pos 9.99 vs ecommerce 8.49 (spread 1.50).
    # B@1: 5.00 vs 5.004, the same price once rounded to cents.
    log = [
        *INVENTORY,
        quote("s1", 9.99, "A@1"),
        quote("s2", 9.99, "A@1"),
        quote("web", 9.99, "A@1"),
        quote("s1", 9.99, "A@2"),
        quote("web", 8.49, "A@2"),
        quote("s1", 5.0, "B@1"),
        quote("web", 5.004, "B@1"),
    ]
    res = price_consistency(log)
    assert res["samples"] == 3
    assert res["mismatched"] == 1
    assert res["mismatch_rate"] == pytest.approx(1 / 3)
    assert res["spread_value"] == pytest.approx(1.5)
    assert res["by_channel_pair"] == {"ecommerce|pos": 1}
    (ex,) = res["examples"]
    assert ex["sample"] == "A@2" and ex["sku"] == "A"
    assert ex["prices"] == [8.49, 9.99]
    assert ex["by_channel"] == {"ecommerce": [8.49], "pos": [9.99]}


def test_disagreement_within_a_channel() -> None:
    # Two stores quote differently; the web agrees with one of them.
    log = [*INVENTORY, quote("s1", 10.0, "C@1"), quote("s2", 9.0, "C@1"), quote("web", 10.0, "C@1")]
    res = price_consistency(log)
    assert res["spread_value"] == pytest.approx(1.0)
    assert res["by_channel_pair"] == {"ecommerce|pos": 1, "pos|pos": 1}


def test_no_quotes() -> None:
    res = price_consistency(INVENTORY)
    assert res["samples"] == 0 and res["mismatch_rate"] is None and res["spread_value"] == 0.0


def test_funding_overrun() -> None:
    log = [
        Record(0.0, "create", promo="Q"),
        Record(5.0, "discount", promo="P", endpoint="s1", value=30.0, detail="x1"),
        Record(6.0, "discount", promo="P", endpoint="s2", value=25.0, detail="x2"),
        Record(7.0, "discount", promo="R", endpoint="s2", value=10.0, detail="x3"),
    ]
    res = funding(log, {"P": 50.0, "Q": 100.0})
    assert list(res) == ["P", "Q", "R"]
    assert res["P"] == {
        "granted": 55.0,
        "budget": 50.0,
        "overrun": 5.0,
        "utilisation": pytest.approx(1.1),
        "discounts": 2,
    }
    assert res["Q"]["granted"] == 0.0 and res["Q"]["overrun"] == 0.0
    assert res["Q"]["utilisation"] == 0.0
    assert res["R"]["budget"] is None and res["R"]["overrun"] is None
    assert res["R"]["utilisation"] is None
