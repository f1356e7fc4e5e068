"""The ecommerce site (a SaaS storefront): 202 now, the change and a webhook later.

A delivery is answered ``202 accepted`` after the API latency; the storefront applies the
change ``ack_delay`` later (its own indexing / cache purge) and then calls the webhook.
The webhook can be lost (``plan.ack_lost``: the change still happens, the orchestrator is
never told — a ghost) or late (``ack_late_rate``: it comes ``ack_late_delay`` after the
change). Duplicated deliveries get the stored 202 again and no second webhook.

``price(basket, at_utc)`` is what the checkout charges. A web shop has no store, so by the
canonical semantics the validity window is read in the promotion's own zone; the site's
zone only serves to label local times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.domain.dialects import REFERENCE, Dialect
from simulators.endpoint import EndpointModel
from simulators.pos import PriceCache, ShelfPricing
from simulators.profiles import Profile, profile

if TYPE_CHECKING:
    pass


class EcommerceSite(ShelfPricing, EndpointModel):
    """One storefront, an endpoint of channel ``ecommerce`` (asynchronous, webhook acks)."""

    ack_via = "push"

    def __init__(
        self,
        id: str = "web",
        *,
        timezone: str = "America/New_York",
        region: str = "",
        link: Profile | str = "ecommerce-saas",
        dialect: Dialect | None = None,
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        p = profile(link) if isinstance(link, str) else link
        super().__init__(id, "ecommerce", p, region=region, seed=seed, horizon=horizon)
        self.timezone = timezone
        self.dialect = dialect if dialect is not None else REFERENCE
        self._prices = PriceCache()
