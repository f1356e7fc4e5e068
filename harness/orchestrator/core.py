"""The sans-I/O orchestrator: ``Orchestrator.handle(event, now) -> list[Command]``.

One object, driven by either clock (SimPy or asyncio; see ../shared/DESIGN.md). It never
reads a clock, sleeps, logs or touches a socket: time is the ``now`` it is handed and
randomness comes from the injected ``random.Random``, so the same events with the same
seed give the same commands.

This module owns the promotion's lifecycle (through ``harness.domain.lifecycle``, the only
owner of transitions) and the operator's vocabulary; ``targets.Targets`` decides which
version each endpoint should carry (publish, rollback with tombstone versions, replay) and
``dispatch.Dispatcher`` gets it there (queues, limits, retries, dead letters).

Errors: an operator command the promotion's state does not allow raises
``IllegalTransition`` (HTTP 409 at the service) and one naming an unknown promotion raises
``UnknownPromotion`` (404); a publish, schedule or rollback whose scope names a channel,
region or store the estate lacks raises ``UnknownScopeMember`` (422, naming the field);
all leave the orchestrator unchanged. Endpoint events never
raise for being late, duplicated or unknown: they become "stale" records.

Record order within one ``handle``: the operator command's record, its "state" record,
then what it set off (targets, sends, timers...), and last the "state" records of
promotions whose deliveries moved them to another phase.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from harness.domain.eventlog import OUTCOMES, Record
from harness.domain.lifecycle import (
    DELIVERY_EVENTS,
    PHASE_STATES,
    TRANSITIONS,
    IllegalTransition,
    transition,
)
from harness.domain.promotion import Promotion
from harness.domain.scope import UnknownScopeMember, unknown_members
from harness.orchestrator.commands import (
    CancelTimer,
    Command,
    RequestValidation,
    StartTimer,
)
from harness.orchestrator.delivery import DeadLetterEntry, DeliveryPolicy
from harness.orchestrator.dispatch import Dispatcher
from harness.orchestrator.events import (
    Ack,
    Approve,
    CreateDraft,
    DeliveryResult,
    End,
    Event,
    Pause,
    Publish,
    Reconcile,
    Reject,
    ReplayDeadLetters,
    Resume,
    Rollback,
    Schedule,
    Settle,
    Submit,
    TargetScope,
    TimerFired,
    Validate,
    ValidationResult,
)
from harness.orchestrator.state import (
    DONE_STATES,
    DeliveryView,
    EndpointInfo,
    Out,
    scope_json,
)
from harness.orchestrator.targets import Targets

__all__ = [
    "AckRefusal",
    "DeliveryView",
    "EndpointInfo",
    "IllegalTransition",
    "Orchestrator",
    "UnknownPromotion",
    "UnknownScopeMember",
]

_PHASE_EVENT = {target: event for event, target in DELIVERY_EVENTS.items()}
# Operator commands that only move the lifecycle: event class -> event name (= record kind).
_SIMPLE = {Submit: "submit", Approve: "approve", Settle: "settle", Reconcile: "reconcile"}
_KNOWN_OUTCOMES = frozenset(OUTCOMES)


class AckRefusal(NamedTuple):
    """Why an acknowledgement is refused (recorded as "stale", HTTP 409 at the service).

    ``reason``: unknown_endpoint, untargeted (never meant for the endpoint), not_current
    (another version or op is the endpoint's current delivery), not_sent (never sent),
    settled (already acked, revoked or dead-lettered); ``attempt``: attempts sent of
    the delivery it names (0 when none or no such delivery).
    """

    reason: str
    detail: str
    attempt: int


class UnknownPromotion(LookupError):
    """An operator command named a promotion that was never created (HTTP 404)."""

    def __init__(self, promo: str) -> None:
        super().__init__(f"unknown promotion '{promo}'")
        self.promo = promo


class Orchestrator:
    """The reference promotion orchestrator, free of I/O and of any clock."""

    def __init__(
        self,
        endpoints: Sequence[EndpointInfo],
        policies: Mapping[str, DeliveryPolicy] | None = None,
        *,
        rng: random.Random,
        default_policy: DeliveryPolicy = DeliveryPolicy(),
    ) -> None:
        """``policies`` are keyed by channel; channels without one get ``default_policy``."""
        self._endpoints: dict[str, EndpointInfo] = {}
        for ep in endpoints:
            if ep.id in self._endpoints:
                raise ValueError(f"endpoint id '{ep.id}' is listed twice")
            self._endpoints[ep.id] = ep
        self._dispatch = Dispatcher(
            self._endpoints.values(), policies or {}, default_policy, rng, self._payload
        )
        self._targets = Targets(self._endpoints.values(), self._dispatch)
        self._promotions: dict[str, Promotion] = {}
        self._states: dict[str, str] = {}
        self._schedules: dict[str, tuple[str, TargetScope]] = {}  # timer id -> (promo, scope)
        self._schedule_timer: dict[str, str] = {}  # promo -> its pending schedule timer
        self._schedule_seq = 0
        self._payloads: dict[tuple[str, int], Promotion] = {}
        eps = self._endpoints.values()
        self._known_places = {
            "channels": {ep.channel for ep in eps},
            "regions": {ep.region for ep in eps if ep.region},
            "stores": {ep.store for ep in eps if ep.store},
        }

    # --- read-only views --------------------------------------------------------------------

    def status(self, promo: str) -> str:
        """The promotion's lifecycle state."""
        return self._states[self._known(promo)]

    def promotion(self, promo: str) -> Promotion:
        return self._promotions[self._known(promo)]

    def delivery(self, promo: str, endpoint: str) -> DeliveryView | None:
        """The endpoint's current delivery of the promotion (None if never targeted)."""
        d = self._targets.current(self._known(promo), endpoint)
        return DeliveryView.of(d) if d is not None else None

    def deliveries(self, promo: str) -> list[DeliveryView]:
        """Current deliveries of the promotion, in estate order."""
        return [DeliveryView.of(d) for d in self._targets.of(self._known(promo))]

    def delivery_state(self, promo: str, endpoint: str) -> str:
        """pending, held, in_flight, awaiting_ack, retry_wait, acked, revoked, dead_lettered
        (defined in ``orchestrator.state``), or "untargeted" if never meant for the endpoint.
        """
        view = self.delivery(promo, endpoint)
        return view.state if view is not None else "untargeted"

    def dead_letters(self) -> list[DeadLetterEntry]:
        return self._dispatch.dlq.entries()

    def in_flight(self, channel: str) -> int:
        """Sends to the channel still waiting for their result (stale ones included)."""
        return self._dispatch.in_flight(channel)

    def breaker_state(self, endpoint: str) -> str | None:
        return self._dispatch.breaker_state(endpoint)

    def endpoint_records(self, now: float) -> list[Command]:
        """The inventory: one "endpoint" record per endpoint (drivers write them at t=0)."""
        out = Out(now)
        for ep in self._endpoints.values():
            mode = "batch" if self._dispatch.is_batch(ep) else "realtime"
            out.record(
                "endpoint",
                endpoint=ep.id,
                channel=ep.channel,
                region=ep.region,
                value=ep.capacity,
                detail=mode,
            )
        return out.commands

    # --- the one entry point ----------------------------------------------------------------

    def handle(
        self, event: Event, now: float, records: list[Record] | None = None
    ) -> list[Command]:
        """Decide what ``event`` at ``now`` leads to; the driver carries out the result.

        With ``records`` (the driver's event log) the records are appended to it as they
        are made, in the order their ``WriteRecord`` commands would have had, and only the
        other commands are returned. Its refusals (the exceptions above) are raised before
        anything is recorded.
        """
        out = Out(now, records)
        if isinstance(event, DeliveryResult):
            # _on_result, inlined: once per attempt, the orchestrator's busiest event.
            if event.outcome not in _KNOWN_OUTCOMES:
                # A driver or adapter bug: refuse it before anything changes.
                raise ValueError(f"outcome: unknown delivery outcome {event.outcome!r}")
            ep = self._endpoints.get(event.endpoint)
            if ep is None:
                out.stale_result(event, None)
            else:
                self._dispatch.on_result(event, ep, out)
        elif isinstance(event, Ack):
            self._on_ack(event, out)
        elif isinstance(event, TimerFired):
            self._on_timer(event, out)
        elif isinstance(event, ValidationResult):
            self._on_validation(event, out)
        elif isinstance(event, ReplayDeadLetters):
            self._replay(event, out)
        else:
            self._operator(event, out)
        self._update_phases(out)
        return out.commands

    # --- operator commands ------------------------------------------------------------------

    def _operator(self, event: Event, out: Out) -> None:
        if isinstance(event, CreateDraft):
            self._create(event.promotion, out)
            return
        promo = self._known(event.promo)  # type: ignore[union-attr]
        state = self._states[promo]
        version = self._promotions[promo].version
        if type(event) in _SIMPLE:
            name = _SIMPLE[type(event)]
            new = transition(state, name)
            out.record(name, promo=promo, version=version)
            self._set_state(promo, new, out)
        elif isinstance(event, Validate):
            transition(state, "validate")  # a self-loop: asked only for its legality
            out.record("validate", promo=promo, version=version)
            out.emit(RequestValidation(promo, version, self._promotions[promo]))
        elif isinstance(event, Reject):
            new = transition(state, "reject")
            out.record("reject", promo=promo, version=version, detail=event.reason)
            self._set_state(promo, new, out)
        elif isinstance(event, Schedule):
            self._check_scope(event.scope)
            self._schedule(promo, state, event, out)
        elif isinstance(event, Publish):
            self._check_scope(event.scope)
            new = transition(state, "publish")
            self._publish(promo, new, event.scope, out)
            # A manual publish takes over from a pending schedule.
            self._cancel_schedule(promo, out)
        elif isinstance(event, Rollback):
            self._check_scope(event.scope)
            self._rollback(promo, state, event, out)
        elif isinstance(event, Pause | Resume):
            name = "pause" if isinstance(event, Pause) else "resume"
            transition(state, name)  # a self-loop: asked only for its legality
            out.record(name, promo=promo, version=version, channel=event.channel)
            if isinstance(event, Pause):
                self._dispatch.pause(promo, event.channel)
            else:
                self._dispatch.resume(promo, event.channel, out)
        elif isinstance(event, End):
            new = transition(state, "end")
            out.record("end", promo=promo, version=version)
            self._set_state(promo, new, out)
            self._cancel_schedule(promo, out)
        else:
            raise TypeError(f"not an orchestrator event: {event!r}")

    def _check_scope(self, scope: TargetScope) -> None:
        """Refuse a scope naming what the estate lacks: it would otherwise match nothing
        (or, for a region of a region-less channel, everything) without a word."""
        unknown = unknown_members(scope, **self._known_places)
        if unknown:
            raise unknown[0]

    def _create(self, promotion: Promotion, out: Out) -> None:
        promo = promotion.id
        if promo in self._states:
            raise IllegalTransition(self._states[promo], "create")
        self._promotions[promo] = promotion
        self._targets.add(promo)
        out.record("create", promo=promo, version=promotion.version)
        self._states[promo] = "draft"
        out.record("state", promo=promo, version=promotion.version, detail="->draft")

    def _schedule(self, promo: str, state: str, event: Schedule, out: Out) -> None:
        new = transition(state, "schedule")
        p = self._promotions[promo]
        out.record(
            "schedule",
            promo=promo,
            version=p.version,
            value=event.at,
            detail=scope_json(event.scope),
        )
        self._set_state(promo, new, out)
        self._cancel_schedule(promo, out)  # a reschedule replaces the pending timer
        self._schedule_seq += 1
        timer_id = f"schedule:{promo}:{self._schedule_seq}"
        self._schedules[timer_id] = (promo, event.scope)
        self._schedule_timer[promo] = timer_id
        out.emit(StartTimer(timer_id, event.at, ("publish", promo)))

    def _cancel_schedule(self, promo: str, out: Out) -> None:
        timer_id = self._schedule_timer.pop(promo, None)
        if timer_id is not None:
            del self._schedules[timer_id]
            out.emit(CancelTimer(timer_id))

    def _publish(self, promo: str, new_state: str, scope: TargetScope, out: Out) -> None:
        p = self._promotions[promo]
        out.record("publish", promo=promo, version=p.version, detail=scope_json(scope))
        self._set_state(promo, new_state, out)
        self._targets.publish(p, scope, out)

    def _rollback(self, promo: str, state: str, event: Rollback, out: Out) -> None:
        new = transition(state, "rollback")
        p = self._promotions[promo]
        out.record(
            "rollback",
            promo=promo,
            version=p.version,
            value=event.deadline,
            detail=scope_json(event.scope),
        )
        self._set_state(promo, new, out)
        self._targets.rollback(p, event.scope, out)

    def _replay(self, event: ReplayDeadLetters, out: Out) -> None:
        # Not a lifecycle event: it spans promotions, and never raises. A dead letter of a
        # promotion that has left the delivery phases (ended...) is dropped.
        entries = self._dispatch.dlq.take(event.promo, event.endpoint)
        created, dropped = self._targets.replay(
            entries, lambda promo: self._states[promo] in PHASE_STATES
        )
        out.record(
            "replay",
            promo=event.promo or "",
            endpoint=event.endpoint or "",
            value=len(created),
            detail=f"dropped={len(dropped)}",
        )
        for entry in dropped:
            ep = self._endpoints.get(entry.endpoint)
            out.record(
                "stale",
                promo=entry.promo,
                version=entry.version,
                endpoint=entry.endpoint,
                channel=entry.channel,
                region=ep.region if ep else "",
                attempt=entry.attempts,
                outcome="replay_dropped",
                detail=entry.delivery_id,
            )
        self._targets.start(created, out)

    # --- endpoint events --------------------------------------------------------------------

    def ack_refusal(self, event: Ack) -> AckRefusal | None:
        """Why ``handle(event)`` will record the acknowledgement as stale, or None when it
        will be accepted. Read-only: the service asks it to answer 409 with the reason.

        Accepted only for the endpoint's current delivery, of the version and op the ack
        names, that has actually been sent (an attempt left; a send whose response or
        webhook raced its retry still counts) and has not settled. Anything else (a forged
        or confused ack for what was never sent, an old version, a duplicate) must not
        move the promotion: it would report an endpoint as carrying what it never got.
        """
        d = self._targets.current(event.promo, event.endpoint)
        ack = f"{event.op} of version {event.version} to '{event.endpoint}'"
        if event.endpoint not in self._endpoints:
            return AckRefusal("unknown_endpoint", f"unknown endpoint '{event.endpoint}'", 0)
        if d is None:
            return AckRefusal("untargeted", f"no {ack}: '{event.promo}' was never meant for it", 0)
        if (d.version, d.op) != (event.version, event.op):
            return AckRefusal(
                "not_current",
                f"no {ack} is current: the endpoint's delivery is the {d.op} of "
                f"version {d.version}",
                0,
            )
        if d.attempt == 0:
            return AckRefusal("not_sent", f"the {ack} was never sent (it is {d.state})", 0)
        if d.state in DONE_STATES:
            return AckRefusal("settled", f"the {ack} is already {d.state}", d.attempt)
        return None

    def _on_ack(self, event: Ack, out: Out) -> None:
        refusal = self.ack_refusal(event)
        if refusal is not None:
            ep = self._endpoints.get(event.endpoint)
            out.stale_ack(event, ep, refusal.attempt, refusal.reason)
            return
        d = self._targets.current(event.promo, event.endpoint)
        assert d is not None  # ack_refusal found it
        self._dispatch.on_ack(d, out)

    def _on_timer(self, event: TimerFired, out: Out) -> None:
        schedule = self._schedules.pop(event.timer_id, None)
        if schedule is None:
            # Unknown ids are timers already cancelled or fired: nothing to do.
            self._dispatch.on_timer(event.timer_id, out)
            return
        promo, scope = schedule
        self._schedule_timer.pop(promo, None)
        state = self._states[promo]
        try:
            new = transition(state, "publish")
        except IllegalTransition:
            out.record("stale", promo=promo, outcome="schedule", detail=event.timer_id)
            return
        self._publish(promo, new, scope, out)

    def _on_validation(self, event: ValidationResult, out: Out) -> None:
        promo = event.promo
        state = self._states.get(promo)
        name = "validation_passed" if event.ok else "validation_failed"
        if (
            state is None
            or event.version != self._promotions[promo].version
            or (state, name) not in TRANSITIONS
        ):
            out.record("stale", promo=promo, version=event.version, outcome="validation")
            return
        out.record(
            "validated",
            promo=promo,
            version=event.version,
            outcome="ok" if event.ok else "failed",
            detail="; ".join(event.reasons),
        )
        self._set_state(promo, transition(state, name), out)

    # --- helpers ----------------------------------------------------------------------------

    def _known(self, promo: str) -> str:
        if promo not in self._states:
            raise UnknownPromotion(promo)
        return promo

    def _set_state(self, promo: str, new: str, out: Out) -> None:
        old = self._states[promo]
        if new == old:
            return
        self._states[promo] = new
        version = self._promotions[promo].version
        out.record("state", promo=promo, version=version, detail=f"{old}->{new}")

    def _payload(self, promo: str, version: int) -> Promotion:
        key = (promo, version)
        if key not in self._payloads:
            p = self._promotions[promo]
            # A re-publish after a rollback carries a newer revision than the definition's.
            self._payloads[key] = (
                p if p.version == version else p.model_copy(update={"version": version})
            )
        return self._payloads[key]

    def _update_phases(self, out: Out) -> None:
        """Move each touched promotion to the delivery phase its deliveries are in."""
        for promo in out.touched:
            state = self._states.get(promo)
            if state not in PHASE_STATES:
                continue
            phase = self._targets.phase(promo)
            if phase != state:
                self._set_state(promo, transition(state, _PHASE_EVENT[phase]), out)
