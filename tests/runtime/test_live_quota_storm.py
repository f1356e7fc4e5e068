"""A retry storm against a quota, live and in virtual time (issue 19).

erp-quota-retry-storm measured 8.28 attempts per delivery in virtual time and 2.4 live at
25x: its 150 publishes of t=600 were played one after the other over HTTP and decided over
23 scenario seconds of the 29 the quota (5/s) takes to let them through, and that much of
the backlog escaped the throttling. The steps of one instant are now played at once, and
what the stack still takes to play them counts in the faithful speed against that drain
time (``harness.faithful.spread_of``). The small storm here: 20 copies against 5/s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.faithful import Limit, Overhead, faithful_speed, largest_instant, limits_of
from harness.live_calibrate import calibrate
from harness.live_run import instants, run_live, within
from harness.runner import simulate
from harness.runtime.live import WINDOW_HOLD, window_hold_for
from harness.runtime.live import run as live_loop
from harness.runtime.world import build_world
from harness.scenario import StepSpec, load_scenario

STORM = Path(__file__).parent / "quota_storm.yaml"


def erp_attempts(events: object) -> list[tuple[int, int]]:
    """(attempt, sends) of the ERP's deliveries, by attempt."""
    sends = events[(events.kind == "send") & (events.channel == "erp")]  # type: ignore[index]
    return sorted(sends.groupby("attempt").size().items())


def test_a_series_published_at_once_is_limited_by_the_quota_drain_time() -> None:
    """20 publishes at t=8 against a quota of 5/s (a bucket of 5): 15 are throttled and
    the quota takes 15 / 5 = 3 s to let them through, 1.5 s on average. The 19 steps after
    the first, at 2 ms of wall each, are 38 ms apart; 10% of 1.5 s is 0.15 s, so
    0.15 / 0.038 = 3.95x. The
    marketplace's own limit (5/s, burst 10) is not reached: the copies sell online only."""
    world = build_world(load_scenario(str(STORM)))
    spread = [lim for lim in limits_of(world) if lim.kind == "spread"]
    name = "erp quota (5/s, burst 5) draining 20 steps at t=8 (half)"
    assert spread == [Limit("spread", name, 1.5, 20)]
    got = faithful_speed(spread, Overhead(isolated=0.0, at_concurrency=0.0, step=0.002))
    assert got.speed == pytest.approx(0.15 / 0.038)
    assert got.cost == pytest.approx(0.038)
    line = got.reason(25)
    assert "--speed 25" in line and "20 steps" in line and "erp quota" in line
    assert "3.95x" in line and "\n" not in line
    # The other limits are unchanged by it: the smallest speed wins.
    both = faithful_speed(limits_of(world), Overhead(0.0005, 0.001, step=0.002))
    assert both.limit == spread[0]


def test_fixed_retries_are_limited_by_the_delay_of_a_result_in_a_burst() -> None:
    """The ERP retries every 1 s in lock-step: each cycle is stretched by how late a
    result lands in a burst (p95 20 ms of wall: 0.1 * 1 s / 0.02 = 5x). The web shop's
    jittered retries are not in lock-step, so they add no such limit."""
    world = build_world(load_scenario(str(STORM)))
    retry = [lim for lim in limits_of(world) if lim.kind == "retry"]
    assert retry == [Limit("retry", "erp fixed retry interval", 1.0)]
    got = faithful_speed(retry, Overhead(0.0005, 0.001, burst_delay=0.02))
    assert got.speed == pytest.approx(5.0)
    assert "p95 from send to result in a burst" in got.reason(25)
    assert "erp fixed retry interval (1 s)" in got.reason(25)
    # 1 ms a step (7.9x by the spread): the retry interval sets the speed.
    both = faithful_speed(limits_of(world), Overhead(0.0005, 0.001, burst_delay=0.02, step=0.001))
    assert both.limit == retry[0]


def test_the_library_storm_and_scenarios_whose_steps_fit_the_burst() -> None:
    # The default scenario retries with jitter everywhere: neither limit applies.
    storm = build_world(load_scenario("erp-quota-retry-storm"))
    # The quota replaces the ERP's own limit (50/s, burst 100) while it is on.
    assert [lim for lim in limits_of(storm) if lim.kind == "spread"] == [
        Limit("spread", "erp quota (5/s, burst 5) draining 150 steps at t=600 (half)", 14.5, 150)
    ]
    # Five copies never pass a bucket of 5, however far apart they arrive; a quota
    # switched on after the publish is not in force at it (the ERP's own 50/s is).
    for sets in (["series={GM: 5}"], ["faults=[{kind: quota, channel: erp, rate: 5, start: 9}]"]):
        world = build_world(load_scenario(str(STORM), sets))
        assert [lim for lim in limits_of(world) if lim.kind == "spread"] == [], sets
    default = build_world(load_scenario("weekend-private-label", ["estate.stores=20"]))
    assert [lim for lim in limits_of(default) if lim.kind in ("spread", "retry")] == []


def test_the_largest_instant_counts_sending_steps_and_schedules_at_their_publish() -> None:
    steps = [
        StepSpec(at=0, action="create", promo="A"),
        StepSpec(at=0, action="create", promo="B"),
        StepSpec(at=5, action="publish", promo="A"),
        StepSpec(at=1, action="schedule", promo="B", publish_at=9),
        StepSpec(at=9, action="publish", promo="C"),
        StepSpec(at=9, action="replay"),
    ]
    assert largest_instant(steps) == (3, 9.0)
    assert largest_instant(steps[:2]) == (0, 0.0)
    # Equal counts: the earliest instant is named.
    assert largest_instant(steps[2:3] + steps[4:5]) == (1, 5.0)


