"""Backoff and retry-delay tests: seeded sequences replayed against Brooker's formulas."""

from __future__ import annotations

import random
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.orchestrator.delivery import (
    FAILURE_OUTCOMES_FOR_BREAKER,
    RETRYABLE_OUTCOMES,
    Backoff,
    BackoffKind,
    DeliveryPolicy,
)

KINDS: tuple[str, ...] = get_args(BackoffKind)
SEEDS = (0, 1, 7, 42, 2015)
# (base, cap): the cap bites from attempt 6 for (1, 60) and never for (0.1, 1e6).
CONFIGS = ((1.0, 60.0), (0.25, 10.0), (0.1, 1e6), (5.0, 5.0))
ATTEMPTS = range(1, 11)


def temp(base: float, cap: float, attempt: int) -> float:
    return min(cap, base * 2**attempt)


def expected_sequence(kind: str, base: float, cap: float, seed: int) -> list[float]:
    """The blog post's formulas, drawing from a second rng seeded the same way."""
    replay = random.Random(seed)
    out: list[float] = []
    previous = base
    for attempt in ATTEMPTS:
        t = temp(base, cap, attempt)
        if kind == "none":
            value = 0.0
        elif kind == "fixed":
            value = min(cap, base)
        elif kind == "exponential":
            value = t
        elif kind == "full_jitter":
            value = replay.uniform(0, t)
        elif kind == "equal_jitter":
            value = t / 2 + replay.uniform(0, t / 2)
        else:
            value = min(cap, replay.uniform(base, previous * 3))
            previous = value
        out.append(value)
    return out


def actual_sequence(backoff: Backoff, seed: int) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    previous = backoff.base
    for attempt in ATTEMPTS:
        previous = backoff.delay(attempt, previous, rng)
        out.append(previous)
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("base,cap", CONFIGS)
@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_matches_formula_with_replayed_draws(
    kind: str, base: float, cap: float, seed: int
) -> None:
    backoff = Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]
    assert actual_sequence(backoff, seed) == expected_sequence(kind, base, cap, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_uniform_drawn_once_for_jittered_kinds_and_never_otherwise(kind: str) -> None:
    class CountingRandom(random.Random):
        uniform_calls = 0
        random_calls = 0

        def uniform(self, a: float, b: float) -> float:
            self.uniform_calls += 1
            return super().uniform(a, b)

        def random(self) -> float:
            self.random_calls += 1
            return super().random()

    rng = CountingRandom(3)
    backoff = Backoff(kind=kind)  # type: ignore[arg-type]
    previous = backoff.base
    for attempt in ATTEMPTS:
        previous = backoff.delay(attempt, previous, rng)
    jittered = kind in ("full_jitter", "equal_jitter", "decorrelated_jitter")
    assert rng.uniform_calls == (len(ATTEMPTS) if jittered else 0)
    # no draw other than the one inside uniform(), or a replay would fall out of step
    assert rng.random_calls == rng.uniform_calls


@pytest.mark.parametrize("seed", SEEDS)
def test_bounds_per_kind(seed: int) -> None:
    base, cap = 0.5, 30.0
    for kind in KINDS:
        backoff = Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]
        rng = random.Random(seed)
        previous = base
        for attempt in range(1, 20):
            t = temp(base, cap, attempt)
            d = backoff.delay(attempt, previous, rng)
            if kind == "full_jitter":
                assert 0 <= d <= t
            elif kind == "equal_jitter":
                assert t / 2 <= d <= t
            elif kind == "decorrelated_jitter":
                assert base <= d <= min(cap, 3 * previous)
            previous = d


