"""Whole-trace tests of the orchestrator core: every command of a scenario, derived by hand.

Each test feeds ``handle`` a sequence of (event, now) pairs, as a SimPy driver would, and
compares the full list of commands returned against the list written out below. The first
traces compare everything, records included; later ones drop the records where they would
only repeat what earlier traces pin down (``sans_records``).
"""

from __future__ import annotations

import random

import pytest

from harness.domain.eventlog import Record
from harness.domain.promotion import Promotion
from harness.orchestrator.commands import (
    CancelTimer,
    Command,
    DeadLetter,
    RequestValidation,
    SendDelivery,
    StartTimer,
    WriteRecord,
)
from harness.orchestrator.core import EndpointInfo, IllegalTransition, Orchestrator
from harness.orchestrator.delivery import (
    Backoff,
    BreakerConfig,
    DeadLetterEntry,
    DeliveryPolicy,
    DistributionMode,
    RetryBudgetConfig,
)
from harness.orchestrator.events import (
    Ack,
    Approve,
    CreateDraft,
    DeliveryResult,
    End,
    Event,
    Pause,
    Publish,
    ReplayDeadLetters,
    Resume,
    Rollback,
    Submit,
    TargetScope,
    TimerFired,
    Validate,
    ValidationResult,
)

P = "P1"
ALL_SCOPE = '{"channels":[],"regions":[],"stores":[]}'
FIXED_1S = Backoff("fixed", base=1.0)


def promotion(channels: tuple[str, ...] = ("pos",)) -> Promotion:
    return Promotion.model_validate(
        {
            "id": P,
            "name": "Flash sale: 30% off",
            "validity": {
                "start": "2026-11-27T09:00:00",
                "end": "2026-11-27T21:00:00",
                "timezone": "Europe/Paris",
            },
            "scope": {"channels": list(channels)},
            "benefit": {"type": "percent_off", "percent": "30"},
        }
    )


def stores(*ids: str, channel: str = "pos") -> list[EndpointInfo]:
    return [EndpointInfo(i, channel, region="north", store=i.upper()) for i in ids]


def run(orch: Orchestrator, steps: list[tuple[Event, float]]) -> list[Command]:
    commands: list[Command] = []
    for event, now in steps:
        commands += orch.handle(event, now)
    return commands


def approve_steps(p: Promotion, t: float = 0.0) -> list[tuple[Event, float]]:
    return [
        (CreateDraft(p), t),
        (Submit(P), t),
        (Validate(P), t),
        (ValidationResult(P, p.version, ok=True), t),
        (Approve(P), t),
    ]


def approved(orch: Orchestrator, p: Promotion) -> Orchestrator:
    run(orch, approve_steps(p))
    return orch


def sans_records(commands: list[Command]) -> list[Command]:
    return [c for c in commands if not isinstance(c, WriteRecord)]


def records(commands: list[Command]) -> list[Record]:
    return [c.record for c in commands if isinstance(c, WriteRecord)]


# --- expected-command builders (one per command kind, to keep the traces readable) --------


def rec(t: float, kind: str, **fields: object) -> WriteRecord:
    return WriteRecord(Record(t, kind, **fields))  # type: ignore[arg-type]


def state(t: float, change: str) -> WriteRecord:
    return rec(t, "state", promo=P, version=1, detail=change)


def drec(
    t: float,
    kind: str,
    ep: EndpointInfo,
    *,
    op: str = "apply",
    version: int = 1,
    attempt: int = 0,
    outcome: str = "",
    value: float = 0.0,
    delivery_id: str | None = None,
) -> WriteRecord:
    """A delivery-level record for ``ep``; ``detail`` is the delivery id."""
    return rec(
        t,
        kind,
        promo=P,
        version=version,
        endpoint=ep.id,
        channel=ep.channel,
        region=ep.region,
        attempt=attempt,
        outcome=outcome,
        value=value,
        detail=delivery_id or did(ep, version, op),
    )


def did(ep: EndpointInfo, version: int = 1, op: str = "apply") -> str:
    return f"{P}:{version}:{ep.id}:{op}"


