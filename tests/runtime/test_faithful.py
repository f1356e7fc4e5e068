"""The faithful-speed formula on hand-computed cases, and `live` refusing a faster --speed."""

from __future__ import annotations

import math

import pytest

from harness.faithful import Limit, Overhead, faithful_speed, limits_of
from harness.live_run import sim_vs_live, within
from harness.runtime.world import build_world
from harness.scenario import load_scenario

POS_TIMEOUT = Limit("timeout", "pos delivery timeout", 10.0)
POS_LATENCY = Limit("latency", "healthy-pos round trip (mean)", 0.08)


def test_timeout_limit_uses_the_cost_at_concurrency() -> None:
    # 10% of 10 s is 1 s of scenario time; 0.05 s of wall per delivery -> 1 / 0.05 = 20x.
    got = faithful_speed([POS_TIMEOUT], Overhead(isolated=0.002, at_concurrency=0.05))
    assert got.speed == pytest.approx(20.0)
    assert got.limit == POS_TIMEOUT
    assert got.cost == 0.05


def test_latency_limit_uses_the_isolated_cost() -> None:
    # 10% of 0.08 s = 0.008 s; 0.002 s of wall -> 4x.
    got = faithful_speed([POS_LATENCY], Overhead(isolated=0.002, at_concurrency=5.0))
    assert got.speed == pytest.approx(4.0)


def test_the_smallest_speed_wins_and_names_its_limit() -> None:
    # latency: 0.1*0.08/0.001 = 8x; timeout: 0.1*10/0.25 = 4x -> the timeout limits.
    got = faithful_speed([POS_LATENCY, POS_TIMEOUT], Overhead(0.001, 0.25))
    assert got.speed == pytest.approx(4.0)
    assert got.limit == POS_TIMEOUT
    line = got.reason(10)
    assert "--speed 10" in line and "4x" in line and "pos delivery timeout" in line
    assert "\n" not in line


def test_fraction_scales_linearly_and_zero_limits_or_costs_never_limit() -> None:
    overhead = Overhead(0.001, 0.25)
    assert faithful_speed([POS_TIMEOUT], overhead, fraction=0.2).speed == pytest.approx(8.0)
    instant = Limit("latency", "instant round trip (mean)", 0.0)
    assert faithful_speed([instant], overhead).speed == math.inf
    assert faithful_speed([POS_LATENCY], Overhead(0.0, 0.0)).limit is None
    with pytest.raises(ValueError):
        faithful_speed([POS_TIMEOUT], overhead, fraction=0)


def test_limits_of_the_default_scenario() -> None:
    world = build_world(load_scenario("weekend-private-label", ["estate.stores=20"]))
    limits = limits_of(world)
    timeouts = {lim.name: lim.seconds for lim in limits if lim.kind == "timeout"}
    # The scenario's pos policy says 10 s; erp keeps the reference 30 s.
    assert timeouts["pos delivery timeout"] == 10.0
    assert timeouts["erp delivery timeout"] == 30.0
    latencies = [lim for lim in limits if lim.kind == "latency"]
    # healthy-pos is lognormal(median 0.08, sigma 0.4): mean = 0.08 * exp(0.08); the pos
    # link adds its modelled 0.02 s each way (harness/runtime/sim.py NETWORK_DELAY).
    assert latencies[0].name.startswith("healthy-pos")
    assert latencies[0].seconds == pytest.approx(0.08 * math.exp(0.4**2 / 2) + 2 * 0.02)


def test_within_tolerance() -> None:
    assert within(100.0, 120.0) and within(100.0, 80.0)
    assert not within(100.0, 120.1) and not within(100.0, 79.9)
    assert within(0, 0) and not within(0, 1)
    assert within(True, True) and not within(True, False)
    assert within(None, 3) is None
    table = sim_vs_live(
        {"propagation": {"overall": {"t95": 100.0}}, "passed": True},
        {"propagation": {"overall": {"t95": 130.0}}, "passed": True},
    )
    marks = dict(zip(table["figure"], table["within 20%"], strict=True))
    assert marks["propagation.overall.t95"] == "NO"
    assert marks["passed"] == "yes"
    assert marks["propagation.overall.t50"] == "—"
