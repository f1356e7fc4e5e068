"""Spreading an amount over lines in whole cents (rule 5): largest remainder, water filling."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from itertools import repeat
from operator import gt, mul, truediv

from tests.domain.pricing_oracle.common import _HUNDRED, _ONE, _ZERO, _ZERO_CENTS, CENT, _consume


def spread(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``amount`` (whole cents, >= 0) in proportion to ``weights``, parts in cents.

    Largest remainder method: each share is floored to the cent and the leftover cents go
    one at a time to the largest fractional remainders, ties to the earlier weight. The
    parts add up exactly to ``amount``. Equal weights give an even split.
    """
    if amount < 0 or amount != amount.quantize(CENT, rounding=ROUND_DOWN):
        raise ValueError(f"amount must be non-negative whole cents, got {amount}")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    if not weights or sum(weights, _ZERO) == 0:
        if amount == 0:
            return [_ZERO_CENTS] * len(weights)
        raise ValueError("cannot spread a non-zero amount over zero weights")
    return _largest_remainder(amount, weights)


def _largest_remainder(
    amount: Decimal, weights: Sequence[Decimal], total: Decimal | None = None
) -> list[Decimal]:
    """:func:`spread` without the checks; ``total`` is the weights' (positive) sum if known."""
    # Decimal divmod is exact (integer quotient, exact remainder) at this precision, so the
    # floors and remainders are exact whatever the weights' digits.
    if len(weights) == 1:
        return [amount]
    cents = amount * _HUNDRED
    if total is None:
        total = sum(weights, _ZERO)
    parts: list[Decimal] = []  # whole cents, floored
    remainders: list[Decimal] = []
    left = cents
    for w in weights:
        q, r = divmod(cents * w, total)
        parts.append(q)
        remainders.append(r)
        left -= q
    if left:  # < len(parts): each floor loses less than a cent
        # sorted() is stable, even reversed: equal remainders keep the earlier line first.
        for k in sorted(range(len(parts)), key=remainders.__getitem__, reverse=True)[: int(left)]:
            parts[k] += _ONE
    return [q * CENT for q in parts]


def _fill(
    amount: Decimal, weights: list[Decimal], caps: list[Decimal], exact: bool
) -> list[Decimal]:
    """Spread ``amount`` by ``weights`` with no part above its cap (water filling).

    The amount is first capped at the caps of the lines that can take a part. ``exact``
    keeps full-precision shares (round-once-at-end) instead of whole cents.
    """
    n = len(weights)
    parts = [_ZERO] * n
    if all(caps) and all(weights):  # caps and weights are never negative
        active = list(range(n))
    else:
        active = [k for k in range(n) if caps[k] and weights[k]]
    room = sum(map(caps.__getitem__, active), _ZERO)
    remaining = amount if amount < room else room
    while active and remaining > 0:
        ws = list(map(weights.__getitem__, active))
        cs = list(map(caps.__getitem__, active))
        if exact:
            shares = list(map(truediv, map(mul, repeat(remaining), ws), repeat(sum(ws, _ZERO))))
        else:
            shares = _largest_remainder(remaining, ws)
        if not any(map(gt, shares, cs)):
            _consume(map(parts.__setitem__, active, shares))
            break
        # Those lines give their whole cap; the others share what is left, from scratch.
        keep: list[int] = []
        for k, share, cap in zip(active, shares, cs, strict=True):
            if share > cap:
                parts[k] = cap
                remaining -= cap
            else:
                keep.append(k)
        active = keep
    return parts
