"""Endpoint behaviour profiles: latency distributions, fault rates, outages, rate limits.

Pure and seeded. A :class:`Profile` is an immutable description (scenario files fill it);
the mutable pieces a running endpoint needs — its token bucket and its expanded outage
windows — are built from it per endpoint (:meth:`RateLimit.bucket`,
:meth:`OutageSchedule.build`). Every random draw goes through a ``random.Random`` the
caller injects; time is a float ``now`` in seconds since scenario start.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

LatencyKind = Literal["fixed", "uniform", "exponential", "lognormal"]
OutageMode = Literal["refuse", "hang"]


@dataclass(frozen=True, slots=True)
class Latency:
    """A service-time distribution, in seconds.

    ``fixed``: ``mean``. ``uniform``: ``low``..``high``. ``exponential``: ``mean``.
    ``lognormal``: ``median`` and ``sigma`` (of the underlying normal), or ``mean`` and
    ``sigma``. After construction ``mean`` always holds the analytic mean, so a runtime
    can turn capacity into throughput (capacity / mean) without sampling.
    """

    kind: LatencyKind = "fixed"
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    median: float | None = None
    sigma: float | None = None

    def __post_init__(self) -> None:
        # object.__setattr__: the dataclass is frozen, but deriving the missing parameters
        # once here keeps sample() branch-light on the hot path.
        if self.kind == "fixed" or self.kind == "exponential":
            if self.mean is None or self.mean < 0:
                raise ValueError(f"{self.kind} latency needs mean >= 0")
        elif self.kind == "uniform":
            if self.low is None or self.high is None or not 0 <= self.low <= self.high:
                raise ValueError("uniform latency needs 0 <= low <= high")
            object.__setattr__(self, "mean", (self.low + self.high) / 2)
        elif self.kind == "lognormal":
            if self.sigma is None or self.sigma < 0:
                raise ValueError("lognormal latency needs sigma >= 0")
            if self.median is None:
                if self.mean is None or self.mean <= 0:
                    raise ValueError("lognormal latency needs median > 0 (or mean > 0)")
                object.__setattr__(self, "median", self.mean / math.exp(self.sigma**2 / 2))
            elif self.median <= 0:
                raise ValueError("lognormal latency needs median > 0")
            object.__setattr__(self, "mean", self.median * math.exp(self.sigma**2 / 2))
        else:
            raise ValueError(f"unknown latency kind {self.kind!r}")

    @classmethod
    def fixed(cls, value: float) -> Latency:
        return cls("fixed", mean=value)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        return cls("uniform", low=low, high=high)

    @classmethod
    def exponential(cls, mean: float) -> Latency:
        return cls("exponential", mean=mean)

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Latency:
        return cls("lognormal", median=median, sigma=sigma)

    def scaled(self, factor: float) -> Latency:
        """The same distribution with every duration ``factor`` times as long."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"latency scale factor must be finite and > 0, got {factor}")
        if self.kind == "uniform":
            return Latency("uniform", low=self.low * factor, high=self.high * factor)  # type: ignore[operator]
        if self.kind == "lognormal":
            return Latency("lognormal", median=self.median * factor, sigma=self.sigma)  # type: ignore[operator]
        return Latency(self.kind, mean=self.mean * factor)  # type: ignore[operator]

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.mean  # type: ignore[return-value]
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)  # type: ignore[arg-type]
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean) if self.mean else 0.0  # type: ignore[operator]
        return rng.lognormvariate(math.log(self.median), self.sigma)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Outage:
    """The endpoint is down in ``[start, end)``: ``refuse`` answers 503 at once, ``hang``
    never answers (the client times out)."""

    start: float
    end: float
    mode: OutageMode = "refuse"

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"outage end {self.end} is not after start {self.start}")
        if self.mode not in ("refuse", "hang"):
            raise ValueError(f"unknown outage mode {self.mode!r}")

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class RandomOutages:
    """Failures at random: up times ~ Exp(mtbf), down times ~ Exp(mttr), from ``start``.

    The long-run share of time down is mttr / (mtbf + mttr).
    """

    mtbf: float
    mttr: float
    mode: OutageMode = "refuse"
    start: float = 0.0

    def __post_init__(self) -> None:
        if self.mtbf <= 0 or self.mttr <= 0:
            raise ValueError("random outages need mtbf > 0 and mttr > 0")

    def expand(self, horizon: float, rng: random.Random) -> list[Outage]:
        """The concrete windows up to ``horizon`` (the last one may run past it)."""
        windows: list[Outage] = []
        t = self.start
        while True:
            t += rng.expovariate(1.0 / self.mtbf)
            if t >= horizon:
                return windows
            down = rng.expovariate(1.0 / self.mttr)
            if down > 0:
                windows.append(Outage(t, t + down, self.mode))
            t += down


