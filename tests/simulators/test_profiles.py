"""Profiles: latency distributions, outage schedules, token-bucket rate limits, presets."""

from __future__ import annotations

import ast
import itertools
import math
import random
from pathlib import Path

import pytest

from simulators.profiles import (
    PROFILES,
    Latency,
    Outage,
    OutageSchedule,
    Profile,
    RandomOutages,
    RateLimit,
    profile,
)

N = 20_000


def _mean_of(lat: Latency, seed: int = 7) -> float:
    rng = random.Random(seed)
    return sum(lat.sample(rng) for _ in range(N)) / N


@pytest.mark.parametrize(
    "lat",
    [
        Latency.exponential(0.2),
        Latency.lognormal(0.1, 0.8),
        Latency.uniform(1.0, 3.0),
        Latency("lognormal", mean=0.5, sigma=0.5),
    ],
    ids=["exponential", "lognormal", "uniform", "lognormal-from-mean"],
)
def test_sample_mean_matches_analytic_mean(lat: Latency) -> None:
    assert lat.mean is not None
    assert _mean_of(lat) == pytest.approx(lat.mean, rel=0.03)


def test_analytic_means() -> None:
    assert Latency.uniform(1.0, 3.0).mean == 2.0
    assert Latency.lognormal(1.0, 0.5).mean == pytest.approx(math.exp(0.125))
    from_mean = Latency("lognormal", mean=2.0, sigma=0.3)
    assert from_mean.mean == pytest.approx(2.0)
    assert from_mean.median == pytest.approx(2.0 / math.exp(0.045))


def test_fixed_is_exact() -> None:
    lat = Latency.fixed(0.25)
    rng = random.Random(1)
    assert {lat.sample(rng) for _ in range(100)} == {0.25}
    assert lat.mean == 0.25


def test_samples_are_seeded() -> None:
    lat = Latency.lognormal(0.1, 0.8)
    a = [lat.sample(random.Random(3)) for _ in range(3)]
    b = [lat.sample(random.Random(3)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "uniform", "low": 3.0, "high": 1.0},
        {"kind": "exponential"},
        {"kind": "lognormal", "sigma": 0.5},
        {"kind": "lognormal", "median": 0.0, "sigma": 0.5},
        {"kind": "weibull", "mean": 1.0},
    ],
)
def test_invalid_latency(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Latency(**kwargs)


# --- outages -----------------------------------------------------------------------------


def test_random_outages_deterministic_for_a_seed() -> None:
    ro = RandomOutages(mtbf=3600.0, mttr=300.0)
    a = ro.expand(86_400.0, random.Random(11))
    b = ro.expand(86_400.0, random.Random(11))
    c = ro.expand(86_400.0, random.Random(12))
    assert a == b
    assert a != c
    assert a, "a day at mtbf 1 h has outages"
    assert all(w.start < 86_400.0 and w.mode == "refuse" for w in a)
    assert all(x.end <= y.start for x, y in itertools.pairwise(a))


def test_random_outages_long_run_down_fraction() -> None:
    mtbf, mttr, horizon = 3600.0, 600.0, 2e7
    schedule = OutageSchedule.build([RandomOutages(mtbf, mttr, "hang")], horizon, random.Random(5))
    fraction = schedule.down_time(horizon) / horizon
    assert fraction == pytest.approx(mttr / (mtbf + mttr), rel=0.06)
    # is_down agrees with the windows: sample instants on a grid.
    rng = random.Random(9)
    probes = [rng.uniform(0, horizon) for _ in range(20_000)]
    down = sum(schedule.is_down(t) is not None for t in probes) / len(probes)
    assert down == pytest.approx(mttr / (mtbf + mttr), rel=0.1)


def test_schedule_bounds_and_merge() -> None:
    s = OutageSchedule((Outage(10, 20, "hang"), Outage(15, 30), Outage(50, 60)))
    assert s.windows == (Outage(10, 30, "hang"), Outage(50, 60))
    assert s.is_down(9.999) is None
    assert s.is_down(10) == Outage(10, 30, "hang")  # start inclusive
    assert s.is_down(29.9) is not None
    assert s.is_down(30) is None  # end exclusive
    assert s.is_down(55).mode == "refuse"  # type: ignore[union-attr]
    assert s.is_down(1e9) is None
    assert s.down_time(55) == 25


def test_schedule_random_needs_rng() -> None:
    with pytest.raises(ValueError):
        OutageSchedule.build([RandomOutages(10, 1)], 100.0)


def test_outage_validation() -> None:
    with pytest.raises(ValueError):
        Outage(5, 5)
    with pytest.raises(ValueError):
        Outage(0, 1, "explode")  # type: ignore[arg-type]


# --- rate limit --------------------------------------------------------------------------


def test_token_bucket_hand_derived() -> None:
    bucket = RateLimit(rate=2.0, burst=2.0).bucket()
    # Starts full: two at once, the third waits for half a token-period.
    assert bucket.take(0.0) is None
    assert bucket.take(0.0) is None
    assert bucket.take(0.0) == 0.5
    # Refusals spend nothing: 0.25 s later half a token is there, a quarter second to go.
    assert bucket.take(0.25) == 0.25
    assert bucket.take(0.5) is None  # exactly one token
    assert bucket.take(0.5) == 0.5
    # A long idle refills to the burst, not beyond.
    assert bucket.take(10.0) is None
    assert bucket.take(10.0) is None
    assert bucket.take(10.0) == 0.5


def test_token_bucket_slow_rate() -> None:
    bucket = RateLimit(rate=4.0, burst=1.0).bucket()
    assert bucket.take(0.0) is None
    assert bucket.take(0.125) == 0.125  # half a token at 4/s: another 1/8 s
    assert bucket.take(0.25) is None
    assert bucket.take(0.25) == 0.25


def test_rate_limit_validation() -> None:
    with pytest.raises(ValueError):
        RateLimit(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimit(rate=1, burst=0.5)


# --- profiles ----------------------------------------------------------------------------


def test_presets() -> None:
    for name in (
        "healthy-pos",
        "flaky-link",
        "cloud-erp",
        "ecommerce-saas",
        "marketplace-api",
        "loyalty-saas",
    ):
        p = profile(name)
        assert p.name == name
        assert p.throughput > 0
    assert PROFILES["ecommerce-saas"].ack_delay is not None
    assert PROFILES["marketplace-api"].ack_delay is not None
    assert PROFILES["cloud-erp"].rate_limit is not None
    assert not PROFILES["legacy-pos"].idempotent
    with pytest.raises(ValueError, match="known"):
        profile("no-such-profile")


def test_profile_validation() -> None:
    with pytest.raises(ValueError):
        Profile(error_rate=0.6, timeout_rate=0.6)
    with pytest.raises(ValueError):
        Profile(capacity=0)
    assert Profile(latency=Latency.fixed(0.5), capacity=4).throughput == 8.0


def test_simulator_models_are_pure() -> None:
    """The models run under both clocks: no clock, logging, event loop or dataframe."""
    forbidden = {"time", "logging", "asyncio", "simpy", "pandas", "aiohttp", "fastapi"}
    root = Path(__file__).resolve().parents[2] / "simulators"
    for name in (
        "profiles",
        "endpoint",
        "erp",
        "pos",
        "ecommerce",
        "loyalty",
        "marketplace",
        "estate",
    ):
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                mods = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not mods & forbidden, f"simulators/{name}.py imports {mods & forbidden}"
