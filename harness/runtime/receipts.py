"""What a shopper pays at an endpoint at an instant: receipts computed once, looked up a
million times.

A sale is priced at its endpoint with the promotion versions applied there, the
endpoint's dialect and the validity windows open at that instant. A flash sale repeats
the same baskets over and over, so ``PricePoint`` computes a receipt once per (basket,
channel, dialect, set of live promotions that could touch the basket) and numbers the
(channel, dialect, live promotions) an endpoint can be in: a basket's receipt is then
found in that number's row (a dict by basket id) while the endpoint stays the same.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from harness.domain.basket import Basket
from harness.domain.dialects import REFERENCE, Dialect
from harness.domain.pricing import StoreContext, quote_basket
from harness.domain.promotion import Promotion
from simulators.endpoint import EndpointModel

__all__ = ["PricePoint", "Receipt"]

# (total paid, ((promo, version, discount), ...)): a sale's row and its discount rows.
Receipt = tuple[float, tuple[tuple[str, int, float], ...]]


@dataclass(frozen=True, slots=True)
class _Live:
    """A promotion payload with its validity window in scenario seconds, per context."""

    promo: Promotion
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class _Context:
    applied: frozenset
    lives: tuple[_Live, ...]
    dialect: Dialect
    channel: str
    store: StoreContext | None
    # Every window edge of ``lives``, sorted: between two edges the live set is the same.
    # ``live_sets[bisect_right(bounds, t)]`` numbers (channel, dialect, promotions live at
    # t), the same number at every endpoint where they are the same, so (basket, number)
    # names a receipt.
    bounds: tuple[float, ...]
    live_sets: tuple[int, ...]


class PricePoint:
    """Prices baskets at endpoints, once per (basket, channel, dialect, live promotions).

    A basket's receipts are kept in one row per live-set number (``segment``), by basket
    id: the shoppers' pool from 0 up, a quote's one-line baskets below 0. A row holds
    only the baskets sold or quoted there (a row per live set of the whole pool would be
    160 MB for a 100,000-basket pool over the 200 live sets of erp-brownout-metastable).
    """

    def __init__(self, t0: dt.datetime) -> None:
        self.t0 = t0
        self._epoch = t0.timestamp()
        self._windows: dict[tuple[str, int, str, bool], tuple[float, float]] = {}
        self._contexts: dict[str, _Context] = {}
        self._relevance: dict[tuple[int, str, int], bool] = {}
        self._receipts: dict[tuple, Receipt] = {}
        self._live_sets: dict[tuple, int] = {}
        self._rows: list[dict[int, Receipt]] = []  # by live-set number, then basket id
        self.computed = 0

    def _window(self, p: Promotion, tz: str | None, in_utc: bool) -> tuple[float, float]:
        key = (p.id, p.version, tz or "", in_utc)
        hit = self._windows.get(key)
        if hit is None:
            if in_utc:
                zone: dt.tzinfo = dt.UTC
            elif p.validity.store_local and tz:
                zone = ZoneInfo(tz)
            else:
                zone = ZoneInfo(p.validity.timezone)
            start = p.validity.start.replace(tzinfo=zone).timestamp() - self._epoch
            end = p.validity.end.replace(tzinfo=zone).timestamp() - self._epoch
            hit = self._windows[key] = (start, end)
        return hit

    def context(self, model: EndpointModel) -> _Context:
        """What pricing at ``model`` depends on, rebuilt only when its applied set changes."""
        applied = model.applied_key()
        ctx = self._contexts.get(model.id)
        if ctx is not None and ctx.applied is applied:
            return ctx
        dialect: Dialect = getattr(model, "dialect", REFERENCE)
        tz = getattr(model, "timezone", None) if model.channel == "pos" else None
        store = getattr(model, "store", "") or None
        lives = []
        for p in model.promotions():
            if not p.scope.covers(model.channel, model.region or None, store):
                continue
            start, end = self._window(p, tz, dialect.window_in_utc)
            lives.append(_Live(p, start, end))
        context = (
            StoreContext(model.id, model.region or None, tz)
            if model.channel == "pos" and tz
            else None
        )
        bounds = tuple(sorted({x.start for x in lives} | {x.end for x in lives}))
        live_sets = []
        for at in (-math.inf, *bounds):  # each segment's first instant
            ids = tuple((x.promo.id, x.promo.version) for x in lives if x.start <= at < x.end)
            key = (model.channel, dialect, ids)  # what the receipt cache below keys on
            number = self._live_sets.setdefault(key, len(self._live_sets))
            if number == len(self._rows):
                self._rows.append({})
            live_sets.append(number)
        ctx = _Context(
            applied, tuple(lives), dialect, model.channel, context, bounds, tuple(live_sets)
        )
        self._contexts[model.id] = ctx
        return ctx

    def segment(self, model: EndpointModel, t: float) -> tuple[dict[int, Receipt], float]:
        """(the receipts computed so far for ``model`` at ``t``, by basket id; the instant
        that row stops holding there): until then, and while ``model``'s applied set stays
        the same, a basket sold there has that row's receipt (``price`` adds the missing)."""
        ctx = self.context(model)
        at = bisect.bisect_right(ctx.bounds, t)
        until = ctx.bounds[at] if at < len(ctx.bounds) else math.inf
        return self._rows[ctx.live_sets[at]], until

    def price(self, model: EndpointModel, basket_id: int, basket: Basket, t: float) -> Receipt:
        """(total paid, ((promo, version, discount), ...)) for ``basket`` at ``model``."""
        ctx = self._contexts.get(model.id)
        if ctx is None or ctx.applied is not model.applied_key():
            ctx = self.context(model)
        number = ctx.live_sets[bisect.bisect_right(ctx.bounds, t)]
        row = self._rows[number]
        hit = row.get(basket_id)
        if hit is None:
            hit = row[basket_id] = self._receipt(ctx, basket_id, basket, t)
        return hit

    def _relevant(self, basket_id: int, basket: Basket, live: _Live) -> bool:
        """Could ``live`` touch this basket at all? (Its conditions name none of its lines.)

        A promotion that cannot apply gives the same receipt as its absence, so leaving it
        out of the cache key prices a basket once for every irrelevant combination.
        """
        key = (basket_id, live.promo.id, live.promo.version)
        hit = self._relevance.get(key)
        if hit is None:
            cond = live.promo.conditions
            hit = not (cond.skus or cond.categories) or any(
                line.sku in cond.skus or line.category in cond.categories for line in basket.lines
            )
            self._relevance[key] = hit
        return hit

    def _receipt(self, ctx: _Context, basket_id: int, basket: Basket, t: float) -> Receipt:
        """The receipt for the promotions live at ``t``, once per distinct live set."""
        live = [
            x.promo
            for x in ctx.lives
            if x.start <= t < x.end and self._relevant(basket_id, basket, x)
        ]
        key = (basket_id, ctx.channel, ctx.dialect, tuple((p.id, p.version) for p in live))
        hit = self._receipts.get(key)
        if hit is None:
            self.computed += 1
            at = self.t0 + dt.timedelta(seconds=t)
            quote = quote_basket(
                basket, live, channel=ctx.channel, at=at, store=ctx.store, dialect=ctx.dialect
            )
            # given() is keyed in receipt order, as walking the Receipt's lines was.
            hit = (
                float(quote.total),
                tuple((p, v, float(a)) for (p, v), a in quote.given().items() if a),
            )
            self._receipts[key] = hit
        return hit