@dataclass(frozen=True, slots=True)
class OutageSchedule:
    """Concrete, sorted, non-overlapping outage windows with a fast ``is_down(now)``."""

    windows: tuple[Outage, ...] = ()
    _starts: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = _merge(self.windows)
        object.__setattr__(self, "windows", merged)
        object.__setattr__(self, "_starts", tuple(w.start for w in merged))

    @classmethod
    def build(
        cls,
        outages: Iterable[Outage | RandomOutages],
        horizon: float,
        rng: random.Random | None = None,
    ) -> OutageSchedule:
        """Scheduled windows as they are, random ones expanded over ``horizon`` in order
        (``rng`` is needed only when there are random ones)."""
        windows: list[Outage] = []
        for outage in outages:
            if isinstance(outage, RandomOutages):
                if rng is None:
                    raise ValueError("random outages need an rng to expand")
                windows.extend(outage.expand(horizon, rng))
            else:
                windows.append(outage)
        return cls(tuple(windows))

    def is_down(self, now: float) -> Outage | None:
        i = bisect.bisect_right(self._starts, now) - 1
        if i >= 0 and now < self.windows[i].end:
            return self.windows[i]
        return None

    def down_time(self, horizon: float) -> float:
        """Seconds down within [0, horizon)."""
        return sum(max(0.0, min(w.end, horizon) - max(w.start, 0.0)) for w in self.windows)


