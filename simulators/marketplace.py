"""A marketplace (Amazon-like): offers are accepted now and go live after activation.

A delivery is answered ``202 accepted``; the offer (or its withdrawal) takes effect after
the profile's ``ack_delay`` — the marketplace's activation delay — and nobody is told: the
marketplace sends no webhook (``ack_via == "poll"``). The driver learns the state by
polling ``poll(promo)``; polls are requests too, so a driver should put them through
``gate(now)`` to meet the same rate limit and outages as deliveries.

Activation uses the shared deferral of :class:`EndpointModel`: the driver calls
``settle(request, now)`` at ``completion + plan.ack_delay`` (SimPy does it exactly), or,
if it would rather not keep per-request timers, ``activate_due(now)`` before each poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.domain.dialects import REFERENCE, Dialect
from simulators.endpoint import EndpointModel, TruthChange
from simulators.pos import PriceCache, ShelfPricing
from simulators.profiles import Profile, profile

if TYPE_CHECKING:
    pass

OfferState = Literal["unknown", "pending", "active", "inactive"]


@dataclass(frozen=True, slots=True)
class PollStatus:
    """What a poll of one offer returns.

    ``state``: ``active`` (``version`` live), ``pending`` (accepted, not live yet;
    ``version`` is the pending one), ``inactive`` (withdrawn: ``version`` is the newest
    seen) or ``unknown``. ``pending_op`` names an operation still in flight.
    """

    promo: str
    state: OfferState
    version: int = 0
    pending_op: str | None = None
    pending_version: int | None = None


class Marketplace(ShelfPricing, EndpointModel):
    """A marketplace seller account, an endpoint of channel ``marketplace``."""

    ack_via = "poll"

    def __init__(
        self,
        id: str = "mkt-amazon",
        *,
        timezone: str = "America/Los_Angeles",
        region: str = "",
        link: Profile | str = "marketplace-api",
        dialect: Dialect | None = None,
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        p = profile(link) if isinstance(link, str) else link
        if p.ack_delay is None:
            raise ValueError(f"a marketplace profile needs an activation delay ({p.name!r})")
        super().__init__(id, "marketplace", p, region=region, seed=seed, horizon=horizon)
        self.timezone = timezone
        self.dialect = dialect if dialect is not None else REFERENCE
        self._prices = PriceCache()

    def activate_due(self, now: float) -> list[TruthChange]:
        """Activate (or withdraw) every accepted offer whose activation time has come."""
        return self.settle_due(now)

    def poll(self, promo: str) -> PollStatus:
        in_flight = self.pending(promo)
        op, version = (in_flight[-1][0], in_flight[-1][2]) if in_flight else (None, None)
        active = self._active.get(promo)
        if active is not None:
            return PollStatus(promo, "active", active, op, version)
        if op == "apply":
            return PollStatus(promo, "pending", version or 0, op, version)
        newest = self._newest.get(promo)
        if newest is not None:
            return PollStatus(promo, "inactive", newest, op, version)
        return PollStatus(promo, "unknown", 0, op, version)
