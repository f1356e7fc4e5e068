"""Shopper traffic in virtual time: flash-sale demand, baskets, sales and shelf-price samples.

Arrivals are one non-homogeneous Poisson process for the whole estate (thinning against
the curve's peak rate), each arrival assigned to a store, the web shop or the marketplace
by its share of the rate; every draw comes from a ``random.Random`` seeded from the
scenario seed. A sale is priced at its endpoint *at that instant*, with the promotion
versions applied there and the endpoint's dialect — the ground truth of what shoppers
paid, from which leakage after a rollback and funding consumption follow. Shelf prices are
sampled across the channels every ``quote_interval`` for price consistency.

A flash sale repeats the same baskets a million times, so a receipt is computed once per
(basket, channel, dialect, set of promotions live there) and reused; records are kept in
columns, not as a million tuples.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from harness.domain.basket import Basket
from harness.domain.dialects import REFERENCE, Dialect
from harness.domain.pricing import StoreContext, quote_basket
from harness.domain.promotion import Promotion
from harness.scenario import CurveSpec, TrafficSpec

if TYPE_CHECKING:
    from harness.runtime.replay import Trace
from simulators.endpoint import EndpointModel
from simulators.erp import Product

SALE_CHANNELS = ("pos", "ecommerce", "marketplace")
MARKETPLACE_SHARE = 0.25  # of the online rate, for the marketplace listing


def curve_multiple(curve: CurveSpec, t: float) -> float:
    """Demand multiple at ``t``: 1 before the sale, linear ramp, hold, exponential decay."""
    if t < curve.start:
        return 1.0
    peak = curve.peak_multiple
    x = t - curve.start
    if x < curve.ramp:
        return 1.0 + (peak - 1.0) * x / curve.ramp
    x -= curve.ramp
    if x < curve.hold:
        return peak
    return 1.0 + (peak - 1.0) * math.exp(-(x - curve.hold) / curve.decay)


def arrival_times(
    rate: float,
    curve: CurveSpec,
    duration: float,
    rng: random.Random,
) -> Iterator[float]:
    """NHPP arrivals of base ``rate``/s shaped by ``curve`` over [0, duration) (thinning)."""
    if rate <= 0:
        return
    peak_rate = rate * curve.peak_multiple
    t = 0.0
    expo, uniform = rng.expovariate, rng.random
    while True:
        t += expo(peak_rate)
        if t >= duration:
            return
        if uniform() * curve.peak_multiple <= curve_multiple(curve, t):
            yield t


def make_baskets(
    catalog: Sequence[Product],
    traffic: TrafficSpec,
    rng: random.Random,
) -> list[Basket]:
    """The pool of baskets shoppers bring (net prices: a US estate adds tax at the till)."""
    low, high = traffic.basket_lines
    private = [p for p in catalog if p.private_label]
    pool: list[Basket] = []
    for _ in range(traffic.basket_pool):
        n = rng.randint(low, min(high, len(catalog)))
        # Flash-sale baskets lean on the promoted range.
        chosen: dict[str, Product] = {}
        while len(chosen) < n:
            source = private if private and rng.random() < 0.4 else catalog
            product = source[rng.randrange(len(source))]
            chosen[product.sku] = product
        lines = [p.to_line(rng.choice((1, 1, 1, 2, 2, 3))) for p in chosen.values()]
        pool.append(Basket(lines=lines, tax_mode="net", loyalty_member=rng.random() < 0.45))
    return pool


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
    # names a receipt: one bisect and one look-up per sale.
    bounds: tuple[float, ...]
    live_sets: tuple[int, ...]


class PricePoint:
    """Prices baskets at endpoints, once per (basket, channel, dialect, live promotions)."""

    def __init__(self, t0: dt.datetime) -> None:
        self.t0 = t0
        self._epoch = t0.timestamp()
        self._windows: dict[tuple[str, int, str, bool], tuple[float, float]] = {}
        self._contexts: dict[str, _Context] = {}
        self._relevance: dict[tuple[int, str, int], bool] = {}
        self._receipts: dict[tuple, tuple[float, tuple[tuple[str, int, float], ...]]] = {}
        self._live_sets: dict[tuple, int] = {}
        self._memo: dict[tuple[int, int], tuple[float, tuple[tuple[str, int, float], ...]]] = {}
        self.computed = 0
        self.lookups = 0

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

    def _context(self, model: EndpointModel) -> _Context:
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
            live_sets.append(number)
        ctx = _Context(
            applied, tuple(lives), dialect, model.channel, context, bounds, tuple(live_sets)
        )
        self._contexts[model.id] = ctx
        return ctx

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

    def price(
        self,
        model: EndpointModel,
        basket_id: int,
        basket: Basket,
        t: float,
    ) -> tuple[float, tuple[tuple[str, int, float], ...]]:
        """(total paid, ((promo, version, discount), ...)) for ``basket`` at ``model``."""
        ctx = self._contexts.get(model.id)
        if ctx is None or ctx.applied is not model.applied_key():
            ctx = self._context(model)
        self.lookups += 1
        key = (basket_id, ctx.live_sets[bisect.bisect_right(ctx.bounds, t)])
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._receipt(ctx, basket_id, basket, t)
        return hit

    def _receipt(
        self, ctx: _Context, basket_id: int, basket: Basket, t: float
    ) -> tuple[float, tuple[tuple[str, int, float], ...]]:
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


class Columns:
    """The shopper side of the event log, column by column (millions of rows)."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.kind: list[str] = []
        self.promo: list[str] = []
        self.version: list[int] = []
        self.endpoint: list[str] = []
        self.channel: list[str] = []
        self.region: list[str] = []
        self.value: list[float] = []
        self.detail: list[str] = []

    def add(
        self,
        t: float,
        kind: str,
        promo: str,
        version: int,
        model: EndpointModel,
        value: float,
        detail: str,
    ) -> None:
        self.t.append(t)
        self.kind.append(kind)
        self.promo.append(promo)
        self.version.append(version)
        self.endpoint.append(model.id)
        self.channel.append(model.channel)
        self.region.append(model.region)
        self.value.append(value)
        self.detail.append(detail)

    def __len__(self) -> int:
        return len(self.t)