def send(
    ep: EndpointInfo,
    attempt: int,
    p: Promotion | None,
    *,
    op: str = "apply",
    version: int = 1,
    delivery_id: str | None = None,
    timeout: float = 10.0,
) -> SendDelivery:
    delivery_id = delivery_id or did(ep, version, op)
    return SendDelivery(
        delivery_id=delivery_id,
        endpoint=ep.id,
        channel=ep.channel,
        op=op,
        promo=P,
        version=version,
        attempt=attempt,
        idempotency_key=delivery_id,
        timeout=timeout,
        payload=p if op == "apply" else None,
    )


def sent(t: float, ep: EndpointInfo, attempt: int, p: Promotion | None, **kw: object) -> list:
    """A SendDelivery and its "send" record."""
    op = str(kw.get("op", "apply"))
    version = int(kw.get("version", 1))  # type: ignore[call-overload]
    delivery_id = kw.get("delivery_id")
    return [
        send(ep, attempt, p, **kw),  # type: ignore[arg-type]
        drec(
            t,
            "send",
            ep,
            op=op,
            version=version,
            attempt=attempt,
            outcome=op,
            delivery_id=delivery_id,  # type: ignore[arg-type]
        ),
    ]


def result(
    ep: EndpointInfo,
    attempt: int,
    outcome: str,
    *,
    op: str = "apply",
    version: int = 1,
    retry_after: float | None = None,
    delivery_id: str | None = None,
) -> DeliveryResult:
    return DeliveryResult(
        delivery_id=delivery_id or did(ep, version, op),
        endpoint=ep.id,
        promo=P,
        version=version,
        op=op,
        attempt=attempt,
        outcome=outcome,
        retry_after=retry_after,
    )


def retry_timer(ep: EndpointInfo, next_attempt: int, at: float) -> StartTimer:
    delivery_id = did(ep)
    return StartTimer(f"retry:{delivery_id}:{next_attempt}", at, (delivery_id, next_attempt))


# --- 1. three stores, one fails twice then succeeds (everything compared) -----------------


def test_one_store_fails_twice_then_succeeds_full_trace() -> None:
    p = promotion()
    s1, s2, s3 = eps = stores("s1", "s2", "s3")
    orch = Orchestrator(eps, {"pos": DeliveryPolicy(backoff=FIXED_1S)}, rng=random.Random(7))

    commands = run(
        orch,
        [
            *approve_steps(p),
            (Publish(P), 10.0),
            (result(s1, 1, "ok"), 10.5),
            (result(s2, 1, "error"), 10.5),
            (result(s3, 1, "ok"), 10.5),
            (TimerFired(f"retry:{did(s2)}:2"), 11.5),
            (result(s2, 2, "timeout"), 12.0),
            (TimerFired(f"retry:{did(s2)}:3"), 13.0),
            (result(s2, 3, "ok"), 13.25),
        ],
    )

    assert commands == [
        rec(0.0, "create", promo=P, version=1),
        state(0.0, "->draft"),
        rec(0.0, "submit", promo=P, version=1),
        state(0.0, "draft->submitted"),
        rec(0.0, "validate", promo=P, version=1),
        RequestValidation(P, 1, p),
        rec(0.0, "validated", promo=P, version=1, outcome="ok"),
        state(0.0, "submitted->validated"),
        rec(0.0, "approve", promo=P, version=1),
        state(0.0, "validated->approved"),
        # publish: one target per store, then every push endpoint is sent at once
        rec(10.0, "publish", promo=P, version=1, detail=ALL_SCOPE),
        state(10.0, "approved->publishing"),
        drec(10.0, "target", s1, outcome="apply"),
        drec(10.0, "target", s2, outcome="apply"),
        drec(10.0, "target", s3, outcome="apply"),
        *sent(10.0, s1, 1, p),
        *sent(10.0, s2, 1, p),
        *sent(10.0, s3, 1, p),
        # results: value = latency since the send
        drec(10.5, "result", s1, attempt=1, outcome="ok", value=0.5),
        drec(10.5, "ack", s1, attempt=1, outcome="apply"),
        drec(10.5, "result", s2, attempt=1, outcome="error", value=0.5),
        retry_timer(s2, 2, 11.5),
        drec(10.5, "result", s3, attempt=1, outcome="ok", value=0.5),
        drec(10.5, "ack", s3, attempt=1, outcome="apply"),
        *sent(11.5, s2, 2, p),
        drec(12.0, "result", s2, attempt=2, outcome="timeout", value=0.5),
        retry_timer(s2, 3, 13.0),
        *sent(13.0, s2, 3, p),
        drec(13.25, "result", s2, attempt=3, outcome="ok", value=0.25),
        drec(13.25, "ack", s2, attempt=3, outcome="apply"),
        state(13.25, "publishing->active"),
    ]
    assert orch.status(P) == "active"
    assert [orch.delivery_state(P, e.id) for e in eps] == ["acked"] * 3


