"""The orchestrator's bookkeeping types: endpoints, deliveries, and the command buffer.

Kept apart from the decision code (``core`` for the promotion, ``dispatch`` for the
sending) so that both share one vocabulary of delivery states:

=============  =============================================================================
pending        waiting in its channel's queue for a concurrency slot or a rate-limit token
held           held back: its channel is paused for the promotion, its batch window has not
               opened, or its endpoint's circuit breaker is open
in_flight      sent, no result yet
awaiting_ack   accepted by the endpoint; the asynchronous acknowledgement has not come
retry_wait     failed; a retry timer is running
acked          an apply the orchestrator believes applied
revoked        a revoke the orchestrator believes done (or one that never needed sending)
dead_lettered  given up on; in the dead-letter queue until replayed
superseded     replaced by a newer delivery for the same promotion and endpoint (a rollback,
               a re-publish, a replay); never sent again, its late results are stale
=============  =============================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.domain.eventlog import Record
from harness.orchestrator.commands import Command, WriteRecord
from harness.orchestrator.events import Ack, DeliveryResult, TargetScope

__all__ = [
    "DONE_STATES",
    "TALLY_KEYS",
    "Delivery",
    "DeliveryView",
    "EndpointInfo",
    "Out",
    "scope_json",
]

# States after which nothing more will be sent for a delivery (until a replay).
DONE_STATES = frozenset({"acked", "revoked", "dead_lettered", "superseded"})


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One endpoint of the estate as the orchestrator sees it."""

    id: str
    channel: str
    region: str = ""
    store: str = ""
    realtime: bool = True  # False: takes updates only in batch windows under a hybrid mode
    batch_offset: float | None = None  # this endpoint's window phase (e.g. a store's 02:00)
    capacity: float = 0.0  # requests/s it serves; only written to the inventory record


def bucket(state: str) -> str:
    """What a delivery state means for the promotion's phase: done, dead or open."""
    if state in ("acked", "revoked"):
        return "done"
    return "dead" if state == "dead_lettered" else "open"


_STATES = (
    "pending",
    "held",
    "in_flight",
    "awaiting_ack",
    "retry_wait",
    "acked",
    "revoked",
    "dead_lettered",
    "superseded",
)
# op -> state -> the promotion tally's key, built once and shared by the states of one
# bucket: a state change on the hot path is then two look-ups and, within a bucket
# (pending -> in_flight), an identity test instead of two calls and two tuples.
_BUCKET_KEYS = {(op, b): (op, b) for op in ("apply", "revoke") for b in ("done", "dead", "open")}
TALLY_KEYS = {op: {s: _BUCKET_KEYS[(op, bucket(s))] for s in _STATES} for op in ("apply", "revoke")}


