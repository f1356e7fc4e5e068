"""Acknowledgements count only for deliveries actually sent, for the version and op sent.

An Ack is what a channel adapter says; the orchestrator must not take its word for a
delivery it never sent (a paused channel, a version it never published, a revoke it never
asked for) or for one that has already settled. Such acks become "stale" records (outcome
"ack", detail "<op>:<reason>") and change nothing else. Whole traces, derived by hand,
and a Hypothesis property over random interleavings of sends, results and forged acks.
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.eventlog import Record
from harness.domain.lifecycle import IllegalTransition
from harness.domain.promotion import Promotion
from harness.orchestrator.commands import (
    CancelTimer,
    Command,
    SendDelivery,
    StartTimer,
    WriteRecord,
)
from harness.orchestrator.core import AckRefusal, EndpointInfo, Orchestrator
from harness.orchestrator.delivery import Backoff, DeliveryPolicy
from harness.orchestrator.events import (
    Ack,
    Approve,
    CreateDraft,
    DeliveryResult,
    Event,
    Pause,
    Publish,
    Resume,
    Rollback,
    Submit,
    TargetScope,
    TimerFired,
    Validate,
    ValidationResult,
)

P = "P1"
S1 = EndpointInfo("S0001", "pos", region="east", store="S0001")
S2 = EndpointInfo("S0002", "pos", region="west", store="S0002")
WEB = EndpointInfo("web", "ecommerce")
POLICY = DeliveryPolicy(max_attempts=3, backoff=Backoff("fixed", base=1.0), ack_timeout=50.0)


def promotion(channels: tuple[str, ...] = ("pos", "ecommerce")) -> Promotion:
    return Promotion.model_validate(
        {
            "id": P,
            "name": "Flash sale",
            "validity": {
                "start": "2026-11-27T09:00:00",
                "end": "2026-11-27T21:00:00",
                "timezone": "Europe/Paris",
            },
            "scope": {"channels": list(channels)},
            "benefit": {"type": "percent_off", "percent": "30"},
        }
    )


def approved(endpoints: list[EndpointInfo], channels: tuple[str, ...] = ("pos", "ecommerce")):
    p = promotion(channels)
    orch = Orchestrator(endpoints, default_policy=POLICY, rng=random.Random(7))
    for event in (
        CreateDraft(p),
        Submit(P),
        Validate(P),
        ValidationResult(P, 1, ok=True),
        Approve(P),
    ):
        orch.handle(event, 0.0)
    return orch


def records(commands: list[Command]) -> list[Record]:
    return [c.record for c in commands if isinstance(c, WriteRecord)]


def sends(commands: list[Command]) -> list[SendDelivery]:
    return [c for c in commands if isinstance(c, SendDelivery)]


def stale_ack(t: float, ep: EndpointInfo, detail: str, version: int = 1, attempt: int = 0):
    return WriteRecord(
        Record(
            t,
            "stale",
            promo=P,
            version=version,
            endpoint=ep.id,
            channel=ep.channel,
            region=ep.region,
            attempt=attempt,
            outcome="ack",
            detail=detail,
        )
    )


def answer(send: SendDelivery, outcome: str) -> DeliveryResult:
    return DeliveryResult.answering(send, outcome)


def test_ack_for_a_paused_never_sent_delivery_is_stale_and_changes_nothing() -> None:
    # The reproduction: pause pos, publish, ack S0001. The store never got it.
    orch = approved([S1, WEB])
    orch.handle(Pause(P, "pos"), 0.0)
    web_send = sends(orch.handle(Publish(P), 0.0))
    assert [s.endpoint for s in web_send] == ["web"]
    orch.handle(answer(web_send[0], "ok"), 1.0)
    assert orch.status(P) == "publishing"  # the held store is still outstanding

    forged = Ack("S0001", P, 1, "apply")
    assert orch.ack_refusal(forged) == AckRefusal(
        "not_sent", "the apply of version 1 to 'S0001' was never sent (it is held)", 0
    )
    assert orch.handle(forged, 2.0) == [stale_ack(2.0, S1, "apply:not_sent")]
    assert orch.delivery_state(P, "S0001") == "held"
    assert orch.status(P) == "publishing"  # not 'active': S0001 never received it

    # Resumed, sent, accepted: now the same ack is the real one and completes it.
    store_send = sends(orch.handle(Resume(P, "pos"), 3.0))
    assert [(s.endpoint, s.version, s.attempt) for s in store_send] == [("S0001", 1, 1)]
    orch.handle(answer(store_send[0], "accepted"), 3.5)
    assert orch.ack_refusal(forged) is None
    commands = orch.handle(forged, 4.0)
    assert CancelTimer("ack:P1:1:S0001:apply:1") in commands
    assert [(r.kind, r.endpoint, r.outcome) for r in records(commands)] == [
        ("ack", "S0001", "apply"),
        ("state", "", ""),
    ]
    assert orch.status(P) == "active"


def test_ack_for_a_version_or_op_never_sent_is_stale() -> None:
    orch = approved([S1])
    (s,) = sends(orch.handle(Publish(P), 0.0))
    orch.handle(answer(s, "accepted"), 1.0)
    assert orch.delivery_state(P, "S0001") == "awaiting_ack"

    newer = Ack("S0001", P, 2, "apply")  # a version never published
    revoke = Ack("S0001", P, 1, "revoke")  # a revoke never asked for
    assert orch.handle(newer, 2.0) == [stale_ack(2.0, S1, "apply:not_current", version=2)]
    assert orch.handle(revoke, 2.0) == [stale_ack(2.0, S1, "revoke:not_current")]
    assert orch.ack_refusal(newer).detail == (  # type: ignore[union-attr]
        "no apply of version 2 to 'S0001' is current: the endpoint's delivery is the apply "
        "of version 1"
    )
    assert orch.delivery_state(P, "S0001") == "awaiting_ack"
    assert orch.status(P) == "publishing"


def test_unknown_and_untargeted_endpoints_are_stale() -> None:
    orch = approved([S1, WEB], channels=("pos",))  # the web shop is outside the scope
    orch.handle(Publish(P), 0.0)
    assert orch.handle(Ack("web", P, 1, "apply"), 1.0) == [stale_ack(1.0, WEB, "apply:untargeted")]
    ghost = EndpointInfo("S9999", "")
    assert orch.handle(Ack("S9999", P, 1, "apply"), 1.0) == [
        stale_ack(1.0, ghost, "apply:unknown_endpoint")
    ]
    assert orch.ack_refusal(Ack("S9999", P, 1, "apply")).reason == "unknown_endpoint"  # type: ignore[union-attr]


def test_duplicate_and_dead_lettered_acks_are_stale() -> None:
    orch = approved([S1, S2], channels=("pos",))
    s1, s2 = sends(orch.handle(Publish(P), 0.0))
    orch.handle(answer(s1, "accepted"), 1.0)
    assert records(orch.handle(Ack("S0001", P, 1, "apply"), 2.0))[0].kind == "ack"
    # The adapter repeats its webhook: already acked, nothing moves.
    assert orch.handle(Ack("S0001", P, 1, "apply"), 3.0) == [
        stale_ack(3.0, S1, "apply:settled", attempt=1)
    ]
    # S0002 is rejected (a permanent failure): dead-lettered, then an ack comes anyway.
    orch.handle(answer(s2, "rejected"), 3.0)
    assert orch.delivery_state(P, "S0002") == "dead_lettered"
    assert orch.status(P) == "partially_active"
    assert orch.handle(Ack("S0002", P, 1, "apply"), 4.0) == [
        stale_ack(4.0, S2, "apply:settled", attempt=1)
    ]
    assert orch.status(P) == "partially_active"
    assert orch.delivery_state(P, "S0002") == "dead_lettered"


def test_an_ack_racing_its_own_response_or_retry_is_accepted() -> None:
    # A webhook may overtake the 202 that announced it, or come after the attempt timed
    # out from the orchestrator's side (the endpoint got it all the same): both are acks
    # of a delivery actually sent, of the version sent.
    orch = approved([S1, S2], channels=("pos",))
    s1, s2 = sends(orch.handle(Publish(P), 0.0))
    assert orch.delivery_state(P, "S0001") == "in_flight"
    assert records(orch.handle(Ack("S0001", P, 1, "apply"), 0.5))[0].kind == "ack"
    late = records(orch.handle(answer(s1, "accepted"), 0.6))
    assert [(r.kind, r.outcome) for r in late] == [("stale", "accepted")]

    orch.handle(answer(s2, "timeout"), 10.0)
    assert orch.delivery_state(P, "S0002") == "retry_wait"
    commands = orch.handle(Ack("S0002", P, 1, "apply"), 10.5)
    assert CancelTimer("retry:P1:1:S0002:apply:2") in commands
    assert orch.delivery_state(P, "S0002") == "acked"
    assert orch.status(P) == "active"
    # The cancelled retry, fired anyway by a driver, sends nothing.
    assert sends(orch.handle(TimerFired("retry:P1:1:S0002:apply:2"), 11.0)) == []


def test_after_a_rollback_only_the_revoke_sent_can_be_acked() -> None:
    orch = approved([S1, S2], channels=("pos",))
    orch.handle(Pause(P, "pos"), 0.0)
    orch.handle(Publish(P), 0.0)
    orch.handle(Resume(P, "pos"), 1.0)  # both sent at t=1
    # Roll back only S0002's region before any answer: S0001 keeps its apply.
    commands = orch.handle(Rollback(P, scope=TargetScope(regions=("west",))), 2.0)
    (revoke,) = sends(commands)
    assert (revoke.endpoint, revoke.op, revoke.version) == ("S0002", "revoke", 2)
    # The withdrawn apply's ack and a revoke of a version never sent are stale...
    assert orch.handle(Ack("S0002", P, 1, "apply"), 3.0) == [
        stale_ack(3.0, S2, "apply:not_current")
    ]
    assert orch.handle(Ack("S0002", P, 3, "revoke"), 3.0) == [
        stale_ack(3.0, S2, "revoke:not_current", version=3)
    ]
    # ...the revoke sent is not.
    orch.handle(answer(revoke, "accepted"), 3.5)
    assert records(orch.handle(Ack("S0002", P, 2, "revoke"), 4.0))[0].kind == "ack"
    assert orch.delivery_state(P, "S0002") == "revoked"


# --- the property: no ack record without a send of that very delivery -------------------

ENDPOINTS = [S1, S2, WEB]
OUTCOMES = ["ok", "accepted", "accepted", "error", "timeout", "rejected"]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_every_accepted_ack_follows_a_send_of_that_delivery(data: st.DataObject) -> None:
    """Random interleavings of pause, resume, publish, rollback, results, timer firings and
    acks (genuine or forged: any endpoint, version 1-3, either op). Oracle, from the trace
    alone: each Ack handled gives either one "ack" record of a delivery (promo, version,
    endpoint, op) that an earlier "send" record sent and no ack has settled since, or one
    stale record and nothing else; and ``ack_refusal`` said beforehand which it would be.
    """
    orch = approved(list(ENDPOINTS))
    pending: list[SendDelivery] = []  # sends not yet answered
    timers: list[str] = []
    sent: set[tuple[int, str, str]] = set()  # (version, endpoint, op) sent and not acked
    acked: set[tuple[int, str, str]] = set()
    t = 0.0

    def feed(event: Event) -> list[Command]:
        commands = orch.handle(event, t)
        for c in commands:
            if isinstance(c, SendDelivery):
                pending.append(c)
            elif isinstance(c, StartTimer):
                timers.append(c.timer_id)
        for r in records(commands):
            if r.kind == "send":
                sent.add((r.version, r.endpoint, _op(r)))
        return commands

    if data.draw(st.booleans(), label="publish first"):
        feed(Publish(P))
    for _ in range(data.draw(st.integers(5, 40), label="steps")):
        t += 0.25
        kind = data.draw(
            st.sampled_from(["pause", "resume", "publish", "rollback", "result", "timer", "ack"])
        )
        if kind == "pause":
            feed(Pause(P, data.draw(st.sampled_from(["pos", "ecommerce"]))))
        elif kind == "resume":
            feed(Resume(P, data.draw(st.sampled_from(["pos", "ecommerce"]))))
        elif kind in ("publish", "rollback"):
            event = Publish(P) if kind == "publish" else Rollback(P)
            with contextlib.suppress(IllegalTransition):  # illegal now: nothing changes
                feed(event)
        elif kind == "result" and pending:
            s = pending.pop(data.draw(st.integers(0, len(pending) - 1)))
            feed(answer(s, data.draw(st.sampled_from(OUTCOMES))))
        elif kind == "timer" and timers:
            feed(TimerFired(timers.pop(data.draw(st.integers(0, len(timers) - 1)))))
        elif kind == "ack":
            current = orch.deliveries(P)
            if current and data.draw(st.booleans(), label="names a current delivery"):
                # Whatever its state: held, pending, in flight, settled...
                d = data.draw(st.sampled_from(current))
                ack = Ack(d.endpoint, P, d.version, d.op)
            else:  # forged: any endpoint, version, op
                ack = Ack(
                    data.draw(st.sampled_from(ENDPOINTS)).id,
                    P,
                    data.draw(st.integers(1, 3)),
                    data.draw(st.sampled_from(["apply", "revoke"])),
                )
            ep = next(e for e in ENDPOINTS if e.id == ack.endpoint)
            refusal = orch.ack_refusal(ack)
            commands = feed(ack)
            first = records(commands)[0]
            key = (ack.version, ack.endpoint, ack.op)
            if refusal is None:
                assert (first.kind, first.outcome) == ("ack", ack.op)
                assert key in sent and key not in acked, (key, sent, acked)
                acked.add(key)
            else:
                assert commands == [
                    WriteRecord(
                        Record(
                            t,
                            "stale",
                            promo=P,
                            version=ack.version,
                            endpoint=ep.id,
                            channel=ep.channel,
                            region=ep.region,
                            attempt=refusal.attempt,
                            outcome="ack",
                            detail=f"{ack.op}:{refusal.reason}",
                        )
                    )
                ]


def _op(r: Record) -> str:
    return r.outcome  # a "send" record's outcome is its op