def test_exponential_doubles_until_the_cap() -> None:
    backoff = Backoff(kind="exponential", base=1.0, cap=60.0)
    rng = random.Random(0)
    delays = [backoff.delay(a, 1.0, rng) for a in range(1, 9)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_none_and_fixed_ignore_attempt() -> None:
    rng = random.Random(0)
    assert [Backoff("none").delay(a, 1.0, rng) for a in (1, 5, 50)] == [0.0, 0.0, 0.0]
    assert [Backoff("fixed", 1.5).delay(a, 1.0, rng) for a in (1, 5, 50)] == [1.5, 1.5, 1.5]


def test_huge_attempt_saturates_at_cap_without_overflow() -> None:
    rng = random.Random(0)
    assert Backoff("exponential", 1.0, 60.0).delay(10_000, 1.0, rng) == 60.0
    assert 0 <= Backoff("full_jitter", 1.0, 60.0).delay(10_000, 1.0, rng) <= 60.0


@given(
    kind=st.sampled_from(KINDS),
    attempt=st.integers(min_value=1, max_value=64),
    base=st.floats(min_value=1e-6, max_value=1e4),
    extra=st.floats(min_value=0.0, max_value=1e6),
    previous_factor=st.floats(min_value=0.0, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_every_delay_within_zero_and_cap(
    kind: str, attempt: int, base: float, extra: float, previous_factor: float, seed: int
) -> None:
    cap = base + extra
    backoff = Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]
    delay = backoff.delay(attempt, base * previous_factor, random.Random(seed))
    assert 0.0 <= delay <= cap


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"base": 0.0}, "base"),
        ({"base": -1.0}, "base"),
        ({"base": float("nan")}, "base"),
        ({"base": 10.0, "cap": 5.0}, "cap"),
        ({"cap": float("inf")}, "cap"),
        ({"kind": "linear"}, "kind"),
    ],
)
def test_backoff_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_delay_rejects_bad_attempt_and_previous() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(0, 1.0, rng)
    with pytest.raises(ValueError, match="previous"):
        Backoff("decorrelated_jitter").delay(1, -1.0, rng)


# --- DeliveryPolicy.retry_delay / is_retryable ---------------------------------------------


def test_retry_after_raises_delay_for_throttled_and_unavailable() -> None:
    policy = DeliveryPolicy(backoff=Backoff("exponential", 1.0, 60.0))
    rng = random.Random(0)
    for outcome in ("throttled", "unavailable"):
        assert policy.retry_delay(1, 1.0, outcome, 30.0, rng) == 30.0
        # max, not replace: a shorter Retry-After does not cut the backoff
        assert policy.retry_delay(3, 1.0, outcome, 0.5, rng) == 8.0
        assert policy.retry_delay(1, 1.0, outcome, None, rng) == 2.0


@pytest.mark.parametrize("outcome", ["error", "timeout", "rejected", "ok", "accepted"])
def test_retry_after_ignored_for_other_outcomes(outcome: str) -> None:
    policy = DeliveryPolicy(backoff=Backoff("exponential", 1.0, 60.0))
    assert policy.retry_delay(1, 1.0, outcome, 30.0, random.Random(0)) == 2.0


def test_retry_after_ignored_when_not_honoured() -> None:
    policy = DeliveryPolicy(backoff=Backoff("exponential"), honour_retry_after=False)
    assert policy.retry_delay(1, 1.0, "throttled", 30.0, random.Random(0)) == 2.0


def test_retry_delay_draws_the_same_whatever_the_retry_after() -> None:
    policy = DeliveryPolicy(backoff=Backoff("full_jitter", 1.0, 60.0))
    a, b = random.Random(9), random.Random(9)
    policy.retry_delay(2, 1.0, "throttled", 100.0, a)
    policy.retry_delay(2, 1.0, "error", None, b)
    assert a.random() == b.random()


def test_is_retryable() -> None:
    policy = DeliveryPolicy()
    for outcome in ("error", "timeout", "throttled", "unavailable"):
        assert policy.is_retryable(outcome)
    for outcome in ("rejected", "ok", "accepted"):
        assert not policy.is_retryable(outcome)
    with pytest.raises(ValueError, match="outcome"):
        policy.is_retryable("teapot")


def test_outcome_sets() -> None:
    assert {"error", "timeout", "throttled", "unavailable"} == RETRYABLE_OUTCOMES
    assert {"error", "timeout", "unavailable"} == FAILURE_OUTCOMES_FOR_BREAKER


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"timeout": 0.0}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"ack_timeout": -1.0}, "ack_timeout"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_policy_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DeliveryPolicy(**kwargs)  # type: ignore[arg-type]
