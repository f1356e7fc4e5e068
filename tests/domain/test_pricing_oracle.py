"""The pricing engine against a frozen copy of the engine it replaced (the oracle).

``tests/domain/pricing_oracle`` is the Decimal-throughout engine as it was before the
speed work of issue 16; whatever the basket, the promotions, the dialect, the channel and
the store, both must give the same receipt: every line's amount, discounts (in order) and
tax, the shipping, totals, points and applied labels, to the digit (compared as JSON, so
a Decimal's exponent counts too).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

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


@settings(max_examples=250, deadline=None)
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


EDGES = [dt.datetime(2026, 11, 28, h) for h in (0, 12, 13)] + [dt.datetime(2026, 11, 29)]
ZONES = ["Europe/Paris", "UTC", "America/New_York"]
# Every edge as an instant in every zone, and instants between them.
EDGE_INSTANTS = [e.replace(tzinfo=ZoneInfo(z)).astimezone(dt.UTC) for e in EDGES for z in ZONES]
INSTANTS = st.sampled_from(EDGE_INSTANTS) | st.integers(-600, 3600).map(
    lambda m: dt.datetime(2026, 11, 27, 20, tzinfo=dt.UTC) + dt.timedelta(minutes=m)
)


@st.composite
def windowed(draw: st.DrawFn, pid: str) -> Promotion:
    """A generated promotion with its window moved: edges shared between promotions."""
    body = draw(props.promotions(pid)).model_dump(mode="json", by_alias=True)
    start, end = sorted(draw(st.lists(st.sampled_from(EDGES), min_size=2, max_size=2, unique=True)))
    body["validity"] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": draw(st.sampled_from(ZONES)),
        "store_local": draw(st.booleans()),
    }
    return Promotion.model_validate(body)


@settings(max_examples=120, deadline=None)
@given(
    basket=props.baskets(),
    promos=st.integers(0, 6).flatmap(lambda n: st.tuples(*[windowed(f"W{i}") for i in range(n)])),
    instants=st.lists(INSTANTS, min_size=1, max_size=6),
    store=STORES,
)
def test_windows_open_and_close_as_the_oracle_says(
    basket: Basket, promos: tuple[Promotion, ...], instants: list[dt.datetime], store: Any
) -> None:
    # One promotion list priced at several instants: the engine works out which windows
    # are open once per stretch between edges, so each instant must still be read afresh.
    for at in instants:
        same(basket, list(promos), channel="pos", at=at, store=store)


def test_bench_basket_in_every_dialect() -> None:
    basket, promos = bench_basket(), bench_promotions()
    for name in sorted(DIALECTS):
        same(basket, promos, channel="pos", at=BENCH_AT, store=BENCH_STORE, dialect=compose(name))
    same(basket, promos, channel="pos", at=BENCH_AT, store=BENCH_STORE)