# --- 2. a 429 with Retry-After is honoured (everything compared) --------------------------


def test_429_retry_after_overrides_a_shorter_backoff_full_trace() -> None:
    p = promotion(("marketplace",))
    mk = EndpointInfo("mk", "marketplace")
    orch = approved(
        Orchestrator([mk], {"marketplace": DeliveryPolicy(backoff=FIXED_1S)}, rng=random.Random(1)),
        p,
    )

    commands = run(
        orch,
        [
            (Publish(P), 0.0),
            (result(mk, 1, "throttled", retry_after=7.0), 0.2),
            (TimerFired(f"retry:{did(mk)}:2"), 7.2),
            (result(mk, 2, "ok"), 7.5),
        ],
    )

    assert commands == [
        rec(0.0, "publish", promo=P, version=1, detail=ALL_SCOPE),
        state(0.0, "approved->publishing"),
        drec(0.0, "target", mk, outcome="apply"),
        *sent(0.0, mk, 1, p),
        drec(0.2, "result", mk, attempt=1, outcome="throttled", value=0.2),
        retry_timer(mk, 2, 0.2 + 7.0),  # the backoff alone says 1.2
        *sent(7.2, mk, 2, p),
        drec(7.5, "result", mk, attempt=2, outcome="ok", value=pytest.approx(0.3)),
        drec(7.5, "ack", mk, attempt=2, outcome="apply"),
        state(7.5, "publishing->active"),
    ]


# --- 3. circuit breaker: opens at its threshold, half-open probe (everything compared) ----


def breaker_orch(p: Promotion) -> tuple[Orchestrator, EndpointInfo]:
    erp = EndpointInfo("erp", "loyalty")
    policy = DeliveryPolicy(
        backoff=FIXED_1S,
        max_attempts=10,
        breaker=BreakerConfig(failure_threshold=2, open_seconds=30.0),
    )
    return approved(Orchestrator([erp], {"loyalty": policy}, rng=random.Random(3)), p), erp


def breaker_rec(t: float, ep: EndpointInfo, new_state: str) -> WriteRecord:
    return rec(t, "breaker", endpoint=ep.id, channel=ep.channel, outcome=new_state)


def opening_steps(ep: EndpointInfo) -> list[tuple[Event, float]]:
    return [
        (Publish(P), 0.0),
        (result(ep, 1, "error"), 1.0),
        (TimerFired(f"retry:{did(ep)}:2"), 2.0),
        (result(ep, 2, "unavailable"), 3.0),  # the 2nd consecutive failure opens it
        (TimerFired(f"retry:{did(ep)}:3"), 4.0),  # ... so the retry is held
    ]


def opening_trace(p: Promotion, ep: EndpointInfo) -> list[Command]:
    return [
        rec(0.0, "publish", promo=P, version=1, detail=ALL_SCOPE),
        state(0.0, "approved->publishing"),
        drec(0.0, "target", ep, outcome="apply"),
        *sent(0.0, ep, 1, p),
        drec(1.0, "result", ep, attempt=1, outcome="error", value=1.0),
        retry_timer(ep, 2, 2.0),
        *sent(2.0, ep, 2, p),
        drec(3.0, "result", ep, attempt=2, outcome="unavailable", value=1.0),
        breaker_rec(3.0, ep, "open"),
        retry_timer(ep, 3, 4.0),
        StartTimer("breaker:erp:33.0", 33.0, ("breaker", "erp")),
    ]


