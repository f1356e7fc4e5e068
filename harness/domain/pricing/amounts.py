"""The state a pricing run mutates, and the line arithmetic the benefit steps share.

:class:`_State` holds the amounts as the promotions leave them and the log of discounts;
the helpers convert money between bases (rule 7) and take a percent off, or spread an
amount over, a promotion's lines (rules 4-6).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_DOWN, Decimal
from itertools import compress, repeat
from operator import mul, sub, truediv
from typing import TYPE_CHECKING

from harness.domain.pricing.common import _HUNDRED, _ONE, _ZERO, CENT, _consume
from harness.domain.pricing.spread import _fill

if TYPE_CHECKING:
    from harness.domain.pricing.compiled import _Promo
    from harness.domain.pricing.context import _Ctx


# ((promotion id, version), line index or -1 for shipping, discount): the form a Quote
# hands out, so the log needs no conversion at the end (_Promo.ref is that key).
_Entry = tuple[tuple[str, int], int, Decimal]


class _State:
    """Amounts as the promotions leave them, and the log of every discount given."""

    __slots__ = ("amounts", "log", "points", "ran", "ship")

    def __init__(
        self,
        amounts: list[Decimal],
        ship: Decimal,
        log: list[_Entry],
        points: list[_Promo],
        ran: list[_Promo],
    ) -> None:
        self.amounts = amounts
        self.ship = ship
        self.log = log
        self.points = points
        self.ran = ran

    def copy(self) -> _State:
        return _State(self.amounts[:], self.ship, self.log[:], self.points[:], self.ran[:])

    def discount(self, cp: _Promo, i: int, d: Decimal) -> None:
        """Take ``d`` off line ``i`` for ``cp``, at most what the line has left, and log it.

        Capped because a rounded-up share (times its quantity) can overshoot the line.
        """
        cur = self.amounts[i]
        if d > cur:
            d = cur
        if d > 0:
            self.amounts[i] = cur - d
            self.log.append((cp.ref, i, d))


# A step applies one promotion to the state. ``rnd`` is the step's rounding mode (a decimal
# ROUND_* constant), or None when the dialect rounds once at the end. Money conversions
# (rule 7): ``conv`` 0 = same basis, 1 = promotion gross / basket net, 2 = promotion net /
# basket gross.
# Divisions come last in every formula (cur x factor / qty, not cur / qty x factor): a
# quotient rounded to 34 digits would otherwise miss an exact half cent by 1e-34 and round
# the other way.


def _to_basket(value: Decimal, factor: Decimal, conv: int) -> Decimal:
    if conv == 1:
        return value / factor
    if conv == 2:
        return value * factor
    return value


def _to_promo(value: Decimal, factor: Decimal, conv: int) -> Decimal:
    if conv == 1:
        return value * factor
    if conv == 2:
        return value / factor
    return value


def _percent_lines(
    cp: _Promo, st: _State, ctx: _Ctx, idxs: Sequence[int], factor: Decimal, rnd: str | None
) -> None:
    amounts = st.amounts
    if cp.unit or ctx.unit_all:
        _percent_units(cp, st, ctx, idxs, factor, rnd)
        return
    # Line level: d = round(current x factor) never exceeds a whole-cent current (factor <= 1).
    log = st.log
    if rnd is None:
        for i in idxs:
            cur = amounts[i]
            d = cur * factor
            if d:
                amounts[i] = cur - d
                log.append((cp.ref, i, d))
        return
    for i in idxs:
        cur = amounts[i]
        d = (cur * factor).quantize(CENT, rnd)
        if d:
            amounts[i] = cur - d
            log.append((cp.ref, i, d))


def _percent_units(
    cp: _Promo, st: _State, ctx: _Ctx, idxs: Sequence[int], factor: Decimal, rnd: str | None
) -> None:
    amounts = st.amounts
    qty = ctx.qty
    for i in idxs:
        cur = amounts[i]
        if cur <= 0:
            continue
        q = qty[i]
        d = cur * factor / q
        if rnd is not None:
            d = d.quantize(CENT, rnd)
        st.discount(cp, i, d * q)


def _spread_lines(
    cp: _Promo,
    st: _State,
    ctx: _Ctx,
    idxs: Sequence[int],
    amount: Decimal,
    weights: list[Decimal] | None,
    rnd: str | None,
    bounded: bool = False,
) -> None:
    """Spread a promotion-basis amount over lines; ``weights`` None = proportional.

    ``bounded``: the caller guarantees each weight is at most its line's current amount.
    """
    if ctx.per_unit and not bounded:
        _spread_units(cp, st, ctx, idxs, amount, weights, rnd)
        return
    amounts = st.amounts
    log = st.log
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    if conv == 0:
        values = list(map(amounts.__getitem__, idxs))
        if rnd is not None and (weights is None or bounded):
            # Same basis, whole cents, each weight <= its line: a share never exceeds its
            # weight, and a leftover cent only goes to a share with a fraction, which is
            # then below a whole-cent line. No water filling is needed.
            ws = values if weights is None else weights
            total = sum(ws, _ZERO)
            if total <= 0:
                return
            if amount > total:
                amount = total.quantize(CENT, ROUND_DOWN)
            if len(ws) == 1:
                if amount:
                    amounts[idxs[0]] = values[0] - amount
                    log.append((cp.ref, idxs[0], amount))
                return
            # _largest_remainder, inlined to write the parts straight to the lines.
            cents = amount * _HUNDRED
            floors: list[Decimal] = []
            remainders: list[Decimal] = []
            left = cents
            for w in ws:
                q, r = divmod(cents * w, total)
                floors.append(q)
                remainders.append(r)
                left -= q
            if left:
                order = sorted(range(len(ws)), key=remainders.__getitem__, reverse=True)
                for k in order[: int(left)]:
                    floors[k] += _ONE
            for i, cur, q in zip(idxs, values, floors, strict=True):
                if q:
                    d = q * CENT
                    amounts[i] = cur - d
                    log.append((cp.ref, i, d))
            return
        caps = values
    else:
        current = list(map(amounts.__getitem__, idxs))
        factors = list(map(ctx.factors.__getitem__, idxs))
        # To the promotion's basis: x (1 + r) when it is gross (basket net), / when net.
        values = list(map(mul if conv == 1 else truediv, current, factors))
        # Whole-cent parts must fit under the converted amount: floor the caps to the cent.
        caps = values if rnd is None else [v.quantize(CENT, ROUND_DOWN) for v in values]
        parts = _fill(amount, values if weights is None else weights, caps, rnd is None)
        converted: Iterable[Decimal] = map(truediv if conv == 1 else mul, parts, factors)
        if rnd is not None:
            converted = [d.quantize(CENT, rnd) for d in converted]
        ds = list(map(min, converted, current))  # a rounded-up part may not pass the line
        _consume(map(amounts.__setitem__, idxs, map(sub, current, ds)))
        log.extend(compress(zip(repeat(cp.ref), idxs, ds), ds))
        return
    parts = _fill(amount, values if weights is None else weights, caps, rnd is None)
    _consume(map(amounts.__setitem__, idxs, map(sub, values, parts)))
    log.extend(compress(zip(repeat(cp.ref), idxs, parts), parts))


def _spread_units(
    cp: _Promo,
    st: _State,
    ctx: _Ctx,
    idxs: Sequence[int],
    amount: Decimal,
    weights: list[Decimal] | None,
    rnd: str | None,
) -> None:
    """:func:`_spread_lines` per unit (dialect per-unit-distribution): every unit of a line
    is a part with the line's weight / quantity and cap / quantity (floored to the cent
    when rounding), and a line gets the sum of its units' parts."""
    amounts = st.amounts
    qty = ctx.qty
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    current = list(map(amounts.__getitem__, idxs))
    if conv:
        factors = list(map(ctx.factors.__getitem__, idxs))
        values = list(map(mul if conv == 1 else truediv, current, factors))
    else:
        values = current
    unit_weights: list[Decimal] = []
    unit_caps: list[Decimal] = []
    owners: list[int] = []
    for k, i in enumerate(idxs):
        q = qty[i]
        cap = values[k] / q
        if rnd is not None:
            cap = cap.quantize(CENT, ROUND_DOWN)
        unit_weights.extend(repeat((values[k] if weights is None else weights[k]) / q, q))
        unit_caps.extend(repeat(cap, q))
        owners.extend(repeat(k, q))
    parts = [_ZERO] * len(idxs)
    for k, part in zip(owners, _fill(amount, unit_weights, unit_caps, rnd is None), strict=True):
        parts[k] += part
    if conv:
        ds = list(map(truediv if conv == 1 else mul, parts, factors))
        if rnd is not None:
            ds = [d.quantize(CENT, rnd) for d in ds]
        ds = list(map(min, ds, current))
    else:
        ds = parts
    _consume(map(amounts.__setitem__, idxs, map(sub, current, ds)))
    st.log.extend(compress(zip(repeat(cp.ref), idxs, ds), ds))
