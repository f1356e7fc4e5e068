"""The behaviour every simulated endpoint shares, written once for both clocks.

Two phases, so that queueing and capacity stay in the runtime (a SimPy ``Resource`` or an
asyncio semaphore) while every decision stays here, pure and seeded:

1. ``plan(request, now, rng, queued=...)`` when a request arrives: outage (503 / hang),
   full queue (503), rate limit (429 + Retry-After), random error / hang / lost reply,
   rejection, and the service time. Nothing changes yet.
2. ``complete(request, plan, now)`` when the service time has elapsed: the endpoint
   carries the operation out (when the plan says it does) and returns the ground-truth
   changes, each of which becomes an ``applied`` / ``removed`` event-log record.
3. Asynchronous endpoints (``plan.ack_delay`` not ``None``: a 202 followed by a webhook,
   a batch pick-up, a marketplace activation) take effect later:
   ``settle(request, now)`` at ``completion + plan.ack_delay`` returns the changes then.

A driver, for one ``SendDelivery`` sent at ``t0`` with client timeout ``T``::

    req = Request.from_command(cmd)
    plan = model.plan(req, now, rng, queued=waiting)
    if plan.needs_capacity: acquire a slot            # hang / 503 / 429 do not queue
    wait plan.service_time; changes = model.complete(req, plan, now); release
    result: plan.outcome / status / retry_after at now, unless now - t0 > T or
            plan.outcome == "timeout" (hang, lost reply): then "timeout" at t0 + T
    if plan.ack_delay is not None: at now + plan.ack_delay: model.settle(req, then);
            and, when model.ack_via == "push" and not plan.ack_lost, an Ack event
    model.ack_via == "poll": the driver learns the state by polling (marketplace).

The server finishes what it started even when the client gave up: a slow apply still
lands, which is exactly the "applied but never acked" ghost the metrics look for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from harness.domain.eventlog import Record
from harness.domain.fastinit import fast_init
from harness.domain.promotion import Promotion
from simulators.profiles import OutageSchedule, Profile, RandomOutages

AckVia = Literal["reply", "push", "poll"]


@fast_init
@dataclass(frozen=True, slots=True)
class Request:
    """One delivery attempt as the endpoint receives it (a ``SendDelivery`` on the wire)."""

    delivery_id: str
    idempotency_key: str
    op: str  # "apply" | "revoke"
    promo: str
    version: int
    attempt: int = 1
    payload: Promotion | None = None

    @classmethod
    def from_command(cls, cmd: Any) -> Request:
        """From an orchestrator ``SendDelivery`` (duck-typed: simulators import domain only)."""
        return cls(
            cmd.delivery_id,
            cmd.idempotency_key,
            cmd.op,
            cmd.promo,
            cmd.version,
            cmd.attempt,
            cmd.payload,
        )


class Plan(NamedTuple):
    """What one request will meet, decided on arrival.

    ``outcome``/``status``: what the client observes — ok/200, accepted/202, error/500,
    unavailable/503, throttled/429 (with ``retry_after`` s), rejected/422, or timeout/0
    when the request hangs (``hang``: no change) or its reply is lost (``reply_lost``: the
    change happens all the same). ``service_time``: seconds in service before the answer
    (0 for what the front door answers). ``needs_capacity``: whether it takes a slot.
    ``effective``: ``complete`` carries the operation out. ``ack_delay``: seconds after
    completion at which an accepted request takes effect (``settle``); ``ack_lost``: no
    webhook then.

    A ``NamedTuple`` like the event log's records, not a frozen dataclass: it is a value
    the simulator hands itself, built once per request, and a tuple is built in a fifth of
    the time.
    """

    service_time: float
    outcome: str
    status: int
    retry_after: float | None = None
    reply_lost: bool = False
    hang: bool = False
    ack_delay: float | None = None
    ack_lost: bool = False
    effective: bool = False  # the server carries the operation out at complete()
    needs_capacity: bool = True
    detail: str = ""


class TruthChange(NamedTuple):
    """Ground truth: the endpoint's own state changed. Becomes an event-log record."""

    kind: str  # "applied" | "removed"
    promo: str
    version: int
    endpoint: str
    detail: str = ""  # "double" for a non-idempotent re-application, "stale" when resurrected


