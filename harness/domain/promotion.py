"""The canonical promotion: one governed definition that every channel receives.

This is the contract between merchandising, the orchestrator and the channels. It is a
pydantic v2 model so that files and HTTP bodies are validated at the edge with errors that
name the field (``benefit.percent``, ``validity.end``...), and so that
``promoharness schema promotion`` can print its JSON Schema.

Semantics that the pricing engine (``pricing``) relies on:

* **Validity window** — ``start`` inclusive, ``end`` exclusive, both wall-clock times
  (given with an offset, as RFC 3339 allows, they are read as the wall-clock time of that
  instant in ``validity.timezone``; JSON answers carry that zone's offset). With
  ``store_local`` (the default, as a store-run flash sale "from
  Saturday 09:00" means 09:00 in each store) they are read in the time zone of the store
  that prices the basket; channels without a store (ecommerce, marketplace) and promotions
  with ``store_local: false`` read them in ``validity.timezone``, an explicit IANA zone.
* **Scope** — the channels are required and never empty; empty ``regions`` or ``stores``
  mean "all". A store-bound channel is in scope when its store (or, when ``stores`` is
  empty, its region) is listed.
* **Exclusion beats inclusion** — a line excluded by SKU, by category, or because it is
  flagged non-discountable (bundles, gift cards) is never discounted, even if the
  qualifying condition names it.
* **Money values** (amount off, fixed and bundle prices, tier thresholds, minimum basket
  value) are expressed in ``price_mode``: ``gross`` (tax-inclusive) or ``net``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from harness.domain.scope import covers

Channel = Literal["pos", "ecommerce", "loyalty", "marketplace"]
CHANNELS: tuple[Channel, ...] = ("pos", "ecommerce", "loyalty", "marketplace")
PromotionClass = Literal["product", "order", "shipping"]
CLASS_ORDER: tuple[PromotionClass, ...] = ("product", "order", "shipping")
Stacking = Literal["stackable", "exclusive_class", "exclusive_global"]
PriceMode = Literal["gross", "net"]
RoundingMode = Literal["half_even", "half_up", "down", "up"]
RoundingLevel = Literal["line", "unit"]

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
Percent = Annotated[Decimal, Field(gt=0, le=100)]
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
# Every integer fits a signed 64-bit INTEGER (SQLite, the journal, other systems' APIs).
# Round decimal bounds below 2**63 - 1: exact as doubles and in their shortest decimal
# form, so JSON Schema tools that read numbers as doubles keep them exact. A version
# stays 5e18 below the limit for the tombstone revisions rollbacks and re-publishes add.
INT_MAX = 9 * 10**18
MAX_VERSION = 4 * 10**18


class _Strict(BaseModel):
    """Base for every canonical part: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


