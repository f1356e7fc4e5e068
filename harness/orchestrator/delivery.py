"""Per-endpoint delivery policy: backoff with jitter, retry rules, distribution windows, DLQ.

PURE: no clock, no I/O. Every method that needs time takes ``now``; every random draw
comes from the ``random.Random`` the caller passes in, so a seeded run replays exactly.
The circuit breaker, retry budget and token bucket live in ``limits`` and are re-exported
here, so the orchestrator core imports everything delivery-related from this module.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, get_args

from harness.domain.eventlog import OUTCOMES
from harness.orchestrator.limits import (
    BreakerConfig,
    CircuitBreaker,
    RateLimitConfig,
    RetryBudget,
    RetryBudgetConfig,
    TokenBucket,
    _finite,
    _positive_int,
    _require,
)

__all__ = [
    "FAILURE_OUTCOMES_FOR_BREAKER",
    "RETRYABLE_OUTCOMES",
    "Backoff",
    "BackoffKind",
    "BreakerConfig",
    "CircuitBreaker",
    "DeadLetterEntry",
    "DeadLetterQueue",
    "DeliveryPolicy",
    "DistributionMode",
    "RateLimitConfig",
    "RetryBudget",
    "RetryBudgetConfig",
    "TokenBucket",
]

BackoffKind = Literal[
    "none", "fixed", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter"
]
_BACKOFF_KINDS: frozenset[str] = frozenset(get_args(BackoffKind))

RETRYABLE_OUTCOMES: frozenset[str] = frozenset({"error", "timeout", "throttled", "unavailable"})
# A 429 is the server protecting itself, not a sign that it is broken, so it must not trip
# the breaker; a 4xx rejection says nothing about the endpoint's health either.
FAILURE_OUTCOMES_FOR_BREAKER: frozenset[str] = frozenset({"error", "timeout", "unavailable"})
# Outcomes whose Retry-After header the policy may honour (429 and 503, RFC 9110 §10.2.3).
_RETRY_AFTER_OUTCOMES: frozenset[str] = frozenset({"throttled", "unavailable"})

# Beyond this exponent 2.0 ** n overflows; any base > 0 has long since reached the cap.
_MAX_EXPONENT = 1023


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retrying, after Brooker's "Exponential Backoff And Jitter"."""

    kind: BackoffKind = "full_jitter"
    base: float = 1.0  # seconds
    cap: float = 60.0  # seconds

    def __post_init__(self) -> None:
        _require(self.kind in _BACKOFF_KINDS, "kind", f"must be one of {sorted(_BACKOFF_KINDS)}")
        _require(_finite(self.base) and self.base > 0, "base", "must be a finite number > 0")
        _require(_finite(self.cap) and self.cap >= self.base, "cap", "must be finite and >= base")

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        """Delay before the next attempt, after `attempt` attempts have failed (attempt >= 1).

        Formulas of the AWS Architecture Blog post "Exponential Backoff And Jitter" (Marc
        Brooker, 2015), with temp = min(cap, base * 2 ** attempt):
          none: 0; fixed: base (capped at cap); exponential: temp; full_jitter: uniform(0, temp);
          equal_jitter: temp/2 + uniform(0, temp/2);
          decorrelated_jitter: min(cap, uniform(base, previous * 3)) where `previous` is the
          previous delay (pass base for the first retry).
        Exactly one rng.uniform call for the jittered kinds, none otherwise (so tests can
        replay the draws).
        """
        if attempt < 1:
            raise ValueError(f"attempt: must be >= 1, got {attempt}")
        kind = self.kind
        if kind == "none":
            return 0.0
        if kind == "fixed":
            return min(self.cap, self.base)
        if kind == "decorrelated_jitter":
            # A negative or infinite previous would put the draw outside [0, cap] or make it nan.
            if not (_finite(previous) and previous >= 0):
                raise ValueError(f"previous: must be a finite delay >= 0, got {previous}")
            return min(self.cap, rng.uniform(self.base, previous * 3))
        # Multiplying by an int 2 ** n would raise OverflowError for a large n; the float
        # product saturates to inf at worst, which min() then turns into the cap.
        temp = min(self.cap, self.base * 2.0 ** min(attempt, _MAX_EXPONENT))
        if kind == "exponential":
            return temp
        if kind == "full_jitter":
            return rng.uniform(0.0, temp)
        half = temp / 2
        return half + rng.uniform(0.0, half)  # equal_jitter


