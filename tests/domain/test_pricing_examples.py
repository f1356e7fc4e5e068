"""Worked examples of the reference pricing semantics, every figure computed by hand.

Each expectation is preceded by the arithmetic that produces it; none was copied from the
engine's output. Together they pin the rules of ``harness/domain/pricing/``'s docstring.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from harness.domain.basket import Basket, BasketLine, Receipt
from harness.domain.pricing import StoreContext, is_applicable, price_basket, spread
from harness.domain.promotion import Promotion

D = Decimal
AT = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # 13:00 in Paris, 07:00 in New York
PARIS = StoreContext(id="S-PAR", region="fr", timezone="Europe/Paris")
NEW_YORK = StoreContext(id="S-NYC", region="us", timezone="America/New_York")


def promo(pid: str = "P1", benefit: dict[str, Any] | None = None, **extra: Any) -> Promotion:
    body: dict[str, Any] = {
        "id": pid,
        "name": f"promotion {pid}",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-30T00:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty"]},
        "benefit": benefit or {"type": "percent_off", "percent": "10"},
    }
    body.update(extra)
    return Promotion.model_validate(body)


def line(sku: str, qty: int, price: str, **extra: Any) -> BasketLine:
    return BasketLine(sku=sku, quantity=qty, unit_price=D(price), **extra)


def basket(*lines: BasketLine, **extra: Any) -> Basket:
    return Basket(lines=list(lines), **extra)


def price(b: Basket, promos: list[Promotion], **kw: Any) -> Receipt:
    kw.setdefault("channel", "pos")
    kw.setdefault("at", AT)
    return price_basket(b, promos, **kw)


def amounts(r: Receipt) -> list[Decimal]:
    return [ln.amount for ln in r.lines]


def discounts(r: Receipt) -> list[Decimal]:
    return [ln.discount for ln in r.lines]


# ----------------------------------------------------------------------------- benefits


def test_percent_off_on_a_category_with_gross_tax() -> None:
    b = basket(
        line("A", 3, "2.50", category="snacks", tax_rate=D("0.20")),
        line("B", 1, "4.00", category="wine", tax_rate=D("0.20")),
    )
    r = price(
        b,
        [
            promo(
                benefit={"type": "percent_off", "percent": "20"},
                conditions={"categories": ["snacks"]},
            )
        ],
    )
    # A: 3 x 2.50 = 7.50; 20 % of 7.50 = 1.50 -> 6.00. B is wine: untouched, 4.00.
    assert amounts(r) == [D("6.00"), D("4.00")]
    # Gross tax: 6.00 - 6.00 / 1.20 = 6.00 - 5.00 = 1.00; 4.00 - 4.00 / 1.20 = 0.6667 -> 0.67.
    assert [ln.tax for ln in r.lines] == [D("1.00"), D("0.67")]
    # Gross basket: total = 6.00 + 4.00 = 10.00; subtotal 7.50 + 4.00 = 11.50; discount 1.50.
    assert (r.total, r.subtotal, r.discount_total) == (D("10.00"), D("11.50"), D("1.50"))
    assert r.tax_total == D("1.67")
    assert r.applied == ["P1@1"]


def test_amount_off_proportional() -> None:
    b = basket(line("A", 2, "3.00"), line("B", 1, "4.00"))
    r = price(b, [promo(benefit={"type": "amount_off", "amount": "1.00"})])
    # Weights 6.00 and 4.00 (total 10.00): 1.00 x 6/10 = 0.60, 1.00 x 4/10 = 0.40.
    assert discounts(r) == [D("0.60"), D("0.40")]
    # 10.00 - 1.00 = 9.00
    assert r.total == D("9.00")


def test_amount_off_even_with_leftover_cent_to_the_first_line() -> None:
    b = basket(line("A", 1, "20.00"), line("B", 1, "20.00"), line("C", 1, "20.00"))
    r = price(b, [promo(benefit={"type": "amount_off", "amount": "10.00", "spread": "even"})])
    # 10.00 / 3 = 3.333...: floors 3.33 x 3 = 9.99, one cent left; the remainders tie
    # (0.333... each) so it goes to the earliest line: 3.34, 3.33, 3.33 (sum 10.00).
    assert discounts(r) == [D("3.34"), D("3.33"), D("3.33")]
    # 60.00 - 10.00 = 50.00
    assert r.total == D("50.00")


def test_spread_function_examples() -> None:
    # 10.00 over equal weights: 3.34 / 3.33 / 3.33 (tie to the earliest).
    assert spread(D("10.00"), [D(1), D(1), D(1)]) == [D("3.34"), D("3.33"), D("3.33")]
    # 1.00 over weights 1 and 2: exact 0.3333 / 0.6667 -> floors 0.33 / 0.66, one cent left,
    # remainders 0.0033 < 0.0067 -> the second: 0.33 / 0.67.
    assert spread(D("1.00"), [D(1), D(2)]) == [D("0.33"), D("0.67")]
    # 0.05 over 7 equal weights: floors 0.00 each, 5 leftover cents to the first five.
    assert spread(D("0.05"), [D(1)] * 7) == [D("0.01")] * 5 + [D("0.00")] * 2
    with pytest.raises(ValueError):
        spread(D("1.005"), [D(1)])


def test_even_spread_never_exceeds_a_line() -> None:
    b = basket(line("A", 1, "1.00"), line("B", 1, "20.00"), line("C", 1, "20.00"))
    r = price(b, [promo(benefit={"type": "amount_off", "amount": "10.00", "spread": "even"})])
    # Even share 3.34 > A's 1.00: A gives its whole 1.00, the other 9.00 is spread again over
    # B and C: 4.50 each. Sum 1.00 + 4.50 + 4.50 = 10.00.
    assert discounts(r) == [D("1.00"), D("4.50"), D("4.50")]


def test_amount_off_per_line_capped_at_the_line() -> None:
    b = basket(line("A", 1, "2.00"), line("B", 1, "0.30"))
    r = price(b, [promo(benefit={"type": "amount_off", "amount": "0.50", "spread": "per_line"})])
    # A: 2.00 - 0.50 = 1.50; B: 0.50 > 0.30, capped: 0.30 off -> 0.00.
    assert amounts(r) == [D("1.50"), D("0.00")]
    assert r.discount_total == D("0.80")


def test_amount_off_capped_at_eligible_total() -> None:
    b = basket(line("A", 1, "3.00", category="x"), line("B", 1, "5.00"))
    r = price(
        b,
        [
            promo(
                benefit={"type": "amount_off", "amount": "10.00"}, conditions={"categories": ["x"]}
            )
        ],
    )
    # Only A is eligible (3.00): the 10.00 is capped at 3.00 -> A 0.00, B untouched 5.00.
    assert amounts(r) == [D("0.00"), D("5.00")]


def test_fixed_price_only_when_lower() -> None:
    b = basket(line("A", 2, "3.49"), line("B", 1, "2.50"))
    r = price(b, [promo(benefit={"type": "fixed_price", "price": "2.99"})])
    # A: 2 x 3.49 = 6.98, at 2.99 each 5.98 -> 1.00 off. B: 2.50 < 2.99 -> nothing.
    assert discounts(r) == [D("1.00"), D("0")]
    assert r.total == D("8.48")  # 5.98 + 2.50


def test_buy_two_get_one_cheapest() -> None:
    b = basket(line("A", 2, "3.00"), line("B", 1, "2.00"), line("C", 3, "1.00"))
    r = price(b, [promo(benefit={"type": "buy_x_get_y", "buy": 2, "get": 1})])
    # 6 units, occurrences = floor(6 / 3) = 2 -> 2 free units, the cheapest: two of C at 1.00.
    assert discounts(r) == [D("0"), D("0"), D("2.00")]
    # 6.00 + 2.00 + 3.00 - 2.00 = 9.00
    assert r.total == D("9.00")


def test_buy_one_get_one_half_price_most_expensive_with_tie_to_earlier_line() -> None:
    b = basket(line("A", 1, "5.00"), line("B", 1, "5.00"), line("C", 2, "1.00"))
    benefit = {
        "type": "buy_x_get_y",
        "buy": 3,
        "get": 1,
        "percent": "50",
        "target": "most_expensive",
    }
    r = price(b, [promo(benefit=benefit)])
    # 4 units -> 1 occurrence, 1 unit at 50 %: the most expensive; A and B tie at 5.00, the
    # earlier line (A) gives it: 5.00 x 50 % = 2.50.
    assert discounts(r) == [D("2.50"), D("0"), D("0")]


def test_buy_x_get_y_capped_by_per_basket_limit() -> None:
    b = basket(line("A", 6, "1.00"))
    p = promo(benefit={"type": "buy_x_get_y", "buy": 1, "get": 1}, limits={"per_basket": 2})
    r = price(b, [p])
    # 6 units -> floor(6 / 2) = 3 occurrences, capped at 2 by per_basket: 2 free = 2.00.
    assert discounts(r) == [D("2.00")]


def test_bundle_price_most_expensive_units_spread_proportionally() -> None:
    b = basket(line("A", 2, "4.50"), line("B", 2, "3.00"))
    r = price(b, [promo(benefit={"type": "bundle_price", "quantity": 3, "price": "10.00"})])
    # 4 units -> 1 bundle of 3, most expensive first: A, A (9.00) and one B (3.00) = 12.00.
    # Discount 12.00 - 10.00 = 2.00, spread 9 : 3 -> A 1.50, B 0.50.
    assert discounts(r) == [D("1.50"), D("0.50")]
    # A 9.00 - 1.50 = 7.50; B 6.00 - 0.50 = 5.50
    assert amounts(r) == [D("7.50"), D("5.50")]


def test_bundle_skips_non_discountable_line() -> None:
    b = basket(
        line("A", 1, "6.00"),
        line("BBQ", 1, "20.00", non_discountable=True),
        line("B", 1, "5.00"),
    )
    r = price(b, [promo(benefit={"type": "bundle_price", "quantity": 2, "price": "9.00"})])
    # The bundle line is excluded (exclusions.non_discountable defaults true): A + B =
    # 11.00 for 9.00 -> 2.00 off, spread 6 : 5 -> 1.0909 / 0.9091 -> floors 1.09 / 0.90,
    # one cent left, the larger remainder (0.0091 vs 0.0009) is B's: 1.09 / 0.91.
    assert discounts(r) == [D("1.09"), D("0"), D("0.91")]


def test_tier_exactly_at_threshold_and_one_cent_below() -> None:
    benefit = {
        "type": "tiered",
        "tiers": [{"threshold": "50", "percent": "5"}, {"threshold": "100", "percent": "10"}],
    }
    at = price(basket(line("A", 1, "100.00")), [promo(benefit=benefit)])
    # 100.00 >= 100 reaches the 10 % tier: 10.00 off -> 90.00.
    assert at.total == D("90.00")
    below = price(basket(line("A", 1, "99.99")), [promo(benefit=benefit)])
    # 99.99 < 100: the 5 % tier: 4.9995 -> 5.00 (half-even, the digit after is 9) -> 94.99.
    assert below.total == D("94.99")


def test_tier_by_quantity_with_amount() -> None:
    benefit = {
        "type": "tiered",
        "basis": "quantity",
        "tiers": [{"threshold": "3", "amount": "1.00"}],
    }
    r = price(basket(line("A", 2, "1.50"), line("B", 1, "6.00")), [promo(benefit=benefit)])
    # 3 units reach threshold 3: 1.00 spread 3.00 : 6.00 -> 0.33 / 0.67 (remainders
    # 0.0033 vs 0.0067, the leftover cent goes to B).
    assert discounts(r) == [D("0.33"), D("0.67")]
    two = price(basket(line("A", 2, "1.50")), [promo(benefit=benefit)])
    # 2 units < 3: no tier, nothing off.
    assert two.discount_total == 0 and two.applied == []


# --------------------------------------------------------------------- price modes, tax


def test_net_basket_adds_tax_after_discount() -> None:
    b = basket(line("A", 1, "10.00", tax_rate=D("0.20")), tax_mode="net")
    r = price(b, [promo()])
    # 10 % of 10.00 = 1.00 -> 9.00 net; tax 9.00 x 0.20 = 1.80; total 9.00 + 1.80 = 10.80.
    assert (r.lines[0].amount, r.lines[0].tax, r.total) == (D("9.00"), D("1.80"), D("10.80"))


def test_gross_promotion_amount_in_net_basket() -> None:
    b = basket(line("A", 1, "20.00", tax_rate=D("0.20")), tax_mode="net")
    p = promo(benefit={"type": "amount_off", "amount": "6.00", "spread": "per_line"})
    r = price(b, [p])
    # The 6.00 is gross (price_mode default): net 6.00 / 1.20 = 5.00 -> 15.00 net,
    # tax 15.00 x 0.20 = 3.00, total 18.00 (the shopper saves exactly 6.00 gross).
    assert (r.lines[0].amount, r.lines[0].tax, r.total) == (D("15.00"), D("3.00"), D("18.00"))


def test_net_fixed_price_in_gross_basket() -> None:
    b = basket(line("A", 2, "6.00", tax_rate=D("0.20")))
    r = price(b, [promo(benefit={"type": "fixed_price", "price": "4.00"}, price_mode="net")])
    # Net 4.00 -> gross 4.00 x 1.20 = 4.80 per unit; 2 x 4.80 = 9.60; 12.00 - 9.60 = 2.40.
    assert discounts(r) == [D("2.40")]


def test_net_amount_spread_over_gross_lines_with_different_rates() -> None:
    b = basket(
        line("A", 1, "12.00", tax_rate=D("0.20")),
        line("B", 1, "10.55", tax_rate=D("0.055")),
    )
    p = promo(benefit={"type": "amount_off", "amount": "10.00"}, price_mode="net")
    r = price(b, [p])
    # Net values: 12.00 / 1.20 = 10.00, 10.55 / 1.055 = 10.00: the net 10.00 splits 5.00 /
    # 5.00 (adds up exactly in the promotion's basis). Converted to gross: 5.00 x 1.20 =
    # 6.00; 5.00 x 1.055 = 5.275 -> half-even 5.28 (7 is odd, rounds up).
    assert discounts(r) == [D("6.00"), D("5.28")]


def test_min_basket_value_converted_to_net() -> None:
    p = promo(conditions={"min_basket_value": "100.00"}, price_mode="net")
    below = basket(line("A", 1, "119.99", tax_rate=D("0.20")))
    at = basket(line("A", 1, "120.00", tax_rate=D("0.20")))
    # 119.99 / 1.20 = 99.99166 < 100 -> not applicable; 120.00 / 1.20 = 100.00 -> applicable.
    assert not is_applicable(p, below, channel="pos", at=AT, store=None)
    assert is_applicable(p, at, channel="pos", at=AT, store=None)
    # 10 % of 120.00 = 12.00 -> 108.00
    assert price(at, [p]).total == D("108.00")


# ------------------------------------------------------------------- order, exclusivity


def test_two_product_promotions_stack_sequentially_in_priority_order() -> None:
    first = promo("PCT", {"type": "percent_off", "percent": "20"}, priority=10)
    second = promo("AMT", {"type": "amount_off", "amount": "5.00"}, priority=20)
    b = basket(line("A", 1, "50.00"))
    # 20 % of 50.00 = 10.00 -> 40.00; then 5.00 off the current 40.00 -> 35.00.
    for promos in ([first, second], [second, first]):
        r = price(b, promos)
        assert r.total == D("35.00")
        assert r.applied == ["PCT@1", "AMT@1"]
    # Swap the priorities: 50.00 - 5.00 = 45.00; 20 % of 45.00 = 9.00 -> 36.00.
    swapped = [
        promo("PCT", {"type": "percent_off", "percent": "20"}, priority=20),
        promo("AMT", {"type": "amount_off", "amount": "5.00"}, priority=10),
    ]
    assert price(b, swapped).total == D("36.00")


def test_order_class_after_product_class_on_current_amounts() -> None:
    b = basket(line("A", 1, "50.00"), line("B", 1, "5.00", category="x"))
    product = promo(
        "PROD",
        {"type": "percent_off", "percent": "10"},
        priority=500,
        exclusions={"categories": ["x"]},
    )
    order = promo("ORD", {"type": "amount_off", "amount": "5.00"}, priority=1, **{"class": "order"})
    r = price(b, [order, product])
    # Product first despite its priority: A 50.00 - 5.00 = 45.00. Order 5.00 spread over
    # 45.00 : 5.00 -> 4.50 / 0.50. A 40.50, B 4.50; total 45.00.
    assert amounts(r) == [D("40.50"), D("4.50")]
    assert r.applied == ["PROD@1", "ORD@1"]


def test_exclusive_class_best_deal() -> None:
    b = basket(line("A", 1, "100.00"))
    p10 = promo("S10", {"type": "percent_off", "percent": "10"}, priority=1)
    a5 = promo("S5", {"type": "amount_off", "amount": "5.00"}, priority=2)
    # Stacked: 100.00 - 10.00 = 90.00 - 5.00 = 85.00 (15.00 off).
    ex20 = promo(
        "X20", {"type": "percent_off", "percent": "20"}, priority=3, stacking="exclusive_class"
    )
    # Exclusive alone: 20.00 off > 15.00 -> it wins, alone: 80.00.
    r = price(b, [p10, a5, ex20])
    assert (r.total, r.applied) == (D("80.00"), ["X20@1"])
    ex12 = promo(
        "X12", {"type": "percent_off", "percent": "12"}, priority=3, stacking="exclusive_class"
    )
    # 12.00 < 15.00: the stack wins: 85.00.
    r = price(b, [p10, a5, ex12])
    assert (r.total, r.applied) == (D("85.00"), ["S10@1", "S5@1"])
    ex15 = promo(
        "X15", {"type": "percent_off", "percent": "15"}, priority=3, stacking="exclusive_class"
    )
    # 15.00 = 15.00: tie -> lowest (priority, id, version): the stack's (1, S10) < (3, X15).
    assert price(b, [ex15, a5, p10]).applied == ["S10@1", "S5@1"]


def test_exclusive_global_best_deal() -> None:
    b = basket(line("A", 1, "100.00"))
    normal = [
        promo("P10", {"type": "percent_off", "percent": "10"}),
        promo("O5", {"type": "amount_off", "amount": "5.00"}, **{"class": "order"}),
    ]
    # Normal result: 100.00 - 10.00 = 90.00, then order 5.00 -> 85.00.
    g20 = promo("G20", {"type": "percent_off", "percent": "20"}, stacking="exclusive_global")
    # Alone: 100.00 - 20.00 = 80.00 < 85.00 -> wins, with nothing else.
    r = price(b, [*normal, g20])
    assert (r.total, r.applied) == (D("80.00"), ["G20@1"])
    g15 = promo(
        "G15", {"type": "percent_off", "percent": "15"}, stacking="exclusive_global", priority=0
    )
    # Alone: 85.00 = 85.00 -> tie goes to the normal result.
    r = price(b, [g15, *normal])
    assert (r.total, r.applied) == (D("85.00"), ["P10@1", "O5@1"])


# ------------------------------------------------------------------- windows and scope


def window_promo(**validity: Any) -> Promotion:
    v = {
        "start": "2026-11-28T09:00:00",
        "end": "2026-11-28T18:00:00",
        "timezone": "Europe/Paris",
        **validity,
    }
    return promo(validity=v)


@pytest.mark.parametrize(
    ("utc", "paris", "new_york"),
    [
        # 07:59 UTC = 08:59 Paris (CET, +1), 02:59 New York (EST, -5): before both starts.
        ("2026-11-28T07:59:00", False, False),
        # 08:00 UTC = 09:00 Paris: start inclusive. New York 03:00: not yet.
        ("2026-11-28T08:00:00", True, False),
        # 14:00 UTC = 15:00 Paris (open), 09:00 New York: start inclusive there too.
        ("2026-11-28T14:00:00", True, True),
        # 16:59:59 UTC = 17:59:59 Paris: still open.
        ("2026-11-28T16:59:59", True, True),
        # 17:00 UTC = 18:00 Paris: end exclusive. New York 12:00: open.
        ("2026-11-28T17:00:00", False, True),
        # 23:00 UTC = 18:00 New York: end exclusive.
        ("2026-11-28T23:00:00", False, False),
    ],
)
def test_store_local_window_edges(utc: str, paris: bool, new_york: bool) -> None:
    at = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    p = window_promo()
    b = basket(line("A", 1, "10.00"))
    assert is_applicable(p, b, channel="pos", at=at, store=PARIS) is paris
    assert is_applicable(p, b, channel="pos", at=at, store=NEW_YORK) is new_york
    # When applicable, 10 % of 10.00 = 1.00 -> 9.00; else 10.00.
    expected = D("9.00") if paris else D("10.00")
    assert price(b, [p], at=at, store=PARIS).total == expected


def test_window_not_store_local_and_storeless_channel_use_promotion_zone() -> None:
    p = window_promo(store_local=False)
    b = basket(line("A", 1, "10.00"))
    at = dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.UTC)  # 15:00 Paris, 09:00 New York
    # Read in Europe/Paris: 15:00 is open, whatever the store.
    assert is_applicable(p, b, channel="pos", at=at, store=NEW_YORK)
    at = dt.datetime(2026, 11, 28, 7, 30, tzinfo=dt.UTC)  # 08:30 Paris
    # Ecommerce has no store: the window is read in Europe/Paris: 08:30 < 09:00.
    assert not is_applicable(window_promo(), b, channel="ecommerce", at=at, store=None)


def test_naive_instant_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        price(basket(line("A", 1, "1.00")), [], at=dt.datetime(2026, 11, 28, 12))


def test_scope_channel_store_and_region() -> None:
    b = basket(line("A", 1, "10.00"))
    p = promo(scope={"channels": ["pos"], "regions": ["fr"], "stores": ["S-PAR", "S-LYO"]})
    assert is_applicable(p, b, channel="pos", at=AT, store=PARIS)
    assert not is_applicable(p, b, channel="ecommerce", at=AT, store=PARIS)
    assert not is_applicable(p, b, channel="pos", at=AT, store=NEW_YORK)
    regional = promo(scope={"channels": ["pos"], "regions": ["fr"]})
    lille = StoreContext(id="S-LIL", region="fr", timezone="Europe/Paris")
    assert is_applicable(regional, b, channel="pos", at=AT, store=lille)
    assert not is_applicable(regional, b, channel="pos", at=AT, store=NEW_YORK)


# --------------------------------------------------------------- exclusions, conditions


def test_exclusion_beats_inclusion() -> None:
    b = basket(line("A", 1, "10.00"), line("B", 1, "10.00"))
    p = promo(conditions={"skus": ["A", "B"]}, exclusions={"skus": ["A"]})
    r = price(b, [p])
    # A is named in both: excluded. B: 10 % of 10.00 = 1.00.
    assert discounts(r) == [D("0"), D("1.00")]
    only_a = promo(conditions={"skus": ["A"]}, exclusions={"skus": ["A"]})
    # No eligible line left: not applicable at all.
    assert not is_applicable(only_a, b, channel="pos", at=AT, store=None)


def test_non_discountable_bundle_line() -> None:
    b = basket(line("A", 1, "10.00"), line("BBQ", 1, "20.00", non_discountable=True))
    r = price(b, [promo()])
    # Only A: 1.00 off; the flagged bundle keeps its 20.00.
    assert discounts(r) == [D("1.00"), D("0")]
    lax = promo(exclusions={"non_discountable": False})
    # Exclusion switched off: 10 % of both: 1.00 and 2.00.
    assert discounts(price(b, [lax])) == [D("1.00"), D("2.00")]


def test_min_quantity() -> None:
    p = promo(conditions={"categories": ["x"], "min_quantity": 3})
    two = basket(line("A", 2, "1.00", category="x"), line("B", 5, "1.00"))
    # Only 2 units of category x (B's 5 units do not qualify): 2 < 3.
    assert price(two, [p]).discount_total == 0
    three = basket(line("A", 3, "1.00", category="x"))
    # 3 units: 10 % of 3.00 = 0.30.
    assert price(three, [p]).discount_total == D("0.30")


# --------------------------------------------------------------------- shipping, points


def test_shipping_class_percent_and_amount_in_net_basket() -> None:
    b = basket(
        line("A", 1, "10.00"), shipping=D("6.00"), shipping_tax_rate=D("0.20"), tax_mode="net"
    )
    half = promo("SHIP50", {"type": "percent_off", "percent": "50"}, **{"class": "shipping"})
    r = price(b, [half])
    # 50 % of 6.00 = 3.00 -> 3.00; tax 3.00 x 0.20 = 0.60; total 10.00 + 3.00 + 0.60 = 13.60.
    assert (r.shipping, r.shipping_tax, r.total) == (D("3.00"), D("0.60"), D("13.60"))
    assert [d.amount for d in r.shipping_discounts] == [D("3.00")]
    free = promo(
        "SHIPFREE",
        {"type": "amount_off", "amount": "9.00"},
        price_mode="net",
        **{"class": "shipping"},
    )
    r = price(b, [free])
    # 9.00 > 6.00: capped, shipping 0.00; total 10.00; discount_total 6.00.
    assert (r.shipping, r.total, r.discount_total) == (D("0.00"), D("10.00"), D("6.00"))


def test_points_for_members_highest_multiplier_only() -> None:
    b = basket(
        line("A", 1, "10.50", category="pl"),
        line("B", 1, "12.90"),
        loyalty_member=True,
    )
    x3 = promo(
        "X3", {"type": "points_multiplier", "multiplier": "3"}, conditions={"categories": ["pl"]}
    )
    x2 = promo("X2", {"type": "points_multiplier", "multiplier": "2"})
    r = price(b, [x2, x3])
    # total 10.50 + 12.90 = 23.40 -> 23 base points. Highest multiplier x3 over A only:
    # (3 - 1) x floor(10.50) = 2 x 10 = 20. x2 does not stack. 23 + 20 = 43.
    assert r.points == D("43")
    assert r.applied == ["X3@1"]
    assert r.total == D("23.40")
    non_member = basket(line("A", 1, "10.50", category="pl"))
    r = price(non_member, [x3])
    # Non-members earn nothing and the multiplier does not apply.
    assert (r.points, r.applied) == (D("0"), [])


# --------------------------------------------------------------------------- rounding


def test_half_up_vs_half_even_on_exact_half_cent() -> None:
    b = basket(line("A", 1, "0.25"))
    # 10 % of 0.25 = 0.025 exactly. Half-even -> 0.02 (2 is even): 0.23.
    assert price(b, [promo()]).total == D("0.23")
    # Half-up -> 0.03: 0.22.
    assert price(b, [promo(rounding={"mode": "half_up"})]).total == D("0.22")
    # Down (toward zero) -> 0.02: 0.23; up -> 0.03: 0.22.
    assert price(b, [promo(rounding={"mode": "down"})]).total == D("0.23")
    assert price(b, [promo(rounding={"mode": "up"})]).total == D("0.22")


def test_unit_level_rounding() -> None:
    b = basket(line("A", 3, "0.15"))
    # Line level: 10 % of 0.45 = 0.045 -> half-even 0.04 -> 0.41.
    assert price(b, [promo()]).total == D("0.41")
    # Unit level: 10 % of 0.15 = 0.015 -> half-even 0.02 (2 even); x 3 = 0.06 -> 0.39.
    assert price(b, [promo(rounding={"level": "unit"})]).total == D("0.39")


def test_sequential_rounding_each_step() -> None:
    b = basket(line("A", 1, "0.95"))
    promos = [promo("P1", priority=1), promo("P2", priority=2)]
    r = price(b, promos)
    # Step 1: 10 % of 0.95 = 0.095 -> half-even 0.10 (0 even) -> 0.85.
    # Step 2: 10 % of 0.85 = 0.085 -> half-even 0.08 -> 0.77.
    assert [d.amount for d in r.lines[0].discounts] == [D("0.10"), D("0.08")]
    assert r.total == D("0.77")


def test_duplicate_id_with_different_definitions_is_an_error() -> None:
    b = basket(line("A", 1, "1.00"))
    same = promo()
    assert price(b, [same, same]).total == D("0.90")  # counted once: 1.00 - 0.10
    with pytest.raises(ValueError, match="P1@1"):
        price(b, [promo(), promo(benefit={"type": "percent_off", "percent": "20"})])


def test_unit_rounding_hits_an_exact_half_cent_after_an_earlier_discount() -> None:
    b = basket(line("A", 3, "0.05"))
    first = promo(
        "FIRST", {"type": "amount_off", "amount": "0.05", "spread": "per_line"}, priority=1
    )
    second = promo(
        "SECOND", {"type": "percent_off", "percent": "45"}, priority=2, rounding={"level": "unit"}
    )
    r = price(b, [first, second])
    # 3 x 0.05 = 0.15 - 0.05 = 0.10. Per unit 0.10 / 3 = 0.0333...; 45 % of it is exactly
    # 0.015 (0.10 x 0.45 / 3) -> half-even 0.02; x 3 = 0.06 -> 0.04.
    assert [d.amount for d in r.lines[0].discounts] == [D("0.05"), D("0.06")]
    assert r.total == D("0.04")
