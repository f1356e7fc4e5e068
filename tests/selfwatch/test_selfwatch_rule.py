"""The self-watch's parts without a clock: the sampler driven by a scripted clock gives
the exact lags, and the saturation rule on synthetic samples (hand-derived windows)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from harness.saturation import (
    LAG_FLOOR,
    Bounds,
    bounds_for,
    cpu_spans,
    exit_code,
    headroom,
    lag_windows,
    mark_untrustworthy,
    quantile,
)
from simulators.app_loop_lag import LAG_PATH, LATE_KEPT, LagSampler, block_from_env, install

BOUNDS = Bounds(lag_s=0.1, window_s=5.0, cpu_percent=90.0, cpu_hold_s=5.0, basis="test")


class Script:
    """A monotonic clock that each sleep moves by the interval plus the next scripted
    lateness: the loop was 'busy' that long."""

    def __init__(self, late: list[float]) -> None:
        self.now, self.late = 100.0, list(late)

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late.pop(0)


def test_the_sampler_records_exactly_how_late_each_wake_up_was() -> None:
    late = [0.0, 0.25, 0.0, 1.5, 0.004]
    script = Script(late)
    sampler = LagSampler(
        "estate", interval=0.5, clock=script.clock, wall=script.wall, sleep=script.sleep
    )
    asyncio.run(sampler.run(limit=len(late)))
    assert [round(lag, 9) for _, lag in sampler.samples] == late
    # each sample is stamped with the wall time it woke at
    assert [t for t, _ in sampler.samples] == pytest.approx(
        [1100.5, 1101.25, 1101.75, 1103.75, 1104.254]
    )
    snap = sampler.snapshot()
    assert snap["count"] == 5 and snap["dropped"] == 0
    assert snap["p50"] == pytest.approx(0.004) and snap["p99"] == pytest.approx(1.5)


def test_the_sampler_keeps_a_bounded_tail_and_counts_what_it_dropped() -> None:
    script = Script([0.001 * i for i in range(10)])
    sampler = LagSampler(
        "x", interval=0.05, keep=4, clock=script.clock, wall=script.wall, sleep=script.sleep
    )
    asyncio.run(sampler.run(limit=10))
    snap = sampler.snapshot()
    assert snap["count"] == 10 and snap["dropped"] == 6
    assert [lag for _, lag in snap["samples"]] == pytest.approx([0.006, 0.007, 0.008, 0.009])


def test_a_run_longer_than_the_tail_is_still_judged_whole() -> None:
    """keep=4: samples 1-6 leave the tail; of them only the two over LATE_KEPT are kept,
    and the rule still finds the stall among them, in the first 5 s window."""
    late = [0.0, 0.6, 0.9, 0.05, 0.08, 0.0, 0.0, 0.0, 0.0, 0.0]
    script = Script(late)
    sampler = LagSampler(
        "estate", interval=0.05, keep=4, clock=script.clock, wall=script.wall, sleep=script.sleep
    )
    asyncio.run(sampler.run(limit=len(late)))
    snap = sampler.snapshot()
    assert snap["dropped"] == 6
    assert [lag for _, lag in snap["late_dropped"]] == pytest.approx([0.6, 0.9])
    origin = 1_100.0  # the clock starts at 100, the wall at 1_000 + clock
    section = headroom([snap], {}, BOUNDS, origin=origin, end=origin + 10, speed=1)
    assert [(s["from_s"], s["to_s"], s["peak"]) for s in section["saturations"]] == [
        (0.0, 5.0, 0.9)
    ]
    (row,) = section["loop_lag"]
    assert row["samples"] == 4 and row["p99_s"] == pytest.approx(0.0)
    assert row["percentiles_from_s"] == pytest.approx(snap["samples"][0][0] - origin, abs=1e-3)
    # Without the late ones the same tail would have looked calm.
    calm = headroom(
        [{**snap, "late_dropped": []}], {}, BOUNDS, origin=origin, end=origin + 10, speed=1
    )
    assert calm["saturated"] is False


def test_the_late_floor_is_the_rules_floor() -> None:
    assert LATE_KEPT == LAG_FLOOR


def test_installed_in_an_app_it_serves_its_samples_without_a_key() -> None:
    app = FastAPI()
    sampler = install(app, "orchestrator", interval=0.01)
    with TestClient(app) as client:
        answer = client.get(LAG_PATH)
        assert answer.status_code == 200
        body = answer.json()
        assert body["component"] == "orchestrator"
        assert sampler.task is not None  # started by the lifespan
        assert LAG_PATH not in client.get("/openapi.json").json()["paths"]
    assert sampler.task is None  # stopped with the app


def test_the_block_hook_names_a_component_prefix() -> None:
    assert block_from_env("estate-shard-1", "estate:2:1.5") == (2.0, 1.5)
    assert block_from_env("orchestrator", "estate:2:1.5") is None
    assert block_from_env("estate", "") is None
    with pytest.raises(ValueError, match="COMPONENT:SECONDS:AFTER"):
        block_from_env("estate", "estate:2")


def test_the_lag_bound_is_a_tenth_of_the_smallest_timeout_in_wall_seconds_or_100_ms() -> None:
    assert bounds_for([10.0, 30.0], speed=20).lag_s == pytest.approx(0.1)  # 50 ms -> floor
    assert bounds_for([10.0, 30.0], speed=2).lag_s == pytest.approx(0.5)
    assert bounds_for([], speed=1).lag_s == pytest.approx(0.1)


def _calm(start: float, end: float, lag: float = 0.002) -> list[tuple[float, float]]:
    return [(start + i * 0.05, lag) for i in range(int((end - start) / 0.05))]


def test_a_window_late_past_the_bound_for_over_a_tenth_of_it_is_a_saturation() -> None:
    # 0-20 s calm; a 2 s block at 7.0 (one sample 2 s late at 9.0, none between); then
    # calm. Windows of 5 s from origin 0: [5, 10) was late past the 100 ms bound for 2 s,
    # over 10 % of 5 s (0.5 s): saturated, worst lag 2 s.
    samples = [*_calm(0, 7), (9.0, 2.0), *_calm(9.05, 20)]
    assert lag_windows(samples, 0.0, BOUNDS) == [(5.0, 10.0, 2.0)]
    # One 120 ms hiccup in a window is late for 0.12 s of 5 s: calm.
    assert lag_windows([*_calm(0, 10), (4.999, 0.12)], 0.0, BOUNDS) == []
    # Five samples 110 ms late sum to 0.55 s, past 0.5 s; four sum to 0.44 s, calm.
    five = [(1.0 + i / 2, 0.11) for i in range(5)]
    assert lag_windows([*_calm(0, 10), *five], 0.0, BOUNDS) == [(0.0, 5.0, 0.11)]
    assert lag_windows([*_calm(0, 10), *five[:4]], 0.0, BOUNDS) == []
    # Lag at the bound, however often, is not over it.
    assert lag_windows(_calm(0, 10, lag=0.1), 0.0, BOUNDS) == []
    # Two adjacent slow windows merge; samples before the origin (start-up) do not count.
    slow = [(t, 0.5) for t, _ in _calm(10, 20)]
    assert lag_windows([(-3.0, 9.0), *_calm(0, 10), *slow], 0.0, BOUNDS) == [(10.0, 20.0, 0.5)]


def test_cpu_above_90_percent_for_five_seconds_is_a_saturation() -> None:
    # one sample a second: high from t=3 to t=8 (the span runs from the sample before)
    series = [(float(t), 95.0 if 3 <= t <= 8 else 40.0) for t in range(12)]
    assert cpu_spans(series, BOUNDS) == [(2.0, 8.0, 95.0)]
    short = [(float(t), 99.0 if 3 <= t <= 5 else 40.0) for t in range(12)]  # 3 s only
    assert cpu_spans(short, BOUNDS) == []
    assert cpu_spans([(float(t), 90.0) for t in range(20)], BOUNDS) == []  # at, not above


def test_headroom_names_the_component_and_when_and_marks_the_gates_it_touched() -> None:
    estate = {"component": "estate", "samples": [*_calm(0, 7), (9.0, 2.0), *_calm(9.05, 20)]}
    orchestrator = {"component": "orchestrator", "samples": _calm(0, 20)}
    locust = {"locust master": [(float(t), 30.0) for t in range(20)]}
    section = headroom(
        [estate, orchestrator], locust, BOUNDS, origin=0.0, end=20.0, speed=20, pids={}
    )
    assert section["saturated"] is True
    assert section["saturations"] == [
        {
            "component": "estate",
            "measure": "loop_lag",
            "from_s": 5.0,
            "to_s": 10.0,
            "scenario_from": 100.0,
            "scenario_to": 200.0,
            "peak": 2.0,
        }
    ]
    rows = {r["component"]: r for r in section["loop_lag"]}
    assert rows["estate"]["saturated"] and not rows["orchestrator"]["saturated"]
    assert rows["orchestrator"]["p99_s"] == pytest.approx(0.002)
    assert section["cpu"][0]["mean_percent"] == 30.0 and not section["cpu"][0]["saturated"]
    summary = {
        "passed": False,
        "harness": section,
        "slos": [
            {"metric": "load.p95_ms", "passed": False},
            {"metric": "propagation.overall.t99", "passed": True},
            {"metric": "funding.P1.overrun", "passed": True},
        ],
    }
    assert mark_untrustworthy(summary) == [
        "load.p95_ms",
        "propagation.overall.t99",
        "funding.P1.overrun",
    ]
    assert exit_code(summary) == 4  # a failed gate under a saturated harness: no verdict


def test_only_the_saturated_components_figures_are_untrustworthy() -> None:
    locust = {"locust master": [(float(t), 99.0) for t in range(20)]}
    section = headroom([], locust, BOUNDS, origin=0.0, end=20.0, speed=1)
    summary = {
        "passed": True,
        "harness": section,
        "slos": [{"metric": "load.p95_ms"}, {"metric": "propagation.overall.t99"}],
    }
    assert mark_untrustworthy(summary) == ["load.p95_ms"]
    assert [s["trusted"] for s in summary["slos"]] == [False, True]
    calm = {"passed": False, "harness": headroom([], {}, BOUNDS, origin=0, end=1, speed=1)}
    assert exit_code(calm) == 1 and exit_code({**calm, "passed": True}) == 0


def test_quantile_is_nearest_rank() -> None:
    assert quantile([], 0.5) is None
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert quantile([float(i) for i in range(1, 101)], 0.99) == 99.0
