"""Metastability lab: Huang et al.'s retry experiment, run with our endpoint and policies.

Re-runs the retry experiment of "Metastable Failures in the Wild" (Huang et al., OSDI
2022; artifact ``lexiangh/Metastability``, ``Retry_Metastability``) in SimPy virtual time.
The published set-up (``client/experiments.sh``, ``client/mongoC3.go``,
``primary/trigger.sh``): an open-loop Go client starts one MongoDB insert every
``interval`` (75 µs), each with a 3 s context timeout, and on any error resends at once,
up to 4 resends. The primary runs with ``docker --cpus 2``; 60 s in, ``trigger.sh`` drops
it to ``--cpus X`` for D seconds, then back to 2. Published outcomes: X = 0.45, D = 10 s
recovers; X = 0.40, D = 10 s stays degraded (metastable); X = 0.40, D = 9 s recovers; X =
0.40, D = 10 s at a 100 µs interval recovers.

Here the primary is an ``EndpointModel`` (its front door: outages, quota with
Retry-After) whose ``Profile`` has ``slots`` FIFO slots and a service time of
``slots / capacity`` seconds: ``capacity`` (requests/s at 2 cores) is the model's one
free parameter, calibrated in ``metastable_study``. The trigger is the harness's
``capacity_cut`` fault: a request that *starts service* while it is on takes 2/X times
as long (CPU quota, not fewer threads). The server finishes what it started and serves
what is queued even when the client has given up (MongoDB does not see the client's
context expire): that wasted work is what sustains the storm. The client is a
``DeliveryPolicy`` (timeout, attempts, ``Backoff``, Retry-After), with the harness's
``RetryBudget`` and ``CircuitBreaker`` fed exactly as the dispatcher feeds them; while
the breaker is open a request fails fast (the Go client has no queue to hold it in).

Rates are simulated at ``scale`` of the real ones (interval / scale, capacity x scale):
every time constant (timeout, trigger, backoff) stays, and the queue's waiting times --
what decides timeouts -- depend on the ratio of load to capacity only, so the outcome is
the full-scale one (a test checks two scales agree). Goodput is reported at full scale.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy

from harness.domain.eventlog import Record
from harness.metrics.recovery import recovery
from harness.orchestrator.delivery import (
    FAILURE_OUTCOMES_FOR_BREAKER,
    Backoff,
    BreakerConfig,
    CircuitBreaker,
    DeliveryPolicy,
    RetryBudget,
    RetryBudgetConfig,
)
from simulators.endpoint import EndpointModel
from simulators.profiles import Latency, LatencyKind, Profile, RateLimit, capacity_cut

__all__ = [
    "POLICIES",
    "PUBLISHED",
    "Experiment",
    "Trial",
    "client_policy",
    "run_trial",
]

ENDPOINT = "primary"
CHANNEL = "erp"  # the system of record the experiment's database stands in for


@dataclass(frozen=True, slots=True)
class Experiment:
    """One run of the experiment. Times in seconds, ``capacity`` in requests/s."""

    capacity: float  # requests/s the primary serves at full ``cores`` (the free parameter)
    cut: float = 0.40  # cores during the trigger (docker --cpus X)
    duration: float = 10.0  # trigger length D
    interval: float = 75e-6  # between two new requests (75 000 ns in experiments.sh)
    timeout: float = 3.0
    resends: int = 4
    trigger_at: float = 60.0
    observe: float = 60.0  # simulated after the trigger ends
    cores: float = 2.0  # docker --cpus outside the trigger (m5a.large: 2 vCPU)
    slots: int = 2
    service: LatencyKind = "fixed"
    scale: float = 0.005
    policy: str = "published"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("capacity", "duration", "interval", "timeout", "cores", "scale"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}: must be > 0, got {value!r}")
        if not 0 < self.cut <= self.cores:
            raise ValueError(f"cut: must be in (0, cores={self.cores}], got {self.cut!r}")
        if self.resends < 0:
            raise ValueError(f"resends: must be >= 0, got {self.resends!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy: one of {', '.join(POLICIES)}, got {self.policy!r}")

    @property
    def end(self) -> float:
        return self.trigger_at + self.duration + self.observe

    @property
    def load(self) -> float:
        """Offered load (new requests/s over capacity at full cores)."""
        return 1.0 / (self.interval * self.capacity)

    def but(self, **changes: Any) -> Experiment:
        return dataclasses.replace(self, **changes)


NO_BACKOFF = Backoff("none")  # resend at once, as mongoC3.go does


@dataclass(frozen=True, slots=True)
class Policy:
    """A client policy: its backoff and limits, and the server's quota (share of capacity)
    when the policy needs the server to answer 429 + Retry-After."""

    backoff: Backoff = NO_BACKOFF
    honour_retry_after: bool = False
    budget: RetryBudgetConfig | None = None
    breaker: BreakerConfig | None = None
    quota: float | None = None
    note: str = ""


PUBLISHED = "published"
POLICIES: dict[str, Policy] = {
    PUBLISHED: Policy(note="mongoC3.go: resend at once on any error"),
    "full_jitter": Policy(
        Backoff("full_jitter", base=0.25, cap=8.0), note="full jitter, base 0.25 s, cap 8 s"
    ),
    "retry_budget": Policy(
        budget=RetryBudgetConfig(max_tokens=100.0, token_ratio=0.1),
        note="gRPC retry throttling: 100 tokens, 0.1 per success",
    ),
    "circuit_breaker": Policy(
        breaker=BreakerConfig(failure_threshold=5, open_seconds=5.0),
        note="open after 5 failures in a row for 5 s; fail fast while open",
    ),
    "retry_after": Policy(
        honour_retry_after=True,
        quota=0.9,
        note="server quota at 90% of capacity answers 429 + Retry-After; client honours it",
    ),
    "jitter_budget": Policy(
        Backoff("full_jitter", base=0.25, cap=8.0),
        budget=RetryBudgetConfig(max_tokens=100.0, token_ratio=0.1),
        note="full jitter and the retry budget together",
    ),
}


def client_policy(exp: Experiment) -> DeliveryPolicy:
    """The experiment's client as a ``DeliveryPolicy`` (timeout, 1 + resends attempts)."""
    p = POLICIES[exp.policy]
    return DeliveryPolicy(
        timeout=exp.timeout,
        max_attempts=1 + exp.resends,
        backoff=p.backoff,
        honour_retry_after=p.honour_retry_after,
        breaker=p.breaker,
        retry_budget=p.budget,
    )