def test_breaker_opens_then_a_successful_probe_closes_it_full_trace() -> None:
    p = promotion(("loyalty",))
    orch, erp = breaker_orch(p)
    commands = run(orch, opening_steps(erp))
    assert commands == opening_trace(p, erp)
    assert orch.delivery_state(P, "erp") == "held" and orch.breaker_state("erp") == "open"

    commands = run(orch, [(TimerFired("breaker:erp:33.0"), 33.0), (result(erp, 3, "ok"), 33.5)])
    assert commands == [
        breaker_rec(33.0, erp, "half_open"),
        *sent(33.0, erp, 3, p),  # the probe: no attempt was spent while it was open
        drec(33.5, "result", erp, attempt=3, outcome="ok", value=0.5),
        breaker_rec(33.5, erp, "closed"),
        drec(33.5, "ack", erp, attempt=3, outcome="apply"),
        state(33.5, "publishing->active"),
    ]


def test_breaker_probe_failure_reopens_it_full_trace() -> None:
    p = promotion(("loyalty",))
    orch, erp = breaker_orch(p)
    run(orch, opening_steps(erp))

    commands = run(
        orch,
        [
            (TimerFired("breaker:erp:33.0"), 33.0),
            (result(erp, 3, "timeout"), 43.0),
            (TimerFired(f"retry:{did(erp)}:4"), 44.0),
        ],
    )
    assert commands == [
        breaker_rec(33.0, erp, "half_open"),
        *sent(33.0, erp, 3, p),
        drec(43.0, "result", erp, attempt=3, outcome="timeout", value=10.0),
        breaker_rec(43.0, erp, "open"),
        retry_timer(erp, 4, 44.0),
        StartTimer("breaker:erp:73.0", 73.0, ("breaker", "erp")),  # reopened at 43
    ]
    assert orch.breaker_state("erp") == "open" and orch.delivery_state(P, "erp") == "held"


# --- 4. retry budget running dry ---------------------------------------------------------


def test_retry_budget_runs_dry_on_the_second_failure() -> None:
    # max_tokens 4: the 1st failure leaves 3 (> 4/2, may retry), the 2nd leaves 2 (not > 2):
    # that failure is not retried but dead-lettered with a "budget" record.
    p = promotion()
    s1, s2, s3 = eps = stores("s1", "s2", "s3")
    policy = DeliveryPolicy(
        backoff=FIXED_1S, retry_budget=RetryBudgetConfig(max_tokens=4, token_ratio=0.1)
    )
    orch = approved(Orchestrator(eps, {"pos": policy}, rng=random.Random(5)), p)
    run(orch, [(Publish(P), 0.0)])

    commands = run(
        orch,
        [
            (result(s1, 1, "error"), 1.0),
            (result(s2, 1, "unavailable"), 1.0),
            (result(s3, 1, "ok"), 1.0),  # earns 0.1: 2.1 > 2, retries allowed again
            (TimerFired(f"retry:{did(s1)}:2"), 2.0),
            (result(s1, 2, "ok"), 2.5),
        ],
    )
    assert commands == [
        drec(1.0, "result", s1, attempt=1, outcome="error", value=1.0),
        retry_timer(s1, 2, 2.0),
        drec(1.0, "result", s2, attempt=1, outcome="unavailable", value=1.0),
        drec(1.0, "budget", s2, attempt=1, outcome="exhausted", value=2.0),
        drec(1.0, "dlq", s2, attempt=1, outcome="retry_budget"),
        DeadLetter(did(s2), "s2", P, 1, "apply", 1, "retry_budget"),
        drec(1.0, "result", s3, attempt=1, outcome="ok", value=1.0),
        drec(1.0, "ack", s3, attempt=1, outcome="apply"),
        *sent(2.0, s1, 2, p),
        drec(2.5, "result", s1, attempt=2, outcome="ok", value=0.5),
        drec(2.5, "ack", s1, attempt=2, outcome="apply"),
        state(2.5, "publishing->partially_active"),
    ]
    assert orch.dead_letters() == [
        DeadLetterEntry(did(s2), "s2", "pos", P, 1, "apply", 1, "retry_budget", 1.0)
    ]


# --- 5. dead-letter after max_attempts, then a replay from attempt 1 ------------------------


