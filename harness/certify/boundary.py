"""Generated boundary baskets: the half-cent (and sub-cent) cases of every rounding mode and
level, half-cent taxes, and an absolute amount over lines of different quantities.

Random baskets rarely land on a half cent under the one promotion that rounds half-up, so
these cases are constructed: for each rounding mode (half_even, half_up, down, up) and level
(line, unit) a 15 % promotion on its own category, and a basket whose lines are drawn from a
seeded stream of unit prices and quantities until each class of discount is covered: an
exact half cent over an even cent, over an odd cent, a fraction below and one above the
half, and a line that rounds differently at the other level. A mode or level read wrongly
therefore moves at least one line by a cent, whatever the seed.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

from harness.certify.probes import ALL_CHANNELS, WIDE, Case
from harness.domain.basket import Basket, BasketLine
from harness.domain.pricing.common import _QUANT
from harness.domain.promotion import Promotion

__all__ = ["AT", "MODES", "boundary_cases", "boundary_promotions"]

MODES = ("half_even", "half_up", "down", "up")
LEVELS = ("line", "unit")
PERCENT = Decimal("0.15")
AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CENT = Decimal("0.01")


def _promotion(pid: str, name: str, spec: dict[str, Any]) -> Promotion:
    body = {"id": pid, "version": 1, "name": name, "scope": {"channels": ALL_CHANNELS}}
    return Promotion.model_validate({**body, "validity": {**WIDE, "store_local": False}, **spec})


def boundary_promotions(prefix: str) -> list[Promotion]:
    """One 15 % promotion per (mode, level), and 15.00 off spread over category rb-spread."""
    out = [
        _promotion(
            f"{prefix}-{mode.replace('_', '')}-{level}",
            f"rounding boundary {mode} {level}",
            {
                "conditions": {"categories": [f"rb-{mode}-{level}"]},
                "benefit": {"type": "percent_off", "percent": "15"},
                "rounding": {"mode": mode, "level": level},
            },
        )
        for mode in MODES
        for level in LEVELS
    ]
    out.append(
        _promotion(
            f"{prefix}-spread",
            "absolute amount over lines of different quantities",
            {
                "conditions": {"categories": ["rb-spread"]},
                "benefit": {"type": "amount_off", "amount": "15.00"},
            },
        )
    )
    return out


def _cls(exact: Decimal) -> str:
    """The class of an exact discount: its fraction of a cent (and the cent's parity)."""
    cents = exact / CENT
    whole = cents.to_integral_value(ROUND_DOWN)
    frac = cents - whole
    if frac == 0:
        return "whole"
    if frac == Decimal("0.5"):
        return "half-even-cent" if whole % 2 == 0 else "half-odd-cent"
    return "below-half" if frac < Decimal("0.5") else "above-half"


def _rounded(exact_unit: Decimal, q: int, mode: str, level: str) -> Decimal:
    rnd = _QUANT[mode]
    if level == "unit":
        return exact_unit.quantize(CENT, rnd) * q
    return (exact_unit * q).quantize(CENT, rnd)


def _lines(rng: random.Random, mode: str, level: str) -> list[BasketLine]:
    """Lines covering every class at ``level`` plus one that the other level rounds apart."""
    want = {"half-even-cent", "half-odd-cent", "below-half", "above-half", "other-level"}
    other = "line" if level == "unit" else "unit"
    lines: list[BasketLine] = []
    for _ in range(20_000):
        if not want:
            break
        unit = Decimal(rng.randrange(101, 2000)) * CENT
        q = rng.choice([1, 2, 3, 4]) if level == "line" else rng.choice([2, 3, 4])
        exact_unit = unit * PERCENT
        exact = exact_unit if level == "unit" else exact_unit * q
        covers = {_cls(exact)} & want
        if q > 1 and _rounded(exact_unit, q, mode, level) != _rounded(exact_unit, q, mode, other):
            covers.add("other-level") if "other-level" in want else None
        if not covers:
            continue
        want -= covers
        sku = f"RB-{mode}-{level}-{len(lines) + 1}"
        lines.append(
            BasketLine(sku=sku, category=f"rb-{mode}-{level}", quantity=q, unit_price=unit)
        )
    if want:
        raise AssertionError(f"no boundary line for {sorted(want)} ({mode}, {level})")
    return lines


def boundary_cases(seed: int = 0) -> list[Case]:
    """The boundary baskets (same seed, same cases), priced at :data:`AT`."""
    rng = random.Random(f"promoharness-boundary:{seed}")
    cases = [
        Case(f"rounding-{mode}-{level}", Basket(lines=_lines(rng, mode, level)), AT)
        for mode in MODES
        for level in LEVELS
    ]
    # Taxes round half-even: net lines whose 10 % tax is an exact half cent over an even
    # and over an odd cent.
    taxed: list[BasketLine] = []
    seen: set[bool] = set()
    while len(seen) < 2:
        cents = rng.randrange(10, 500) * 10 + 5  # ends in 5: 10 % of it is x.5 cents
        even = (cents // 10) % 2 == 0
        if even not in seen:
            seen.add(even)
            taxed.append(
                BasketLine(
                    sku=f"RB-TAX-{len(taxed) + 1}",
                    category="rb-tax",
                    quantity=1,
                    unit_price=Decimal(cents) * CENT,
                    tax_rate=Decimal("0.10"),
                )
            )
    cases.append(Case("tax-half-cent", Basket(lines=taxed, tax_mode="net"), AT))
    # An absolute amount over lines of 1 and 2 units (per line vs per unit differ by a cent):
    # the specification's example, then one drawn from the seed.
    spread = [("16.00", 1), ("20.00", 2)]
    drawn = [(f"{rng.randrange(1000, 3000) / 100:.2f}", q) for q in (1, 3)]
    for name, pairs in (("spread-example", spread), ("spread-drawn", drawn)):
        lines = [
            BasketLine(
                sku=f"RB-SPREAD-{n}", category="rb-spread", quantity=q, unit_price=Decimal(p)
            )
            for n, (p, q) in enumerate(pairs, 1)
        ]
        cases.append(Case(name, Basket(lines=lines), AT))
    return cases