@dataclass(frozen=True, slots=True)
class Trial:
    """One run: the event log (at simulated rates) and its headline figures."""

    experiment: Experiment
    records: list[Record]
    requests: int  # new requests started
    succeeded: int  # requests with a successful attempt
    attempts: int
    timed_out: int  # attempts whose reply came after the timeout (or never)
    window: dict[str, Any]  # the trigger's entry of metrics.recovery

    @property
    def recovered(self) -> bool:
        return self.window["sustained"] is False

    @property
    def recovery_seconds(self) -> float | None:
        return self.window["recovery_seconds"]

    def goodput(self, phase: str) -> float | None:
        """Successes/s at full scale: ``before``, ``during`` or ``after`` the trigger."""
        value = self.window["goodput"][phase]
        return None if value is None else value / self.experiment.scale


def _server(exp: Experiment) -> tuple[EndpointModel, Profile]:
    mu = exp.capacity * exp.scale
    p = POLICIES[exp.policy]
    profile = Profile(
        "mongo-primary",
        latency=Latency(exp.service, mean=exp.slots / mu),
        capacity=exp.slots,
        rate_limit=RateLimit(p.quota * mu, max(1.0, p.quota * mu)) if p.quota else None,
    )
    return EndpointModel(ENDPOINT, CHANNEL, profile, seed=exp.seed, horizon=exp.end), capacity_cut(
        profile, exp.cut / exp.cores
    )


