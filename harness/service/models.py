"""Request and response bodies of the orchestrator's HTTP API (pydantic v2).

Requests forbid unknown fields and non-finite numbers, so a typo or a NaN is a 422 that
names the field instead of a silently ignored option; every integer fits 64 bits. A
promotion itself is the canonical ``harness.domain.promotion.Promotion``: the API validates
exactly what files validate.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.domain.promotion import IDENT_PATTERN, INT_MAX, Promotion

__all__ = [
    "AUTH_ERRORS",
    "BODY_ERRORS",
    "CONFLICT",
    "NOT_FOUND",
    "AckBody",
    "AckRefused",
    "AckResult",
    "AuditPage",
    "ChannelBody",
    "DeadLetterList",
    "DeadLetterOut",
    "EndpointRow",
    "ErrorBody",
    "Health",
    "PromotionDetail",
    "PromotionList",
    "PromotionState",
    "PromotionSummary",
    "Propagation",
    "RecordOut",
    "RejectBody",
    "ReplayBody",
    "ReplayResult",
    "RollbackBody",
    "ScheduleBody",
    "ScopeBody",
]

DeliveryChannel = Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"]
Ident = Annotated[str, Field(pattern=IDENT_PATTERN)]
# Scenario seconds are finite and within a few years; bounds keep timers sane.
Seconds = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeBody(_Body):
    """A sub-scope of the promotion's own scope; empty lists mean 'all of that kind'."""

    channels: list[DeliveryChannel] = Field(default_factory=list, max_length=5)
    regions: list[Ident] = Field(default_factory=list, max_length=1000)
    stores: list[Ident] = Field(default_factory=list, max_length=10_000)


class ScheduleBody(ScopeBody):
    publish_at: Seconds = Field(description="Scenario seconds at which to publish.")


class RollbackBody(ScopeBody):
    deadline: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] = Field(
        default=300.0, description="Seconds by which every endpoint in scope must be clean."
    )


class RejectBody(_Body):
    reason: str = Field(default="", max_length=1000)


class ChannelBody(_Body):
    channel: DeliveryChannel


class ReplayBody(_Body):
    """Replay all dead letters, or those of one promotion and/or one endpoint."""

    promo: Ident | None = None
    endpoint: Ident | None = None


class AckBody(_Body):
    """A channel adapter's asynchronous acknowledgement of one delivery."""

    endpoint: Ident
    promo: Ident
    version: int = Field(ge=1, le=INT_MAX)
    op: Literal["apply", "revoke"]
    detail: str = Field(default="", max_length=1000)


# --- responses -------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    detail: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented error answers (OpenAPI ``responses``), shared by the route modules.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or unknown API key"),
    403: _error("The key's role may not do this"),
    429: _error("Over the key's rate limit (see Retry-After)"),
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("A body that is not even JSON text (undecodable bytes)"),
    413: _error("Body over the size limit"),
}
NOT_FOUND = _error("Unknown promotion")
CONFLICT = _error("Not allowed in the promotion's state")


class Health(BaseModel):
    status: Literal["ok"]
    now: float


class PromotionState(BaseModel):
    id: str
    version: int
    state: str


class PromotionSummary(PromotionState):
    name: str


class PromotionList(BaseModel):
    promotions: list[PromotionSummary]


class EndpointRow(BaseModel):
    endpoint: str
    channel: str
    op: str
    state: str
    version: int
    attempt: int


class Propagation(BaseModel):
    """Delivery states: counted overall and per channel, and (a page of) per endpoint."""

    total: int
    states: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    endpoints: list[EndpointRow] | None = Field(
        default=None, description="Absent with ?endpoints=false."
    )
    offset: int = 0
    next_offset: int | None = Field(default=None, description="Where the next page starts.")


class PromotionDetail(PromotionState):
    promotion: Promotion
    propagation: Propagation


class RecordOut(BaseModel):
    t: float
    kind: str
    promo: str
    version: int
    endpoint: str
    channel: str
    region: str
    attempt: int
    outcome: str
    value: float
    detail: str


class AuditPage(BaseModel):
    records: list[RecordOut]
    next: int = Field(description="Pass as ?since= to read on from here.")


class DeadLetterOut(BaseModel):
    delivery_id: str
    endpoint: str
    channel: str
    promo: str
    version: int
    op: str
    attempts: int
    reason: str
    t: float


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterOut]


class ReplayResult(BaseModel):
    matched: int = Field(description="Dead letters taken for replay (stale ones are dropped).")
    remaining: int


class AckResult(BaseModel):
    endpoint: str
    promo: str
    delivery_state: str = Field(description="The delivery's state once the ack was handled.")


class AckRefused(AckResult):
    """409: the ack names no delivery awaiting it; it is recorded as stale, nothing else."""

    detail: str = Field(description="Why, in words.")
    reason: Literal["unknown_endpoint", "untargeted", "not_current", "not_sent", "settled"] = Field(
        description="untargeted: never meant for the endpoint; not_current: another "
        "version or op is its current delivery; not_sent: not sent yet; settled: "
        "already acked, revoked or dead-lettered."
    )
