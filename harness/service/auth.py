"""API keys, roles and the per-key rate limit of the orchestrator's HTTP API.

Free of FastAPI on purpose: ``deps.py`` turns these into request dependencies, and the
CLI (``promoharness serve``) builds and prints a ``KeyRing`` without importing a server.

Roles and what they may do (segregation of duties: whoever approves a promotion's spend
does not settle it, so settlement and reconciliation belong to ``finance`` alone):

============  ==================================================================
merchandiser  create, submit, validate
approver      validate, approve, reject
operator      schedule, publish, pause, resume, rollback, end, replay dead letters
finance       settle, reconcile
viewer        read only (every role may read)
channel       acknowledge deliveries to endpoints of its own ``channel`` only
============  ==================================================================
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHANNELS",
    "DEMO_KEYS",
    "ROLES",
    "KeyRing",
    "Principal",
    "RateLimiter",
    "TokenBucket",
]

ROLES = frozenset({"merchandiser", "approver", "operator", "finance", "viewer", "channel"})
# Channels an adapter key may speak for: the delivery channels of the estate (the ERP's
# price book included, as it is delivered to like any other endpoint).
CHANNELS = frozenset({"erp", "pos", "ecommerce", "loyalty", "marketplace"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a key belongs to; ``channel`` is set for (and only for) channel adapters."""

    name: str
    role: str
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role: unknown role {self.role!r} (one of {sorted(ROLES)})")
        if (self.role == "channel") != (self.channel is not None):
            raise ValueError("channel: required for role 'channel' and only for it")
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel: unknown channel {self.channel!r}")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """API key -> Principal. Keys are kept as SHA-256 digests, never in clear."""

    def __init__(self, keys: Mapping[str, Principal] | None = None) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for key, principal in (keys or {}).items():
            self.add(key, principal)

    def add(self, key: str, principal: Principal) -> None:
        if len(key) < 8:
            raise ValueError("key: an API key needs at least 8 characters")
        digest = _digest(key)
        if digest in self._by_digest:
            raise ValueError(f"key of {principal.name!r} is already in the ring")
        self._by_digest[digest] = principal

    def lookup(self, key: str | None) -> Principal | None:
        """The key's principal, or None for a missing or unknown key."""
        if not key:
            return None
        # Probing by digest: lookup time tells nothing about how close a guess was.
        return self._by_digest.get(_digest(key))

    def principals(self) -> Iterator[Principal]:
        return iter(self._by_digest.values())

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def demo(cls) -> KeyRing:
        """The well-known demo keys (``DEMO_KEYS``): for local runs and tests only."""
        return cls(DEMO_KEYS)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        """Load ``{"<key>": {"name": ..., "role": ..., "channel": ...}, ...}`` (JSON)."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object of key -> principal")
        return cls(
            {
                key: Principal(spec["name"], spec["role"], spec.get("channel"))
                for key, spec in data.items()
            }
        )


def _demo_keys() -> dict[str, Principal]:
    keys = {
        "merch-demo-key": Principal("demo-merchandiser", "merchandiser"),
        "approver-demo-key": Principal("demo-approver", "approver"),
        "operator-demo-key": Principal("demo-operator", "operator"),
        "finance-demo-key": Principal("demo-finance", "finance"),
        "viewer-demo-key": Principal("demo-viewer", "viewer"),
    }
    for channel in ("pos", "ecommerce", "loyalty", "marketplace", "erp"):
        keys[f"channel-{channel}-demo-key"] = Principal(f"demo-{channel}", "channel", channel)
    return keys


DEMO_KEYS: Mapping[str, Principal] = _demo_keys()

# Which demo key may carry out each timeline action (`live` and the load campaigns play
# scenario timelines through the API with these); the rest need the operator.
DEMO_KEY_FOR_ACTION: Mapping[str, str] = {
    "create": "merch-demo-key",
    "submit": "merch-demo-key",
    "validate": "merch-demo-key",
    "approve": "approver-demo-key",
    "reject": "approver-demo-key",
    "settle": "finance-demo-key",
    "reconcile": "finance-demo-key",
}
DEMO_OPERATOR_KEY = "operator-demo-key"


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; starts full."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        # max(): a monotonic clock never goes back, but an injected test clock might.
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """One token bucket per API key, on a monotonic clock (injectable for tests)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[bytes, TokenBucket] = {}

    def check(self, key: str) -> int | None:
        """None when the request may go on, else the Retry-After in whole seconds (>= 1).

        Only keys the ring knows get here, so the buckets are bounded by the ring's size.
        """
        now = self._clock()
        digest = _digest(key)  # no key kept in clear here either
        bucket = self._buckets.get(digest)
        if bucket is None:
            bucket = self._buckets[digest] = TokenBucket(self.rate, self.burst, now)
        wait = bucket.take(now)
        if wait == 0.0:
            return None
        return max(1, math.ceil(wait))