def run_trial(exp: Experiment) -> Trial:
    """Run one experiment to ``exp.end`` and judge its recovery with ``metrics.recovery``."""
    rng = random.Random(f"metastable:{exp.seed}")
    env = simpy.Environment()
    model, cut_profile = _server(exp)
    normal, slow = model.profile.latency, cut_profile.latency
    policy = client_policy(exp)
    budget = RetryBudget(policy.retry_budget) if policy.retry_budget else None
    breaker = CircuitBreaker(policy.breaker) if policy.breaker else None
    t_on, t_off = exp.trigger_at, exp.trigger_at + exp.duration
    timeout, max_attempts = policy.timeout, policy.max_attempts
    # FIFO slots as a heap of the times each slot next falls free: start = max(arrival,
    # earliest free slot) is exactly a FIFO simpy.Resource's grant time, known on arrival.
    free = [0.0] * exp.slots
    records: list[Record] = [
        Record(0.0, "endpoint", endpoint=ENDPOINT, channel=CHANNEL, value=exp.capacity * exp.scale),
        Record(
            t_on,
            "fault",
            endpoint=ENDPOINT,
            channel=CHANNEL,
            value=exp.duration,
            detail=f"capacity:{exp.cut / exp.cores:g}",
        ),
    ]
    add = records.append
    tally = {"requests": 0, "succeeded": 0, "attempts": 0, "timed_out": 0}
    schedule = env.timeout

    def later(delay: float, fn: Callable[[], None]) -> None:
        schedule(delay).callbacks.append(lambda _event: fn())

    def send(rid: str, attempt: int, previous: float) -> None:
        now = env.now
        if breaker is not None and not breaker.allow(now):
            return  # fails fast: never reaches the server
        tally["attempts"] += 1
        add(Record(now, "send", rid, 0, ENDPOINT, CHANNEL, "", attempt, "", 0.0, ""))
        gated = model.gate(now)
        if gated is not None:
            if gated.hang:
                later(timeout, lambda: result(rid, attempt, previous, now, "timeout", None))
            else:
                result(rid, attempt, previous, now, gated.outcome, gated.retry_after)
            return
        start = max(now, free[0])
        service = (slow if t_on <= start < t_off else normal).sample(rng)
        heapq.heapreplace(free, start + service)
        done = start + service
        if done - now <= timeout:
            later(done - now, lambda: result(rid, attempt, previous, now, "ok", None))
        else:
            later(timeout, lambda: result(rid, attempt, previous, now, "timeout", None))

    def result(
        rid: str,
        attempt: int,
        previous: float,
        sent: float,
        outcome: str,
        retry_after: float | None,
    ) -> None:
        now = env.now
        add(Record(now, "result", rid, 0, ENDPOINT, CHANNEL, "", attempt, outcome, now - sent, ""))
        if breaker is not None:
            if outcome in FAILURE_OUTCOMES_FOR_BREAKER:
                breaker.record_failure(now)
            elif outcome == "ok" or breaker.state == "half_open":
                breaker.record_success(now)
        if outcome == "ok":
            tally["succeeded"] += 1
            if budget is not None:
                budget.record_success()
            return
        if outcome == "timeout":
            tally["timed_out"] += 1
        # The dispatcher's order (dispatch._fail): spend a token, then attempts, then budget.
        if budget is not None:
            budget.record_failure()
        if attempt >= max_attempts or (budget is not None and not budget.can_retry()):
            return
        delay = policy.retry_delay(attempt, previous, outcome, retry_after, rng)
        if delay <= 0:
            send(rid, attempt + 1, delay)
        else:
            later(delay, lambda: send(rid, attempt + 1, delay))

    def arrivals():  # type: ignore[no-untyped-def]
        gap = exp.interval / exp.scale
        n = 0
        while True:
            yield schedule(gap)
            n += 1
            tally["requests"] += 1
            send(str(n), 1, policy.backoff.base)

    env.process(arrivals())
    env.run(until=exp.end)
    windows = recovery(records, horizon=exp.end)
    return Trial(exp, records, window=windows[0], **tally)
