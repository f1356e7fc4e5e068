"""The channel adapter contract's wire models (pydantic v2), version :data:`CONTRACT_VERSION`.

These models are the single source of the OpenAPI document (``contract.py``): the kit
generates the document from them and validates every answer an adapter gives against the
generated schemas, so the contract, the kit and the example adapters cannot drift apart.
``Basket`` and ``Receipt`` are the domain's own models (``harness.domain.basket``) and the
delivery payload is the canonical :class:`~harness.domain.promotion.Promotion`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.domain.basket import Receipt
from harness.domain.promotion import IDENT_PATTERN, Channel, Promotion

__all__ = [
    "CONTRACT_VERSION",
    "AckBody",
    "DeliveryAnswer",
    "DeliveryBody",
    "ErrorBody",
    "HealthAnswer",
    "PriceAnswer",
    "StoreInfo",
]

CONTRACT_VERSION = "1.0.0"


class DeliveryBody(BaseModel):
    """One delivery attempt of one promotion version (what the orchestrator POSTs).

    Unknown extra fields are ignored: an orchestrator may send more than an adapter reads.
    """

    model_config = ConfigDict(extra="ignore")

    delivery_id: str = Field(min_length=1, description="Unique per (promo, version, op).")
    idempotency_key: str = Field(
        min_length=1,
        description="Equal to the Idempotency-Key header. Every attempt (retry) of one "
        "delivery carries the same key; a key seen before must not change state again and "
        "is answered with the status of the first processing.",
    )
    op: Literal["apply", "revoke"] = Field(
        description="apply: activate `version` (payload required). revoke: deactivate the "
        "promotion; `version` is the tombstone, newer than every applied version."
    )
    promo: str = Field(pattern=IDENT_PATTERN)
    version: int = Field(ge=1, description="Monotonic per promo; only newer versions apply.")
    attempt: int = Field(default=1, ge=1, description="1 for the first try, then 2, 3...")
    payload: Promotion | None = Field(
        default=None, description="The canonical promotion (required for apply)."
    )


class DeliveryAnswer(BaseModel):
    """The answer to a delivery (200 or 202)."""

    outcome: Literal["ok", "accepted", "stale", "duplicate"] = Field(
        description="ok: applied/revoked now (200). accepted: will take effect later, a "
        "webhook follows (202). stale: an older-or-equal version, ignored (200 or 202). "
        "duplicate: the idempotency key was seen; nothing changed (the first status again)."
    )
    detail: str = ""


class ErrorBody(BaseModel):
    """Any 4xx/5xx answer: `detail` says why (a string or FastAPI's list of errors)."""

    detail: str | list[dict] = Field(description="A human-readable reason; never empty.")
    retry_after: float | None = Field(default=None, description="Seconds (429/503).")


class StoreInfo(BaseModel):
    id: str
    region: str = ""
    timezone: str = Field(description="IANA zone validity windows are read in (store_local).")


class HealthAnswer(BaseModel):
    """GET /health: the adapter is up, which channel it serves and where it prices."""

    ok: bool
    channel: Channel
    contract: str = Field(description="The contract version the adapter implements.")
    store: StoreInfo | None = Field(
        default=None, description="The store that prices baskets (pos), else null."
    )


class PriceAnswer(Receipt):
    """POST /price: the Receipt, plus the promotions the adapter holds ("id@version")."""

    active: list[str] = Field(default_factory=list)


class AckBody(BaseModel):
    """The webhook an adapter POSTs to the orchestrator once an accepted (202) delivery
    has taken effect: ``POST {X-Callback-URL}`` (``/v1/callbacks/ack``) with ``X-API-Key``."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(pattern=IDENT_PATTERN, description="The adapter's endpoint id.")
    promo: str = Field(pattern=IDENT_PATTERN)
    version: int = Field(ge=1)
    op: Literal["apply", "revoke"]
    detail: str = Field(default="", max_length=1000)
