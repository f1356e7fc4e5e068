"""Deterministic test material for the checks: probe promotions and generated pricing cases.

*Probes* isolate the state checks (idempotency, ordering, deactivation, faults): each check
has its own SKU, a basket of that SKU only (tax 0, whole amounts) and ``amount_off``
promotions conditioned on that SKU with a window from 2000 to 2100. So a check sees only
its own promotions, and its expected totals are dialect-neutral: a channel that rounds or
taxes differently still passes the state checks and fails only ``pricing_reference``.

*Cases* (``pricing_cases``) exercise the pricing semantics: eleven promotions over four
categories (exclusions, exclusive_class / exclusive_global stacking, half_up / down /
unit rounding, value tiers, buy-x-get-y, bundles, fixed prices, free shipping, points,
windows in Paris / New York / Tokyo / UTC, store-local or not) and baskets generated from
a seed (gross and net tax modes, non-discountable lines, shipping), each priced at one of
a set of instants on 2026-06-01 that straddle the windows' edges in every zone.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harness.domain.basket import Basket, BasketLine
from harness.domain.promotion import CHANNELS, Promotion

__all__ = [
    "Case",
    "pricing_cases",
    "pricing_promotions",
    "probe_basket",
    "probe_promotion",
    "revoke_basket",
    "revoke_promotions",
]

ALL_CHANNELS = list(CHANNELS)
WIDE = {"start": "2000-01-01T00:00:00", "end": "2100-01-01T00:00:00", "timezone": "UTC"}


def probe_basket(tag: str) -> Basket:
    """Two units of one 25.00 SKU, tax 0: list total 50.00."""
    line = BasketLine(sku=f"PRB-{tag}", category="probe", quantity=2, unit_price=Decimal("25"))
    return Basket(lines=[line], tax_mode="gross")


def probe_promotion(promo_id: str, version: int, amount: str, tag: str) -> Promotion:
    """``amount`` off the probe basket of ``tag`` (an order of whole cents, no rounding)."""
    return Promotion.model_validate(
        {
            "id": promo_id,
            "version": version,
            "name": f"certification probe {tag} v{version}",
            "validity": {**WIDE, "store_local": False},
            "scope": {"channels": ALL_CHANNELS},
            "conditions": {"skus": [f"PRB-{tag}"]},
            "benefit": {"type": "amount_off", "amount": amount},
        }
    )


def _window(start: str, end: str, zone: str, store_local: bool = True) -> dict[str, Any]:
    return {"start": start, "end": end, "timezone": zone, "store_local": store_local}


def pricing_promotions(prefix: str) -> list[Promotion]:
    """The promotion set the generated baskets are priced under (ids ``prefix-p1``...)."""
    day = "2026-06-01T"
    specs: list[dict[str, Any]] = [
        {  # percent off a category, an SKU excluded, Paris hours read in the store's zone
            "validity": _window(day + "09:00:00", day + "18:00:00", "Europe/Paris"),
            "conditions": {"categories": ["cert-a"]},
            "exclusions": {"skus": ["CA-GIFT"]},
            "benefit": {"type": "percent_off", "percent": "15"},
            "priority": 10,
        },
        {  # an order-class amount over a threshold, half-up rounding
            "validity": _window("2026-05-01T00:00:00", "2026-07-01T00:00:00", "UTC"),
            "conditions": {"categories": ["cert-a", "cert-b"], "min_basket_value": "40"},
            "benefit": {"type": "amount_off", "amount": "5.00"},
            "class": "order",
            "rounding": {"mode": "half_up"},
        },
        {  # value tiers, rounding down per unit
            "validity": {**WIDE, "timezone": "Asia/Tokyo"},
            "conditions": {"categories": ["cert-b"]},
            "benefit": {
                "type": "tiered",
                "tiers": [
                    {"threshold": "20", "percent": "5"},
                    {"threshold": "50", "percent": "10"},
                    {"threshold": "100", "amount": "15.00"},
                ],
            },
            "rounding": {"mode": "down", "level": "unit"},
        },
        {  # buy 2 get 1 half price, a New York day (not store-local)
            "validity": _window(day + "00:00:00", "2026-06-02T00:00:00", "America/New_York", False),
            "conditions": {"categories": ["cert-c"]},
            "benefit": {
                "type": "buy_x_get_y",
                "buy": 2,
                "get": 1,
                "percent": "50",
                "max_occurrences": 2,
            },
        },
        {  # a fixed unit price
            "validity": WIDE,
            "conditions": {"skus": ["CC-FIX"]},
            "benefit": {"type": "fixed_price", "price": "3.33"},
            "priority": 5,
        },
        {  # exclusive within its class, competing with p1
            "validity": _window(day + "12:00:00", day + "20:00:00", "America/New_York", False),
            "conditions": {"categories": ["cert-a"]},
            "benefit": {"type": "percent_off", "percent": "12.5"},
            "stacking": "exclusive_class",
            "priority": 20,
            "rounding": {"mode": "half_up"},
        },
        {  # a mix-and-match bundle, Tokyo hours read in the store's zone
            "validity": _window(day + "10:00:00", day + "22:00:00", "Asia/Tokyo"),
            "conditions": {"categories": ["cert-d"]},
            "benefit": {
                "type": "bundle_price",
                "quantity": 3,
                "price": "20.00",
                "max_occurrences": 1,
            },
        },
        {  # exclusive over everything when the basket is big enough
            "validity": WIDE,
            "conditions": {"categories": ["cert-d"], "min_basket_value": "120"},
            "benefit": {"type": "amount_off", "amount": "25.00", "spread": "even"},
            "stacking": "exclusive_global",
        },
        {  # loyalty points
            "validity": WIDE,
            "conditions": {"categories": ["cert-a"]},
            "benefit": {"type": "points_multiplier", "multiplier": "3"},
        },
        {  # inclusion by two categories, one of them excluded: exclusion wins
            "validity": _window(day + "06:00:00", day + "14:00:00", "UTC", False),
            "conditions": {"categories": ["cert-b", "cert-c"]},
            "exclusions": {"categories": ["cert-c"]},
            "benefit": {"type": "percent_off", "percent": "7"},
            "priority": 50,
        },
        {  # free shipping over 60
            "validity": WIDE,
            "conditions": {
                "categories": ["cert-a", "cert-b", "cert-c", "cert-d"],
                "min_basket_value": "60",
            },
            "benefit": {"type": "percent_off", "percent": "100"},
            "class": "shipping",
        },
    ]
    out = []
    for n, spec in enumerate(specs, 1):
        body = {
            "id": f"{prefix}-p{n}",
            "version": 1,
            "name": f"certification case p{n}",
            "scope": {"channels": ALL_CHANNELS},
            **spec,
        }
        out.append(Promotion.model_validate(body))
    return out


# sku, category, unit price, tax rate, non-discountable
CATALOG: list[tuple[str, str, str, str, bool]] = [
    ("CA-PASTA", "cert-a", "1.49", "0.055", False),
    ("CA-OIL", "cert-a", "7.99", "0.055", False),
    ("CA-GIFT", "cert-a", "24.90", "0.20", False),
    ("CA-BOX", "cert-a", "12.35", "0.20", True),
    ("CB-WINE", "cert-b", "12.50", "0.20", False),
    ("CB-CHEESE", "cert-b", "4.35", "0.055", False),
    ("CB-HAM", "cert-b", "9.99", "0.055", False),
    ("CC-SOAP", "cert-c", "2.99", "0.20", False),
    ("CC-SHAMPOO", "cert-c", "5.49", "0.20", False),
    ("CC-FIX", "cert-c", "4.44", "0.20", False),
    ("CD-TOY", "cert-d", "19.99", "0.10", False),
    ("CD-BOOK", "cert-d", "8.75", "0.055", False),
    ("CD-GAME", "cert-d", "59.00", "0.20", False),
]

# Instants (UTC) straddling the windows' edges in Paris (+2), New York (-4), Tokyo (+9).
INSTANTS: list[str] = [
    "2026-05-31T23:30:00+00:00",
    "2026-06-01T00:59:00+00:00",
    "2026-06-01T01:00:00+00:00",
    "2026-06-01T03:59:00+00:00",
    "2026-06-01T04:00:00+00:00",
    "2026-06-01T06:59:00+00:00",
    "2026-06-01T07:00:00+00:00",
    "2026-06-01T08:00:00+00:00",
    "2026-06-01T12:30:00+00:00",
    "2026-06-01T13:59:00+00:00",
    "2026-06-01T15:59:00+00:00",
    "2026-06-01T16:00:00+00:00",
    "2026-06-01T19:59:00+00:00",
    "2026-06-01T20:00:00+00:00",
    "2026-06-02T03:59:00+00:00",
    "2026-06-02T04:00:00+00:00",
]


@dataclass(frozen=True)
class Case:
    """One generated pricing case: a basket and the instant to price it at."""

    name: str
    basket: Basket
    at: dt.datetime


def pricing_cases(count: int, seed: int = 0) -> list[Case]:
    """``count`` baskets generated from ``seed`` (same seed, same cases)."""
    rng = random.Random(f"promoharness-certify:{seed}")
    cases = []
    for n in range(count):
        picks = rng.sample(CATALOG, rng.randint(1, 5))
        lines = [
            BasketLine(
                sku=sku,
                category=cat,
                quantity=rng.choice([1, 1, 2, 3, 4, 6]),
                unit_price=Decimal(price),
                tax_rate=Decimal(rate),
                non_discountable=nd,
            )
            for sku, cat, price, rate, nd in picks
        ]
        basket = Basket(
            lines=lines,
            tax_mode="gross" if n % 2 == 0 else "net",
            shipping=Decimal(rng.choice(["0", "0", "4.99"])),
            shipping_tax_rate=Decimal("0.20"),
            loyalty_member=rng.random() < 0.5,
        )
        at = dt.datetime.fromisoformat(INSTANTS[(n * 7 + rng.randrange(3)) % len(INSTANTS)])
        cases.append(Case(f"case-{n + 1:03d}", basket, at))
    return cases


# One promotion of each benefit type, each on its own line of the revoke basket: whole
# cents whatever the dialect (two 25.00 units, tax 0).
REVOKE_BENEFITS: dict[str, dict[str, Any]] = {
    "bundle_price": {"type": "bundle_price", "quantity": 2, "price": "40.00"},
    "buy_x_get_y": {"type": "buy_x_get_y", "buy": 1, "get": 1, "percent": "50"},
    "tiered": {"type": "tiered", "tiers": [{"threshold": "10", "percent": "20"}]},
    "fixed_price": {"type": "fixed_price", "price": "20.00"},
    "points_multiplier": {"type": "points_multiplier", "multiplier": "3"},
    "percent_off": {"type": "percent_off", "percent": "10"},
    "amount_off": {"type": "amount_off", "amount": "6.00"},
}


def revoke_basket(tag: str) -> Basket:
    """A loyalty member's basket: two 25.00 units of one SKU per benefit type, tax 0."""
    lines = [
        BasketLine(sku=f"RV-{tag}-{kind}", category="probe", quantity=2, unit_price=Decimal("25"))
        for kind in REVOKE_BENEFITS
    ]
    return Basket(lines=lines, tax_mode="gross", loyalty_member=True)


def revoke_promotions(prefix: str, tag: str) -> dict[str, Promotion]:
    """benefit type -> a promotion of that type on its own line of :func:`revoke_basket`."""
    return {
        kind: Promotion.model_validate(
            {
                "id": f"{prefix}-{kind.replace('_', '')}",
                "version": 1,
                "name": f"certification revoke probe {kind}",
                "validity": {**WIDE, "store_local": False},
                "scope": {"channels": ALL_CHANNELS},
                "conditions": {"skus": [f"RV-{tag}-{kind}"]},
                "benefit": benefit,
            }
        )
        for kind, benefit in REVOKE_BENEFITS.items()
    }