def test_dead_letter_after_max_attempts_then_replay_starts_a_new_delivery() -> None:
    p = promotion()
    (s1,) = eps = stores("s1")
    policy = DeliveryPolicy(backoff=FIXED_1S, max_attempts=2)
    orch = approved(Orchestrator(eps, {"pos": policy}, rng=random.Random(0)), p)
    r1 = f"{did(s1)}#r1"

    commands = run(
        orch,
        [
            (Publish(P), 0.0),
            (result(s1, 1, "error"), 1.0),
            (TimerFired(f"retry:{did(s1)}:2"), 2.0),
            (result(s1, 2, "error"), 3.0),  # attempt 2 of 2: dead-lettered
            (ReplayDeadLetters(promo=P), 50.0),
            (result(s1, 1, "ok", delivery_id=r1), 50.5),
        ],
    )
    assert sans_records(commands) == [
        send(s1, 1, p),
        retry_timer(s1, 2, 2.0),
        send(s1, 2, p),
        DeadLetter(did(s1), "s1", P, 1, "apply", 2, "max_attempts"),
        send(s1, 1, p, delivery_id=r1),
    ]
    assert [r.kind for r in records(commands)][-8:] == [
        "dlq",
        "state",  # publishing->partially_active
        "replay",
        "send",
        "state",  # partially_active->publishing
        "result",
        "ack",
        "state",  # publishing->active
    ]
    assert rec(50.0, "replay", promo=P, value=1.0, detail="dropped=0") in commands
    assert [r.detail for r in records(commands) if r.kind == "state"][-3:] == [
        "publishing->partially_active",
        "partially_active->publishing",
        "publishing->active",
    ]
    assert orch.dead_letters() == [] and orch.delivery_state(P, "s1") == "acked"
    assert orch.delivery(P, "s1").delivery_id == r1  # type: ignore[union-attr]


def test_a_second_replay_is_suffixed_r2_and_a_revoked_dead_letter_is_dropped() -> None:
    p = promotion()
    s1, s2 = eps = stores("s1", "s2")
    policy = DeliveryPolicy(backoff=FIXED_1S, max_attempts=1)
    orch = approved(Orchestrator(eps, {"pos": policy}, rng=random.Random(0)), p)
    run(
        orch,
        [
            (Publish(P), 0.0),
            (result(s1, 1, "rejected"), 1.0),  # a 4xx is dead-lettered at once
            (result(s2, 1, "error"), 1.0),
            (ReplayDeadLetters(endpoint="s1"), 2.0),
            (result(s1, 1, "error", delivery_id=f"{did(s1)}#r1"), 3.0),
        ],
    )
    assert orch.status(P) == "partially_active"
    commands = run(
        orch,
        [
            (Rollback(P, TargetScope(stores=("S2",))), 4.0),  # s2's dead apply is revoked
            (result(s2, 1, "ok", op="revoke", version=2), 5.0),
            (ReplayDeadLetters(), 6.0),
        ],
    )
    assert sans_records(commands) == [
        send(s2, 1, None, op="revoke", version=2),
        send(s1, 1, p, delivery_id=f"{did(s1)}#r2"),
    ]
    assert rec(6.0, "replay", value=1.0, detail="dropped=1") in commands
    assert (
        drec(6.0, "stale", s2, attempt=1, outcome="replay_dropped", delivery_id=did(s2)) in commands
    )


def revoked(t: float, ep: EndpointInfo, latency: float) -> list[WriteRecord]:
    """The "result" and "ack" records of a revoke (v2) that succeeded at its 1st attempt."""
    return [
        drec(
            t,
            "result",
            ep,
            op="revoke",
            version=2,
            attempt=1,
            outcome="ok",
            value=pytest.approx(latency),
        ),
        drec(t, "ack", ep, op="revoke", version=2, attempt=1, outcome="revoke"),
    ]


# --- 6. a rollback racing an in-flight publish retry --------------------------------------


