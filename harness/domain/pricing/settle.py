"""Settlement (rules 4, 8-10): round-once-at-end, taxes, totals, points, applied labels."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from itertools import compress, repeat
from operator import attrgetter
from typing import TYPE_CHECKING

from harness.domain.pricing.common import _ONE, _ZERO, _ZERO_CENTS, CENT, _first
from harness.domain.pricing.quote import Quote, QuoteLine

if TYPE_CHECKING:
    from harness.domain.pricing.amounts import _State
    from harness.domain.pricing.context import _Ctx


class _Settled:
    """A priced outcome: final amounts, taxes, total, points, and where the discounts are."""

    __slots__ = (
        "amounts",
        "applied",
        "line_total",
        "log",
        "points",
        "ship",
        "ship_tax",
        "tax_total",
        "taxes",
        "total",
    )
    # Declared for type checkers (and mypyc, which compiles the core only when they pass).
    amounts: list[Decimal]
    applied: tuple[str, ...]
    line_total: Decimal
    log: list[tuple[tuple[str, int], int, Decimal]]
    points: Decimal
    ship: Decimal
    ship_tax: Decimal
    tax_total: Decimal
    taxes: list[Decimal]
    total: Decimal


_Ref = tuple[str, int]  # a promotion's (id, version), as the discount log names it


def _round_running(
    entries: list[tuple[_Ref, Decimal]], rnd: str | None, rnd_of: dict[_Ref, str]
) -> list[tuple[_Ref, Decimal]]:
    """round-once-at-end: round the running total once, discounts = its differences."""
    if rnd is None:
        rnd = rnd_of[entries[0][0]]
    out: list[tuple[_Ref, Decimal]] = []
    running = _ZERO
    before = _ZERO_CENTS
    for ref, d in entries:
        running += d
        after = running.quantize(CENT, rnd)
        if after != before:
            out.append((ref, after - before))
        before = after
    return out


def _settle(st: _State, ctx: _Ctx) -> _Settled:
    out = _Settled()
    list_amounts = ctx.list_amounts
    if ctx.round_once:
        per_line: list[list[tuple[_Ref, Decimal]]] = [[] for _ in range(ctx.n)]
        ship_entries: list[tuple[_Ref, Decimal]] = []
        for ref, i, d in st.log:
            (per_line[i] if i >= 0 else ship_entries).append((ref, d))
        rnd = ctx.rnd_override
        rnd_of = {cp.ref: cp.rnd for cp in st.ran}
        per_line = [_round_running(e, rnd, rnd_of) if e else e for e in per_line]
        amounts = [
            a - sum([d for _, d in e], _ZERO) for a, e in zip(list_amounts, per_line, strict=True)
        ]
        if ship_entries:
            ship_entries = _round_running(ship_entries, rnd, rnd_of)
        ship = ctx.ship - sum([d for _, d in ship_entries], _ZERO)
        # The rounded discounts, as log entries again (line -1: shipping).
        log = [(ref, i, d) for i, e in enumerate(per_line) for ref, d in e]
        log.extend((ref, -1, d) for ref, d in ship_entries)
    else:
        amounts = st.amounts
        ship = st.ship
        log = st.log
    after_tax = ctx.dialect.discount_after_tax
    bases = list_amounts if after_tax else amounts
    gross = ctx.gross
    # Gross: amount - amount / (1 + r); net: amount x r (both 0.00 when r = 0).
    if gross:
        taxes = [
            (b - b / f).quantize(CENT, ROUND_HALF_EVEN)
            for b, f in zip(bases, ctx.factors, strict=True)
        ]
    else:
        taxes = [
            (b * r).quantize(CENT, ROUND_HALF_EVEN) for b, r in zip(bases, ctx.rates, strict=True)
        ]
    ship_tax = _ZERO_CENTS
    if ctx.ship_rate:
        base = ctx.ship if after_tax else ship
        tax = base - base / ctx.ship_factor if gross else base * ctx.ship_rate
        ship_tax = tax.quantize(CENT, ROUND_HALF_EVEN)
    line_total = sum(amounts, _ZERO)
    tax_total = sum(taxes, _ZERO) + ship_tax
    total = line_total + ship
    if not gross:
        total += tax_total
    gave = set(map(_first, log))
    points = _ZERO
    if ctx.member:
        points = Decimal(int(total))
        if st.points:
            # Multipliers never stack: the highest one, ties to the lowest key.
            best = min(st.points, key=lambda cp: (-cp.multiplier, cp.key))
            base_units = int(sum([amounts[i] for i in ctx.elig[best]], _ZERO))
            bonus = (best.multiplier - _ONE) * base_units
            if bonus > 0:
                points += bonus
                gave.add(best.ref)
    out.amounts = amounts
    out.log = log
    out.ship = ship
    out.ship_tax = ship_tax
    out.taxes = taxes
    out.total = total
    out.points = points
    out.line_total = line_total
    out.tax_total = tax_total
    ran = st.ran
    out.applied = tuple(compress(map(_label, ran), map(gave.__contains__, map(_ref, ran))))
    return out


_label = attrgetter("label")
_ref = attrgetter("ref")


_tuple_new = tuple.__new__  # a NamedTuple without its Python-level __new__


def _quote(s: _Settled, ctx: _Ctx) -> Quote:
    subtotal = ctx.list_value(ctx.gross)  # the list amounts' sum, once per call
    lines = tuple(
        map(
            _tuple_new,
            repeat(QuoteLine),
            zip(ctx.skus, ctx.qty, ctx.prices, ctx.list_amounts, s.amounts, s.taxes, strict=True),
        )
    )
    return _tuple_new(
        Quote,
        (
            ctx.channel,
            ctx.store_id,
            ctx.tax_mode,
            lines,
            tuple(s.log),  # already in the Quote's form: ((id, version), line, amount)
            s.ship,
            s.ship_tax,
            subtotal,
            # Every discount is a whole step off a line or the shipping, so this is their sum.
            subtotal - s.line_total + ctx.ship - s.ship,
            s.tax_total,
            s.total,
            s.points,
            s.applied,
            ctx.dialect.names,
        ),
    )
