"""Mutants that price differently: rounding, tax, exclusions, stacking, time zones,
distribution, attribution, shipping. All are caught by ``pricing_reference``."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from mutant_kit import Intercept, Mutant, Scope, pos

from harness.domain.dialects import Dialect, compose

CHECK = "pricing_reference"
MISMATCH = "receipts equal the reference"


def _dialect(d: Dialect) -> Any:
    return lambda: pos(dialect=d)[0]


def _local_at(scope: Scope) -> Scope:
    # The bug: the offset of 'at' is dropped and its wall time read in the store's zone.
    query = dict(parse_qsl(scope["query_string"].decode()))
    if "at" in query:
        naive = dt.datetime.fromisoformat(query["at"]).replace(tzinfo=None)
        query["at"] = naive.replace(tzinfo=ZoneInfo("Europe/Paris")).isoformat()
        scope["query_string"] = urlencode(query).encode()
    return scope


def _first_promo_gets_all(method: str, path: str, body: bytes, status: int, receipt: Any) -> Any:
    # The bug: every line discount is reported under the receipt's first applied promotion.
    if path == "/price" and status == 200 and receipt.get("applied"):
        promo, _, version = receipt["applied"][0].rpartition("@")
        for line in receipt["lines"]:
            for d in line["discounts"]:
                d["promo"], d["version"] = promo, int(version)
    return receipt


def _shipping_before_discount(method: str, path: str, body: bytes, status: int, r: Any) -> Any:
    # The bug: the receipt shows the list shipping and no shipping discount (total is right).
    if path == "/price" and status == 200 and r.get("shipping_discounts"):
        r["shipping"] = str(
            sum(float(d["amount"]) for d in r["shipping_discounts"]) + float(r["shipping"])
        )
        r["shipping_discounts"] = []
    return r


MUTANTS = [
    Mutant(
        "rounds-half-even-always",
        "ignores a promotion's half_up: banker's rounding everywhere",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(Dialect(rounding_mode="half_even")),
    ),
    Mutant(
        "rounds-half-up-always",
        "POS firmware rounding half-up whatever the promotion says",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("half-up-rounding")),
    ),
    Mutant(
        "truncates-discounts",
        "discounts truncated to the cent (int cents arithmetic)",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(Dialect(rounding_mode="down")),
    ),
    Mutant(
        "rounds-per-unit",
        "every discount rounded per unit, ignoring rounding.level line",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("unit-level-rounding")),
    ),
    Mutant(
        "rounds-once-at-end",
        "float arithmetic rounded once per line: spreads lose a cent",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("round-once-at-end")),
    ),
    Mutant(
        "tax-before-discount",
        "tax computed on the undiscounted amount",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("discount-after-tax")),
    ),
    Mutant(
        "ignores-exclusions",
        "excluded SKUs and categories discounted anyway",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("ignore-exclusions")),
    ),
    Mutant(
        "reverse-priority",
        "stacks in descending priority (higher number first)",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("reverse-priority")),
    ),
    Mutant(
        "windows-in-utc",
        "validity wall times read as UTC, not the store's zone",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("window-in-utc")),
    ),
    Mutant(
        "spreads-per-unit",
        "absolute amounts spread per unit (commercetools) under reference semantics",
        "pos",
        CHECK,
        MISMATCH,
        _dialect(compose("per-unit-distribution")),
    ),
    Mutant(
        "drops-at-offset",
        "reads the 'at' instant's wall time as store-local, dropping its offset",
        "pos",
        CHECK,
        MISMATCH,
        lambda: Intercept(pos()[0], scope_hook=_local_at),
    ),
    Mutant(
        "misattributes-discounts",
        "reports every line discount under the first promotion",
        "pos",
        CHECK,
        ".discounts:",
        lambda: Intercept(pos()[0], rewrite=_first_promo_gets_all),
    ),
    Mutant(
        "shipping-before-discount",
        "receipt shows the list shipping, no shipping discount",
        "pos",
        CHECK,
        "shipping",
        lambda: Intercept(pos()[0], rewrite=_shipping_before_discount),
    ),
]
