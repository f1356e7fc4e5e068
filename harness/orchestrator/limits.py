"""Load limits on delivery: circuit breaker (per endpoint), retry budget, token bucket.

PURE: no clock, no I/O; time is the ``now`` the caller passes in. ``delivery`` re-exports
everything here, so the orchestrator core imports these from ``delivery``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "BreakerConfig",
    "CircuitBreaker",
    "RateLimitConfig",
    "RetryBudget",
    "RetryBudgetConfig",
    "TokenBucket",
]


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {message}")


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _positive_int(value: int) -> bool:
    # bool is an int subclass; True as a threshold is a config mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    open_seconds: float = 30.0  # how long it stays open before a half-open probe
    half_open_probes: int = 1  # probes admitted at once while half-open
    success_threshold: int = 1  # probe successes needed to close again

    def __post_init__(self) -> None:
        _require(_positive_int(self.failure_threshold), "failure_threshold", "must be int >= 1")
        _require(
            _finite(self.open_seconds) and self.open_seconds >= 0,
            "open_seconds",
            "must be a finite number >= 0",
        )
        _require(_positive_int(self.half_open_probes), "half_open_probes", "must be int >= 1")
        _require(_positive_int(self.success_threshold), "success_threshold", "must be int >= 1")


class CircuitBreaker:
    """Closed / open / half-open breaker for one endpoint.

    Results that arrive while open are stragglers sent before it opened; they neither
    extend the open period nor close it early, so the cool-down stays predictable.

    ``at_rest`` (read it, never set it): closed with no failure counted, so that a
    success would change nothing. A plain attribute kept in step by every change of
    state, so a caller on a hot path (the dispatcher, once per result) may skip
    ``record_success`` on a single read.
    """

    __slots__ = (
        "_failures",
        "_in_flight",
        "_successes",
        "at_rest",
        "config",
        "opened_at",
        "state",
    )

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.state: str = "closed"
        self.opened_at: float | None = None
        self.at_rest = True
        self._failures = 0  # consecutive, while closed
        self._in_flight = 0  # probes admitted, while half-open
        self._successes = 0  # probe successes, while half-open

    def allow(self, now: float) -> bool:
        """May a request go now? While half-open, a True counts one probe in flight."""
        if self.state == "closed":
            return True
        if self.state == "open":
            retry_at = self.retry_at()
            if retry_at is not None and now < retry_at:
                return False
            self.state = "half_open"
            self._in_flight = 0
            self._successes = 0
        if self._in_flight < self.config.half_open_probes:
            self._in_flight += 1
            return True
        return False

    def retry_at(self) -> float | None:
        """When an open breaker will admit a probe; None unless open."""
        if self.state != "open" or self.opened_at is None:
            return None
        return self.opened_at + self.config.open_seconds

    def record_success(self, now: float) -> str | None:
        """Returns the new state when it changed, else None."""
        if self.state == "closed":
            self._failures = 0
            self.at_rest = True
        elif self.state == "half_open":
            self._in_flight = max(0, self._in_flight - 1)
            self._successes += 1
            if self._successes >= self.config.success_threshold:
                self._close()
                return "closed"
        return None

    def record_failure(self, now: float) -> str | None:
        """Returns the new state when it changed, else None."""
        if self.state == "closed":
            self._failures += 1
            self.at_rest = False
            if self._failures >= self.config.failure_threshold:
                self._open(now)
                return "open"
        elif self.state == "half_open":
            self._open(now)
            return "open"
        return None

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.at_rest = False
        self._failures = self._in_flight = self._successes = 0

    def _close(self) -> None:
        self.state = "closed"
        self.opened_at = None
        self.at_rest = True
        self._failures = self._in_flight = self._successes = 0


@dataclass(frozen=True, slots=True)
class RetryBudgetConfig:
    max_tokens: float = 100.0
    token_ratio: float = 0.1

    def __post_init__(self) -> None:
        _require(_finite(self.max_tokens) and self.max_tokens > 0, "max_tokens", "must be > 0")
        _require(_finite(self.token_ratio) and self.token_ratio > 0, "token_ratio", "must be > 0")


class RetryBudget:
    """Retry throttling for one channel, as in gRPC's gRFC A6.

    Every failure costs a token, every success earns ``token_ratio``; retries stop while
    the bucket is at or below half. Counted in exact fractions (gRFC A6 asks for fixed
    point) so that e.g. 48 + 20 x 0.1 is exactly 50 and not allowed to retry.
    """

    __slots__ = ("_max", "_ratio", "_tokens", "config")

    def __init__(self, config: RetryBudgetConfig) -> None:
        self.config = config
        # Fraction(str(x)) reads 0.1 as 1/10, not as the binary float nearest to it.
        self._max = Fraction(str(config.max_tokens))
        self._ratio = Fraction(str(config.token_ratio))
        self._tokens = self._max

    @property
    def tokens(self) -> float:
        return float(self._tokens)

    def can_retry(self) -> bool:
        return self._tokens > self._max / 2

    def record_failure(self) -> None:
        self._tokens = max(Fraction(0), self._tokens - 1)

    def record_success(self) -> None:
        self._tokens = min(self._max, self._tokens + self._ratio)


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    rate: float  # requests per second (a cloud ERP's API quota)
    burst: int = 1

    def __post_init__(self) -> None:
        _require(_finite(self.rate) and self.rate > 0, "rate", "must be a finite number > 0")
        _require(_positive_int(self.burst), "burst", "must be int >= 1")


class TokenBucket:
    """``rate`` requests per second with bursts up to ``burst``; starts full.

    Kept as GCRA (a theoretical arrival time) rather than a fractional token count, so
    ``next_free`` is exact: ``try_acquire(next_free(t))`` always succeeds, with no float
    refill drift at the boundary.
    """

    __slots__ = ("_interval", "_tat", "_tolerance")

    def __init__(self, rate: float, burst: int, now: float = 0.0) -> None:
        RateLimitConfig(rate, burst)  # validates, naming the field
        self._interval = 1.0 / rate
        # How far ahead of now the arrival time may run: burst - 1 requests in reserve.
        self._tolerance = (burst - 1) * self._interval
        self._tat = now

    def try_acquire(self, now: float) -> bool:
        if self._tat - self._tolerance > now:
            return False
        self._tat = max(self._tat, now) + self._interval
        return True

    def next_free(self, now: float) -> float:
        """Earliest time >= now at which try_acquire would succeed."""
        return max(now, self._tat - self._tolerance)
