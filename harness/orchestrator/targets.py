"""Which version of each promotion every endpoint should carry: its current delivery.

Each (promotion, endpoint) pair has at most one *current* delivery, its intent: an apply of
some version or a revoke of it. Publishes, rollbacks and replays replace intents here;
``dispatch.Dispatcher`` gets them to the endpoints.

Rollback under races uses tombstone versions: revoking version v at an endpoint creates a
revoke at version v+1, which becomes that endpoint's current revision (a re-publish goes
on to v+2). Endpoints apply only versions newer than any they have seen for the
promotion, so a late apply of v cannot resurrect it; and the orchestrator itself never
sends v again: the superseded delivery is withdrawn (timers cancelled, queued and held
sends dropped, any result or ack about it treated as stale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from harness.domain.promotion import Promotion
from harness.domain.scope import SYSTEM_OF_RECORD_CHANNELS, ScopeLike, covers
from harness.orchestrator.delivery import DeadLetterEntry
from harness.orchestrator.dispatch import Dispatcher
from harness.orchestrator.events import TargetScope
from harness.orchestrator.state import TALLY_KEYS, Delivery, EndpointInfo, Out

__all__ = ["Targets"]


class Targets:
    """The current delivery of every promotion at every endpoint, and how it changes."""

    def __init__(self, endpoints: Iterable[EndpointInfo], dispatch: Dispatcher) -> None:
        self._endpoints = list(endpoints)
        self._dispatch = dispatch
        self._intents: dict[str, dict[str, Delivery]] = {}  # promo -> endpoint -> delivery
        self._tallies: dict[str, dict[tuple[str, str], int]] = {}  # promo -> intents by bucket
        self._replays: dict[str, int] = {}  # base delivery id -> replays so far
        # channel -> its policy's first backoff delay, each new delivery's previous_delay
        # (policies are fixed at construction): one look-up per delivery, not a call.
        self._first_delay = {
            ep.channel: dispatch.policy(ep.channel).backoff.base for ep in self._endpoints
        }
        # Each endpoint as ``covers`` takes it: channel, region and store (None when it has
        # none), and whether it is the system of record (outside every promotion's scope).
        self._places = [
            (
                ep,
                ep.channel,
                ep.region or None,
                ep.store or None,
                ep.channel in SYSTEM_OF_RECORD_CHANNELS,
            )
            for ep in self._endpoints
        ]

    def add(self, promo: str) -> None:
        self._intents[promo] = {}
        self._tallies[promo] = {}

    def current(self, promo: str, endpoint: str) -> Delivery | None:
        return self._intents.get(promo, {}).get(endpoint)

    def of(self, promo: str) -> list[Delivery]:
        return list(self._intents.get(promo, {}).values())

    def publish(self, p: Promotion, scope: TargetScope, out: Out) -> None:
        """Apply ``p`` at every covered endpoint not already meant to carry it."""
        intents = self._intents[p.id]
        created: list[Delivery] = []
        for ep in self._covered(p, scope, "apply"):
            current = intents.get(ep.id)
            if current is not None and current.op == "apply":
                continue  # already meant to carry it; a dead letter waits for a replay
            # After a revoke the endpoint has seen v+1: a re-publish must be newer still.
            version = p.version if current is None else current.version + 1
            if current is not None:
                self._dispatch.withdraw(current, out)
            d = self._new(p.id, ep, "apply", version)
            out.delivery_record("target", d, "apply")
            created.append(d)
        self.start(created, out)
        out.touch(p.id)

    def rollback(self, p: Promotion, scope: TargetScope, out: Out) -> None:
        """Revoke ``p`` at every covered endpoint whose intent is to carry it."""
        created: list[Delivery] = []
        for ep in self._covered(p, scope, "revoke"):
            current = self._intents[p.id].get(ep.id)
            if current is None or current.op != "apply":
                continue
            self._dispatch.withdraw(current, out)
            d = self._new(p.id, ep, "revoke", current.version + 1)
            out.delivery_record("target", d, "revoke")
            if self._dispatch.ever_sent(p.id, ep.id):
                created.append(d)
            else:
                d.state = "revoked"  # nothing ever left for it: nothing to take back
        self.start(created, out)
        out.touch(p.id)

    def replay(
        self,
        entries: list[DeadLetterEntry],
        replayable: Callable[[str], bool],
    ) -> tuple[list[Delivery], list[DeadLetterEntry]]:
        """New deliveries (from attempt 1) for the entries still current, and those dropped.

        ``replayable(promo)`` says whether the promotion's lifecycle still takes deliveries.
        The caller hands the new deliveries to ``start`` once it has written its records.
        """
        created: list[Delivery] = []
        dropped: list[DeadLetterEntry] = []
        for entry in entries:
            current = self.current(entry.promo, entry.endpoint)
            if (
                current is None
                or current.delivery_id != entry.delivery_id
                or current.state != "dead_lettered"
                or not replayable(entry.promo)
            ):
                # Revoked, re-published or ended since: a replay would undo a later decision.
                dropped.append(entry)
                continue
            n = self._replays.get(current.base_id, 0) + 1
            self._replays[current.base_id] = n
            current.state = "superseded"
            created.append(self._new(entry.promo, current.endpoint, current.op, current.version, n))
        return created, dropped

    def phase(self, promo: str) -> str:
        """The lifecycle phase the promotion's deliveries put it in (see domain.lifecycle)."""
        count = self._tallies[promo].get  # (op, bucket) -> intents; absent or 0 = none
        if count(("revoke", "open")):
            return "rolling_back"
        if count(("apply", "open")):
            return "publishing"
        if count(("apply", "dead")):
            return "partially_active"
        if count(("apply", "done")):
            return "active"
        # Nothing anywhere: all taken back, or (vacuously) active after an empty publish.
        return "rolled_back" if count(("revoke", "done")) or count(("revoke", "dead")) else "active"

    def _covered(self, p: Promotion, scope: TargetScope, op: str) -> list[EndpointInfo]:
        """Endpoints in both the promotion's own scope and the operator's sub-scope.

        Both are decided by ``harness.domain.scope.covers`` (docs/scope.md). The ERP's price
        book is outside every promotion's sales scope: it is reached through the operator's
        sub-scope alone, which a publish reaches unless it names other channels.
        """
        publish = op == "apply"
        # Each scope's lists read once, as sets (``covers`` only asks membership and
        # emptiness), rather than from the pydantic model for each of 600 endpoints.
        own, sub = _lists(p.scope), _lists(scope)
        out = []
        for ep, channel, region, store, of_record in self._places:
            if not of_record and not covers(own, channel, region, store):
                continue
            if covers(sub, channel, region, store, publish=publish):
                out.append(ep)
        return out

    def _new(
        self, promo: str, ep: EndpointInfo, op: str, version: int, replay: int = 0
    ) -> Delivery:
        base = f"{promo}:{version}:{ep.id}:{op}"
        d = Delivery(  # positional, in field order: one per endpoint per publish
            f"{base}#r{replay}" if replay else base,
            base,
            promo,
            ep,
            ep.channel,
            op,
            version,
            self._first_delay[ep.channel],
        )
        intents = self._intents[promo]
        previous = intents.get(ep.id)
        if previous is not None:
            previous.count_in(None)
        intents[ep.id] = d
        # d.count_in(tally), inlined for a new delivery (counted nowhere yet): one per
        # endpoint per publish.
        tally = d.tally = self._tallies[promo]
        key = TALLY_KEYS[op][d._state]
        tally[key] = tally.get(key, 0) + 1
        return d

    def start(self, created: list[Delivery], out: Out) -> None:
        """Hand new deliveries to the dispatcher, then pump each channel once, in order."""
        channels: dict[str, None] = {}
        enqueue, touched = self._dispatch.enqueue, out.touched
        for d in created:
            enqueue(d, out)
            channels[d.channel] = None
            touched[d.promo] = None
        for channel in channels:
            self._dispatch.pump(channel, out)


class _Lists(NamedTuple):
    """A scope's three lists as sets: what ``covers`` reads, without the model around."""

    channels: frozenset[str]
    regions: frozenset[str]
    stores: frozenset[str]


def _lists(scope: ScopeLike) -> _Lists:
    return _Lists(frozenset(scope.channels), frozenset(scope.regions), frozenset(scope.stores))
