"""The benefit steps (rule 6): one function per benefit, each applying a promotion.

A compiled promotion holds its step (``_Promo.step``); :func:`_apply_all` runs a list of
promotions in order with the rounding the dialect asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from harness.domain.pricing.amounts import (
    _percent_lines,
    _spread_lines,
    _State,
    _to_basket,
    _to_promo,
)
from harness.domain.pricing.common import _HUNDRED, _ONE, _ZERO, CENT

if TYPE_CHECKING:
    from harness.domain.pricing.compiled import _Promo
    from harness.domain.pricing.context import _Ctx


def _step_percent(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.factor is not None
    _percent_lines(cp, st, ctx, ctx.elig[cp], cp.factor, rnd)


def _step_spread(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    amount = cp.amount
    assert amount is not None
    idxs = ctx.elig[cp]
    if not cp.even:
        _spread_lines(cp, st, ctx, idxs, amount, None, rnd)
        return
    if rnd is not None and not (ctx.conv_gross if cp.gross_mode else ctx.conv_net):
        # Even, same basis, whole cents: equal remainders, so the leftover cents go to the
        # first lines; when every share fits its line that is the whole computation.
        amounts = st.amounts
        values = [amounts[i] for i in idxs]
        q, r = divmod(amount * _HUNDRED, len(idxs))
        low = q * CENT
        high = low + CENT
        if (high if r else low) <= min(values):
            log = st.log
            ones = int(r)  # the first lines get a cent more
            for k, (i, cur) in enumerate(zip(idxs, values, strict=True)):
                d = high if k < ones else low
                if d:
                    amounts[i] = cur - d
                    log.append((cp.ref, i, d))
            return
    _spread_lines(cp, st, ctx, idxs, amount, [_ONE] * len(idxs), rnd)


def _step_per_line(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    amount = cp.amount
    assert amount is not None
    amounts = st.amounts
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    factors = ctx.factors
    for i in ctx.elig[cp]:
        cur = amounts[i]
        if cur <= 0:
            continue
        d = amount
        if conv:
            d = _to_basket(amount, factors[i], conv)
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        st.discount(cp, i, d)


def _step_fixed(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    price = cp.price
    assert price is not None
    amounts = st.amounts
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    factors = ctx.factors
    qty = ctx.qty
    unit = cp.unit or ctx.unit_all
    for i in ctx.elig[cp]:
        cur = amounts[i]
        q = qty[i]
        # What the line's units cost at the fixed price, in the basket's basis.
        at_price = _to_basket(price * q, factors[i], conv) if conv else price * q
        if unit:
            d = (cur - at_price) / q
            if d <= 0:
                continue
            if rnd is not None:
                d = d.quantize(CENT, rnd)
            d *= q
        else:
            d = cur - at_price
            if d <= 0:
                continue
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        st.discount(cp, i, d)


def _occurrences(units: int, size: int, cap: int | None) -> int:
    occ = units // size
    return occ if cap is None or occ < cap else cap


def _take(
    idxs: Sequence[int], prices: Sequence[Decimal], qty: Sequence[int], need: int, cheapest: bool
) -> list[tuple[int, int, Decimal]]:
    """Take ``need`` units, cheapest (or dearest) first, ties to the earlier line.

    Returns (line index, units taken, unit price), in basket line order."""
    if cheapest:
        order = sorted(range(len(idxs)), key=prices.__getitem__)  # stable
    else:
        order = sorted(range(len(idxs)), key=prices.__getitem__, reverse=True)  # stable too
    taken: list[tuple[int, int, Decimal]] = []
    for k in order:
        i = idxs[k]
        n = qty[i] if qty[i] < need else need
        taken.append((i, n, prices[k]))
        need -= n
        if not need:
            break
    taken.sort()
    return taken


def _step_bxgy(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    qty = ctx.qty
    amounts = st.amounts
    units = sum([qty[i] for i in idxs])
    free = _occurrences(units, cp.buy + cp.get, cp.max_occ) * cp.get
    if not free:
        return
    prices = [amounts[i] / qty[i] for i in idxs]
    factor = cp.factor
    assert factor is not None
    unit = cp.unit or ctx.unit_all
    for i, n, _ in _take(idxs, prices, qty, free, cp.cheapest):
        cur = amounts[i]
        if unit:
            d = cur * factor / qty[i]
            if rnd is not None:
                d = d.quantize(CENT, rnd)
            d *= n
        else:
            d = cur * n * factor / qty[i]
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        st.discount(cp, i, d)


def _step_bundle(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    qty = ctx.qty
    amounts = st.amounts
    units = sum([qty[i] for i in idxs])
    occ = _occurrences(units, cp.quantity, cp.max_occ)
    if not occ:
        return
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    if conv:
        factors = ctx.factors
        prices = [_to_promo(amounts[i] / qty[i], factors[i], conv) for i in idxs]
    else:
        prices = [amounts[i] / qty[i] for i in idxs]
    taken = _take(idxs, prices, qty, occ * cp.quantity, cheapest=False)
    # Each line's taken value, cur x n / q, in the promotion's basis.
    values = [amounts[i] if n == qty[i] else amounts[i] * n / qty[i] for i, n, _ in taken]
    if conv:
        values = [
            _to_promo(v, ctx.factors[i], conv) for v, (i, _, _) in zip(values, taken, strict=True)
        ]
    price = cp.price
    assert price is not None
    discount = sum(values, _ZERO) - price * occ
    if discount <= 0:
        return
    if rnd is not None:
        discount = discount.quantize(CENT, rnd)
    # The taken value of a line never exceeds the line: bounded weights.
    _spread_lines(cp, st, ctx, [i for i, _, _ in taken], discount, values, rnd, bounded=True)


def _step_tiered(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    if cp.by_quantity:
        qty = ctx.qty
        measure = sum([qty[i] for i in idxs])  # an int compares with Decimal thresholds
    else:
        conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
        amounts = st.amounts
        if conv:
            factors = ctx.factors
            measure = sum([_to_promo(amounts[i], factors[i], conv) for i in idxs], _ZERO)
        else:
            measure = sum(map(amounts.__getitem__, idxs), _ZERO)
    for tier in cp.tiers:  # highest threshold first
        if tier.threshold <= measure:
            if tier.factor is not None:
                _percent_lines(cp, st, ctx, idxs, tier.factor, rnd)
            else:
                assert tier.amount is not None
                _spread_lines(cp, st, ctx, idxs, tier.amount, None, rnd)
            return


def _ship_discount(cp: _Promo, st: _State, d: Decimal, rnd: str | None) -> None:
    if rnd is not None:
        d = d.quantize(CENT, rnd)
    ship = st.ship
    if d > ship:
        d = ship
    if d > 0:
        st.ship = ship - d
        st.log.append((cp.ref, -1, d))


def _ship_percent(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.factor is not None
    _ship_discount(cp, st, st.ship * cp.factor, rnd)


def _ship_amount(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.amount is not None
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    _ship_discount(cp, st, _to_basket(cp.amount, ctx.ship_factor, conv), rnd)


def _step_points(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    st.points.append(cp)


def _apply_all(promos: list[_Promo], st: _State, ctx: _Ctx) -> None:
    st.ran.extend(promos)
    if ctx.round_once:
        for cp in promos:
            cp.step(cp, st, ctx, None)
    elif ctx.rnd_override is not None:
        for cp in promos:
            cp.step(cp, st, ctx, ctx.rnd_override)
    else:
        for cp in promos:
            cp.step(cp, st, ctx, cp.rnd)