@dataclass(slots=True, eq=False)
class Delivery:
    """One delivery (apply or revoke of one version to one endpoint) and its progress.

    Mutable and compared by identity: queues and timers hold the object itself, and a
    delivery whose ``state`` no longer matches what a queue expects is simply skipped.
    """

    delivery_id: str
    base_id: str  # delivery_id without the "#rN" replay suffix
    promo: str
    endpoint: EndpointInfo
    channel: str  # the endpoint's, kept here because the hot path asks for it often
    op: str  # "apply" | "revoke"
    version: int
    previous_delay: float  # last backoff delay (decorrelated jitter grows from it)
    attempt: int = 0  # attempts sent so far
    _state: str = "pending"
    timer: str | None = None  # the retry or ack timer running for it
    sent_at: float = 0.0
    # While this delivery is its endpoint's current intent, the promotion's tally of
    # intents by (op, bucket), kept in step with ``state`` so that the promotion's phase
    # is read in O(1) instead of scanning 600 endpoints after every event.
    tally: dict[tuple[str, str], int] | None = None

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        tally = self.tally
        if tally is not None:
            keys = TALLY_KEYS[self.op]
            old, new = keys[self._state], keys[value]
            if old is not new:
                tally[old] -= 1
                tally[new] = tally.get(new, 0) + 1
        self._state = value

    def count_in(self, tally: dict[tuple[str, str], int] | None) -> None:
        """Start (a dict) or stop (None) counting this delivery in a promotion's tally."""
        key = TALLY_KEYS[self.op][self._state]
        if self.tally is not None:
            self.tally[key] -= 1
        if tally is not None:
            tally[key] = tally.get(key, 0) + 1
        self.tally = tally

    @property
    def done_state(self) -> str:
        """The state a success leads to."""
        return "acked" if self.op == "apply" else "revoked"


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A read-only snapshot of a delivery, for drivers, the HTTP API and tests."""

    delivery_id: str
    promo: str
    endpoint: str
    channel: str
    op: str
    version: int
    attempt: int
    state: str

    @classmethod
    def of(cls, d: Delivery) -> DeliveryView:
        return cls(
            d.delivery_id, d.promo, d.endpoint.id, d.channel, d.op, d.version, d.attempt, d.state
        )


_new = object.__new__
_new_tuple = tuple.__new__  # one global read, not a type attribute look-up, per record
_set_record = WriteRecord.__dict__["record"].__set__  # the slot's descriptor


class Out:
    """The commands one ``handle`` call produces, in order, and the promotions it touched.

    A plain class rather than a dataclass: one is built per event, and the generated
    ``__init__`` calls a factory per default where this one writes two literals.

    ``records``: a driver's event log to append records to directly, instead of returning
    each as a ``WriteRecord`` among the commands. A driver that writes every record at once
    and in order loses nothing (the log's order is the commands' order), and the records,
    several per delivery, skip a wrapper and a pass through the driver's dispatch.
    """

    __slots__ = ("commands", "now", "records", "touched")

    def __init__(self, now: float, records: list[Record] | None = None) -> None:
        self.now = now
        self.records = records
        self.commands: list[Command] = []
        # Promotions whose deliveries changed, in first-touch order (a dict, for determinism).
        self.touched: dict[str, None] = {}

    def __repr__(self) -> str:
        return f"Out(now={self.now!r}, commands={self.commands!r}, touched={self.touched!r})"

    def emit(self, command: Command) -> None:
        self.commands.append(command)

    def record(self, kind: str, **fields: object) -> None:
        record = Record(self.now, kind, **fields)  # type: ignore[arg-type]
        if self.records is not None:
            self.records.append(record)
        else:
            self.commands.append(WriteRecord(record))

    def delivery_record(
        self,
        kind: str,
        d: Delivery,
        outcome: str = "",
        value: float = 0.0,
        attempt: int | None = None,
    ) -> None:
        """A delivery-level record: who, which version, which attempt, which delivery."""
        # All eleven fields in order, built as a tuple (no keyword handling, no call to
        # ``_make``), and any command stored through its slot as its ``__init__`` would:
        # this runs several times per delivery on the hot path, where callers pass the
        # arguments by position (a keyword costs a fifth of the call).
        ep = d.endpoint
        record = _new_tuple(
            Record,
            (
                self.now,
                kind,
                d.promo,
                d.version,
                ep.id,
                ep.channel,
                ep.region,
                d.attempt if attempt is None else attempt,
                outcome,
                value,
                d.delivery_id,
            ),
        )
        records = self.records
        if records is not None:
            records.append(record)
            return
        command = _new(WriteRecord)
        _set_record(command, record)
        self.commands.append(command)

    def stale_result(self, ev: DeliveryResult, ep: EndpointInfo | None) -> None:
        """A result about no delivery in flight (or an unknown endpoint): kept, ignored."""
        self.record(
            "stale",
            promo=ev.promo,
            version=ev.version,
            endpoint=ev.endpoint,
            channel=ep.channel if ep else "",
            region=ep.region if ep else "",
            attempt=ev.attempt,
            outcome=ev.outcome,
            detail=ev.delivery_id,
        )

    def stale_ack(self, ev: Ack, ep: EndpointInfo | None, attempt: int, reason: str) -> None:
        """An acknowledgement refused (see ``AckRefusal``): kept, ignored.

        ``attempt``: the attempts sent of the delivery it names (0: none, or no such
        delivery); ``detail``: "<op>:<reason>".
        """
        self.record(
            "stale",
            promo=ev.promo,
            version=ev.version,
            endpoint=ev.endpoint,
            channel=ep.channel if ep else "",
            region=ep.region if ep else "",
            attempt=attempt,
            outcome="ack",
            detail=f"{ev.op}:{reason}",
        )

    def touch(self, promo: str) -> None:
        self.touched[promo] = None


def scope_json(scope: TargetScope) -> str:
    """The scope as compact JSON, for publish/schedule/rollback record details."""
    return json.dumps(
        {
            "channels": list(scope.channels),
            "regions": list(scope.regions),
            "stores": list(scope.stores),
        },
        separators=(",", ":"),
    )
