"""Conformance vectors: promotions, basket, instant and the expected receipt, as data.

``build_vectors(channel)`` prices the specification's worked examples
(:data:`EXAMPLES`, ids ``E<n>``), the certification's generated baskets (seed 0, 48 cases)
and its boundary baskets under the reference engine, for ``channel`` (``pos``: at the
store the reference POS adapter reports, Europe/Paris). The kit ships the result as
``vectors/<channel>.json`` (``promoharness contract CHANNEL --vectors``) so an adapter team
can test offline in any language; a test keeps the shipped files equal to the engine.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from harness.certify.boundary import boundary_cases, boundary_promotions
from harness.certify.probes import ALL_CHANNELS, WIDE, Case, pricing_cases, pricing_promotions
from harness.domain.basket import Basket, BasketLine
from harness.domain.pricing import StoreContext, price_basket
from harness.domain.promotion import CHANNELS, Promotion

__all__ = ["EXAMPLES", "build_vectors", "load_vectors"]

SPEC = "promoharness pricing specification 1.0 (docs/pricing-spec.md)"
STORE = StoreContext("store-0001", "FR-IDF", "Europe/Paris")
AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _promo(pid: str, benefit: dict[str, Any], **extra: Any) -> Promotion:
    body = {
        "id": pid,
        "name": f"spec example {pid}",
        "validity": {**WIDE, "store_local": False},
        "scope": {"channels": ALL_CHANNELS},
        "benefit": benefit,
        **extra,
    }
    return Promotion.model_validate(body)


def _basket(*lines: tuple[str, int, str], **extra: Any) -> Basket:
    return Basket(
        lines=[BasketLine(sku=s, quantity=q, unit_price=Decimal(p)) for s, q, p in lines], **extra
    )


# id -> (rules, promotions, basket, hand-derived total, hand-derived line amounts)
EXAMPLES: dict[str, tuple[str, list[Promotion], Basket, str, list[str]]] = {
    "E1": (
        "P5 P6",
        [_promo("E1", {"type": "amount_off", "amount": "15.00"})],
        _basket(("A", 1, "16.00"), ("B", 2, "20.00")),
        "41.00",
        ["11.71", "29.29"],
    ),
    "E2": (
        "P4",
        [_promo("E2", {"type": "percent_off", "percent": "15"}, rounding={"mode": "half_up"})],
        _basket(("A", 1, "0.30")),
        "0.25",
        ["0.25"],
    ),
    "E3": (
        "P4",
        [_promo("E3", {"type": "percent_off", "percent": "15"})],
        _basket(("A", 1, "0.30")),
        "0.26",
        ["0.26"],
    ),
    "E4": (
        "P4",
        [
            _promo(
                "E4",
                {"type": "percent_off", "percent": "15"},
                rounding={"mode": "half_up", "level": "unit"},
            )
        ],
        _basket(("A", 3, "0.10")),
        "0.24",
        ["0.24"],
    ),
    "E5": (
        "P2",
        [
            _promo("E5-a", {"type": "percent_off", "percent": "10"}, priority=1),
            _promo("E5-b", {"type": "amount_off", "amount": "5.00"}, priority=2),
        ],
        _basket(("A", 1, "100.00")),
        "85.00",
        ["85.00"],
    ),
    "E6": (
        "P6",
        [_promo("E6", {"type": "buy_x_get_y", "buy": 2, "get": 1})],
        _basket(("A", 2, "10.00"), ("B", 1, "4.00")),
        "20.00",
        ["20.00", "0.00"],
    ),
    "E7": (
        "P6",
        [_promo("E7", {"type": "bundle_price", "quantity": 3, "price": "20.00"})],
        _basket(("A", 2, "9.00"), ("B", 2, "6.00")),
        "26.00",
        ["15.00", "11.00"],
    ),
    "E8": (
        "P3",
        [
            _promo("E8-a", {"type": "percent_off", "percent": "10"}),
            _promo("E8-b", {"type": "amount_off", "amount": "8.00"}, stacking="exclusive_class"),
        ],
        _basket(("A", 1, "50.00")),
        "42.00",
        ["42.00"],
    ),
    "E9": (
        "P7 P8",
        [_promo("E9", {"type": "amount_off", "amount": "12.00"}, price_mode="gross")],
        Basket(
            lines=[
                BasketLine(
                    sku="A", unit_price=Decimal("100.00"), quantity=1, tax_rate=Decimal("0.20")
                )
            ],
            tax_mode="net",
        ),
        "108.00",
        ["90.00"],
    ),
    "E10": (
        "P9",
        [
            _promo(
                "E10",
                {"type": "points_multiplier", "multiplier": "3"},
                conditions={"skus": ["A"]},
            )
        ],
        _basket(("A", 1, "20.50"), ("B", 1, "9.99"), loyalty_member=True),
        "30.49",
        ["20.50", "9.99"],
    ),
}


def _cases() -> list[tuple[str, str, list[Promotion], Case]]:
    out = [
        (name, rules, promos, Case(name, basket, AT))
        for name, (rules, promos, basket, _, _) in EXAMPLES.items()
    ]
    generated = pricing_promotions("G")
    out += [(c.name, "P1-P10", generated, c) for c in pricing_cases(48, 0)]
    boundary = boundary_promotions("R")
    out += [(c.name, "P4 P5 P8", boundary, c) for c in boundary_cases(0)]
    return out


def build_vectors(channel: str) -> dict[str, Any]:
    """The vectors of ``channel`` as one JSON document."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    store = STORE if channel == "pos" else None
    promotions: dict[str, Any] = {}
    vectors = []
    for name, rules, promos, case in _cases():
        for p in promos:
            promotions[p.id] = p.model_dump(mode="json", by_alias=True)
        receipt = price_basket(case.basket, promos, channel=channel, at=case.at, store=store)
        vectors.append(
            {
                "id": name,
                "rules": rules,
                "at": case.at.isoformat(),
                "promotions": [p.id for p in promos],
                "basket": case.basket.model_dump(mode="json"),
                "expected": receipt.model_dump(mode="json"),
            }
        )
    return {
        "specification": SPEC,
        "channel": channel,
        "store": None
        if store is None
        else {"id": store.id, "region": store.region, "timezone": store.timezone},
        "how": "Hold exactly the promotions a vector names (by id), price its basket at its "
        "instant 'at', and compare every field of the receipt but 'dialects'.",
        "promotions": promotions,
        "vectors": vectors,
    }


def vectors_name(channel: str) -> str:
    return f"{channel}.json"


@cache
def load_vectors(channel: str) -> str:
    """The shipped vectors of ``channel`` (JSON text)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    return (resources.files("harness.certify") / "vectors" / vectors_name(channel)).read_text(
        encoding="utf-8"
    )


def dump(channel: str) -> str:
    return json.dumps(build_vectors(channel), separators=(",", ":")) + "\n"
