"""The pricing engine against the frozen oracle on edge cases the shared strategies avoid.

``test_pricing_oracle.py`` draws list prices up to 50.00, quantities up to 5, four tax
rates and percents with at most one decimal. The faster engine's own arithmetic (issue 16)
must agree with the Decimal oracle where that arithmetic is most likely to part from it:
rounding ties (a discount landing on half a cent), percents and multipliers with many
decimals, tax rates with more than two decimals, large quantities and prices near the
14-digit bound of ``Money``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.basket import Basket, BasketLine
from harness.domain.dialects import Dialect
from harness.domain.pricing import StoreContext
from harness.domain.promotion import Promotion
from tests.domain import test_pricing_oracle as po
from tests.domain import test_pricing_properties as props

D = Decimal

# Prices whose 5 %, 10 %, 12.5 %, 50 % land on a half cent, small prices, and the
# largest amounts Money allows (12 integer digits).
TIE_PRICES = [D(s) for s in ("0.01", "0.05", "0.15", "0.25", "0.35", "0.45", "1.05", "2.25")]
BIG_PRICES = [D("999999999999.99"), D("123456789012.35"), D("99999999.95")]
PRICES = (
    st.sampled_from(TIE_PRICES)
    | st.sampled_from(BIG_PRICES)
    | st.integers(0, 5000).map(lambda c: D(c) / 100)
)
QUANTITIES = st.sampled_from([1, 2, 3, 7, 999, 9_999, 10_000])
TAX_RATES = st.sampled_from(
    [D("0"), D("0.0725"), D("0.08875"), D("0.19"), D("0.125"), D("1"), D("0.333333333333")]
)
PERCENTS = st.sampled_from(
    [
        D("0.01"),
        D("0.001"),
        D("0.0000001"),
        D("5"),
        D("12.5"),
        D("33.333333333333333333"),
        D("66.67"),
        D("99.99"),
        D("99.999999"),
        D("100"),
    ]
)
MULTIPLIERS = st.sampled_from([D("1.0001"), D("1.23456789"), D("2.5"), D("99.99"), D("100")])


@st.composite
def edge_baskets(draw: st.DrawFn) -> Basket:
    n = draw(st.integers(1, 4))
    lines = [
        BasketLine(
            sku=f"SKU{i}",
            category=draw(st.sampled_from(props.CATEGORIES)),
            quantity=draw(QUANTITIES),
            unit_price=draw(PRICES),
            tax_rate=draw(TAX_RATES),
            non_discountable=draw(st.sampled_from([False, False, False, True])),
        )
        for i in range(n)
    ]
    return Basket(
        lines=lines,
        tax_mode=draw(st.sampled_from(["gross", "net"])),
        shipping=draw(PRICES),
        shipping_tax_rate=draw(TAX_RATES),
        loyalty_member=draw(st.booleans()),
    )


@st.composite
def edge_promotions(draw: st.DrawFn, pid: str) -> Promotion:
    """A shared-strategy promotion with its percents and multiplier swapped for edge ones."""
    body: dict[str, Any] = draw(props.promotions(pid)).model_dump(mode="json", by_alias=True)
    benefit = body["benefit"]
    if "percent" in benefit and benefit["percent"] is not None:
        benefit["percent"] = str(draw(PERCENTS))
    if "multiplier" in benefit:
        benefit["multiplier"] = str(draw(MULTIPLIERS))
    for tier in benefit.get("tiers", []):
        if tier.get("percent") is not None:
            tier["percent"] = str(draw(PERCENTS))
    return Promotion.model_validate(body)


@st.composite
def edge_lists(draw: st.DrawFn) -> list[Promotion]:
    n = draw(st.integers(1, 5))
    return [draw(edge_promotions(f"E{i}")) for i in range(n)]


@settings(max_examples=250, deadline=None)
@given(
    basket=edge_baskets(),
    promos=edge_lists(),
    dialect=props.dialects,
    channel=po.CHANNELS,
    store=po.STORES,
)
def test_engine_prices_edge_cases_as_the_oracle(
    basket: Basket,
    promos: list[Promotion],
    dialect: Dialect,
    channel: str,
    store: StoreContext | None,
) -> None:
    po.same(basket, promos, channel=channel, at=props.AT, store=store, dialect=dialect)
