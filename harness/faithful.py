"""The faithful speed of a live run: how far the wall clock may be compressed before the
harness's own overhead shows in the figures.

A live run at speed ``K`` turns every modelled duration ``d`` (scenario seconds) into
``d / K`` wall seconds, but the stack itself (loopback round trip, estate CPU,
orchestrator CPU and journal) adds a wall-clock cost ``c`` to each delivery that the
virtual-time run does not have. In scenario seconds that cost is ``c * K``. The run is
*faithful* while it stays under a fraction ``f`` (10 %) of every modelled duration it could
distort::

    c * K <= f * d        for every limit d        =>   K_faithful = min_d  f * d / c

Two costs, each against the durations it competes with:

* ``isolated`` — the median wall cost of one delivery on an idle stack, against each
  endpoint's *mean modelled round trip*: its mean service latency plus the channel's
  network delay both ways (``harness.runtime.sim.NETWORK_DELAY``). That is the duration
  the cost is added to — a delivery's send-to-result time, which holds a concurrency slot
  and sets when its result lands — and the calibration subtracts exactly that modelled
  round trip from what it measures, so the two sides of the comparison are the same
  quantity. (Until 2026-11 the comparison was with the service latency alone, which
  counted the link's modelled delay on neither side of the ratio: 0.087 s instead of
  0.127 s for a healthy store, a limit a third too strict.)
* ``at_concurrency`` — the p95 wall time a delivery spends on the wire (the time its
  timeout races) inside a burst as wide as the scenario's fan-out, against each channel's
  *delivery timeout* (it must not time out where the virtual run's would not).

* ``step`` — the wall time the stack takes per operator step of one instant (a publish:
  the API call, the core, the journal, its sends), played at once as ``live`` plays them,
  against the *excess drain time* of each rate limit the scenario's largest instant of
  sending steps overruns: ``(N - burst) / rate``, the time the limit takes to let through
  what the bucket could not take at once (145 / 5 = 29 s for 150 publishes against an
  ERP quota of 5/s). In virtual time the ``N`` steps of that instant (a series of copies
  published at once) reach the endpoint together, ``N - burst`` are throttled and, with
  fixed retries, come back in lock-step until the quota has let them all through; live
  they are decided one after the other, ``(N - 1) * step`` wall seconds from first to
  last, and the bucket refills ``rate`` tokens per scenario second of that spread: that
  many of the excess escape the throttling (and their retries) altogether: the spread
  over the drain time. And the first attempts land about that much later than modelled
  (the loop decides all the steps before it gets to their sends), which costs each
  throttled delivery that share of its wait, half the drain time on average: the spread
  over half the drain time. So ``(N - 1) * step * K`` must stay under ``f`` of *half*
  the drain time (measured on a 150-copy storm at 2.5x: 0.8 s of spread, first
  attempts 1 s late, 8 % fewer attempts). (At 25x erp-quota-retry-storm's 150 publishes
  were spread over 23 of its 29 s: 2.4 attempts per delivery live against 8.3 in virtual
  time.) Each lock-step retry wave is spread again (each result lands, and each retry
  timer fires, in turn), but a wave's events cost less than an API step each and a later
  wave's spread only moves passes between neighbouring waves, not out of the storm.

* ``burst_delay`` — the p95 from a send decision to its result inside the burst, less
  the modelled round trip — against each channel's *lock-step retry interval* (a backoff
  with no jitter, so the whole backlog retries in lock-step: ``fixed``, its interval;
  ``exponential``, its first and shortest wait; ``none``, the round trip itself,
  ``lockstep_interval``). Each result of a lock-step
  wave lands that much later than modelled, and its next attempt is due a fixed interval
  after it lands: every cycle of a storm is stretched by it, and a delivery makes that
  many fewer attempts while it waits (erp-quota-retry-storm at 4.3x: attempts 1.112 s
  apart on average, 1.02 s in virtual time, 11 % fewer attempts). A jittered backoff has
  no lock-step waves (its retries meet an idle stack: the isolated cost, against random
  intervals of a mean far above it).

The burst's delay also shifts when the tail of a fan-out lands — the T50 of a 600-store
publish — against which it is only reported.

Pure: the caller measures the costs (``harness.live_calibrate``) and reads the limits off
the scenario's world (``limits_of``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

FRACTION = 0.10  # the harness may add at most this share to any modelled duration

LimitKind = Literal["latency", "timeout", "spread", "retry"]


class Limit(NamedTuple):
    """A modelled duration the harness's overhead must stay small against."""

    kind: LimitKind
    name: str  # what it is: "pos timeout", "healthy-pos latency (mean)"
    seconds: float  # scenario seconds
    count: int = 0  # "spread": the steps of one instant that must fit well inside it


