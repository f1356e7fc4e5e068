"""The dashboard's series, folded from hand-written records (no server, no browser)."""

from __future__ import annotations

from harness.domain.eventlog import Record
from harness.service.dashboard_series import ALL, PromoSeries, SalesSeries


def _fold(records: list[Record]) -> PromoSeries:
    series = PromoSeries()
    for r in records:
        series.add(r)
    return series


def test_coverage_rises_with_acks_and_falls_with_revokes() -> None:
    series = _fold(
        [
            Record(1.0, "publish", "P"),
            Record(1.0, "target", "P", 1, "S1", "pos", "east", outcome="apply"),
            Record(1.0, "target", "P", 1, "S2", "pos", "west", outcome="apply"),
            Record(1.0, "target", "P", 1, "web", "ecommerce", outcome="apply"),
            Record(2.0, "ack", "P", 1, "S1", "pos", "east", outcome="apply"),
            Record(3.0, "ack", "P", 1, "S2", "pos", "west", outcome="apply"),
            Record(3.5, "ack", "P", 1, "web", "ecommerce", outcome="apply"),
            Record(9.0, "ack", "P", 1, "S1", "pos", "east", outcome="revoke"),
        ]
    )
    body = series.to_json(10.0)
    assert body["published_at"] == 1.0
    assert body["coverage"]["pos"] == [[1.0, 0.0], [2.0, 0.5], [3.0, 1.0], [9.0, 0.5]]
    assert body["coverage"]["ecommerce"] == [[1.0, 0.0], [3.5, 1.0]]
    assert body["coverage"][ALL][-1] == [9.0, round(2 / 3, 4)]
    assert [a["kind"] for a in body["audit"]] == ["publish"]


def test_retries_and_dead_letters_per_second() -> None:
    series = _fold(
        [
            Record(4.1, "send", "P", 1, "S1", "pos", attempt=1),
            Record(5.2, "send", "P", 1, "S1", "pos", attempt=2),
            Record(5.9, "send", "P", 1, "S2", "pos", attempt=3),
            Record(7.0, "dlq", "P", 1, "S2", "pos", outcome="attempts"),
        ]
    )
    body = series.to_json(8.0)
    assert body["retries"] == [[5, 2]]
    assert body["dead_letters"] == [[7, 1]]
    assert body["totals"] == {"sends": 3, "retries": 2, "dead_letters": 1}
    assert body["audit"][0]["kind"] == "dlq"


def test_sales_and_discount_are_cumulative_per_promotion() -> None:
    sales = SalesSeries()
    for r in [
        {"t": 1.5, "kind": "sale", "promo": "", "value": 100.0},
        {"t": 1.7, "kind": "discount", "promo": "P", "value": 10.0},
        {"t": 3.0, "kind": "sale", "promo": "", "value": 50.0},
        {"t": 3.0, "kind": "discount", "promo": "Q", "value": 5.0},
        {"t": 3.1, "kind": "applied", "promo": "P", "value": 0.0},
    ]:
        sales.add(r)
    body = sales.to_json("P", 4.0)
    assert body["sales"] == [[1.0, 100.0], [3.0, 150.0]]
    assert body["discount"] == [[1.0, 10.0]]
    assert (body["sales_total"], body["discount_total"], body["sales_count"]) == (150.0, 10.0, 2)
    assert sales.to_json(None, 4.0)["discount"] == []
