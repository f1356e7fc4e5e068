"""The pricing engine against a frozen copy of the engine it replaced (the oracle).

``tests/domain/pricing_oracle`` is the Decimal-throughout engine as it was before the
speed work of issue 16; whatever the basket, the promotions, the dialect, the channel and
the store, both must give the same receipt: every line's amount, discounts (in order) and
tax, the shipping, totals, points and applied labels, to the digit (compared as JSON, so
a Decimal's exponent counts too).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bench.pricing import AT as BENCH_AT
from harness.bench.pricing import STORE as BENCH_STORE
from harness.bench.pricing import bench_basket, bench_promotions
from harness.domain.basket import Basket
from harness.domain.dialects import DIALECTS, Dialect, compose
from harness.domain.pricing import StoreContext, is_applicable, price_basket, quote_basket
from harness.domain.promotion import Promotion
from tests.domain import pricing_oracle as oracle
from tests.domain import test_pricing_properties as props

STORES = st.sampled_from(
    [None, props.STORE, StoreContext(id="S9", region="de", timezone="America/New_York")]
)
CHANNELS = st.sampled_from(["pos", "ecommerce", "loyalty"])


@st.composite
def longer_lists(draw: st.DrawFn) -> list[Promotion]:
    n = draw(st.integers(0, 10))
    return [draw(props.promotions(f"P{i}")) for i in range(n)]


def receipt_walk(r: Any) -> list[tuple[tuple[str, int], Decimal]]:
    """Money per promotion walking a Receipt: lines in order, then the shipping."""
    given: dict[tuple[str, int], Decimal] = {}
    for d in [d for line in r.lines for d in line.discounts] + list(r.shipping_discounts):
        given[(d.promo, d.version)] = given.get((d.promo, d.version), Decimal(0)) + d.amount
    return list(given.items())


def same(basket: Basket, promos: list[Promotion], **kw: Any) -> None:
    new = price_basket(basket, promos, **kw)
    old = oracle.price_basket(basket, promos, **kw)
    assert new.model_dump(mode="json") == old.model_dump(mode="json")
    # The light quote says what the receipt says: same figures, same discounts per line.
    quote = quote_basket(basket, promos, **kw)
    assert quote.total == old.total and quote.points == old.points
    assert list(quote.applied) == old.applied
    for i, line in enumerate(old.lines):
        assert quote.lines[i].amount == line.amount and quote.lines[i].tax == line.tax
        assert [(p, v, a) for (p, v), _, a in quote.line_discounts(i)] == [
            (d.promo, d.version, d.amount) for d in line.discounts
        ]
    assert list(quote.given().items()) == receipt_walk(old)  # same keys, same order
    for p in promos:
        assert is_applicable(p, basket, **kw) == oracle.is_applicable(p, basket, **kw)


@settings(max_examples=400, deadline=None)
@given(
    basket=props.baskets(),
    promos=props.promotion_lists() | longer_lists(),
    dialect=props.dialects,
    channel=CHANNELS,
    store=STORES,
)
def test_engine_prices_as_the_oracle(
    basket: Basket,
    promos: list[Promotion],
    dialect: Dialect,
    channel: str,
    store: StoreContext | None,
) -> None:
    same(basket, promos, channel=channel, at=props.AT, store=store, dialect=dialect)


def test_bench_basket_in_every_dialect() -> None:
    basket, promos = bench_basket(), bench_promotions()
    for name in sorted(DIALECTS):
        same(basket, promos, channel="pos", at=BENCH_AT, store=BENCH_STORE, dialect=compose(name))
    same(basket, promos, channel="pos", at=BENCH_AT, store=BENCH_STORE)
