"""What the orchestrator asks its driver to do: frozen dataclasses returned by ``handle``.

The driver carries them out in order: send a delivery over its transport (SimPy model or
aiohttp), start or cancel a timer on its clock, append a record to the event log, store a
dead letter, ask the ERP to validate. The core never does any of this itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.domain.eventlog import Record
from harness.domain.fastinit import fast_init
from harness.domain.promotion import Promotion


@fast_init
@dataclass(frozen=True, slots=True)
class SendDelivery:
    """Deliver ``op`` (apply a version / revoke it) to one endpoint.

    ``idempotency_key`` is stable across the attempts of one delivery, so an idempotent
    endpoint can drop a duplicate; ``payload`` is the canonical promotion for applies.
    """

    delivery_id: str
    endpoint: str
    channel: str
    op: str
    promo: str
    version: int
    attempt: int
    idempotency_key: str
    timeout: float
    payload: Promotion | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    at: float
    data: tuple = ()


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class WriteRecord:
    record: Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    delivery_id: str
    endpoint: str
    promo: str
    version: int
    op: str
    attempts: int
    reason: str


@dataclass(frozen=True, slots=True)
class RequestValidation:
    promo: str
    version: int
    promotion: Promotion


Command = SendDelivery | StartTimer | CancelTimer | WriteRecord | DeadLetter | RequestValidation
