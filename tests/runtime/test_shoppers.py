"""The sale loop written for speed (``ShopperTraffic._draw_and_sell``) sells what the plain
one sells: ``arrivals()`` (``arrival_times``, ``Weighted.pick``, ``randrange``) and
``sell`` (``PricePoint.price``) at each arrival, draw for draw and row for row, through
whole runs whose deliveries apply and revoke promotions under the shoppers' feet."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.runtime import shoppers
from harness.runtime.receipts import PricePoint
from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world
from harness.scenario import load_scenario

FIELDS = ("t", "kind", "promo", "version", "endpoint", "channel", "region", "value", "detail")


def run(name: str, sets: list[str], *, plain: bool) -> tuple:
    """(delivery records, shopper columns as lists, the shoppers' draws left) of one run,
    by the fast loop or (``plain``) by ``arrivals()`` and ``sell``."""
    with pytest.MonkeyPatch.context() as m:
        if plain:  # what sell_before falls back to where randrange cannot be inlined
            m.setattr(shoppers, "_INLINE_RANDRANGE", False)
        runtime = SimRuntime(build_world(load_scenario(name, sets)))
        records = runtime.run()
    traffic = runtime.shoppers
    assert traffic is not None
    columns = {f: list(getattr(traffic.columns, f)) for f in FIELDS}
    return records, columns, traffic.rng.getstate()


def assert_same_run(name: str, sets: list[str]) -> dict:
    fast = run(name, sets, plain=False)
    plain = run(name, sets, plain=True)
    assert fast[0] == plain[0]  # the deliveries: nothing feeds back from a sale
    for f in FIELDS:
        assert fast[1][f] == plain[1][f], f
    assert fast[2] == plain[2]  # and the same number of draws were taken
    return fast[1]


def test_the_inlined_randrange_is_randranges_here() -> None:
    """Else the fast loop is never run (sell_before falls back) and nothing below tests it."""
    assert shoppers._INLINE_RANDRANGE


@pytest.mark.parametrize(
    ("name", "sets"),
    [
        # Promotions reach 30 stores during the run; the 09:00 window opens store by store.
        ("weekend-private-label", ["estate.stores=30"]),
        # A rollback revokes what shoppers were buying with (the leakage after it).
        ("regional-outage-rollback", ["estate.stores=40"]),
        # Four endpoints' dialects price the same basket differently.
        ("inconsistent-channels", []),
    ],
)
def test_library_runs_sell_the_same(name: str, sets: list[str]) -> None:
    columns = assert_same_run(name, sets)
    kinds = set(columns["kind"])
    assert {"sale", "discount"} <= kinds  # promotions were live for some of the sales


@settings(max_examples=8, deadline=None)
@given(
    start=st.sampled_from([0.0, 300.0, 1000.0]),
    ramp=st.sampled_from([0.0, 200.0, 700.0]),
    hold=st.sampled_from([0.0, 300.0]),
    peak=st.sampled_from([1.0, 2.5, 6.0]),
    decay=st.sampled_from([60.0, 900.0]),
    # 2048 = 2**11: randrange draws 12 bits and redraws about every other time; 1 draws
    # one bit for a pool of one.
    pool=st.sampled_from([1, 2, 3, 100, 2048]),
    seed=st.integers(0, 2**32),
)
def test_any_curve_and_pool_sells_the_same(
    start: float,
    ramp: float,
    hold: float,
    peak: float,
    decay: float,
    pool: int,
    seed: int,
) -> None:
    """Every phase of the curve (before, ramp, hold, decay) within one short run of a
    small estate whose promotions are published during it."""
    sets = [
        "estate.stores=12",
        "duration=2400",
        f"seed={seed}",
        "traffic.rate_per_store=900",
        f"traffic.basket_pool={pool}",
        f"traffic.curve={{start: {start}, ramp: {ramp}, hold: {hold},"
        f" peak_multiple: {peak}, decay: {decay}}}",
    ]
    assert_same_run("weekend-private-label", sets)


def test_a_receipt_is_computed_once_per_basket_and_live_set() -> None:
    """One pool basket sold at two endpoints in the same (channel, dialect, live set), and
    a quote's basket (outside the pool) twice: one quote each."""
    world = build_world(load_scenario("weekend-private-label", ["estate.stores=3"]))
    traffic = shoppers.ShopperTraffic(
        world.scenario.traffic,
        list(world.models.values()),
        world.estate.catalog,
        world.scenario.promotions,
        world.scenario.start,
        world.scenario.duration,
        world.seed,
    )
    pricer = PricePoint(world.scenario.start)
    stores = [m for m in world.models.values() if m.channel == "pos"]
    basket = traffic.baskets[5]
    first = pricer.price(stores[0], 5, basket, 10.0)
    assert pricer.price(stores[1], 5, basket, 20.0) is first
    row, until = pricer.segment(stores[1], 30.0)
    assert row[5] is first and until == float("inf")  # nothing applied: one segment
    one_line = random.Random(1).choice(traffic.baskets)
    pricer.price(stores[0], -1, one_line, 10.0)
    pricer.price(stores[2], -1, one_line, 99.0)
    assert pricer.computed == 2
