"""Properties of the reference pricing engine over generated baskets and promotions.

Whatever the basket, the promotions and the dialect: no line goes below zero, no discount
exceeds what it discounts, the receipt's figures add up, spreading is exact, an inactive
promotion changes nothing, and the order the promotions are passed in does not matter.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.basket import Basket, BasketLine, Receipt
from harness.domain.dialects import DIALECTS, Dialect, compose
from harness.domain.pricing import StoreContext, is_applicable, price_basket, spread
from harness.domain.promotion import CHANNELS, Promotion

D = Decimal
CENT = D("0.01")
AT = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
STORE = StoreContext(id="S1", region="fr", timezone="Europe/Paris")
CATEGORIES = ["a", "b", "c"]
PROPS = settings(max_examples=200, deadline=None)


def cents(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda c: D(c) / 100)


rates = st.sampled_from([D("0"), D("0.055"), D("0.10"), D("0.20")])


@st.composite
def baskets(draw: st.DrawFn) -> Basket:
    n = draw(st.integers(1, 6))
    lines = [
        BasketLine(
            sku=f"SKU{i}",
            category=draw(st.sampled_from(CATEGORIES)),
            quantity=draw(st.integers(1, 5)),
            unit_price=draw(cents(0, 5000)),
            tax_rate=draw(rates),
            non_discountable=draw(st.sampled_from([False, False, False, True])),
        )
        for i in range(n)
    ]
    return Basket(
        lines=lines,
        tax_mode=draw(st.sampled_from(["gross", "net"])),
        shipping=draw(cents(0, 1500)),
        shipping_tax_rate=draw(rates),
        loyalty_member=draw(st.booleans()),
    )


percents = st.integers(1, 100).map(D) | st.sampled_from([D("12.5"), D("33.3"), D("0.5")])


@st.composite
def benefits(draw: st.DrawFn, cls: str) -> dict[str, Any]:
    if cls == "shipping":
        kinds = ["percent_off", "amount_off"]
    elif cls == "order":
        kinds = ["percent_off", "amount_off", "fixed_price", "tiered", "points_multiplier"]
    else:
        kinds = [
            "percent_off",
            "amount_off",
            "fixed_price",
            "buy_x_get_y",
            "bundle_price",
            "tiered",
            "points_multiplier",
        ]
    kind = draw(st.sampled_from(kinds))
    if kind == "percent_off":
        return {"type": kind, "percent": str(draw(percents))}
    if kind == "amount_off":
        spread_mode = draw(st.sampled_from(["proportional", "even", "per_line"]))
        return {"type": kind, "amount": str(draw(cents(1, 3000))), "spread": spread_mode}
    if kind == "fixed_price":
        return {"type": kind, "price": str(draw(cents(0, 3000)))}
    if kind == "buy_x_get_y":
        return {
            "type": kind,
            "buy": draw(st.integers(1, 3)),
            "get": draw(st.integers(1, 2)),
            "percent": str(draw(percents)),
            "target": draw(st.sampled_from(["cheapest", "most_expensive"])),
            "max_occurrences": draw(st.none() | st.integers(1, 3)),
        }
    if kind == "bundle_price":
        return {
            "type": kind,
            "quantity": draw(st.integers(2, 4)),
            "price": str(draw(cents(0, 6000))),
            "max_occurrences": draw(st.none() | st.integers(1, 3)),
        }
    if kind == "tiered":
        thresholds = sorted(draw(st.sets(st.integers(0, 8000), min_size=1, max_size=3)))
        basis = draw(st.sampled_from(["value", "quantity"]))
        tiers = []
        for t in thresholds:
            value = D(t) / 100 if basis == "value" else D(t % 12)
            if any(existing["threshold"] == str(value) for existing in tiers):
                continue
            if draw(st.booleans()):
                tiers.append({"threshold": str(value), "percent": str(draw(percents))})
            else:
                tiers.append({"threshold": str(value), "amount": str(draw(cents(1, 2000)))})
        tiers.sort(key=lambda tier: D(tier["threshold"]))
        return {"type": kind, "basis": basis, "tiers": tiers}
    return {"type": kind, "multiplier": str(draw(st.sampled_from([D(2), D("1.5"), D(3)])))}


@st.composite
def promotions(draw: st.DrawFn, pid: str) -> Promotion:
    cls = draw(st.sampled_from(["product", "product", "order", "shipping"]))
    sku_pool = [f"SKU{i}" for i in range(6)]
    body: dict[str, Any] = {
        "id": pid,
        "name": pid,
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-30T00:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty"]},
        "class": cls,
        "benefit": draw(benefits(cls)),
        "conditions": {
            "skus": draw(st.lists(st.sampled_from(sku_pool), max_size=2, unique=True)),
            "categories": draw(st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True)),
            "min_quantity": draw(st.integers(1, 3)),
            "min_basket_value": str(draw(st.sampled_from([D(0), D(0), D(20), D(100)]))),
        },
        "exclusions": {
            "skus": draw(st.lists(st.sampled_from(sku_pool), max_size=1)),
            "categories": draw(st.lists(st.sampled_from(CATEGORIES), max_size=1)),
            "non_discountable": draw(st.booleans()),
        },
        "priority": draw(st.integers(0, 3)),
        "stacking": draw(
            st.sampled_from(["stackable"] * 4 + ["exclusive_class", "exclusive_global"])
        ),
        "price_mode": draw(st.sampled_from(["gross", "net"])),
        "rounding": {
            "mode": draw(st.sampled_from(["half_even", "half_up", "down", "up"])),
            "level": draw(st.sampled_from(["line", "unit"])),
        },
        "limits": {"per_basket": draw(st.none() | st.integers(1, 2))},
    }
    return Promotion.model_validate(body)


@st.composite
def promotion_lists(draw: st.DrawFn) -> list[Promotion]:
    n = draw(st.integers(0, 5))
    return [draw(promotions(f"P{i}")) for i in range(n)]


dialects = st.lists(st.sampled_from(sorted(DIALECTS)), max_size=3, unique=True).map(
    lambda names: compose(*names)
)


def check_receipt(basket: Basket, r: Receipt) -> None:
    for line, rl in zip(basket.lines, r.lines, strict=True):
        assert rl.list_amount == line.unit_price * line.quantity
        assert rl.amount >= 0, "a line went below zero"
        assert rl.amount == rl.amount.quantize(CENT), "a line amount is not whole cents"
        assert all(d.amount > 0 for d in rl.discounts)
        assert rl.discount <= rl.list_amount, "a line discount exceeds its list amount"
        assert rl.list_amount - rl.discount == rl.amount
    assert D(0) <= r.shipping <= basket.shipping
    assert basket.shipping - sum((d.amount for d in r.shipping_discounts), D(0)) == r.shipping
    line_sum = sum((rl.amount for rl in r.lines), D(0))
    assert r.subtotal == sum((rl.list_amount for rl in r.lines), D(0))
    assert r.tax_total == sum((rl.tax for rl in r.lines), D(0)) + r.shipping_tax
    if basket.tax_mode == "net":
        assert r.total == line_sum + r.shipping + r.tax_total
    else:
        assert r.total == line_sum + r.shipping
    all_discounts = sum((rl.discount for rl in r.lines), D(0)) + sum(
        (d.amount for d in r.shipping_discounts), D(0)
    )
    assert r.discount_total == all_discounts
    assert r.discount_total == r.subtotal - line_sum + basket.shipping - r.shipping
    assert r.points >= 0
    if not basket.loyalty_member:
        assert r.points == 0


@PROPS
@given(basket=baskets(), promos=promotion_lists(), dialect=dialects)
def test_receipt_invariants(basket: Basket, promos: list[Promotion], dialect: Dialect) -> None:
    r = price_basket(basket, promos, channel="pos", at=AT, store=STORE, dialect=dialect)
    check_receipt(basket, r)
    assert r.dialects == list(dialect.names)
    assert len(r.applied) == len(set(r.applied))
    assert set(r.applied) <= {f"{p.id}@{p.version}" for p in promos}
    kw: dict[str, Any] = {"channel": "pos", "at": AT, "store": STORE, "dialect": dialect}
    applicable = {f"{p.id}@{p.version}" for p in promos if is_applicable(p, basket, **kw)}
    assert set(r.applied) <= applicable


@PROPS
@given(basket=baskets(), promos=promotion_lists(), dialect=dialects, data=st.data())
def test_permuting_the_promotions_changes_nothing(
    basket: Basket, promos: list[Promotion], dialect: Dialect, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(promos))
    kw: dict[str, Any] = {"channel": "pos", "at": AT, "store": STORE, "dialect": dialect}
    first = price_basket(basket, promos, **kw)
    second = price_basket(basket, shuffled, **kw)
    assert first.model_dump() == second.model_dump()


def list_prices(basket: Basket, r: Receipt) -> None:
    assert r.discount_total == 0
    assert r.applied == [] and r.points == (int(r.total) if basket.loyalty_member else 0)
    assert [rl.amount for rl in r.lines] == [ln.unit_price * ln.quantity for ln in basket.lines]
    assert r.shipping == basket.shipping
    check_receipt(basket, r)


@PROPS
@given(basket=baskets(), promos=promotion_lists(), dialect=dialects)
def test_no_applicable_promotion_means_list_prices(
    basket: Basket, promos: list[Promotion], dialect: Dialect
) -> None:
    # The window ended a year before: nothing applies (window-in-utc shifts by hours only).
    past = AT.replace(year=2025)
    list_prices(basket, price_basket(basket, promos, channel="pos", at=past, dialect=dialect))
    # No generated promotion has the marketplace channel in scope.
    other = price_basket(basket, promos, channel="marketplace", at=AT, dialect=dialect)
    list_prices(basket, other)


@PROPS
@given(
    amount=cents(0, 100_000),
    weights=st.lists(cents(0, 100_000) | st.integers(0, 5).map(D), min_size=1, max_size=12),
)
def test_spread_parts_add_up_exactly(amount: Decimal, weights: list[Decimal]) -> None:
    if sum(weights) == 0:
        weights = [*weights[:-1], D(1)]
    parts = spread(amount, weights)
    assert len(parts) == len(weights)
    assert sum(parts, D(0)) == amount
    assert all(p >= 0 and p == p.quantize(CENT) for p in parts)
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        # Each part is its exact share floored, plus at most one leftover cent.
        exact = amount * weight / total
        assert exact - CENT < part < exact + CENT


@PROPS
@given(
    channels=st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True),
    regions=st.lists(st.sampled_from(["fr", "de", "us"]), max_size=2, unique=True),
    stores=st.lists(st.sampled_from(["S1", "S2", "S3"]), max_size=2, unique=True),
    channel=st.sampled_from(CHANNELS),
    store_id=st.none() | st.sampled_from(["S1", "S2", "S3"]),
    region=st.none() | st.sampled_from(["fr", "de", "us"]),
)
def test_scope_is_scope_covers(
    channels: list[str],
    regions: list[str],
    stores: list[str],
    channel: str,
    store_id: str | None,
    region: str | None,
) -> None:
    # The engine tests scopes on precomputed sets: it must agree with Scope.covers.
    body = {
        "id": "P",
        "name": "P",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-30T00:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": channels, "regions": regions, "stores": stores},
        "benefit": {"type": "percent_off", "percent": "10"},
    }
    p = Promotion.model_validate(body)
    b = Basket(lines=[BasketLine(sku="A", quantity=1, unit_price=D("10.00"))])
    store = None
    if store_id is not None or region is not None:
        store = StoreContext(id=store_id, region=region, timezone="Europe/Paris")
    expected = p.scope.covers(channel, region, store_id)
    assert is_applicable(p, b, channel=channel, at=AT, store=store) is expected
    r = price_basket(b, [p], channel=channel, at=AT, store=store)
    assert (r.applied == ["P@1"]) is expected