def test_rollback_racing_an_in_flight_retry_revokes_with_a_tombstone_version() -> None:
    p = promotion()
    s1, s2, s3 = eps = stores("s1", "s2", "s3")
    orch = approved(
        Orchestrator(eps, {"pos": DeliveryPolicy(backoff=FIXED_1S)}, rng=random.Random(9)), p
    )
    run(
        orch,
        [
            (Publish(P), 0.0),
            (result(s1, 1, "error"), 1.0),
            (result(s2, 1, "error"), 1.5),
            (result(s3, 1, "ok"), 1.0),
            (TimerFired(f"retry:{did(s1)}:2"), 2.0),  # s1's retry is now in flight
        ],
    )
    assert [orch.delivery_state(P, e.id) for e in eps] == ["in_flight", "retry_wait", "acked"]

    commands = run(orch, [(Rollback(P, deadline=60.0), 2.2)])
    assert commands == [
        rec(2.2, "rollback", promo=P, version=1, value=60.0, detail=ALL_SCOPE),
        state(2.2, "publishing->rolling_back"),
        drec(2.2, "target", s1, op="revoke", version=2, outcome="revoke"),
        CancelTimer(f"retry:{did(s2)}:2"),  # s2's pending apply retry will never fire
        drec(2.2, "target", s2, op="revoke", version=2, outcome="revoke"),
        drec(2.2, "target", s3, op="revoke", version=2, outcome="revoke"),
        *sent(2.2, s1, 1, None, op="revoke", version=2),
        *sent(2.2, s2, 1, None, op="revoke", version=2),
        *sent(2.2, s3, 1, None, op="revoke", version=2),
    ]

    commands = run(
        orch,
        [
            (result(s1, 2, "ok"), 2.4),  # the late apply: stale, not an ack
            (Ack("s1", P, 1, "apply"), 2.5),  # and its webhook too
            (TimerFired(f"retry:{did(s2)}:2"), 2.5),  # a cancelled timer a driver still fired
            (result(s1, 1, "ok", op="revoke", version=2), 2.6),
            (result(s2, 1, "ok", op="revoke", version=2), 2.6),
            (result(s3, 1, "ok", op="revoke", version=2), 2.7),
        ],
    )
    stale_ack = rec(
        2.5,
        "stale",
        promo=P,
        version=1,
        endpoint="s1",
        channel="pos",
        region="north",
        outcome="ack",
        detail="apply:not_current",  # version 2 (the revoke) is the current delivery
    )
    assert commands == [
        drec(2.4, "stale", s1, attempt=2, outcome="ok"),
        stale_ack,
        *revoked(2.6, s1, latency=0.4),
        *revoked(2.6, s2, latency=0.4),
        *revoked(2.7, s3, latency=0.5),
        state(2.7, "rolling_back->rolled_back"),
    ]
    assert [orch.delivery_state(P, e.id) for e in eps] == ["revoked"] * 3


def test_partial_rollback_returns_to_active_and_never_sent_endpoints_need_no_revoke() -> None:
    p = promotion(("pos", "ecommerce"))
    pos = stores("s1", "s2")
    web = EndpointInfo("web", "ecommerce")
    orch = approved(Orchestrator([*pos, web], rng=random.Random(2)), p)
    run(orch, [(Pause(P, "pos"), 0.0), (Publish(P), 0.0), (result(web, 1, "ok"), 1.0)])
    assert orch.status(P) == "publishing"  # the paused stores are still outstanding

    commands = run(orch, [(Rollback(P, TargetScope(channels=("pos",))), 2.0)])
    assert sans_records(commands) == []  # nothing ever left for the stores
    assert [r.detail for r in records(commands) if r.kind == "state"] == [
        "publishing->rolling_back",
        "rolling_back->active",  # the web site still carries it
    ]
    assert orch.delivery_state(P, "s1") == orch.delivery_state(P, "s2") == "revoked"
    # Resuming the channel must not resurrect the apply.
    assert run(orch, [(Resume(P, "pos"), 3.0)]) == [
        rec(3.0, "resume", promo=P, version=1, channel="pos")
    ]


# --- 7. pause and resume of one channel ---------------------------------------------------


def test_pause_holds_one_channel_and_resume_releases_it_in_order() -> None:
    p = promotion(("pos", "ecommerce"))
    s1, s2, s3 = pos = stores("s1", "s2", "s3")
    web = EndpointInfo("web", "ecommerce")
    orch = approved(
        Orchestrator(
            [*pos, web],
            {"pos": DeliveryPolicy(backoff=FIXED_1S, concurrency=1)},
            rng=random.Random(4),
        ),
        p,
    )

    commands = run(
        orch,
        [
            (Publish(P), 0.0),
            (Pause(P, "pos"), 0.1),  # s1 in flight, s2 and s3 queued behind it
            (result(s1, 1, "error"), 0.5),  # an in-flight send finishes; its retry is held
            (TimerFired(f"retry:{did(s1)}:2"), 1.5),
            (result(web, 1, "ok"), 2.0),  # the other channel goes on
        ],
    )
    assert sans_records(commands) == [
        send(s1, 1, p),
        send(web, 1, p),
        retry_timer(s1, 2, 1.5),
    ]
    assert [orch.delivery_state(P, e.id) for e in pos] == ["held"] * 3
    assert orch.delivery_state(P, "web") == "acked"
    assert rec(0.1, "pause", promo=P, version=1, channel="pos") in commands
    assert drec(0.0, "throttle", s2, outcome="concurrency") in commands

    commands = run(
        orch,
        [
            (Resume(P, "pos"), 10.0),
            (result(s2, 1, "ok"), 10.5),
            (result(s3, 1, "ok"), 11.0),
            (result(s1, 2, "ok"), 11.5),
        ],
    )
    # Released in their original order: s2, s3 queued at the publish, s1's retry after.
    assert sans_records(commands) == [send(s2, 1, p), send(s3, 1, p), send(s1, 2, p)]
    assert commands[0] == rec(10.0, "resume", promo=P, version=1, channel="pos")
    assert orch.status(P) == "active"


