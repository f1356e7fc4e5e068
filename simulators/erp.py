"""The cloud ERP: master data, funding budgets, validation, and price-book activation.

The orchestrator asks it two kinds of thing:

* ``validate(promotion) -> (ok, reasons)`` before approval: every SKU the conditions name
  is a known product with a price-book entry and ready inventory, the categories and the
  scope's regions and stores exist, and the funding holds (the promotion's budget is not
  exhausted, a funding vendor is known and can cover its share of the cap);
* deliveries, like any endpoint: an apply activates the version in the price book (a
  reference error is a permanent 422), a revoke deactivates it.

It is a SaaS with an API quota per second (429 + Retry-After) and a maintenance window
(503). ``consume`` charges granted discount to the budgets as sales happen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from simulators.endpoint import EndpointModel, Request, TruthChange
from simulators.profiles import Outage, Profile, RateLimit, profile

if TYPE_CHECKING:
    from harness.domain.basket import BasketLine
    from harness.domain.promotion import Promotion

ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Product:
    """A product reference (the ERP's item master), as the catalog builds it."""

    sku: str
    name: str
    category: str
    price: Decimal
    tax_rate: Decimal
    vendor: str
    private_label: bool = False
    non_discountable: bool = False

    def to_line(self, quantity: int = 1) -> BasketLine:
        from harness.domain.basket import BasketLine

        return BasketLine(
            sku=self.sku,
            category=self.category,
            quantity=quantity,
            unit_price=self.price,
            tax_rate=self.tax_rate,
            non_discountable=self.non_discountable,
            vendor=self.vendor,
        )


class Erp(EndpointModel):
    """The ERP, endpoint ``erp`` of channel ``erp`` (it is not a selling channel)."""

    def __init__(
        self,
        products: Iterable[Product],
        *,
        id: str = "erp",
        regions: Iterable[str] = (),
        stores: Iterable[str] = (),
        price_book: Mapping[str, Decimal] | None = None,
        inventory_ready: Mapping[str, bool] | None = None,
        budgets: Mapping[str, Decimal] | None = None,
        vendor_budgets: Mapping[str, Decimal] | None = None,
        link: Profile | str = "cloud-erp",
        quota: float | None = None,
        maintenance: Outage | None = None,
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        p = profile(link) if isinstance(link, str) else link
        if quota is not None:
            # A quota "per second" is a bucket refilled at that rate holding one second.
            p = dataclasses.replace(p, rate_limit=RateLimit(rate=quota, burst=max(1.0, quota)))
        if maintenance is not None:
            p = dataclasses.replace(p, outages=(*p.outages, maintenance))
        super().__init__(id, "erp", p, seed=seed, horizon=horizon)
        self.maintenance = maintenance
        self.products: dict[str, Product] = {prod.sku: prod for prod in products}
        self.categories = frozenset(prod.category for prod in self.products.values())
        self.regions = frozenset(regions)
        self.stores = frozenset(stores)
        self.price_book: dict[str, Decimal] = (
            dict(price_book)
            if price_book is not None
            else {sku: prod.price for sku, prod in self.products.items()}
        )
        # Unlisted SKUs are ready: the flag exists to mark the exceptions.
        self.inventory_ready: dict[str, bool] = dict(inventory_ready or {})
        self._budget: dict[str, Decimal] = dict(budgets or {})
        self._vendor_budget: dict[str, Decimal] = dict(vendor_budgets or {})
        self._consumed: dict[str, Decimal] = {}

    # --- validation ----------------------------------------------------------------------

    def reference_errors(self, promotion: Promotion) -> list[str]:
        """Master-data problems: permanent until someone fixes the data or the promotion."""
        reasons: list[str] = []
        for sku in promotion.conditions.skus:
            if sku not in self.products:
                reasons.append(f"unknown sku {sku}")
            elif sku not in self.price_book:
                reasons.append(f"no price-book entry for sku {sku}")
        reasons.extend(
            f"unknown category {c}"
            for c in promotion.conditions.categories
            if c not in self.categories
        )
        if self.regions:
            reasons.extend(
                f"region {r} not eligible (unknown)"
                for r in promotion.scope.regions
                if r not in self.regions
            )
        if self.stores:
            reasons.extend(
                f"unknown store {s}" for s in promotion.scope.stores if s not in self.stores
            )
        return reasons

    def validate(self, promotion: Promotion) -> tuple[bool, tuple[str, ...]]:
        reasons = self.reference_errors(promotion)
        reasons.extend(
            f"inventory not ready for sku {sku}"
            for sku in promotion.conditions.skus
            if sku in self.products and not self.inventory_ready.get(sku, True)
        )
        reasons.extend(self._funding_errors(promotion))
        return (not reasons, tuple(reasons))

    def _funding_errors(self, promotion: Promotion) -> list[str]:
        reasons: list[str] = []
        funding = promotion.funding
        left = self.remaining(promotion.id)
        if left is not None and left <= 0:
            reasons.append(f"budget of {promotion.id} exhausted")
        if funding.source in ("vendor", "shared") and funding.vendor:
            vendor = funding.vendor
            if vendor not in self._vendor_budget:
                reasons.append(f"unknown funding vendor {vendor}")
            else:
                have = self._vendor_budget[vendor]
                if have <= 0:
                    reasons.append(f"budget of vendor {vendor} exhausted")
                elif funding.budget_cap is not None:
                    share = (
                        Decimal(100)
                        if funding.source == "vendor"
                        else (funding.vendor_share_percent or Decimal(50))
                    )
                    need = funding.budget_cap * share / 100
                    if have < need:
                        reasons.append(
                            f"vendor {vendor} budget {have} is short of its share {need:.2f}"
                        )
        return reasons

    # --- budgets -------------------------------------------------------------------------

    def allocate(self, promo: str, amount: Decimal) -> None:
        """Finance sets (or resets) the promotion's remaining budget."""
        self._budget[promo] = Decimal(amount)

    def fund_vendor(self, vendor: str, amount: Decimal) -> None:
        self._vendor_budget[vendor] = self._vendor_budget.get(vendor, ZERO) + Decimal(amount)

    def remaining(self, promo: str) -> Decimal | None:
        """The promotion's remaining budget; ``None`` when it has none (uncapped)."""
        return self._budget.get(promo)

    def vendor_remaining(self, vendor: str) -> Decimal:
        return self._vendor_budget.get(vendor, ZERO)

    def consumed(self, promo: str) -> Decimal:
        return self._consumed.get(promo, ZERO)

    def consume(self, promo: str, vendor: str | None, amount: Decimal) -> bool:
        """Charge ``amount`` to the promotion's budget and, when ``vendor`` is given, to
        that vendor's (the caller passes the vendor's share). All or nothing: ``False``
        and no charge when either budget cannot cover it."""
        amount = Decimal(amount)
        left = self._budget.get(promo)
        if left is not None and left < amount:
            return False
        if vendor is not None and self._vendor_budget.get(vendor, ZERO) < amount:
            return False
        if left is not None:
            self._budget[promo] = left - amount
        if vendor is not None:
            self._vendor_budget[vendor] -= amount
        self._consumed[promo] = self._consumed.get(promo, ZERO) + amount
        return True

    # --- endpoint hooks ------------------------------------------------------------------

    def reject_reason(self, request: Request) -> str | None:
        reason = super().reject_reason(request)
        if reason is None and request.op == "apply" and request.payload is not None:
            errors = self.reference_errors(request.payload)
            if errors:
                return "; ".join(errors)
        return reason

    def _apply(self, r: Request) -> list[TruthChange]:
        changes = super()._apply(r)
        # Activation opens the funding record: the cap becomes the budget unless finance
        # allocated one already.
        if changes and r.payload is not None and r.promo not in self._budget:
            cap = r.payload.funding.budget_cap
            if cap is not None:
                self._budget[r.promo] = cap
        return changes