class Weighted:
    """Pick an endpoint in proportion to its sales rate (cumulative weights + bisect)."""

    def __init__(self, models: Sequence[EndpointModel], weights: Sequence[float]) -> None:
        self.models = list(models)
        self.cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self, rng: random.Random) -> EndpointModel:
        return self.models[bisect.bisect_right(self.cum, rng.random() * self.total)]


class ShopperTraffic:
    """The scenario's shoppers: arrivals, sales and shelf-price samples, clock-agnostic.

    A driver walks ``arrivals()`` in time order, calling ``sell`` at each instant (after
    its clock reached it), and ``quote`` every ``traffic.quote_interval`` seconds.
    """

    def __init__(
        self,
        traffic: TrafficSpec,
        models: Sequence[EndpointModel],
        catalog: Sequence[Product],
        promotions: Sequence[Promotion],
        t0: dt.datetime,
        duration: float,
        seed: int,
        trace: Trace | None = None,
        trace_path: str = "",
    ) -> None:
        self.traffic = traffic
        self.duration = duration
        self.trace = trace
        self.trace_path = trace_path
        self._catalog = list(catalog)
        self.columns = Columns()
        self.pricer = PricePoint(t0)
        self.rng = random.Random(f"{seed}:shoppers")
        self.baskets = make_baskets(catalog, traffic, random.Random(f"{seed}:baskets"))
        sellers = [m for m in models if m.channel in SALE_CHANNELS]
        rates = []
        for m in sellers:
            if m.channel == "pos":
                rates.append(traffic.rate_per_store / 3600.0)
            elif m.channel == "ecommerce":
                rates.append(traffic.rate_online / 3600.0)
            else:
                rates.append(traffic.rate_online * MARKETPLACE_SHARE / 3600.0)
        self.sellers = Weighted(sellers, rates)
        self.rate = sum(rates)
        in_scope = {c for p in promotions for c in p.scope.channels}
        self._quoters = [m for m in sellers if m.channel in in_scope]
        wanted = {c for p in promotions for c in p.conditions.categories}
        skus = {s for p in promotions for s in p.conditions.skus}
        self._quote_products = [
            p for p in catalog if p.category in wanted or p.sku in skus
        ] or list(catalog)
        self._quote_rng = random.Random(f"{seed}:quotes")
        self._samples = 0
        self._keys: dict[int, str] = {}
        # sell_before's state: the arrival process's clock, the arrival drawn but not yet
        # sold, and (a replayed trace) the arrivals' iterator.
        self._drawn = 0.0
        self._pending: tuple[float, EndpointModel, int] | None = None
        self._source: Iterator[tuple[float, EndpointModel, int]] | None = None

    def arrivals(self) -> Iterator[tuple[float, EndpointModel, int]]:
        if self.trace is not None:
            yield from self._replayed()
            return
        rng = self.rng
        n = len(self.baskets)
        models, cum, total = self.sellers.models, self.sellers.cum, self.sellers.total
        uniform, randrange, find = rng.random, rng.randrange, bisect.bisect_right
        # arrival_times and Weighted.pick inlined (the same draws in the same order): this
        # loop runs once per sale, a million times on a peak day.
        for t in arrival_times(self.rate, self.traffic.curve, self.duration, rng):
            yield t, models[find(cum, uniform() * total)], randrange(n)

    def sell_before(self, limit: float) -> float | None:
        """Sell, in time order, every arrival before ``limit`` — the clock's next event: the
        estate is the same until then, and a sale changes nothing the simulation sees.
        Returns the time of the first arrival at or after ``limit``, held back until the
        clock has reached it (``sell_pending``); None when no arrival is left.

        The same draws in the same order as ``arrivals()`` (``arrival_times`` and
        ``Weighted.pick`` inlined, ``expovariate`` as ``random`` computes it): this loop runs
        once per sale, a million times on a peak day.
        """
        pending = self._pending
        if pending is not None:
            if pending[0] >= limit:
                return pending[0]
            self._pending = None
            self.sell(*pending)
        if self.trace is not None or self.rate <= 0:
            return self._sell_from(limit)
        if self._drawn >= self.duration:
            return None
        rng = self.rng
        uniform, randrange, find, log = rng.random, rng.randrange, bisect.bisect_right, math.log
        curve, duration, n = self.traffic.curve, self.duration, len(self.baskets)
        multiple = curve.peak_multiple
        peak_rate = self.rate * multiple
        models, cum, total = self.sellers.models, self.sellers.cum, self.sellers.total
        price, baskets, keys = self.pricer.price, self.baskets, self._keys
        c = self.columns
        t = self._drawn
        try:
            while True:
                t += -log(1.0 - uniform()) / peak_rate
                if t >= duration:
                    return None
                if uniform() * multiple > curve_multiple(curve, t):
                    continue  # thinned out
                model = models[find(cum, uniform() * total)]
                basket_id = randrange(n)
                if t >= limit:
                    self._pending = (t, model, basket_id)
                    return t
                total_paid, given = price(model, basket_id, baskets[basket_id], t)
                key = keys.get(basket_id)
                if key is None:
                    key = keys[basket_id] = f"b{basket_id}"
                c.t.append(t)
                c.kind.append("sale")
                c.promo.append("")
                c.version.append(0)
                c.endpoint.append(model.id)
                c.channel.append(model.channel)
                c.region.append(model.region)
                c.value.append(total_paid)
                c.detail.append(key)
                for promo, version, amount in given:
                    c.add(t, "discount", promo, version, model, amount, key)
        finally:
            self._drawn = t

    def sell_pending(self) -> None:
        """Sell the arrival ``sell_before`` held back (the clock has reached its time)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.sell(*pending)

    def _sell_from(self, limit: float) -> float | None:
        """``sell_before`` over ``arrivals()`` (a replayed trace)."""
        if self._source is None:
            self._source = self.arrivals()
        for t, model, basket_id in self._source:
            if t >= limit:
                self._pending = (t, model, basket_id)
                return t
            self.sell(t, model, basket_id)
        return None

    def _replayed(self) -> Iterator[tuple[float, EndpointModel, int]]:
        """The trace's sales, in time order, each basket given a pool id."""
        from harness.runtime.replay import basket_of

        assert self.trace is not None
        by_id = {m.id: m for m in self.sellers.models}
        products = {p.sku: p for p in self._catalog}
        ids: dict[str, int] = {}
        for t, endpoint, key in self.trace.sales:
            if t >= self.duration:
                break
            basket_id = ids.get(key)
            if basket_id is None:
                if key.startswith("b") and key[1:].isdigit():
                    basket_id = int(key[1:])
                    basket_of(key, self.baskets, products, self.trace_path)  # range check
                else:
                    self.baskets.append(basket_of(key, self.baskets, products, self.trace_path))
                    basket_id = len(self.baskets) - 1
                ids[key] = basket_id
            model = by_id.get(endpoint)
            if model is not None:
                yield t, model, basket_id

    def sell(self, t: float, model: EndpointModel, basket_id: int) -> None:
        total, given = self.pricer.price(model, basket_id, self.baskets[basket_id], t)
        key = self._keys.get(basket_id)
        if key is None:
            key = self._keys[basket_id] = f"b{basket_id}"
        c = self.columns
        # Columns.add's appends, inlined: a sale is the commonest row of a run.
        c.t.append(t)
        c.kind.append("sale")
        c.promo.append("")
        c.version.append(0)
        c.endpoint.append(model.id)
        c.channel.append(model.channel)
        c.region.append(model.region)
        c.value.append(total)
        c.detail.append(key)
        for promo, version, amount in given:
            c.add(t, "discount", promo, version, model, amount, key)

    def quote(self, t: float) -> None:
        """Sample shelf prices: a few promoted SKUs at a few stores and every online channel."""
        rng = self._quote_rng
        k = min(self.traffic.quote_skus, len(self._quote_products))
        products = rng.sample(self._quote_products, k)
        stores = [m for m in self._quoters if m.channel == "pos"]
        others = [m for m in self._quoters if m.channel != "pos"]
        chosen = rng.sample(stores, min(self.traffic.quote_stores, len(stores))) + others
        for product in products:
            self._samples += 1
            basket = Basket(lines=[product.to_line(1)], tax_mode="net")
            sample = f"{product.sku}@{self._samples}"
            basket_id = -1 - self._quote_products.index(product)  # apart from the pool's ids
            for model in chosen:
                total, _ = self.pricer.price(model, basket_id, basket, t)
                self.columns.add(t, "quote", "", 0, model, total, sample)