class Overhead(NamedTuple):
    """Wall seconds the stack adds to one delivery."""

    isolated: float  # median, idle stack
    at_concurrency: float  # p95 on the wire, inside a burst of the scenario's fan-out
    burst: int = 0  # deliveries in the burst
    burst_wall: float = 0.0  # wall seconds the whole burst took
    loop_lag: float = 0.0  # the event loop's worst lateness during the burst (wall s)
    burst_delay: float = 0.0  # p95 from the send decision to its result, in the burst
    speed: float = 0.0  # the calibration twin's speed these were measured at
    step: float = 0.0  # wall s per operator step of one instant, played at once (median)


class Faithful(NamedTuple):
    speed: float  # the fastest faithful speed (inf if nothing limits it)
    limit: Limit | None  # the duration that sets it
    cost: float  # the wall cost compared with that limit

    def reason(self, asked: float) -> str:
        """One line saying why ``asked`` is above the faithful speed."""
        assert self.limit is not None
        if self.limit.kind == "spread":
            return (
                f"--speed {asked:g} is above the faithful speed {self.speed:.3g}x on this "
                f"machine: the harness takes {self.cost * 1000:.0f} ms wall to play "
                f"{self.limit.count} steps meant to be simultaneous, more than {FRACTION:.0%} "
                f"of the {self.limit.name} ({self.limit.seconds:g} s) at {asked:g}x; "
                f"use --speed {self.speed:.3g} or less, or --force"
            )
        which = {
            "timeout": "p95 on the wire in a burst",
            "retry": "p95 from send to result in a burst",
        }.get(self.limit.kind, "median")
        return (
            f"--speed {asked:g} is above the faithful speed {self.speed:.3g}x on this machine: "
            f"the harness adds {self.cost * 1000:.1f} ms wall per delivery ({which}), "
            f"more than {FRACTION:.0%} of the {self.limit.name} ({self.limit.seconds:g} s) "
            f"at {asked:g}x; use --speed {self.speed:.3g} or less, or --force"
        )


def cost_for(limit: Limit, overhead: Overhead) -> float:
    if limit.kind == "spread":  # the first step goes at once; each other one after it
        return overhead.step * max(0, limit.count - 1)
    if limit.kind == "retry":
        return overhead.burst_delay
    return overhead.at_concurrency if limit.kind == "timeout" else overhead.isolated