# --- 8. batch window ----------------------------------------------------------------------


def test_batch_channel_deliveries_wait_for_their_window() -> None:
    p = promotion(("pos", "ecommerce"))
    s1, s2 = stores("s1", "s2")
    s3 = EndpointInfo("s3", "pos", region="north", store="S3", batch_offset=300.0)
    web = EndpointInfo("web", "ecommerce")
    policy = DeliveryPolicy(
        backoff=Backoff("fixed", base=4.0), distribution=DistributionMode("batch", interval=900.0)
    )
    orch = approved(Orchestrator([s1, s2, s3, web], {"pos": policy}, rng=random.Random(6)), p)

    commands = run(orch, [(Publish(P), 100.0)])
    assert sans_records(commands) == [
        StartTimer("window:pos:900.0", 900.0, ("window", "pos")),  # one for s1 and s2
        StartTimer("window:pos:300.0", 300.0, ("window", "pos")),  # s3's own offset
        send(web, 1, p),  # push channel: at once
    ]
    assert orch.delivery_state(P, "s1") == "held"

    assert sans_records(run(orch, [(TimerFired("window:pos:300.0"), 300.0)])) == [send(s3, 1, p)]
    assert sans_records(run(orch, [(TimerFired("window:pos:900.0"), 900.0)])) == [
        send(s1, 1, p),
        send(s2, 1, p),
    ]
    # A retry of a batch delivery follows its backoff inside the window it went out in,
    # rather than waiting a whole interval for the next window.
    assert sans_records(
        run(orch, [(result(s1, 1, "error"), 901.0), (TimerFired(f"retry:{did(s1)}:2"), 905.0)])
    ) == [
        StartTimer(f"retry:{did(s1)}:2", 905.0, (did(s1), 2)),
        send(s1, 2, p),
    ]


def test_endpoint_records_describe_the_inventory() -> None:
    s1 = EndpointInfo("s1", "pos", region="north", store="S1", realtime=False, capacity=5.0)
    web = EndpointInfo("web", "ecommerce", capacity=200.0)
    orch = Orchestrator(
        [s1, web],
        {"pos": DeliveryPolicy(distribution=DistributionMode("hybrid"))},
        rng=random.Random(0),
    )
    assert orch.endpoint_records(0.0) == [
        rec(
            0.0, "endpoint", endpoint="s1", channel="pos", region="north", value=5.0, detail="batch"
        ),
        rec(0.0, "endpoint", endpoint="web", channel="ecommerce", value=200.0, detail="realtime"),
    ]


# --- 9. concurrency limit -----------------------------------------------------------------


def test_concurrency_limit_two_over_five_endpoints() -> None:
    p = promotion()
    eps = stores("s1", "s2", "s3", "s4", "s5")
    policy = DeliveryPolicy(backoff=FIXED_1S, concurrency=2)
    orch = approved(Orchestrator(eps, {"pos": policy}, rng=random.Random(8)), p)

    steps: list[tuple[Event, float]] = [(Publish(P), 0.0)]
    steps += [(result(ep, 1, "ok"), 1.0 + i) for i, ep in enumerate(eps)]
    in_flight = peak = 0
    commands: list[Command] = []
    for event, now in steps:
        out = orch.handle(event, now)
        commands += out
        in_flight += sum(isinstance(c, SendDelivery) for c in out)
        in_flight -= isinstance(event, DeliveryResult)  # its slot was freed before the sends
        peak = max(peak, in_flight)
        assert orch.in_flight("pos") == in_flight <= 2
    assert peak == 2
    s1, s2, s3, s4, s5 = eps
    assert sans_records(commands) == [
        send(s1, 1, p),
        send(s2, 1, p),
        send(s3, 1, p),  # after s1's result
        send(s4, 1, p),  # after s2's
        send(s5, 1, p),  # after s3's
    ]
    assert [c.endpoint for c in commands if isinstance(c, SendDelivery)] == [e.id for e in eps]
    # one "throttle" record per hold, not one per check
    assert [r for r in records(commands) if r.kind == "throttle"] == [
        drec(0.0, "throttle", eps[2], outcome="concurrency").record
    ]
    assert orch.status(P) == "active"


