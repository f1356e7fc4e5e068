"""Read-side views the routes serve: propagation counts, audit pages, the promotion index.

Everything here reads the runtime's public views only (``orchestrator`` read-only
methods, ``records``) and is built to stay cheap while a 600-store publish runs: the
propagation counts come out of ONE pass over the promotion's deliveries, and the index
of promotions and the endpoint directory are kept incrementally, never rescanned.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from harness.domain.eventlog import Record
from harness.domain.promotion import Promotion
from harness.orchestrator.commands import WriteRecord
from harness.orchestrator.core import Orchestrator

__all__ = [
    "AUDIT_CHUNK",
    "Directory",
    "PromotionDumps",
    "PromotionIndex",
    "Runtime",
    "StatusCache",
    "audit_page",
    "dead_letter_dicts",
    "propagation",
]

# How many records a filtered audit read asks the runtime for at a time.
AUDIT_CHUNK = 5000
# How long (wall seconds) a promotion's status body is served from cache. The core has no
# cheap "changed since" signal, and one pass over 600 deliveries costs milliseconds: at
# hundreds of reads a second, sharing one pass per 100 ms keeps reads off the event loop's
# critical path. A change of lifecycle state always shows at once (it is in the key).
STATUS_TTL = 0.1


class Runtime(Protocol):
    """What the service needs from its driver (``harness.runtime.live.LiveRuntime``)."""

    orchestrator: Orchestrator

    async def submit(self, event: Any) -> None: ...

    def records(
        self, since: int = 0, limit: int | None = None, promo: str | None = None
    ) -> list[Record]: ...

    def now(self) -> float: ...

    def stats(self) -> dict[str, float]: ...


def propagation(
    orchestrator: Orchestrator,
    promo: str,
    *,
    endpoints: bool,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """Delivery-state counts (overall and per channel) and a page of per-endpoint rows."""
    views = orchestrator.deliveries(promo)
    states: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    for v in views:
        states[v.state] = states.get(v.state, 0) + 1
        channel = by_channel.get(v.channel)
        if channel is None:
            channel = by_channel[v.channel] = {}
        channel[v.state] = channel.get(v.state, 0) + 1
    out: dict[str, Any] = {
        "total": len(views),
        "states": states,
        "by_channel": by_channel,
        "endpoints": None,
        "offset": offset,
        "next_offset": None,
    }
    if endpoints:
        page = views[offset : offset + limit]
        out["endpoints"] = [
            {
                "endpoint": v.endpoint,
                "channel": v.channel,
                "op": v.op,
                "state": v.state,
                "version": v.version,
                "attempt": v.attempt,
            }
            for v in page
        ]
        if offset + limit < len(views):
            out["next_offset"] = offset + limit
    return out


def audit_page(
    runtime: Runtime, since: int, limit: int, promo: str | None
) -> tuple[list[Record], int]:
    """Up to ``limit`` records after cursor ``since`` (of the promotion, if given), and the
    cursor to read on from.

    The cursor is a position in the whole log (record ``seq``: records are numbered 1, 2,
    ... with no gaps, and ``records(since)`` returns those after ``since``). The runtime's
    ``records`` does not say where each record sits, so a filtered read walks the whole log
    in chunks to know how far it went.
    """
    if promo is None:
        records = runtime.records(since, limit)
        return records, since + len(records)
    found: list[Record] = []
    cursor = since
    while len(found) < limit:
        chunk = runtime.records(cursor, AUDIT_CHUNK)
        for r in chunk:
            cursor += 1
            if r.promo == promo:
                found.append(r)
                if len(found) == limit:
                    break
        if len(chunk) < AUDIT_CHUNK:
            break
    return found, cursor


def dead_letter_dicts(orchestrator: Orchestrator) -> list[dict[str, Any]]:
    return [dataclasses.asdict(e) for e in orchestrator.dead_letters()]


class PromotionIndex:
    """The ids of every promotion created, in creation order, from the "create" records.

    Read from the log rather than remembered from POSTs so that promotions a scenario
    timeline created, or that existed before a restart, are listed too.
    """

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}
        self._cursor = 0

    def ids(self, runtime: Runtime) -> list[str]:
        while True:
            chunk = runtime.records(self._cursor, AUDIT_CHUNK)
            self._cursor += len(chunk)
            for r in chunk:
                if r.kind == "create":
                    self._ids[r.promo] = None
            if len(chunk) < AUDIT_CHUNK:
                return list(self._ids)


class PromotionDumps:
    """Each promotion's JSON form, dumped once per definition rather than once per read."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Promotion, dict[str, Any]]] = {}

    def of(self, promotion: Promotion) -> dict[str, Any]:
        hit = self._cache.get(promotion.id)
        # Identity, not equality: a new revision is a new (frozen) object.
        if hit is None or hit[0] is not promotion:
            hit = (promotion, promotion.model_dump(mode="json", by_alias=True))
            self._cache[promotion.id] = hit
        return hit[1]


class StatusCache:
    """Serialized status bodies, keyed by everything they depend on but the deliveries."""

    def __init__(self, ttl: float = STATUS_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._bodies: dict[tuple[Any, ...], tuple[float, bytes]] = {}

    def get(self, key: tuple[Any, ...], build: Callable[[], dict[str, Any]]) -> bytes:
        now = self._clock()
        hit = self._bodies.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        if len(self._bodies) > 1024:  # clients paging oddly must not grow this forever
            self._bodies = {k: v for k, v in self._bodies.items() if v[0] > now}
        body = json.dumps(build(), ensure_ascii=False, separators=(",", ":")).encode()
        self._bodies[key] = (now + self.ttl, body)
        return body


class Directory:
    """Endpoint id -> channel, from the orchestrator's inventory (for scoping callbacks)."""

    def __init__(self) -> None:
        self._channels: dict[str, str] | None = None

    def channel(self, orchestrator: Orchestrator, endpoint: str) -> str | None:
        if self._channels is None:
            self._channels = _inventory(orchestrator.endpoint_records(0.0))
        return self._channels.get(endpoint)


def _inventory(commands: Sequence[Any]) -> dict[str, str]:
    return {
        c.record.endpoint: c.record.channel
        for c in commands
        if isinstance(c, WriteRecord) and c.record.kind == "endpoint"
    }
