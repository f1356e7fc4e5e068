"""A store's point of sale: receives promotion versions and prices baskets at the till.

A realtime POS (``v7-realtime``...) applies a delivery while the orchestrator waits and
answers 200. A batch-only POS (``v5-batch``...) answers 202 from its store mailbox and
applies at its next pick-up — every ``poll_interval`` seconds from its ``poll_offset`` —
then reports the pick-up (an asynchronous ack, ``ack_via == "push"``). A pick-up that
falls in a link outage is missed and happens at the next one.

``price(basket, at_utc)`` is what the till charges: the golden engine under the store's
dialect, with the promotions the store really holds, read in the store's time zone.
:class:`PriceCache` keeps that cheap; every channel that quotes prices uses it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from harness.domain.dialects import REFERENCE, Dialect, compose
from simulators.endpoint import EndpointModel, Request
from simulators.profiles import Profile, profile

if TYPE_CHECKING:
    from harness.domain.basket import Basket, Receipt
    from harness.domain.promotion import Promotion

# A pick-up inside an outage is skipped; past this many, the store is considered gone.
_MAX_MISSED_PICKUPS = 10_000


@dataclass(frozen=True, slots=True)
class PosVersion:
    """A POS software release: realtime or batch-only, and its pricing habits."""

    name: str
    realtime: bool
    poll_interval: float = 0.0
    dialects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.realtime and self.poll_interval <= 0:
            raise ValueError(f"batch POS version {self.name!r} needs poll_interval > 0")


POS_VERSIONS: dict[str, PosVersion] = {
    v.name: v
    for v in (
        PosVersion("v7-realtime", realtime=True),
        PosVersion("v6-realtime", realtime=True),
        PosVersion("v5-batch", realtime=False, poll_interval=900.0),
        PosVersion("v4-batch", realtime=False, poll_interval=3600.0),
    )
}


def pos_version(name: str) -> PosVersion:
    try:
        return POS_VERSIONS[name]
    except KeyError:
        known = ", ".join(sorted(POS_VERSIONS))
        raise ValueError(f"unknown POS version {name!r}; known: {known}") from None


class ShelfPricing:
    """Mixin for endpoints that sell: price a basket with the promotion versions applied at
    this endpoint, in its dialect, at an instant — cached per applied set and per stretch
    between validity-window edges. Needs ``promotions()``, ``channel``, ``dialect``,
    ``timezone`` and ``_prices`` (a ``PriceCache``); ``store_context()`` gives the store
    (None for a channel without one)."""

    def store_context(self) -> object | None:
        return None

    def price(
        self, basket: Basket, at_utc: dt.datetime, *, basket_key: Hashable | None = None
    ) -> Receipt:
        """What this endpoint charges at ``at_utc`` (aware).

        ``basket_key``: a caller's id for a basket it re-uses, saving the content key.
        """

        def compute() -> Receipt:
            from harness.domain.pricing import price_basket

            return price_basket(
                basket,
                list(self.promotions()),  # type: ignore[attr-defined]
                channel=self.channel,  # type: ignore[attr-defined]
                at=at_utc,
                store=self.store_context(),  # type: ignore[arg-type]
                dialect=self.dialect,  # type: ignore[attr-defined]
            )

        return self._prices.get(  # type: ignore[attr-defined]
            basket,
            at_utc,
            self,
            self.timezone,
            compute,
            basket_key,  # type: ignore[attr-defined]
        )


class PosStore(ShelfPricing, EndpointModel):
    """One store's POS, an endpoint of channel ``pos``."""

    def __init__(
        self,
        id: str,
        *,
        region: str,
        timezone: str,
        version: PosVersion | str = "v7-realtime",
        link: Profile | str = "healthy-pos",
        city: str = "",
        poll_offset: float = 0.0,
        dialect: Dialect | None = None,
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        link_profile = profile(link) if isinstance(link, str) else link
        super().__init__(
            id, "pos", link_profile, region=region, store=id, seed=seed, horizon=horizon
        )
        self.timezone = timezone
        self.version = pos_version(version) if isinstance(version, str) else version
        self.city = city
        self.poll_offset = poll_offset
        if dialect is None:
            dialect = compose(*self.version.dialects) if self.version.dialects else REFERENCE
        self.dialect = dialect
        # Instance attribute on purpose: realtime and batch stores share the class.
        self.ack_via = "reply" if self.version.realtime else "push"
        self._prices = PriceCache()
        self._context: object | None = None

    @property
    def realtime(self) -> bool:
        return self.version.realtime

    @property
    def mode(self) -> str:
        return "realtime" if self.version.realtime else "batch"

    @property
    def poll_interval(self) -> float:
        return self.version.poll_interval

    def next_pickup(self, t: float) -> float:
        """The first scheduled pick-up at or after ``t`` (batch stores)."""
        interval = self.version.poll_interval
        k = max(0, math.ceil((t - self.poll_offset) / interval))
        return self.poll_offset + k * interval

    def ack_delay(self, request: Request, done: float, rng: random.Random) -> float | None:
        if self.version.realtime:
            return super().ack_delay(request, done, rng)
        pickup = self.next_pickup(done)
        for _ in range(_MAX_MISSED_PICKUPS):
            if self.outages.is_down(pickup) is None:
                break
            pickup += self.version.poll_interval
        return max(0.0, pickup - done)

    def store_context(self) -> object:
        """The pricing engine's ``StoreContext`` for this store (built once)."""
        if self._context is None:
            from harness.domain.pricing import StoreContext

            self._context = StoreContext(self.id, self.region, self.timezone)
        return self._context

    def describe(self) -> dict[str, object]:
        """A flat view for inventories and reports."""
        return {
            "id": self.id,
            "region": self.region,
            "timezone": self.timezone,
            "city": self.city,
            "version": self.version.name,
            "mode": self.mode,
            "poll_interval": self.version.poll_interval,
            "poll_offset": self.poll_offset,
            "link": self.profile.name,
            "dialects": list(self.dialect.names),
        }


def stores_by_region(stores: Sequence[PosStore]) -> dict[str, list[PosStore]]:
    out: dict[str, list[PosStore]] = {}
    for s in stores:
        out.setdefault(s.region, []).append(s)
    return out


# --- the price cache (shared by every quoting channel) ---------------------------------


class PriceCache:
    """Priced receipts keyed by (basket, applied set, validity segment).

    A price only moves when the applied set changes or ``at`` crosses a validity
    boundary of an applied promotion, so the key is the index of ``at`` among those
    boundaries — read in every zone a dialect may read them in (the store's, the
    promotion's, UTC) so that the cache is exact under any dialect. The same baskets
    repeat a million times in a run; this keeps pricing off the hot path.
    """

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._receipts: dict[Hashable, Receipt] = {}
        self._fingerprints: dict[int, tuple[Basket, Hashable]] = {}
        self._bounds: dict[tuple[frozenset[tuple[str, int]], str | None], list[dt.datetime]] = {}

    def get(
        self,
        basket: Basket,
        at_utc: dt.datetime,
        endpoint: EndpointModel,
        zone: str | None,
        compute: Callable[[], Receipt],
        basket_key: Hashable | None = None,
        context: Hashable = None,
    ) -> Receipt:
        """The cached receipt, or ``compute()``'s. ``context``: anything else the price
        depends on (the store a loyalty receipt is priced for)."""
        applied = endpoint.applied_key()
        bounds_key = (applied, zone)
        bounds = self._bounds.get(bounds_key)
        if bounds is None:
            bounds = _boundaries(endpoint.promotions(), zone)
            self._bounds[bounds_key] = bounds
        segment = bisect.bisect_right(bounds, at_utc)
        if basket_key is None:
            memo = self._fingerprints.get(id(basket))
            if memo is not None and memo[0] is basket:
                basket_key = memo[1]
            else:
                basket_key = basket_fingerprint(basket)
                if len(self._fingerprints) >= self.max_entries:
                    self._fingerprints.clear()
                # Holding the basket keeps its id from being reused while memoised.
                self._fingerprints[id(basket)] = (basket, basket_key)
        key = (basket_key, applied, segment, zone, context)
        receipt = self._receipts.get(key)
        if receipt is not None:
            self.hits += 1
            return receipt
        self.misses += 1
        if len(self._receipts) >= self.max_entries:
            # Wholesale clearing is crude but O(1) amortised; hot baskets refill at once.
            self._receipts.clear()
            self._bounds.clear()
            self._bounds[bounds_key] = bounds
        receipt = compute()
        self._receipts[key] = receipt
        return receipt


def basket_fingerprint(basket: Basket) -> Hashable:
    """A content key for a basket (pydantic models holding lists are not hashable).

    ``customer`` is left out on purpose: pricing is a function of the lines, not of who
    buys, and keeping it would defeat the cache when shoppers re-use basket shapes.
    """
    return (
        basket.tax_mode,
        basket.shipping,
        basket.shipping_tax_rate,
        basket.loyalty_member,
        tuple(
            (
                ln.sku,
                ln.category,
                ln.quantity,
                ln.unit_price,
                ln.tax_rate,
                ln.non_discountable,
                ln.vendor,
            )
            for ln in basket.lines
        ),
    )


def _boundaries(promotions: tuple[Promotion, ...], zone: str | None) -> list[dt.datetime]:
    zones: set[dt.tzinfo] = {dt.UTC}
    if zone:
        zones.add(ZoneInfo(zone))
    for p in promotions:
        zones.add(ZoneInfo(p.validity.timezone))
    bounds: set[dt.datetime] = set()
    for p in promotions:
        for wall in (p.validity.start, p.validity.end):
            for tz in zones:
                bounds.update(_instants(wall, tz))
    return sorted(bounds)


def _instants(wall: dt.datetime, tz: dt.tzinfo) -> set[dt.datetime]:
    """The instants at which "local wall time >= ``wall``" can change in zone ``tz``.

    Both folds cover a fall-back overlap (a wall time naming two instants). A wall time in
    a spring-forward gap names no instant: the switch happens at the transition itself,
    found by bisection on whole seconds (zones change offset on whole seconds).
    """
    found = {wall.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC) for fold in (0, 1)}
    first = min(found)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return found
    lo, hi = int(first.timestamp()), int(max(found).timestamp())
    while lo < hi:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid + 1
    found.add(dt.datetime.fromtimestamp(lo, dt.UTC))
    return found
