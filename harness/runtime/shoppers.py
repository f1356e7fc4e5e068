"""Shopper traffic in virtual time: flash-sale demand, baskets, sales and shelf-price samples.

Arrivals are one non-homogeneous Poisson process for the whole estate (thinning against
the curve's peak rate), each arrival assigned to a store, the web shop or the marketplace
by its share of the rate; every draw comes from a ``random.Random`` seeded from the
scenario seed. A sale is priced at its endpoint *at that instant*, with the promotion
versions applied there and the endpoint's dialect — the ground truth of what shoppers
paid, from which leakage after a rollback and funding consumption follow. Shelf prices are
sampled across the channels every ``quote_interval`` for price consistency.

A flash sale repeats the same baskets a million times, so a receipt is computed once per
(basket, channel, dialect, set of promotions live there) and reused (``receipts``);
records are kept in columns, not as a million tuples.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from harness.domain.basket import Basket
from harness.domain.promotion import Promotion
from harness.runtime.receipts import PricePoint
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


def _getrandbits_is_randrange() -> bool:
    """Is ``randrange(n)`` ``getrandbits(n.bit_length())`` drawn again while >= n, draw for
    draw? (CPython's ``_randbelow``, which the sale loop inlines: checked, not assumed.)"""
    ours, theirs = random.Random(16), random.Random(16)
    for n in (1, 2, 3, 7, 8, 100, 1000, 2000, 2048, 65_537):
        k = n.bit_length()
        for _ in range(8):
            r = ours.getrandbits(k)
            while r >= n:
                r = ours.getrandbits(k)
            if r != theirs.randrange(n):
                return False
    return ours.getstate() == theirs.getstate()


_INLINE_RANDRANGE = _getrandbits_is_randrange()


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
        self.rng = random.Random(f"{seed}:shoppers")
        self.baskets = make_baskets(catalog, traffic, random.Random(f"{seed}:baskets"))
        self.pricer = PricePoint(t0)
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
        quoters = [m for m in sellers if m.channel in in_scope]
        self._quote_stores = [m for m in quoters if m.channel == "pos"]
        self._quote_others = [m for m in quoters if m.channel != "pos"]
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
        # Per seller (Weighted's order), what its sales need: (model, its applied key when
        # looked at, until when the receipt row holds, the row, id, channel, region) —
        # looked up once per stretch of unchanged promotions, not once per sale.
        self._at: list[tuple] = [
            (m, None, -math.inf, [], m.id, m.channel, m.region) for m in sellers
        ]
        self._pool_keys = [f"b{i}" for i in range(len(self.baskets))]

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

        The same draws in the same order, and the same rows, as ``arrivals()`` and
        ``sell``; ``_draw_and_sell`` is that loop written for speed.
        """
        pending = self._pending
        if pending is not None:
            if pending[0] >= limit:
                return pending[0]
            self._pending = None
            self.sell(*pending)
        if self.trace is not None or self.rate <= 0 or not _INLINE_RANDRANGE:
            return self._sell_from(limit)
        if self._drawn >= self.duration:
            return None
        return self._draw_and_sell(limit)

    def _draw_and_sell(self, limit: float) -> float | None:
        """``sell_before``'s loop, once per arrival (a million times on a peak day): the
        draws of ``arrival_times``, ``Weighted.pick`` and ``randrange`` inlined as
        ``random`` makes them (``expovariate`` is -log(1 - random()) / rate; randrange(n)
        is getrandbits(n.bit_length()) redrawn while >= n), ``curve_multiple`` unrolled
        with the same arithmetic, and a sale's receipt a list and a dict look-up while its
        endpoint's promotions and their live windows stay the same."""
        rng = self.rng
        uniform, bits, log, exp = rng.random, rng.getrandbits, math.log, math.exp
        n = len(self.baskets)
        k = n.bit_length()
        curve = self.traffic.curve
        start, ramp, hold, decay = curve.start, curve.ramp, curve.hold, curve.decay
        multiple = curve.peak_multiple
        rise = multiple - 1.0
        peak_rate = self.rate * multiple
        duration = self.duration
        cum, total, find = self.sellers.cum, self.sellers.total, bisect.bisect_right
        at, look, price = self._at, self._look, self.pricer.price
        baskets, keys = self.baskets, self._pool_keys
        c = self.columns
        add_t, add_kind, add_promo = c.t.append, c.kind.append, c.promo.append
        add_version, add_endpoint, add_channel = (
            c.version.append,
            c.endpoint.append,
            c.channel.append,
        )
        add_region, add_value, add_detail = c.region.append, c.value.append, c.detail.append
        t = self._drawn
        try:
            while True:
                t += -log(1.0 - uniform()) / peak_rate
                if t >= duration:
                    return None
                # Thinning: kept when uniform() * peak <= curve_multiple(curve, t).
                u = uniform() * multiple
                if t < start:
                    if u > 1.0:
                        continue
                else:
                    x = t - start
                    if x < ramp:
                        if u > 1.0 + rise * x / ramp:
                            continue
                    else:
                        x -= ramp
                        if x < hold:
                            if u > multiple:
                                continue
                        elif u > 1.0 + rise * exp(-(x - hold) / decay):
                            continue
                i = find(cum, uniform() * total)
                basket_id = bits(k)
                while basket_id >= n:
                    basket_id = bits(k)
                if t >= limit:
                    self._pending = (t, at[i][0], basket_id)
                    return t
                model, applied, until, row, endpoint, channel, region = at[i]
                if t >= until or model.applied_key() is not applied:
                    model, applied, until, row, endpoint, channel, region = look(i, t)
                hit = row.get(basket_id)
                if hit is None:
                    hit = price(model, basket_id, baskets[basket_id], t)
                paid, given = hit
                key = keys[basket_id]
                add_t(t)
                add_kind("sale")
                add_promo("")
                add_version(0)
                add_endpoint(endpoint)
                add_channel(channel)
                add_region(region)
                add_value(paid)
                add_detail(key)
                for promo, version, amount in given:
                    c.add(t, "discount", promo, version, model, amount, key)
        finally:
            self._drawn = t

    def _look(self, i: int, t: float) -> tuple:
        """Seller ``i``'s entry in ``_at`` for a sale at ``t``, looked up afresh."""
        model = self._at[i][0]
        row, until = self.pricer.segment(model, t)
        entry = (model, model.applied_key(), until, row, model.id, model.channel, model.region)
        self._at[i] = entry
        return entry

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
        stores, others = self._quote_stores, self._quote_others
        chosen = rng.sample(stores, min(self.traffic.quote_stores, len(stores))) + others
        for product in products:
            self._samples += 1
            basket = Basket(lines=[product.to_line(1)], tax_mode="net")
            sample = f"{product.sku}@{self._samples}"
            basket_id = -1 - self._quote_products.index(product)  # apart from the pool's ids
            for model in chosen:
                total, _ = self.pricer.price(model, basket_id, basket, t)
                self.columns.add(t, "quote", "", 0, model, total, sample)