@dataclass(frozen=True, slots=True)
class DistributionMode:
    """Whether a channel takes deliveries as they come (push) or in periodic batch windows.

    ``hybrid`` pushes to endpoints that can take real-time updates and batches the rest
    (e.g. stores whose POS only picks up a nightly file).
    """

    kind: Literal["push", "batch", "hybrid"] = "push"
    interval: float = 900.0  # batch window period (e.g. 900 = every 15 min, 86400 = nightly)
    offset: float = 0.0  # phase of the windows

    def __post_init__(self) -> None:
        _require(self.kind in ("push", "batch", "hybrid"), "kind", "must be push|batch|hybrid")
        _require(_finite(self.interval) and self.interval > 0, "interval", "must be finite > 0")
        _require(_finite(self.offset), "offset", "must be a finite number")

    def next_window(self, now: float, offset: float | None = None) -> float:
        """Smallest ``offset + k * interval >= now`` over integers k (a window at now counts).

        ``offset`` overrides the mode's phase for one endpoint (e.g. a store's local 02:00).
        k may be negative: the offset is a phase, not the first window.
        """
        phase = self.offset if offset is None else offset
        interval = self.interval
        k = math.ceil((now - phase) / interval)
        # The division can round either way by an ulp; settle k on the exact comparison.
        if phase + (k - 1) * interval >= now:
            k -= 1
        elif phase + k * interval < now:
            k += 1
        return phase + k * interval

    def is_batch_for(self, realtime_capable: bool) -> bool:
        if self.kind == "push":
            return False
        if self.kind == "batch":
            return True
        return not realtime_capable


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How one channel's deliveries are sent and retried; configurable per channel."""

    timeout: float = 10.0
    max_attempts: int = 5
    backoff: Backoff = Backoff()
    honour_retry_after: bool = True
    # An 'accepted' delivery whose async ack has not come by then is re-sent (counts as a
    # failed attempt).
    ack_timeout: float = 120.0
    breaker: BreakerConfig | None = None
    retry_budget: RetryBudgetConfig | None = None
    concurrency: int | None = None  # max deliveries in flight for the channel
    rate_limit: RateLimitConfig | None = None
    distribution: DistributionMode = DistributionMode()

    def __post_init__(self) -> None:
        _require(_finite(self.timeout) and self.timeout > 0, "timeout", "must be finite > 0")
        _require(_positive_int(self.max_attempts), "max_attempts", "must be an integer >= 1")
        _require(
            _finite(self.ack_timeout) and self.ack_timeout > 0, "ack_timeout", "must be finite > 0"
        )
        _require(
            self.concurrency is None or _positive_int(self.concurrency),
            "concurrency",
            "must be None or an integer >= 1",
        )

    def retry_delay(
        self,
        attempt: int,
        previous: float,
        outcome: str,
        retry_after: float | None,
        rng: random.Random,
    ) -> float:
        """Backoff delay, raised to the server's Retry-After for 429/503 when honoured."""
        # Draw first, whatever the outcome, so the rng stream does not depend on headers.
        delay = self.backoff.delay(attempt, previous, rng)
        if self.honour_retry_after and outcome in _RETRY_AFTER_OUTCOMES and retry_after is not None:
            return max(delay, retry_after)
        return delay

    def is_retryable(self, outcome: str) -> bool:
        """True for transient failures; a rejection (4xx) or a success is never retried."""
        # An unknown outcome is a bug in a driver or adapter; failing loudly beats silently
        # dead-lettering (or retrying) a delivery.
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: unknown delivery outcome {outcome!r}")
        return outcome in RETRYABLE_OUTCOMES


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """A delivery that ran out of attempts or was rejected outright, kept for replay."""

    delivery_id: str
    endpoint: str
    channel: str
    promo: str
    version: int
    op: str
    attempts: int
    reason: str
    t: float


class DeadLetterQueue:
    """Dead-lettered deliveries in arrival order; ``take`` hands them back for a replay."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[DeadLetterEntry] = []

    def add(self, entry: DeadLetterEntry) -> None:
        self._entries.append(entry)

    def entries(self) -> list[DeadLetterEntry]:
        """In insertion order; a copy, so callers cannot reorder or drop entries."""
        return list(self._entries)

    def take(self, promo: str | None = None, endpoint: str | None = None) -> list[DeadLetterEntry]:
        """Remove and return the entries matching both filters (None matches any)."""
        taken: list[DeadLetterEntry] = []
        kept: list[DeadLetterEntry] = []
        for entry in self._entries:
            matches = (promo is None or entry.promo == promo) and (
                endpoint is None or entry.endpoint == endpoint
            )
            (taken if matches else kept).append(entry)
        self._entries = kept
        return taken

    def __len__(self) -> int:
        return len(self._entries)
