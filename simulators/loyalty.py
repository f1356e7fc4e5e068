"""The loyalty service: holds points rules and says how many points a basket earns.

It receives promotions like any endpoint (synchronous, ``loyalty-saas`` profile); the ones
that matter to it are ``points_multiplier`` benefits. ``points(basket, at_utc)`` asks the
golden engine for the receipt under the rules the service really holds (channel
``loyalty``) and returns its points, so a multiplier that never reached the service, or
that a faulty service kept after a rollback, shows in the points granted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from decimal import Decimal
from typing import TYPE_CHECKING

from harness.domain.dialects import REFERENCE, Dialect
from simulators.endpoint import EndpointModel
from simulators.pos import PriceCache
from simulators.profiles import Profile, profile

if TYPE_CHECKING:
    from harness.domain.basket import Basket, Receipt


class LoyaltyService(EndpointModel):
    """The loyalty platform, an endpoint of channel ``loyalty``."""

    def __init__(
        self,
        id: str = "loyalty",
        *,
        timezone: str = "America/New_York",
        region: str = "",
        link: Profile | str = "loyalty-saas",
        dialect: Dialect | None = None,
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        p = profile(link) if isinstance(link, str) else link
        super().__init__(id, "loyalty", p, region=region, seed=seed, horizon=horizon)
        self.timezone = timezone
        self.dialect = dialect if dialect is not None else REFERENCE
        self._prices = PriceCache()

    def rules(self) -> dict[str, Decimal]:
        """promo -> multiplier, for the points rules the service holds."""
        return {
            p.id: p.benefit.multiplier
            for p in self.promotions()
            if p.benefit.type == "points_multiplier"
        }

    def receipt(
        self,
        basket: Basket,
        at_utc: dt.datetime,
        *,
        store: object | None = None,
        basket_key: Hashable | None = None,
    ) -> Receipt:
        """The engine's receipt for the loyalty channel (``store``: a ``StoreContext``
        when the basket is bought in a store, so store-local windows read right)."""

        def compute() -> Receipt:
            from harness.domain.pricing import price_basket

            return price_basket(
                basket,
                list(self.promotions()),
                channel="loyalty",
                at=at_utc,
                store=store,  # type: ignore[arg-type]
                dialect=self.dialect,
            )

        zone = getattr(store, "timezone", None) or self.timezone
        context = getattr(store, "id", None)
        return self._prices.get(basket, at_utc, self, zone, compute, basket_key, context)

    def points(
        self,
        basket: Basket,
        at_utc: dt.datetime,
        *,
        store: object | None = None,
        basket_key: Hashable | None = None,
    ) -> Decimal:
        """Points the basket earns at ``at_utc`` under the rules the service holds."""
        return self.receipt(basket, at_utc, store=store, basket_key=basket_key).points