def faithful_speed(
    limits: Iterable[Limit], overhead: Overhead, fraction: float = FRACTION
) -> Faithful:
    """``min over limits of fraction * seconds / cost`` (see the module docstring).

    A limit of 0 s (an endpoint modelled as answering instantly) has nothing the overhead
    could be a share of, so it does not count; a zero cost never limits."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    best = Faithful(math.inf, None, 0.0)
    for limit in limits:
        cost = cost_for(limit, overhead)
        if limit.seconds <= 0 or cost <= 0:
            continue
        speed = fraction * limit.seconds / cost
        if speed < best.speed:
            best = Faithful(speed, limit, cost)
    return best


def limits_of(world: object) -> list[Limit]:
    """The smallest mean round trip (service latency plus the link's delay both ways) per
    endpoint profile, the delivery timeout and any lock-step retry interval per channel of a
    scenario's world (``harness.runtime.world.World``), smallest first per kind, and the
    drain time of the tightest rate limit the scenario's largest instant of steps
    overruns (``spread_of``)."""
    from harness.runtime.sim import NETWORK_DELAY  # the link model both runtimes use

    latencies: dict[str, float] = {}
    timeouts: dict[str, float] = {}
    fixed: dict[str, float] = {}  # channel -> its first lock-step retry interval
    kinds: dict[str, str] = {}  # channel -> its backoff kind (the limit's name says it)
    policies = world.policies  # type: ignore[attr-defined]
    default = world.default_policy  # type: ignore[attr-defined]
    for model in world.delivery_models:  # type: ignore[attr-defined]
        profile = model.profile
        mean = float(profile.latency.mean or 0.0) + 2 * NETWORK_DELAY.get(model.channel, 0.01)
        latencies[profile.name] = min(latencies.get(profile.name, math.inf), mean)
        policy = policies.get(model.channel, default)
        timeouts[model.channel] = policy.timeout
        interval = lockstep_interval(policy.backoff, mean)
        if interval is not None:
            kinds[model.channel] = policy.backoff.kind
            fixed[model.channel] = min(fixed.get(model.channel, math.inf), interval)
    out = [
        Limit("latency", f"{name} round trip (mean)", s)
        for name, s in sorted(latencies.items(), key=lambda kv: kv[1])
    ]
    out += [
        Limit("timeout", f"{channel} delivery timeout", s)
        for channel, s in sorted(timeouts.items(), key=lambda kv: kv[1])
    ]
    out += [
        Limit("retry", f"{channel} {kinds[channel]} retry interval", s)
        for channel, s in sorted(fixed.items(), key=lambda kv: kv[1])
    ]
    spread = spread_of(world)
    return out if spread is None else [*out, spread]


def lockstep_interval(backoff: object, round_trip: float) -> float | None:
    """The shortest wait between two attempts of a backoff with no jitter — every delivery
    of a failed wave waits the same, so the backlog retries in lock-step — or None for a
    jittered one. ``none`` retries as soon as the reply is in: its cycle is the round trip
    (``round_trip``, scenario s); ``fixed`` waits ``min(cap, base)``; ``exponential`` at
    least ``min(cap, 2 * base)`` (its first retry: ``DeliveryPolicy``'s formula)."""
    kind = backoff.kind  # type: ignore[attr-defined]
    base, cap = backoff.base, backoff.cap  # type: ignore[attr-defined]
    if kind == "none":
        return round_trip
    if kind == "fixed":
        return float(min(cap, base))
    if kind == "exponential":
        return float(min(cap, 2 * base))
    return None


# Steps that send deliveries: what reaches a rate-limited endpoint at their instant.
SENDING = ("publish", "rollback", "end", "resume", "replay")


def largest_instant(timeline: Iterable[object]) -> tuple[int, float]:
    """The most sending steps at one scenario instant and that instant (a schedule
    counts at its publish time: its publish is decided then), the earliest of equals."""
    counts: dict[float, int] = {}
    for at, _step in _sending(timeline):
        counts[at] = counts.get(at, 0) + 1
    if not counts:
        return 0, 0.0
    most = max(counts.values())
    return most, min(at for at, n in counts.items() if n == most)


def _sending(timeline: Iterable[object]) -> Iterable[tuple[float, object]]:
    for step in timeline:
        action = step.action  # type: ignore[attr-defined]
        if action == "schedule":
            yield float(step.publish_at or 0.0), step  # type: ignore[attr-defined]
        elif action in SENDING:
            yield float(step.at), step  # type: ignore[attr-defined]


def spread_of(world: object) -> Limit | None:
    """Half the excess drain time (``(N - burst) / rate / 2``, module docstring) of the tightest
    rate limit in force at the scenario's largest instant of ``N`` sending steps, at an
    endpoint those steps reach (their promotions' channels and the ERP's price book; all
    of them for a step naming no promotion), its own or a quota fault's switched on then.
    Each step is at most one delivery per endpoint, so ``burst`` or fewer are never
    throttled, however spread. None if no limit is overrun."""
    from harness.domain.scope import SYSTEM_OF_RECORD_CHANNELS
    from harness.runtime.world import faulted  # the profile a quota fault switches to

    scenario = world.scenario  # type: ignore[attr-defined]
    count, at = largest_instant(scenario.timeline)
    if count < 2:
        return None
    channels = {p.id: p.scope.channels for p in scenario.promotions}
    reached: set[str] = set(SYSTEM_OF_RECORD_CHANNELS)
    for when, step in _sending(scenario.timeline):
        if when == at:
            promo = step.promo  # type: ignore[attr-defined]
            reached.update(
                channels.get(promo, ()) if promo else (m.channel for m in world.delivery_models)
            )  # type: ignore[attr-defined]
    in_force = {m.id: m.profile.rate_limit for m in world.delivery_models if m.channel in reached}  # type: ignore[attr-defined]
    names = {mid: f"{world.models[mid].profile.name} rate limit" for mid in in_force}  # type: ignore[attr-defined]
    for fault in scenario.faults:
        on = fault.start <= at and (fault.end is None or at < fault.end)
        if fault.kind != "quota" or not on:
            continue
        for model in world.fault_targets(fault):  # type: ignore[attr-defined]
            if model.id in in_force:
                base = world.base_profiles[model.id]  # type: ignore[attr-defined]
                in_force[model.id] = faulted(base, fault).rate_limit
                names[model.id] = f"{model.id} quota"
    best: Limit | None = None
    for mid, limit in sorted(in_force.items()):
        if limit is None:
            continue
        drain = (count - limit.burst) / limit.rate / 2
        if drain > 0 and (best is None or drain < best.seconds):
            name = (
                f"{names[mid]} ({limit.rate:g}/s, burst {limit.burst:g}) "
                f"draining {count} steps at t={at:g} (half)"
            )
            best = Limit("spread", name, drain, count)
    return best