def _merge(windows: Iterable[Outage]) -> tuple[Outage, ...]:
    # Overlaps happen when a maintenance window meets a random failure; the earlier
    # window's mode wins because that is how the client first finds the endpoint.
    out: list[Outage] = []
    for w in sorted(windows, key=lambda w: (w.start, w.end)):
        if out and w.start <= out[-1].end:
            last = out[-1]
            if w.end > last.end:
                out[-1] = Outage(last.start, w.end, last.mode)
        else:
            out.append(w)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` banked (starts full)."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")

    def bucket(self) -> TokenBucket:
        return TokenBucket(self)


class TokenBucket:
    """The mutable state of one endpoint's :class:`RateLimit`."""

    __slots__ = ("_last", "_tokens", "limit")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._last = 0.0

    def take(self, now: float) -> float | None:
        """Spend a token: ``None`` when allowed, else the Retry-After (s) until one exists.

        A refused request spends nothing, so a client honouring Retry-After gets through.
        """
        if now > self._last:
            self._tokens = min(
                self.limit.burst, self._tokens + (now - self._last) * self.limit.rate
            )
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.limit.rate


@dataclass(frozen=True, slots=True)
class Profile:
    """How one endpoint behaves. Rates are per request and exclusive of one another.

    ``timeout_rate``: the request hangs (no change, the client times out).
    ``lost_ack_rate``: the change is applied but the reply is lost (client sees timeout).
    ``capacity``: requests served at once (the runtime's Resource / semaphore size).
    ``ack_delay``: for asynchronous endpoints (202 then webhook, activation), the delay
    between the 202 and the change taking effect + its acknowledgement; ``None`` = sync.
    ``ack_loss_rate``: the webhook is never sent (the change still happens).
    ``ack_late_rate`` / ``ack_late_delay``: the webhook sometimes comes this much later.
    ``accept_stale`` / ``keep_after_revoke`` / ``idempotent=False`` play faulty endpoints.
    """

    name: str = "custom"
    latency: Latency = Latency("fixed", mean=0.05)
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_ack_rate: float = 0.0
    capacity: int = 4
    rate_limit: RateLimit | None = None
    outages: tuple[Outage | RandomOutages, ...] = ()
    idempotent: bool = True
    accept_stale: bool = False
    keep_after_revoke: bool = False
    max_in_queue: int | None = None
    ack_delay: Latency | None = None
    ack_loss_rate: float = 0.0
    ack_late_rate: float = 0.0
    ack_late_delay: Latency = Latency("exponential", mean=600.0)

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.timeout_rate, self.lost_ack_rate)
        if any(not 0 <= r <= 1 for r in rates) or sum(rates) > 1:
            raise ValueError(f"profile {self.name!r}: fault rates must be in [0, 1], sum <= 1")
        if not 0 <= self.ack_loss_rate <= 1 or not 0 <= self.ack_late_rate <= 1:
            raise ValueError(f"profile {self.name!r}: ack rates must be in [0, 1]")
        if self.capacity < 1:
            raise ValueError(f"profile {self.name!r}: capacity must be >= 1")
        if self.max_in_queue is not None and self.max_in_queue < 0:
            raise ValueError(f"profile {self.name!r}: max_in_queue must be >= 0")

    @property
    def throughput(self) -> float:
        """Requests per second at full capacity (the inventory record's value)."""
        mean = self.latency.mean or 0.0
        return self.capacity / mean if mean > 0 else math.inf


def capacity_cut(profile: Profile, share: float) -> Profile:
    """``profile`` with its throughput cut to ``share`` (0 < share <= 1) of itself.

    The slots stay; every service time is 1/share as long, as when a container's CPU quota
    drops (``docker update --cpus``): the same threads, less CPU each.
    """
    if not (math.isfinite(share) and 0 < share <= 1):
        raise ValueError(f"capacity share must be in (0, 1], got {share}")
    if share == 1:
        return profile
    return replace(profile, latency=profile.latency.scaled(1.0 / share))


HOUR = 3600.0

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "healthy-pos",
            latency=Latency.lognormal(0.08, 0.4),
            error_rate=0.002,
            timeout_rate=0.001,
            lost_ack_rate=0.0005,
            capacity=4,
            max_in_queue=64,
        ),
        Profile(
            "flaky-link",
            latency=Latency.lognormal(0.3, 0.9),
            error_rate=0.03,
            timeout_rate=0.02,
            lost_ack_rate=0.01,
            capacity=2,
            outages=(RandomOutages(mtbf=4 * HOUR, mttr=600.0, mode="refuse"),),
            max_in_queue=32,
        ),
        Profile(
            "satellite-link",
            latency=Latency.lognormal(0.7, 0.5),
            error_rate=0.01,
            timeout_rate=0.01,
            lost_ack_rate=0.005,
            capacity=2,
            outages=(RandomOutages(mtbf=12 * HOUR, mttr=1800.0, mode="hang"),),
            max_in_queue=32,
        ),
        # Faulty estates for rollback and double-application scenarios.
        Profile("legacy-pos", latency=Latency.lognormal(0.2, 0.5), capacity=1, idempotent=False),
        Profile("stale-pos", latency=Latency.lognormal(0.1, 0.4), accept_stale=True),
        Profile("sticky-pos", latency=Latency.lognormal(0.1, 0.4), keep_after_revoke=True),
        Profile(
            "cloud-erp",
            latency=Latency.lognormal(0.25, 0.5),
            error_rate=0.005,
            timeout_rate=0.001,
            capacity=20,
            rate_limit=RateLimit(rate=50.0, burst=100.0),
            max_in_queue=500,
        ),
        Profile(
            "ecommerce-saas",
            latency=Latency.lognormal(0.12, 0.5),
            error_rate=0.005,
            timeout_rate=0.001,
            capacity=50,
            rate_limit=RateLimit(rate=100.0, burst=200.0),
            ack_delay=Latency.lognormal(5.0, 0.8),
            ack_loss_rate=0.01,
            ack_late_rate=0.02,
        ),
        Profile(
            "marketplace-api",
            latency=Latency.lognormal(0.4, 0.6),
            error_rate=0.01,
            timeout_rate=0.005,
            capacity=10,
            rate_limit=RateLimit(rate=5.0, burst=10.0),
            ack_delay=Latency.uniform(60.0, 900.0),
        ),
        Profile(
            "loyalty-saas",
            latency=Latency.lognormal(0.15, 0.5),
            error_rate=0.005,
            timeout_rate=0.002,
            capacity=20,
            rate_limit=RateLimit(rate=20.0, burst=40.0),
        ),
    )
}


def profile(name: str) -> Profile:
    """The named preset; an unknown name is a ValueError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
