"""Everything that can happen to the orchestrator: frozen dataclasses fed to ``handle``.

Two families: operator commands (what a merchandiser, approver or operator asks for) and
endpoint events (what the estate answers: delivery results, asynchronous acknowledgements,
validation answers from the ERP) plus timers the orchestrator itself started.
A driver (SimPy or asyncio) builds these and calls ``Orchestrator.handle(event, now)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.domain.fastinit import fast_init
from harness.domain.promotion import Promotion

if TYPE_CHECKING:
    from harness.orchestrator.commands import SendDelivery

DeliveryOp = str  # "apply" | "revoke"


@dataclass(frozen=True, slots=True)
class TargetScope:
    """A sub-scope to publish to or roll back: empty tuples mean 'all of that kind'."""

    channels: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()


# --- operator commands -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateDraft:
    promotion: Promotion
    actor: str = "merchandiser"


@dataclass(frozen=True, slots=True)
class Submit:
    promo: str
    actor: str = "merchandiser"


@dataclass(frozen=True, slots=True)
class Validate:
    """Ask the ERP: funding, product and price references, inventory, regional eligibility."""

    promo: str
    actor: str = "system"


@dataclass(frozen=True, slots=True)
class Approve:
    promo: str
    actor: str = "approver"


@dataclass(frozen=True, slots=True)
class Reject:
    promo: str
    reason: str = ""
    actor: str = "approver"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Publish ``scope`` automatically at ``at`` (seconds on the driver's clock)."""

    promo: str
    at: float
    scope: TargetScope = TargetScope()
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Publish:
    promo: str
    scope: TargetScope = TargetScope()
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Pause:
    promo: str
    channel: str
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Resume:
    promo: str
    channel: str
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Rollback:
    """Take the promotion back from ``scope``; ``deadline`` (s) is what rollback SLOs judge."""

    promo: str
    scope: TargetScope = TargetScope()
    deadline: float = 300.0
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class End:
    promo: str
    actor: str = "operator"


@dataclass(frozen=True, slots=True)
class Settle:
    promo: str
    actor: str = "finance"


@dataclass(frozen=True, slots=True)
class Reconcile:
    promo: str
    actor: str = "finance"


@dataclass(frozen=True, slots=True)
class ReplayDeadLetters:
    """Give dead-lettered deliveries a fresh set of attempts (all, or one promo/endpoint)."""

    promo: str | None = None
    endpoint: str | None = None
    actor: str = "operator"


OperatorCommand = (
    CreateDraft
    | Submit
    | Validate
    | Approve
    | Reject
    | Schedule
    | Publish
    | Pause
    | Resume
    | Rollback
    | End
    | Settle
    | Reconcile
    | ReplayDeadLetters
)


# --- endpoint events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The ERP's answer to a RequestValidation command."""

    promo: str
    version: int
    ok: bool
    reasons: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What came back for one SendDelivery attempt.

    ``outcome``: ok (applied/removed synchronously), accepted (taken, acknowledgement will
    follow asynchronously), error (5xx other than 503), unavailable (503 or connection
    refused), throttled (429), timeout (no answer within the timeout), rejected (4xx other
    than 429: a permanent failure, not retried).
    """

    delivery_id: str
    endpoint: str
    promo: str
    version: int
    op: DeliveryOp
    attempt: int
    outcome: str
    status: int = 0
    retry_after: float | None = None
    detail: str = ""

    @classmethod
    def answering(
        cls, send: SendDelivery, outcome: str, status: int = 0, retry_after: float | None = None
    ) -> DeliveryResult:
        """The result of the attempt ``send`` made, as a driver reports it."""
        return cls(
            send.delivery_id,
            send.endpoint,
            send.promo,
            send.version,
            send.op,
            send.attempt,
            outcome,
            status,
            retry_after,
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Ack:
    """An asynchronous acknowledgement (webhook, poll result, batch pick-up report)."""

    endpoint: str
    promo: str
    version: int
    op: DeliveryOp
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    data: tuple = field(default=())


EndpointEvent = ValidationResult | DeliveryResult | Ack | TimerFired
Event = OperatorCommand | EndpointEvent