# RFC 3339 date-time with an offset; fractional seconds of any length, 't'/'z' any case.
_RFC3339_OFFSET = re.compile(r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
_WALL = (
    "Kept as a wall-clock time read in 'timezone' (or, with store_local, in each store's "
    "zone). Give it without an offset, or as any RFC 3339 date-time (Z or an offset): that "
    "instant is read as its wall-clock time in 'timezone'. Answers carry the offset "
    "'timezone' has at that wall-clock time."
)


def _aware(value: object) -> dt.datetime | None:
    """``value`` as an offset-aware datetime, if it is one or an RFC 3339 text with offset."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    match = _RFC3339_OFFSET.match(value)
    if match is None:
        return None
    main, fraction, offset = match.groups()
    # fromisoformat takes at most microseconds and 'Z' only in upper case.
    text = main.replace("t", "T") + (fraction or "")[:7] + offset.upper()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None  # e.g. a leap second or month 13: the field's own parser says why


def _wall_clock(value: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The wall-clock time of the instant ``value`` in ``zone`` (None if out of range).

    Written with the zone's own offset at that wall-clock time, the time is kept as
    written: converting would move a time in a DST gap, which must round-trip.
    """
    naive = value.replace(tzinfo=None)
    offset = value.utcoffset()
    if any(naive.replace(tzinfo=zone, fold=f).utcoffset() == offset for f in (0, 1)):
        return naive
    try:
        return value.astimezone(zone).replace(tzinfo=None)
    except (OverflowError, ValueError):
        return None


class ValidityWindow(_Strict):
    start: dt.datetime = Field(description=f"Start, inclusive. {_WALL}")
    end: dt.datetime = Field(description=f"End, exclusive. {_WALL}")
    timezone: str = Field(description="IANA zone, e.g. Europe/Paris.", examples=["Europe/Paris"])
    store_local: bool = Field(
        default=True, description="Read start/end in each store's own zone when a store prices."
    )

    @model_validator(mode="before")
    @classmethod
    def _instants_to_wall_clock(cls, data: object) -> object:
        """Offsets read in 'timezone' before the fields are validated (it comes last)."""
        if not isinstance(data, dict) or not isinstance(data.get("timezone"), str):
            return data
        try:
            zone = ZoneInfo(_check_zone(data["timezone"]))
        except ValueError:
            return data  # the timezone field reports it
        converted = dict(data)
        for key in ("start", "end"):
            aware = _aware(data.get(key))
            wall = _wall_clock(aware, zone) if aware is not None else None
            if wall is not None:
                converted[key] = wall
        return converted

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:  # an offset that could not be read in 'timezone'
            raise ValueError(
                "give a wall-clock time, or an RFC 3339 date-time that 'timezone' (a valid "
                "IANA zone) can read"
            )
        return value

    @field_serializer("start", "end", when_used="json")
    def _with_offset(self, value: dt.datetime) -> dt.datetime:
        # The wire says 'date-time' (RFC 3339), which needs an offset.
        return value.replace(tzinfo=ZoneInfo(self.timezone))

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: dt.datetime, info) -> dt.datetime:  # type: ignore[no-untyped-def]
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError(f"end {value.isoformat()} is not after start {start.isoformat()}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)


class Scope(_Strict):
    channels: list[Channel] = Field(min_length=1, description="Never empty.")
    regions: list[str] = Field(default_factory=list, description="Empty means every region.")
    stores: list[str] = Field(default_factory=list, description="Empty means every store.")

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    def covers(self, channel: str, region: str | None = None, store: str | None = None) -> bool:
        """True when an endpoint of ``channel`` (at ``store`` in ``region``) is in scope
        (the rules: ``harness.domain.scope.covers``)."""
        return covers(self, channel, region, store)


class Conditions(_Strict):
    skus: list[str] = Field(default_factory=list, description="Qualifying SKUs; empty = any.")
    categories: list[str] = Field(default_factory=list, description="Qualifying categories.")
    min_quantity: int = Field(
        default=1, ge=1, le=INT_MAX, description="Units of qualifying items needed."
    )
    min_basket_value: Money = Field(
        default=Decimal("0"), description="Basket value (list prices, price_mode) needed."
    )


class Exclusions(_Strict):
    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    non_discountable: bool = Field(
        default=True, description="Exclude lines flagged non-discountable (bundles, gift cards)."
    )


class PercentOff(_Strict):
    type: Literal["percent_off"] = "percent_off"
    percent: Percent


class AmountOff(_Strict):
    type: Literal["amount_off"] = "amount_off"
    amount: PositiveMoney
    spread: Literal["proportional", "even", "per_line"] = Field(
        default="proportional",
        description="proportional/even: one amount spread over the eligible lines; "
        "per_line: the amount off each eligible line (capped at the line).",
    )


class FixedPrice(_Strict):
    type: Literal["fixed_price"] = "fixed_price"
    price: Money = Field(description="Each eligible unit sells at this price (if lower).")


class BuyXGetY(_Strict):
    type: Literal["buy_x_get_y"] = "buy_x_get_y"
    buy: int = Field(ge=1, le=INT_MAX)
    get: int = Field(ge=1, le=INT_MAX)
    percent: Percent = Field(default=Decimal("100"), description="Off the 'get' units.")
    target: Literal["cheapest", "most_expensive"] = "cheapest"
    max_occurrences: int | None = Field(default=None, ge=1, le=INT_MAX)


class BundlePrice(_Strict):
    type: Literal["bundle_price"] = "bundle_price"
    quantity: int = Field(
        ge=2, le=INT_MAX, description="Any this many eligible units (mix and match)..."
    )
    price: Money = Field(description="...for this total.")
    max_occurrences: int | None = Field(default=None, ge=1, le=INT_MAX)


class Tier(_Strict):
    threshold: Money = Field(description="Reached when the eligible value/quantity >= this.")
    percent: Percent | None = None
    amount: PositiveMoney | None = None

    @model_validator(mode="after")
    def _one_benefit(self) -> Tier:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("a tier gives exactly one of 'percent' or 'amount'")
        return self


class Tiered(_Strict):
    type: Literal["tiered"] = "tiered"
    basis: Literal["value", "quantity"] = "value"
    tiers: list[Tier] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, value: list[Tier]) -> list[Tier]:
        thresholds = [t.threshold for t in value]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tier thresholds must be strictly ascending")
        return value