def test_rate_limit_spaces_sends_with_one_timer() -> None:
    from harness.orchestrator.delivery import RateLimitConfig

    p = promotion()
    eps = stores("s1", "s2", "s3")
    policy = DeliveryPolicy(rate_limit=RateLimitConfig(rate=2.0, burst=1))
    orch = approved(Orchestrator(eps, {"pos": policy}, rng=random.Random(8)), p)
    commands = run(orch, [(Publish(P), 0.0), (TimerFired("rate:pos:0.5"), 0.5)])
    assert sans_records(commands) == [
        send(eps[0], 1, p),
        StartTimer("rate:pos:0.5", 0.5, ("rate", "pos")),
        send(eps[1], 1, p),
        StartTimer("rate:pos:1.0", 1.0, ("rate", "pos")),
    ]
    assert [r.outcome for r in records(commands) if r.kind == "throttle"] == ["rate"]


# --- lifecycle through the core -----------------------------------------------------------


def test_illegal_operator_command_raises_and_changes_nothing() -> None:
    p = promotion()
    orch = Orchestrator(stores("s1"), rng=random.Random(0))
    run(orch, [(CreateDraft(p), 0.0)])
    with pytest.raises(IllegalTransition, match="cannot 'approve' a promotion in state 'draft'"):
        orch.handle(Approve(P), 1.0)
    with pytest.raises(IllegalTransition, match="cannot 'create' a promotion in state 'draft'"):
        orch.handle(CreateDraft(p), 1.0)
    assert orch.status(P) == "draft"


def test_failed_validation_rejects_with_reasons_and_end_settles() -> None:
    p = promotion()
    orch = Orchestrator(stores("s1"), rng=random.Random(0))
    commands = run(
        orch,
        [
            (CreateDraft(p), 0.0),
            (Submit(P), 0.0),
            (Validate(P), 0.0),
            (ValidationResult(P, 1, ok=False, reasons=("no funding", "unknown SKU")), 1.0),
        ],
    )
    assert commands[-2:] == [
        rec(
            1.0, "validated", promo=P, version=1, outcome="failed", detail="no funding; unknown SKU"
        ),
        state(1.0, "submitted->rejected"),
    ]
    # A late second answer is stale, not a transition.
    assert orch.handle(ValidationResult(P, 1, ok=True), 2.0) == [
        rec(2.0, "stale", promo=P, version=1, outcome="validation")
    ]


def test_schedule_publishes_when_its_timer_fires() -> None:
    from harness.orchestrator.events import Schedule

    p = promotion()
    (s1,) = eps = stores("s1")
    orch = approved(Orchestrator(eps, rng=random.Random(0)), p)
    scope = TargetScope(stores=("S1",))
    scope_json = '{"channels":[],"regions":[],"stores":["S1"]}'
    assert orch.handle(Schedule(P, at=3600.0, scope=scope), 0.0) == [
        rec(0.0, "schedule", promo=P, version=1, value=3600.0, detail=scope_json),
        state(0.0, "approved->scheduled"),
        StartTimer(f"schedule:{P}:1", 3600.0, ("publish", P)),
    ]
    commands = run(orch, [(TimerFired(f"schedule:{P}:1"), 3600.0), (result(s1, 1, "ok"), 3601)])
    assert sans_records(commands) == [send(s1, 1, p)]
    assert [r.detail for r in records(commands) if r.kind == "state"] == [
        "scheduled->publishing",
        "publishing->active",
    ]
    run(orch, [(End(P), 7200.0)])
    assert orch.status(P) == "ended"