def test_the_steps_of_one_instant_are_played_at_once_each_promotion_in_order() -> None:
    def S(at: float, action: str, promo: str | None = None) -> StepSpec:
        return StepSpec(at=at, action=action, promo=promo)

    played = instants(
        [
            S(0, "create", "A"),
            S(0, "create", "B"),
            S(0, "submit", "A"),
            S(5, "replay"),
            S(5, "publish", "A"),
            S(5, "publish", "B"),
            S(5, "replay"),
            S(3, "publish", "C"),
        ]
    )
    shape = [
        (at, [[[(s.action, s.promo) for s in chain] for chain in group] for group in groups])
        for at, groups in played
    ]
    assert shape == [
        (0.0, [[[("create", "A"), ("submit", "A")], [("create", "B")]]]),
        (3.0, [[[("publish", "C")]]]),
        (
            5.0,
            [
                [[("replay", None)]],  # a step naming no promotion waits for all before it
                [[("publish", "A")], [("publish", "B")]],
                [[("replay", None)]],
            ],
        ),
    ]


def test_the_storm_live_at_its_faithful_speed_agrees_with_virtual_time(tmp_path: Path) -> None:
    """Calibrated here (a slower machine runs slower, not wrong). Hand-derived virtual
    run: 20 ERP attempts at t=8, 5 through; 15, 10 and 5 retried in lock-step: 50 ERP
    attempts and 20 web-shop deliveries, (50 + 20) / 40 = 1.75 attempts per delivery.
    Before the steps were played at once and the spread counted, the faithful speed was
    some 20x and the live storm had 31-42 ERP attempts there (1.28-1.55 per delivery)."""
    scenario = load_scenario(str(STORM))
    faithful, overhead = live_loop(calibrate(scenario))  # as `promoharness live` does
    sim = simulate(scenario)
    assert erp_attempts(sim.events) == [(1, 20), (2, 15), (3, 10), (4, 5)]
    assert sim.summary["retry_storm"]["amplification"] == pytest.approx(1.75)
    hold = window_hold_for(overhead.at_concurrency)
    played = run_live(scenario, state=tmp_path / "s.db", speed=faithful.speed, window_hold=hold)
    live = live_loop(played)
    assert live.refused == []
    got = live.summary["retry_storm"]
    assert within(1.75, got["amplification"]), (faithful.speed, erp_attempts(live.events))
    assert got["dead_lettered"] == 0
    live_erp = sum(n for _, n in erp_attempts(live.events))
    assert math.isclose(live_erp, 50, rel_tol=0.2), (faithful.speed, erp_attempts(live.events))


SLOW_STORES = Path(__file__).parent / "slow_stores.yaml"


@pytest.mark.parametrize(("hold", "all_first"), [(0.005, True), (WINDOW_HOLD, False)])
def test_a_delivery_in_its_modelled_service_does_not_keep_others_out_of_the_window(
    tmp_path: Path, hold: float, all_first: bool
) -> None:
    """One publish to 200 stores that each take 1 s of modelled service: in virtual time
    every delivery arrives before any change applies. Held only for the harness's own
    time (5 ms), the window lets them all in first, live too (200 sends of one decision
    take a fraction of the second); held through the modelled service (0.1 s each), 16 at
    a time, the last cannot arrive before 200 / 16 x 0.1 = 1.25 s, after the first change
    applied: a client concurrency limit in scenario time that the virtual runtime does
    not have. Event order only."""
    scenario = load_scenario(str(SLOW_STORES))
    sim = simulate(scenario).events
    played = run_live(scenario, state=tmp_path / "s.db", speed=1.0, window_hold=hold)
    live = live_loop(played)
    assert live.refused == []
    for events, expected in ((sim, True), (live.events, all_first)):
        pos = events[events.channel == "pos"]
        first_change = pos[pos.kind == "applied"].t.min()
        sends = pos[pos.kind == "send"].t
        assert len(sends) == 200 and (sends < first_change).all()
        arrivals = pos[(pos.kind == "received") & (pos.attempt == 1)].t
        if events is sim:  # the virtual runtime does not record arrivals: a link later
            arrivals = sends + 0.02
        assert len(arrivals) == 200
        assert bool((arrivals < first_change).all()) is expected, (hold, arrivals.max())


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("fixed", 1.0),  # base 1, cap 1 (the scenario's)
        ("exponential", 1.0),  # min(cap 1, 2 x base 1): its first and shortest wait
        ("none", None),  # straight back: the ERP's round trip (checked below)
        ("full_jitter", "no limit"),
        ("decorrelated_jitter", "no limit"),
    ],
)
def test_every_backoff_without_jitter_is_a_lock_step_retry_limit(kind: str, expected: Any) -> None:
    """A backoff with no jitter retries the whole failed wave at once, whatever its
    formula: each kind without jitter must bound the faithful speed, not only ``fixed``
    (a review found ``exponential`` and ``none`` storms vouched for at any speed)."""
    world = build_world(
        load_scenario("erp-quota-retry-storm", [f"policies.erp.backoff.kind={kind}"])
    )
    retry = [lim for lim in limits_of(world) if lim.kind == "retry"]
    if expected == "no limit":
        assert retry == []
        return
    assert [lim.name for lim in retry] == [f"erp {kind} retry interval"]
    if expected is None:  # the round trip: the ERP's mean latency and the link both ways
        latency = [lim for lim in limits_of(world) if lim.kind == "latency"]
        erp = next(lim for lim in latency if lim.name.startswith(world.models["erp"].profile.name))
        assert retry[0].seconds == pytest.approx(erp.seconds)
    else:
        assert retry[0].seconds == expected