@dataclass(frozen=True, slots=True)
class _Pending:
    request: Request
    due: float
    seq: int


class EndpointModel:
    """One endpoint: its profile, its ground truth, its faults. Subclasses add a channel."""

    ack_via: AckVia = "reply"

    def __init__(
        self,
        id: str,
        channel: str,
        profile: Profile,
        *,
        region: str = "",
        store: str = "",
        seed: int = 0,
        horizon: float = 86_400.0,
    ) -> None:
        self.id = id
        self.channel = channel
        self.region = region
        self.store = store
        self.profile = profile
        # Seeded from (scenario seed, endpoint id) so each endpoint fails on its own
        # schedule and adding an endpoint does not reshuffle the others' outages.
        # (String seeding hashes with SHA-512: skip it when nothing random is to expand.)
        needs_rng = any(isinstance(o, RandomOutages) for o in profile.outages)
        rng = random.Random(f"{seed}:{id}:outages") if needs_rng else None
        self.outages = OutageSchedule.build(profile.outages, horizon, rng)
        self._bucket = profile.rate_limit.bucket() if profile.rate_limit else None
        self._newest: dict[str, int] = {}
        self._active: dict[str, int] = {}
        self._payloads: dict[str, Promotion] = {}
        self._copies: dict[str, int] = {}
        self._keys: dict[str, tuple[str, int]] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._seq = 0
        self._applied_key: frozenset[tuple[str, int]] | None = frozenset()

    def reconfigure(self, profile: Profile, *, seed: int = 0, horizon: float = 86_400.0) -> None:
        """Swap the behaviour profile (a scenario override or a fault switched on/off).

        Ground truth (what is applied) is kept; outages and the rate limiter are rebuilt
        from the new profile, seeded as at construction so the same scenario replays.
        """
        self.profile = profile
        needs_rng = any(isinstance(o, RandomOutages) for o in profile.outages)
        rng = random.Random(f"{seed}:{self.id}:outages") if needs_rng else None
        self.outages = OutageSchedule.build(profile.outages, horizon, rng)
        self._bucket = profile.rate_limit.bucket() if profile.rate_limit else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, {self.channel!r}, {self.profile.name!r})"

    @property
    def mode(self) -> str:
        """The inventory record's detail: "realtime" (answers itself) or "batch"."""
        return "realtime"

    # --- phase 1 -------------------------------------------------------------------------

    def gate(self, now: float, *, queued: int = 0) -> Plan | None:
        """The front door: outage, full queue, rate limit. ``None`` lets the request in.

        Public so a driver can put other calls (an ERP validation) through the same door.
        """
        outage = self.outages.is_down(now)
        if outage is not None:
            if outage.mode == "hang":
                return Plan(0.0, "timeout", 0, hang=True, needs_capacity=False, detail="outage")
            return Plan(0.0, "unavailable", 503, needs_capacity=False, detail="outage")
        limit = self.profile.max_in_queue
        if limit is not None and queued >= limit:
            return Plan(0.0, "unavailable", 503, needs_capacity=False, detail="queue full")
        if self._bucket is not None:
            retry_after = self._bucket.take(now)
            if retry_after is not None:
                return Plan(0.0, "throttled", 429, retry_after, needs_capacity=False)
        return None

    def plan(self, request: Request, now: float, rng: random.Random, *, queued: int = 0) -> Plan:
        p = self.profile
        # The front door only when it may have something to say: most stores have no
        # outage or rate limit and a short queue, and a request reaches them without the
        # two calls.
        limit = p.max_in_queue
        if (
            self.outages.windows
            or self._bucket is not None
            or (limit is not None and queued >= limit)
        ):
            gated = self.gate(now, queued=queued)
            if gated is not None:
                return gated
        u = rng.random()
        service = p.latency.sample(rng)
        if u < p.error_rate:
            return Plan(service, "error", 500, detail="injected error")
        if u < p.error_rate + p.timeout_rate:
            return Plan(0.0, "timeout", 0, hang=True, needs_capacity=False, detail="hang")
        reason = self.reject_reason(request)
        if reason is not None:
            return Plan(service, "rejected", 422, detail=reason)
        lost = u < p.error_rate + p.timeout_rate + p.lost_ack_rate
        if p.idempotent and request.idempotency_key in self._keys:
            # A replay: the stored answer again, no change and no second acknowledgement.
            outcome, status = self._keys[request.idempotency_key]
            if lost:
                return Plan(service, "timeout", 0, reply_lost=True, detail="duplicate")
            return Plan(service, outcome, status, detail="duplicate")
        ack_delay = self.ack_delay(request, now + service, rng)
        ack_lost = False
        if ack_delay is not None and self.ack_via == "push":
            ack_lost = rng.random() < p.ack_loss_rate
            if not ack_lost and p.ack_late_rate and rng.random() < p.ack_late_rate:
                ack_delay += p.ack_late_delay.sample(rng)
        outcome, status = ("ok", 200) if ack_delay is None else ("accepted", 202)
        if lost:
            outcome, status = "timeout", 0
        # All eleven fields in order, built as a tuple (no keyword handling, no call to the
        # generated ``__new__``): the plan of every effective request, the hot path.
        return tuple.__new__(
            Plan,
            (service, outcome, status, None, lost, False, ack_delay, ack_lost, True, True, ""),
        )

    # Hooks for the channels.

    def reject_reason(self, request: Request) -> str | None:
        """A permanent 4xx: why this request can never succeed, or ``None``."""
        if request.op not in ("apply", "revoke"):
            return f"unknown op {request.op!r}"
        if request.op == "apply" and request.payload is None:
            return "apply without a payload"
        return None

    def ack_delay(self, request: Request, done: float, rng: random.Random) -> float | None:
        """Seconds after service end (at ``done``) the change takes effect; None = sync."""
        d = self.profile.ack_delay
        return None if d is None else d.sample(rng)

    # --- phase 2 -------------------------------------------------------------------------

    def complete(self, request: Request, plan: Plan, now: float) -> list[TruthChange]:
        if not plan.effective:
            return []
        if self.profile.idempotent:
            # Checked again here: a retry may have arrived while the first was in service.
            if request.idempotency_key in self._keys:
                return []
            answer = ("ok", 200) if plan.ack_delay is None else ("accepted", 202)
            self._keys[request.idempotency_key] = answer
        if plan.ack_delay is not None:
            self._seq += 1
            self._pending[(request.delivery_id, request.attempt)] = _Pending(
                request, now + plan.ack_delay, self._seq
            )
            return []
        return self._apply(request) if request.op == "apply" else self._revoke(request)

    def settle(self, request: Request, now: float) -> list[TruthChange]:
        """An accepted request takes effect (webhook sent, batch picked up, activation)."""
        pending = self._pending.pop((request.delivery_id, request.attempt), None)
        return [] if pending is None else self._execute(pending.request)

    def settle_due(self, now: float) -> list[TruthChange]:
        """Settle every accepted request due by ``now``, in due order (for polling drivers)."""
        due = sorted((p for p in self._pending.values() if p.due <= now), key=_due_order)
        changes: list[TruthChange] = []
        for p in due:
            changes.extend(self.settle(p.request, now))
        return changes

    def pending(self, promo: str | None = None) -> list[tuple[str, str, int, float]]:
        """Accepted, not yet effective: (op, promo, version, due), in due order."""
        return [
            (p.request.op, p.request.promo, p.request.version, p.due)
            for p in sorted(self._pending.values(), key=_due_order)
            if promo is None or p.request.promo == promo
        ]

    def _execute(self, r: Request) -> list[TruthChange]:
        return self._apply(r) if r.op == "apply" else self._revoke(r)

    def _apply(self, r: Request) -> list[TruthChange]:
        # The version rule: the newest version seen (applied or revoked) wins, so a late
        # apply can neither downgrade nor resurrect a revoked promotion.
        newest = self._newest.get(r.promo, 0)
        active = self._active.get(r.promo)
        detail = ""
        if active == r.version:
            if self.profile.idempotent:
                return []
            detail = "double"  # a non-idempotent endpoint stores a second copy
            self._copies[r.promo] = self._copies.get(r.promo, 1) + 1
        elif r.version <= newest:
            if not self.profile.accept_stale:
                return []
            detail = "stale"
        if detail != "double":
            self._copies[r.promo] = 1
        self._newest[r.promo] = max(newest, r.version)
        self._active[r.promo] = r.version
        if r.payload is not None:
            self._payloads[r.promo] = r.payload
        self._applied_key = None
        # As a tuple (no call to the generated ``__new__``): once per applied delivery.
        return [tuple.__new__(TruthChange, ("applied", r.promo, r.version, self.id, detail))]

    def _revoke(self, r: Request) -> list[TruthChange]:
        newest = self._newest.get(r.promo, 0)
        if r.version < newest or self.profile.keep_after_revoke:
            return []  # a stale revoke must not take a newer version down
        self._newest[r.promo] = r.version  # the tombstone
        active = self._active.pop(r.promo, None)
        if active is None:
            return []
        self._payloads.pop(r.promo, None)
        self._copies.pop(r.promo, None)
        self._applied_key = None
        return [TruthChange("removed", r.promo, active, self.id)]

    # --- ground truth --------------------------------------------------------------------

    def active(self) -> dict[str, int]:
        """promo -> applied version, as the endpoint itself holds it."""
        return dict(self._active)

    def copies(self, promo: str) -> int:
        """How many times the active promotion is stored (> 1: double application)."""
        return self._copies.get(promo, 0) if promo in self._active else 0

    def promotions(self) -> tuple[Promotion, ...]:
        """The applied promotion payloads, in promo-id order (what pricing sees)."""
        return tuple(self._payloads[p] for p in sorted(self._payloads))

    def endpoint_info(self) -> dict[str, Any]:
        """Keyword arguments for the orchestrator's ``EndpointInfo`` (not imported here:
        simulators depend on the domain only): ``EndpointInfo(**model.endpoint_info())``."""
        batch = self.mode == "batch"
        return {
            "id": self.id,
            "channel": self.channel,
            "region": self.region,
            "store": self.store,
            "realtime": not batch,
            "batch_offset": getattr(self, "poll_offset", None) if batch else None,
            "capacity": self.profile.throughput,
        }

    # --- event-log records, so both runtimes write the same rows --------------------------

    def inventory_record(self) -> Record:
        """The ``endpoint`` record at t=0: value = requests/s at full capacity."""
        return Record(
            0.0,
            "endpoint",
            endpoint=self.id,
            channel=self.channel,
            region=self.region,
            value=self.profile.throughput,
            detail=self.mode,
        )

    def truth_record(self, change: TruthChange, t: float) -> Record:
        """The ``applied`` / ``removed`` record for a change returned at ``t``."""
        return tuple.__new__(  # all eleven fields, as Out.delivery_record builds them
            Record,
            (
                t,
                change.kind,
                change.promo,
                change.version,
                change.endpoint,
                self.channel,
                self.region,
                0,
                "",
                0.0,
                change.detail,
            ),
        )

    def outage_records(self) -> list[Record]:
        """One ``outage`` record per scheduled window (t = start, value = duration)."""
        return [
            Record(
                w.start,
                "outage",
                endpoint=self.id,
                channel=self.channel,
                region=self.region,
                value=w.duration,
                detail=w.mode,
            )
            for w in self.outages.windows
        ]

    def applied_key(self) -> frozenset[tuple[str, int]]:
        """A hashable fingerprint of the applied set, for price caches."""
        if self._applied_key is None:
            self._applied_key = frozenset(self._active.items())
        return self._applied_key


def _due_order(p: _Pending) -> tuple[float, int]:
    return (p.due, p.seq)
