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

Not in the formula: the burst's delay (a delivery waits for one of the runtime's slots on
the wire before it is POSTed, ``Overhead.burst_delay``) shifts when the tail of a fan-out
lands — the T50 of a 600-store publish — but no timeout races it; it is reported.

Pure: the caller measures the costs (``harness.live_calibrate``) and reads the limits off
the scenario's world (``limits_of``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

FRACTION = 0.10  # the harness may add at most this share to any modelled duration

LimitKind = Literal["latency", "timeout"]


class Limit(NamedTuple):
    """A modelled duration the harness's overhead must stay small against."""

    kind: LimitKind
    name: str  # what it is: "pos timeout", "healthy-pos latency (mean)"
    seconds: float  # scenario seconds


class Overhead(NamedTuple):
    """Wall seconds the stack adds to one delivery."""

    isolated: float  # median, idle stack
    at_concurrency: float  # p95 on the wire, inside a burst of the scenario's fan-out
    burst: int = 0  # deliveries in the burst
    burst_wall: float = 0.0  # wall seconds the whole burst took
    loop_lag: float = 0.0  # the event loop's worst lateness during the burst (wall s)
    burst_delay: float = 0.0  # p95 from the send decision to its result, in the burst
    speed: float = 0.0  # the calibration twin's speed these were measured at


class Faithful(NamedTuple):
    speed: float  # the fastest faithful speed (inf if nothing limits it)
    limit: Limit | None  # the duration that sets it
    cost: float  # the wall cost compared with that limit

    def reason(self, asked: float) -> str:
        """One line saying why ``asked`` is above the faithful speed."""
        assert self.limit is not None
        which = "p95 on the wire in a burst" if self.limit.kind == "timeout" else "median"
        return (
            f"--speed {asked:g} is above the faithful speed {self.speed:.3g}x on this machine: "
            f"the harness adds {self.cost * 1000:.1f} ms wall per delivery ({which}), "
            f"more than {FRACTION:.0%} of the {self.limit.name} ({self.limit.seconds:g} s) "
            f"at {asked:g}x; use --speed {self.speed:.3g} or less, or --force"
        )


def cost_for(limit: Limit, overhead: Overhead) -> float:
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
    endpoint profile and the delivery timeout per channel of a scenario's world
    (``harness.runtime.world.World``), smallest first per kind."""
    from harness.runtime.sim import NETWORK_DELAY  # the link model both runtimes use

    latencies: dict[str, float] = {}
    timeouts: dict[str, float] = {}
    policies = world.policies  # type: ignore[attr-defined]
    default = world.default_policy  # type: ignore[attr-defined]
    for model in world.delivery_models:  # type: ignore[attr-defined]
        profile = model.profile
        mean = float(profile.latency.mean or 0.0) + 2 * NETWORK_DELAY.get(model.channel, 0.01)
        latencies[profile.name] = min(latencies.get(profile.name, math.inf), mean)
        timeouts[model.channel] = policies.get(model.channel, default).timeout
    out = [
        Limit("latency", f"{name} round trip (mean)", s)
        for name, s in sorted(latencies.items(), key=lambda kv: kv[1])
    ]
    out += [
        Limit("timeout", f"{channel} delivery timeout", s)
        for channel, s in sorted(timeouts.items(), key=lambda kv: kv[1])
    ]
    return out
