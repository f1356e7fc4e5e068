"""Each dialect moves a worked example in the direction its description documents.

Figures are computed by hand in the comments; the reference (no dialect) result is
asserted next to the dialect's, so the direction of the deviation is explicit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from harness.domain.basket import Basket, BasketLine, Receipt
from harness.domain.dialects import (
    DIALECT_DESCRIPTIONS,
    DIALECTS,
    REFERENCE,
    Dialect,
    compose,
    parse_dialects,
)
from harness.domain.pricing import StoreContext, is_applicable, price_basket
from harness.domain.promotion import Promotion

D = Decimal
AT = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
PARIS = StoreContext(id="S-PAR", timezone="Europe/Paris")
NEW_YORK = StoreContext(id="S-NYC", timezone="America/New_York")


def promo(pid: str = "P1", benefit: dict[str, Any] | None = None, **extra: Any) -> Promotion:
    body: dict[str, Any] = {
        "id": pid,
        "name": pid,
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-30T00:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": ["pos", "ecommerce"]},
        "benefit": benefit or {"type": "percent_off", "percent": "10"},
    }
    body.update(extra)
    return Promotion.model_validate(body)


def line(sku: str, qty: int, price: str, **extra: Any) -> BasketLine:
    return BasketLine(sku=sku, quantity=qty, unit_price=D(price), **extra)


def both(basket: Basket, promos: list[Promotion], name: str, **kw: Any) -> tuple[Receipt, Receipt]:
    kw.setdefault("channel", "pos")
    kw.setdefault("at", AT)
    reference = price_basket(basket, promos, **kw)
    deviant = price_basket(basket, promos, dialect=DIALECTS[name], **kw)
    assert deviant.dialects == [name]
    return reference, deviant


def test_registry_is_complete_and_described() -> None:
    expected = {
        "discount-after-tax",
        "ignore-exclusions",
        "reverse-priority",
        "half-up-rounding",
        "round-once-at-end",
        "unit-level-rounding",
        "window-in-utc",
    }
    assert expected <= set(DIALECTS)
    assert set(DIALECT_DESCRIPTIONS) == set(DIALECTS)
    for name, dialect in DIALECTS.items():
        assert dialect.names == (name,)
        assert dialect != REFERENCE
        assert len(DIALECT_DESCRIPTIONS[name]) > 40
    assert Dialect() == REFERENCE


def test_discount_after_tax_raises_net_total() -> None:
    b = Basket(lines=[line("A", 1, "50.00", tax_rate=D("0.20"))], tax_mode="net")
    p = promo(benefit={"type": "amount_off", "amount": "12.00"})
    ref, dev = both(b, [p], "discount-after-tax")
    # The 12.00 is gross: net 12.00 / 1.20 = 10.00 off -> 40.00 net.
    # Reference: tax 40.00 x 0.20 = 8.00, total 48.00.
    assert (ref.lines[0].tax, ref.total) == (D("8.00"), D("48.00"))
    # Dialect: tax on the undiscounted 50.00 = 10.00, total 50.00: UP by 2.00.
    assert (dev.lines[0].tax, dev.total) == (D("10.00"), D("50.00"))
    assert dev.total > ref.total


def test_discount_after_tax_overstates_gross_tax_only() -> None:
    b = Basket(lines=[line("A", 1, "60.00", tax_rate=D("0.20"))])
    p = promo(benefit={"type": "amount_off", "amount": "12.00"})
    ref, dev = both(b, [p], "discount-after-tax")
    # Amount 60.00 - 12.00 = 48.00 either way: total unchanged.
    assert ref.total == dev.total == D("48.00")
    # Reference tax 48.00 - 48.00 / 1.2 = 8.00; dialect 60.00 - 50.00 = 10.00 (overstated).
    assert (ref.tax_total, dev.tax_total) == (D("8.00"), D("10.00"))


def test_ignore_exclusions_discounts_the_excluded_line() -> None:
    b = Basket(lines=[line("A", 1, "10.00"), line("GIFT", 1, "20.00", non_discountable=True)])
    p = promo(exclusions={"skus": ["A"]}, conditions={"skus": ["A", "GIFT"]})
    # Reference: A excluded by SKU, GIFT by its flag: nothing eligible, not applicable.
    assert not is_applicable(p, b, channel="pos", at=AT)
    dialect = DIALECTS["ignore-exclusions"]
    assert is_applicable(p, b, channel="pos", at=AT, dialect=dialect)
    ref, dev = both(b, [p], "ignore-exclusions")
    # Dialect: 10 % off both: 1.00 + 2.00 = 3.00 off -> 27.00, DOWN from 30.00.
    assert ref.total == D("30.00")
    assert [ln.discount for ln in dev.lines] == [D("1.00"), D("2.00")]
    assert dev.total == D("27.00") < ref.total


def test_reverse_priority_applies_amount_before_percent() -> None:
    b = Basket(lines=[line("A", 1, "50.00")])
    pct = promo("PCT", {"type": "percent_off", "percent": "20"}, priority=1)
    amt = promo("AMT", {"type": "amount_off", "amount": "5.00"}, priority=2)
    ref, dev = both(b, [pct, amt], "reverse-priority")
    # Reference: 50.00 - 20 % = 40.00, - 5.00 = 35.00.
    assert ref.total == D("35.00") and ref.applied == ["PCT@1", "AMT@1"]
    # Dialect: 50.00 - 5.00 = 45.00, - 20 % (9.00) = 36.00: the shopper pays MORE.
    assert dev.total == D("36.00") and dev.applied == ["AMT@1", "PCT@1"]
    assert dev.total > ref.total


def test_half_up_rounding_on_exact_half_cent() -> None:
    b = Basket(lines=[line("A", 1, "0.25")])
    ref, dev = both(b, [promo()], "half-up-rounding")
    # 10 % of 0.25 = 0.025: half-even 0.02 -> 0.23; half-up 0.03 -> 0.22 (DOWN a cent).
    assert (ref.total, dev.total) == (D("0.23"), D("0.22"))


def test_round_once_at_end_loses_the_leftover_cent() -> None:
    b = Basket(lines=[line("A", 1, "20.00"), line("B", 1, "20.00"), line("C", 1, "20.00")])
    p = promo(benefit={"type": "amount_off", "amount": "10.00", "spread": "even"})
    ref, dev = both(b, [p], "round-once-at-end")
    # Reference: 3.34 + 3.33 + 3.33 = 10.00 off -> 50.00.
    assert ref.total == D("50.00")
    # Dialect: 3.3333... on each line, rounded once: 3.33 x 3 = 9.99 off -> 50.01 (UP).
    assert [ln.discount for ln in dev.lines] == [D("3.33")] * 3
    assert dev.total == D("50.01")


def test_round_once_at_end_on_stacked_percents() -> None:
    b = Basket(lines=[line("A", 1, "0.35")])
    promos = [promo("P1", priority=1), promo("P2", {"type": "percent_off", "percent": "5"})]
    ref, dev = both(b, promos, "round-once-at-end")
    # Reference: 10 % of 0.35 = 0.035 -> 0.04 (half-even: 3 odd, up) -> 0.31;
    # 5 % of 0.31 = 0.0155 -> 0.02 -> 0.29.
    assert ref.total == D("0.29")
    # Dialect: 0.035 + 5 % of 0.315 (0.01575) = 0.05075 -> 0.05 -> 0.30 (UP a cent).
    assert dev.total == D("0.30")
    # The receipt's discounts are the steps of the rounded running total: 0.04, then 0.01.
    assert [d.amount for d in dev.lines[0].discounts] == [D("0.04"), D("0.01")]


def test_unit_level_rounding_multiplies_the_half_cent() -> None:
    b = Basket(lines=[line("A", 3, "0.15")])
    ref, dev = both(b, [promo()], "unit-level-rounding")
    # Line: 10 % of 0.45 = 0.045 -> 0.04 -> 0.41. Unit: 0.015 -> 0.02, x 3 = 0.06 -> 0.39.
    assert (ref.total, dev.total) == (D("0.41"), D("0.39"))


def test_window_in_utc_shifts_the_window_by_the_offset() -> None:
    p = promo(
        validity={
            "start": "2026-11-28T09:00:00",
            "end": "2026-11-28T18:00:00",
            "timezone": "Europe/Paris",
        }
    )
    b = Basket(lines=[line("A", 1, "10.00")])
    utc = DIALECTS["window-in-utc"]
    at = dt.datetime(2026, 11, 28, 8, 30, tzinfo=dt.UTC)
    # Paris store at 08:30 UTC = 09:30 local: open in the reference; read as UTC, 08:30 <
    # 09:00: not yet open. East of UTC the promotion starts LATER.
    assert is_applicable(p, b, channel="pos", at=at, store=PARIS)
    assert not is_applicable(p, b, channel="pos", at=at, store=PARIS, dialect=utc)
    ref, dev = both(b, [p], "window-in-utc", at=at, store=PARIS)
    assert (ref.total, dev.total) == (D("9.00"), D("10.00"))
    # New York store at 09:30 UTC = 04:30 local: closed in the reference; as UTC 09:30 is
    # open. West of UTC the promotion starts EARLIER.
    at = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
    assert not is_applicable(p, b, channel="pos", at=at, store=NEW_YORK)
    assert is_applicable(p, b, channel="pos", at=at, store=NEW_YORK, dialect=utc)


def test_compose_is_the_union_of_flags() -> None:
    d = compose("half-up-rounding", "window-in-utc", "half-up-rounding")
    assert d.rounding_mode == "half_up" and d.window_in_utc
    assert not d.discount_after_tax
    assert d.names == ("half-up-rounding", "window-in-utc")
    assert compose() == REFERENCE


def test_compose_unknown_name_raises_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ValueError, match="no-such-dialect") as info:
        compose("ignore-exclusions", "no-such-dialect")
    assert "window-in-utc" in str(info.value)


def test_parse_dialects() -> None:
    assert parse_dialects("") == REFERENCE
    assert parse_dialects("  ") == REFERENCE
    d = parse_dialects("discount-after-tax, unit-level-rounding")
    assert d.discount_after_tax and d.unit_level_rounding
    assert d.names == ("discount-after-tax", "unit-level-rounding")
    with pytest.raises(ValueError, match="bogus"):
        parse_dialects("bogus")


def test_composed_dialects_stack_their_effects() -> None:
    b = Basket(lines=[line("A", 3, "0.15", tax_rate=D("0.20"))], tax_mode="net")
    d = compose("unit-level-rounding", "discount-after-tax")
    r = price_basket(b, [promo()], channel="pos", at=AT, dialect=d)
    # Unit level: 0.015 -> 0.02 x 3 = 0.06 off -> 0.39 net; tax on the undiscounted 0.45:
    # 0.09; total 0.39 + 0.09 = 0.48.
    assert (r.lines[0].amount, r.tax_total, r.total) == (D("0.39"), D("0.09"), D("0.48"))
    assert r.dialects == ["unit-level-rounding", "discount-after-tax"]
