"""Properties of the orchestrator core under any interleaving (hypothesis).

A small estate (three stores behind a concurrency limit and circuit breakers, a web shop
behind a rate limit and a retry budget, a loyalty endpoint taking batch windows) and two
promotions. Hypothesis interleaves delivery results of any outcome and in any order,
duplicates, acknowledgements (late ones included), firings of pending timers (late ones
included) and operator commands (pause, resume, publish, rollback, replay). Throughout:

* no apply of a version at or below a revoked one is ever sent to that endpoint;
* no delivery goes beyond its channel's max_attempts;
* a channel never has more sends in flight than its concurrency limit;
* timer ids are never reused and only pending timers are cancelled.

Then the endpoints recover (every channel resumed, every send answered "ok", every timer
fired until nothing is pending) and every delivery must have ended acked, dead-lettered
or revoked, with no promotion left publishing or rolling back. Finally the same events
with the same seed must give the same commands.
"""

from __future__ import annotations

import contextlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.domain.eventlog import OUTCOMES
from harness.domain.lifecycle import IllegalTransition
from harness.domain.promotion import Promotion
from harness.orchestrator.commands import (
    CancelTimer,
    Command,
    SendDelivery,
    StartTimer,
    WriteRecord,
)
from harness.orchestrator.core import EndpointInfo, Orchestrator
from harness.orchestrator.delivery import (
    Backoff,
    BreakerConfig,
    DeliveryPolicy,
    DistributionMode,
    RateLimitConfig,
    RetryBudgetConfig,
)
from harness.orchestrator.events import (
    Ack,
    Approve,
    CreateDraft,
    DeliveryResult,
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

ESTATE = [
    EndpointInfo("s1", "pos", region="north", store="S1"),
    EndpointInfo("s2", "pos", region="north", store="S2"),
    EndpointInfo("s3", "pos", region="south", store="S3"),
    EndpointInfo("web", "ecommerce"),
    EndpointInfo("lp", "loyalty", realtime=False),
]
CHANNELS = ("pos", "ecommerce", "loyalty")
POLICIES = {
    "pos": DeliveryPolicy(
        max_attempts=3,
        backoff=Backoff("full_jitter", base=0.5, cap=4.0),
        ack_timeout=20.0,
        concurrency=2,
        breaker=BreakerConfig(failure_threshold=2, open_seconds=5.0, success_threshold=2),
    ),
    "ecommerce": DeliveryPolicy(
        max_attempts=4,
        backoff=Backoff("exponential", base=0.5, cap=8.0),
        rate_limit=RateLimitConfig(rate=1.0, burst=1),
        retry_budget=RetryBudgetConfig(max_tokens=4, token_ratio=0.5),
        concurrency=1,
    ),
    "loyalty": DeliveryPolicy(
        max_attempts=2,
        backoff=Backoff("decorrelated_jitter", base=1.0, cap=10.0),
        ack_timeout=15.0,
        distribution=DistributionMode("hybrid", interval=30.0),
    ),
}
SCOPES = (
    TargetScope(),
    TargetScope(channels=("pos",)),
    TargetScope(stores=("S1",)),
    TargetScope(regions=("south",)),
    TargetScope(channels=("ecommerce", "loyalty")),
)
DONE = {"acked", "dead_lettered", "revoked"}


def promotion(promo: str, channels: list[str]) -> Promotion:
    return Promotion.model_validate(
        {
            "id": promo,
            "name": f"flash {promo}",
            "validity": {
                "start": "2026-11-27T09:00:00",
                "end": "2026-11-27T21:00:00",
                "timezone": "Europe/Paris",
            },
            "scope": {"channels": channels},
            "benefit": {"type": "percent_off", "percent": "20"},
        }
    )


PROMOTIONS = [promotion("P1", ["pos", "ecommerce", "loyalty"]), promotion("P2", ["pos"])]
PROMOS = [p.id for p in PROMOTIONS]


class Driver:
    """A test driver: carries out commands on a fake clock and checks every one of them."""

    def __init__(self, seed: int) -> None:
        self.orch = Orchestrator(ESTATE, POLICIES, rng=random.Random(seed))
        self.now = 0.0
        self.outstanding: list[SendDelivery] = []  # sends without a result yet
        self.answered: list[DeliveryResult] = []
        self.acks: list[Ack] = []  # what accepted deliveries could acknowledge
        self.timers: dict[str, float] = {}
        self.timer_ids: set[str] = set()
        self.revoked: dict[tuple[str, str], int] = {}  # (promo, endpoint) -> tombstone version
        self.events: list[tuple[Event, float]] = []
        self.commands: list[Command] = []

    def feed(self, event: Event) -> None:
        self.events.append((event, self.now))
        try:
            out = self.orch.handle(event, self.now)
        except IllegalTransition:
            return
        self.commands += out
        for c in out:
            self._check(c)
        for channel in CHANNELS:
            limit = POLICIES[channel].concurrency
            in_flight = sum(s.channel == channel for s in self.outstanding)
            assert self.orch.in_flight(channel) == in_flight
            assert limit is None or in_flight <= limit, f"{channel}: {in_flight} in flight"

    def _check(self, c: Command) -> None:
        if isinstance(c, WriteRecord) and c.record.kind == "target":
            if c.record.outcome == "revoke":
                key = (c.record.promo, c.record.endpoint)
                self.revoked[key] = max(self.revoked.get(key, 0), c.record.version)
        elif isinstance(c, SendDelivery):
            tombstone = self.revoked.get((c.promo, c.endpoint), 0)
            if c.op == "apply":
                assert c.version > tombstone, f"apply v{c.version} after revoke v{tombstone}"
            else:
                assert c.version == tombstone
            assert 1 <= c.attempt <= POLICIES[c.channel].max_attempts
            self.outstanding.append(c)
        elif isinstance(c, StartTimer):
            assert c.timer_id not in self.timer_ids, f"timer id reused: {c.timer_id}"
            self.timer_ids.add(c.timer_id)
            self.timers[c.timer_id] = c.at
        elif isinstance(c, CancelTimer):
            assert self.timers.pop(c.timer_id, None) is not None, f"not pending: {c.timer_id}"

    def answer(self, index: int, outcome: str, retry_after: float | None = None) -> None:
        s = self.outstanding.pop(index)
        r = DeliveryResult(
            s.delivery_id,
            s.endpoint,
            s.promo,
            s.version,
            s.op,
            s.attempt,
            outcome,
            retry_after=retry_after,
        )
        if outcome == "accepted":
            self.acks.append(Ack(s.endpoint, s.promo, s.version, s.op))
        self.answered.append(r)
        self.feed(r)

    def fire(self, timer_id: str) -> None:
        self.now = max(self.now, self.timers.pop(timer_id))
        self.feed(TimerFired(timer_id))


def start(seed: int) -> Driver:
    d = Driver(seed)
    for p in PROMOTIONS:
        for event in (
            CreateDraft(p),
            Submit(p.id),
            Validate(p.id),
            ValidationResult(p.id, p.version, True),
            Approve(p.id),
            Publish(p.id),
        ):
            d.feed(event)
    return d


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 2**16), data=st.data())
def test_any_interleaving_keeps_the_invariants_and_recovers(seed: int, data: st.DataObject) -> None:
    d = start(seed)
    steps = data.draw(st.integers(0, 40), label="steps")
    for _ in range(steps):
        d.now += data.draw(st.sampled_from((0.0, 0.1, 0.5, 2.0, 7.0)), label="dt")
        kinds = ["pause", "resume", "rollback", "publish", "replay"]
        if d.outstanding:
            kinds += ["result"] * 6
        if d.timers:
            kinds += ["timer"] * 4
        if d.acks:
            kinds.append("ack")
        if d.answered:
            kinds.append("duplicate")
        kind = data.draw(st.sampled_from(kinds), label="kind")
        promo = data.draw(st.sampled_from(PROMOS), label="promo")
        if kind == "result":
            index = data.draw(st.integers(0, len(d.outstanding) - 1), label="which")
            outcome = data.draw(st.sampled_from(OUTCOMES), label="outcome")
            retry_after = data.draw(st.none() | st.sampled_from((1.0, 30.0)), label="ra")
            d.answer(index, outcome, retry_after)
        elif kind == "timer":
            d.fire(data.draw(st.sampled_from(sorted(d.timers)), label="timer"))
        elif kind == "ack":
            d.feed(data.draw(st.sampled_from(d.acks), label="ack"))
        elif kind == "duplicate":
            d.feed(data.draw(st.sampled_from(d.answered), label="dup"))
        elif kind == "pause":
            d.feed(Pause(promo, data.draw(st.sampled_from(CHANNELS), label="ch")))
        elif kind == "resume":
            d.feed(Resume(promo, data.draw(st.sampled_from(CHANNELS), label="ch")))
        elif kind == "rollback":
            d.feed(Rollback(promo, data.draw(st.sampled_from(SCOPES), label="scope")))
        elif kind == "publish":
            d.feed(Publish(promo, data.draw(st.sampled_from(SCOPES), label="scope")))
        else:
            d.feed(ReplayDeadLetters(promo=data.draw(st.none() | st.just(promo), label="rp")))

    # The endpoints recover: every channel resumes, every send succeeds, every timer fires.
    for promo in PROMOS:
        for channel in CHANNELS:
            d.feed(Resume(promo, channel))
    for _ in range(5000):
        if d.outstanding:
            d.now += 0.1
            d.answer(0, "ok")
        elif d.timers:
            d.fire(min(d.timers, key=lambda t: (d.timers[t], t)))
        else:
            break
    else:
        raise AssertionError("not quiescent after 5000 steps")

    for promo in PROMOS:
        states = {v.endpoint: v.state for v in d.orch.deliveries(promo)}
        assert set(states.values()) <= DONE, states
        assert d.orch.status(promo) not in ("publishing", "rolling_back"), d.orch.status(promo)
    assert all(d.orch.in_flight(channel) == 0 for channel in CHANNELS)

    # Determinism: the same events and seed give the same commands.
    again = Orchestrator(ESTATE, POLICIES, rng=random.Random(seed))
    replayed: list[Command] = []
    for event, now in d.events:
        with contextlib.suppress(IllegalTransition):
            replayed += again.handle(event, now)
    assert replayed == d.commands
