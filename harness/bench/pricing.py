"""Benchmark of the reference pricing engine: one 10-line basket under 20 active promotions.

A POS peak is thousands of quotes a second, so the engine has a budget (``TARGET_US``) per
basket. ``bench_pricing`` measures, alternating call by call, the two ways a quote is paid
for: ``quote_basket`` (the pure core, light records: what the simulated shoppers pay per
distinct basket and live set) and ``price_basket`` (the same quote plus the pydantic
``Receipt`` that the HTTP price endpoints and certification build right after, before
serialising it). It uses ``time.perf_counter_ns`` after a warm-up, garbage collection
paused as ``timeit`` does, and reports medians and p95 in microseconds; the target applies
to the core. The same basket object is priced every time, but the engine caches nothing
about baskets, only the compiled promotions. Run ``python -m harness.bench.pricing``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import time
from decimal import Decimal
from typing import Any

from harness.domain.basket import Basket, BasketLine
from harness.domain.pricing import StoreContext, is_applicable, price_basket, quote_basket
from harness.domain.promotion import Promotion

TARGET_US = 100
WARMUP = 50
AT = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
STORE = StoreContext(id="S042", region="north", timezone="Europe/Paris")


def bench_basket() -> Basket:
    """Ten lines over five categories, mixed tax rates, one non-discountable bundle."""
    rows = [
        ("MILK-1L", "dairy", 4, "1.19", "0.055"),
        ("YOGURT-4", "dairy", 2, "2.49", "0.055"),
        ("CHIPS-200", "snacks", 3, "1.99", "0.20"),
        ("COOKIES", "snacks", 2, "2.79", "0.20"),
        ("WINE-BDX", "wine", 2, "12.50", "0.20"),
        ("WINE-RHONE", "wine", 1, "9.90", "0.20"),
        ("SHAMPOO", "hygiene", 1, "4.35", "0.20"),
        ("SOAP-3", "hygiene", 3, "0.99", "0.20"),
        ("PASTA-500", "pantry", 5, "1.49", "0.055"),
        ("BBQ-BUNDLE", "bundles", 1, "19.99", "0.20"),
    ]
    lines = [
        BasketLine(
            sku=sku,
            category=category,
            quantity=qty,
            unit_price=Decimal(price),
            tax_rate=Decimal(rate),
            non_discountable=category == "bundles",
        )
        for sku, category, qty, price, rate in rows
    ]
    return Basket(
        lines=lines,
        tax_mode="gross",
        shipping=Decimal("4.99"),
        shipping_tax_rate=Decimal("0.20"),
        loyalty_member=True,
    )


def _promo(n: int, benefit: dict[str, Any], **extra: Any) -> Promotion:
    body: dict[str, Any] = {
        "id": f"BENCH-{n:02d}",
        "name": f"bench promotion {n}",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-30T00:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty"]},
        "benefit": benefit,
        "priority": n,
    }
    body.update(extra)
    return Promotion.model_validate(body)


def bench_promotions() -> list[Promotion]:
    """Twenty live promotions, every benefit type and class, all applicable to the basket.

    The shape of a retailer's live set: mostly category- or SKU-targeted product offers
    (some stacking on the same lines, one priced net, one rounding half-up per unit), one
    basket-level amount and one spend-and-save tier in the order class, a loyalty
    multiplier, and two shipping offers where free shipping is exclusive in its class.
    """
    dairy = {"categories": ["dairy"]}
    snacks = {"categories": ["snacks"]}
    wine = {"categories": ["wine"]}
    hygiene = {"categories": ["hygiene"]}
    pantry = {"categories": ["pantry"]}
    order = {"class": "order"}
    shipping = {"class": "shipping"}
    return [
        _promo(1, {"type": "percent_off", "percent": "10"}, conditions=dairy),
        _promo(2, {"type": "percent_off", "percent": "5"}, conditions={"skus": ["WINE-BDX"]}),
        _promo(3, {"type": "amount_off", "amount": "1.50"}, conditions=snacks),
        _promo(
            4, {"type": "amount_off", "amount": "0.20", "spread": "per_line"}, conditions=pantry
        ),
        _promo(5, {"type": "fixed_price", "price": "3.99"}, conditions={"skus": ["SHAMPOO"]}),
        _promo(6, {"type": "buy_x_get_y", "buy": 2, "get": 1}, conditions=snacks),
        _promo(7, {"type": "bundle_price", "quantity": 3, "price": "20.00"}, conditions=wine),
        _promo(
            8,
            {
                "type": "tiered",
                "tiers": [{"threshold": "2", "percent": "5"}, {"threshold": "5", "percent": "10"}],
            },
            conditions=hygiene,
        ),
        _promo(
            9,
            {
                "type": "tiered",
                "basis": "quantity",
                "tiers": [{"threshold": "3", "amount": "0.50"}, {"threshold": "5", "amount": "1"}],
            },
            conditions=pantry,
        ),
        _promo(
            10,
            {"type": "percent_off", "percent": "7"},
            conditions=pantry,
            rounding={"mode": "half_up"},
        ),
        _promo(11, {"type": "percent_off", "percent": "3"}, conditions=wine, price_mode="net"),
        _promo(
            12,
            {"type": "amount_off", "amount": "1.00", "spread": "even"},
            conditions=dairy,
            rounding={"mode": "half_up", "level": "unit"},
        ),
        _promo(13, {"type": "fixed_price", "price": "0.79"}, conditions={"skus": ["SOAP-3"]}),
        _promo(14, {"type": "amount_off", "amount": "0.40"}, conditions={"skus": ["COOKIES"]}),
        _promo(
            15,
            {"type": "amount_off", "amount": "5.00"},
            conditions={"min_basket_value": "50"},
            **order,
        ),
        _promo(
            16,
            {
                "type": "tiered",
                "tiers": [{"threshold": "30", "percent": "2"}, {"threshold": "60", "percent": "5"}],
            },
            **order,
        ),
        _promo(
            17,
            {"type": "fixed_price", "price": "1.50"},
            conditions={"skus": ["YOGURT-4"]},
            price_mode="net",
        ),
        _promo(18, {"type": "percent_off", "percent": "50"}, **shipping),
        _promo(
            19, {"type": "amount_off", "amount": "4.99"}, stacking="exclusive_class", **shipping
        ),
        _promo(20, {"type": "points_multiplier", "multiplier": "3"}, conditions=wine),
    ]


def bench_pricing(repeats: int = 2000) -> dict[str, Any]:
    """Price the bench basket ``repeats`` times each way; medians and p95 in microseconds.

    ``median_us`` / ``p95_us``: ``quote_basket``; ``receipt_median_us`` / ``receipt_p95_us``:
    ``price_basket`` (quote + Receipt models); ``baseline_us``: the quote with no promotion.
    """
    basket = bench_basket()
    promotions = bench_promotions()
    idle = [
        p.id for p in promotions if not is_applicable(p, basket, channel="pos", at=AT, store=STORE)
    ]
    if idle:
        raise AssertionError(f"bench promotions not applicable: {idle}")
    for _ in range(WARMUP):  # compile the promotions, fill the engine's caches
        price_basket(basket, promotions, channel="pos", at=AT, store=STORE)
        quote_basket(basket, promotions, channel="pos", at=AT, store=STORE)
    samples: list[int] = []
    receipts: list[int] = []
    clock = time.perf_counter_ns
    # As timeit does: a garbage collection is triggered by allocations that earlier calls
    # made, so it would be charged to whichever call happens to trip it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Alternating, so that a busy spell on a shared machine hits both alike.
        for _ in range(repeats):
            t0 = clock()
            quote_basket(basket, promotions, channel="pos", at=AT, store=STORE)
            t1 = clock()
            price_basket(basket, promotions, channel="pos", at=AT, store=STORE)
            t2 = clock()
            samples.append(t1 - t0)
            receipts.append(t2 - t1)
        bare = []
        for _ in range(min(repeats, 1000)):  # the engine's floor: the basket, nothing to apply
            t0 = clock()
            quote_basket(basket, [], channel="pos", at=AT, store=STORE)
            bare.append(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    samples.sort()
    receipts.sort()
    return {
        "baseline_us": round(statistics.median(bare) / 1000, 1),
        "median_us": round(statistics.median(samples) / 1000, 1),
        "p95_us": round(samples[int(0.95 * (len(samples) - 1))] / 1000, 1),
        "receipt_median_us": round(statistics.median(receipts) / 1000, 1),
        "receipt_p95_us": round(receipts[int(0.95 * (len(receipts) - 1))] / 1000, 1),
        "lines": len(basket.lines),
        "promotions": len(promotions),
        "target_us": TARGET_US,
    }


def price_only(calls: int, receipt: bool = False) -> None:
    """Warm up, then price the bench basket ``calls`` times and nothing else: for counting
    instructions per call, repeatable whatever the machine's load, as the difference of
    two runs (``python -m harness.bench.pricing --calls 100`` and ``--calls 600`` under
    ``valgrind --tool=cachegrind --cache-sim=no``: (I refs of 600 - of 100) / 500)."""
    basket = bench_basket()
    promotions = bench_promotions()
    price = price_basket if receipt else quote_basket
    for _ in range(WARMUP):
        price(basket, promotions, channel="pos", at=AT, store=STORE)
    gc.disable()  # as the timed bench: no collection charged to these calls
    for _ in range(calls):
        price(basket, promotions, channel="pos", at=AT, store=STORE)
    gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.pricing")
    parser.add_argument("--calls", type=int, help="only price this many times (no timing)")
    parser.add_argument("--receipt", action="store_true", help="with --calls: price_basket")
    args = parser.parse_args(argv)
    if args.calls is not None:
        if args.calls < 0:
            parser.error("--calls: must be >= 0")
        price_only(args.calls, args.receipt)
        return 0
    print(json.dumps(bench_pricing()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