class PointsMultiplier(_Strict):
    type: Literal["points_multiplier"] = "points_multiplier"
    multiplier: Decimal = Field(gt=1, le=100)


Benefit = Annotated[
    PercentOff | AmountOff | FixedPrice | BuyXGetY | BundlePrice | Tiered | PointsMultiplier,
    Field(discriminator="type"),
]


class Rounding(_Strict):
    mode: RoundingMode = "half_even"
    level: RoundingLevel = "line"


class Funding(_Strict):
    source: Literal["retailer", "vendor", "shared"] = "retailer"
    vendor: str | None = None
    vendor_share_percent: Annotated[Decimal, Field(ge=0, le=100)] | None = None
    budget_cap: Money | None = Field(default=None, description="Discount the funder will cover.")

    @model_validator(mode="after")
    def _vendor_named(self) -> Funding:
        if self.source in ("vendor", "shared") and not self.vendor:
            raise ValueError(f"funding source '{self.source}' needs 'vendor'")
        return self


class RedemptionLimits(_Strict):
    per_basket: int | None = Field(
        default=None, ge=1, le=INT_MAX, description="Max applications per basket."
    )
    per_customer: int | None = Field(default=None, ge=1, le=INT_MAX)
    total: int | None = Field(default=None, ge=1, le=INT_MAX)


class Promotion(_Strict):
    """A canonical promotion definition, one version of it."""

    id: str = Field(pattern=IDENT_PATTERN)
    version: int = Field(
        default=1,
        ge=1,
        le=MAX_VERSION,
        description="Revision; at most 4e18, so that the tombstone revisions rollbacks and "
        "re-publishes add on top stay within 64 bits.",
    )
    name: str = Field(min_length=1, max_length=200)
    validity: ValidityWindow
    scope: Scope
    conditions: Conditions = Field(default_factory=Conditions)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    benefit: Benefit
    promotion_class: PromotionClass = Field(default="product", alias="class")
    priority: int = Field(
        default=100, ge=0, le=INT_MAX, description="Lower applies first within a class."
    )
    stacking: Stacking = "stackable"
    price_mode: PriceMode = "gross"
    rounding: Rounding = Field(default_factory=Rounding)
    funding: Funding = Field(default_factory=Funding)
    limits: RedemptionLimits = Field(default_factory=RedemptionLimits)

    @model_validator(mode="after")
    def _coherent(self) -> Promotion:
        kind = self.benefit.type
        if self.promotion_class == "shipping" and kind not in ("percent_off", "amount_off"):
            raise ValueError(f"class 'shipping' takes percent_off or amount_off, not '{kind}'")
        if self.promotion_class == "order" and kind in ("buy_x_get_y", "bundle_price"):
            raise ValueError(f"'{kind}' is a product-class benefit, not 'order'")
        if kind == "points_multiplier" and "loyalty" not in self.scope.channels:
            raise ValueError("a points_multiplier needs the 'loyalty' channel in scope.channels")
        return self

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)


def promotion_json_schema() -> dict:
    """The JSON Schema of a canonical promotion (the shape files and API bodies must have)."""
    schema = Promotion.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "promoharness canonical promotion"
    return schema
