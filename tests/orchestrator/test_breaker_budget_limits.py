"""Circuit breaker, retry budget, token bucket, distribution windows and dead-letter queue."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.orchestrator import delivery, limits
from harness.orchestrator.delivery import (
    BreakerConfig,
    CircuitBreaker,
    DeadLetterEntry,
    DeadLetterQueue,
    DistributionMode,
    RateLimitConfig,
    RetryBudget,
    RetryBudgetConfig,
    TokenBucket,
)

# --- circuit breaker -----------------------------------------------------------------------


def test_limits_are_re_exported_from_delivery() -> None:
    for name in limits.__all__:
        assert getattr(delivery, name) is getattr(limits, name)


def test_opens_after_exactly_threshold_consecutive_failures() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=3, open_seconds=10.0))
    assert b.state == "closed" and b.opened_at is None and b.retry_at() is None
    assert b.record_failure(1.0) is None
    assert b.record_failure(2.0) is None
    assert b.state == "closed" and b.allow(2.0)
    assert b.record_failure(3.0) == "open"
    assert b.state == "open" and b.opened_at == 3.0 and b.retry_at() == 13.0


def test_success_in_closed_resets_the_failure_count() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=3))
    b.record_failure(0.0)
    b.record_failure(1.0)
    assert b.record_success(2.0) is None
    assert b.record_failure(3.0) is None
    assert b.record_failure(4.0) is None
    assert b.state == "closed"
    assert b.record_failure(5.0) == "open"


def test_denies_while_open_then_half_open_admits_exactly_the_probes() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_seconds=30.0, half_open_probes=2))
    b.record_failure(100.0)
    assert not b.allow(100.0)
    assert not b.allow(129.999)
    assert b.state == "open"
    assert b.allow(130.0)
    assert b.state == "half_open" and b.retry_at() is None
    assert b.allow(130.5)
    assert not b.allow(131.0)
    assert not b.allow(500.0)


def test_probe_failure_reopens_with_a_new_opened_at() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=2, open_seconds=5.0))
    b.record_failure(0.0)
    b.record_failure(1.0)
    assert b.allow(6.0)
    assert b.record_failure(7.5) == "open"
    assert b.state == "open" and b.opened_at == 7.5 and b.retry_at() == 12.5
    assert not b.allow(12.0)
    assert b.allow(12.5)


def test_probe_success_closes() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_seconds=5.0))
    b.record_failure(0.0)
    assert b.allow(5.0)
    assert b.record_success(5.2) == "closed"
    assert b.state == "closed" and b.opened_at is None and b.retry_at() is None
    assert b.allow(5.3)
    # the count starts again from zero after closing
    assert b.record_failure(6.0) == "open"


def test_success_threshold_needs_several_probe_successes() -> None:
    cfg = BreakerConfig(failure_threshold=1, open_seconds=1.0, success_threshold=2)
    b = CircuitBreaker(cfg)
    b.record_failure(0.0)
    assert b.allow(1.0)
    assert not b.allow(1.0)  # one probe at a time
    assert b.record_success(1.1) is None
    assert b.state == "half_open"
    assert b.allow(1.2)  # the finished probe frees its slot
    assert b.record_success(1.3) == "closed"


def test_straggler_results_while_open_change_nothing() -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_seconds=10.0))
    b.record_failure(0.0)
    assert b.record_failure(3.0) is None
    assert b.record_success(4.0) is None
    assert b.state == "open" and b.opened_at == 0.0


def _snapshot(b: CircuitBreaker) -> tuple[object, ...]:
    return tuple(getattr(b, name) for name in CircuitBreaker.__slots__)


@given(
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.lists(st.tuples(st.sampled_from("asf"), st.floats(0.0, 4.0)), max_size=60),
)
def test_at_rest_says_exactly_when_a_success_would_change_nothing(
    threshold: int, probes: int, successes: int, steps: list[tuple[str, float]]
) -> None:
    """The dispatcher skips record_success on ``at_rest`` alone: after every step, it must
    be true exactly when the breaker is closed and a success (tried on a copy) leaves
    every field as it was."""
    b = CircuitBreaker(
        BreakerConfig(threshold, 5.0, half_open_probes=probes, success_threshold=successes)
    )
    now = 0.0
    for op, gap in [("s", 0.0), *steps]:
        now += gap
        {"a": b.allow, "s": b.record_success, "f": b.record_failure}[op](now)
        trial = copy.copy(b)
        trial.record_success(now)
        unchanged = _snapshot(trial) == _snapshot(b)
        assert b.at_rest == (b.state == "closed" and unchanged), (op, b.state)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"open_seconds": -1.0}, "open_seconds"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"success_threshold": 0}, "success_threshold"),
    ],
)
def test_breaker_config_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


# --- retry budget --------------------------------------------------------------------------


def test_retry_budget_half_full_stops_retries_and_successes_refill() -> None:
    budget = RetryBudget(RetryBudgetConfig(max_tokens=100.0, token_ratio=0.1))
    assert budget.tokens == 100.0 and budget.can_retry()
    for _ in range(49):
        budget.record_failure()
    assert budget.can_retry()
    budget.record_failure()
    assert budget.tokens == 50.0
    assert not budget.can_retry()  # 50 is not > 50
    for _ in range(9):
        budget.record_success()
    assert budget.can_retry()  # already 50.9 > 50
    budget.record_success()
    assert budget.tokens == 51.0 and budget.can_retry()


def test_retry_budget_is_exact_at_the_threshold() -> None:
    # 48 + 20 x 0.1 is 50.00000000000003 in float arithmetic; the budget must say 50.
    budget = RetryBudget(RetryBudgetConfig())
    for _ in range(52):
        budget.record_failure()
    for _ in range(20):
        budget.record_success()
    assert budget.tokens == 50.0 and not budget.can_retry()


def test_retry_budget_bounds() -> None:
    budget = RetryBudget(RetryBudgetConfig(max_tokens=10.0, token_ratio=0.5))
    for _ in range(5):
        budget.record_success()
    assert budget.tokens == 10.0
    for _ in range(30):
        budget.record_failure()
    assert budget.tokens == 0.0
    for _ in range(100):
        budget.record_success()
    assert budget.tokens == 10.0


@given(st.lists(st.booleans(), max_size=400))
def test_retry_budget_stays_within_zero_and_max(events: list[bool]) -> None:
    budget = RetryBudget(RetryBudgetConfig())
    for success in events:
        if success:
            budget.record_success()
        else:
            budget.record_failure()
        assert 0.0 <= budget.tokens <= 100.0
        assert budget.can_retry() == (budget.tokens > 50.0)


@pytest.mark.parametrize(
    "kwargs,field", [({"max_tokens": 0.0}, "max_tokens"), ({"token_ratio": 0.0}, "token_ratio")]
)
def test_retry_budget_config_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryBudgetConfig(**kwargs)  # type: ignore[arg-type]


# --- token bucket --------------------------------------------------------------------------


def test_token_bucket_rate_two_burst_one() -> None:
    bucket = TokenBucket(rate=2.0, burst=1, now=0.0)
    assert bucket.next_free(0.0) == 0.0
    assert bucket.try_acquire(0.0)
    assert not bucket.try_acquire(0.1)
    assert bucket.next_free(0.1) == 0.5
    assert not bucket.try_acquire(0.49)
    assert bucket.try_acquire(0.5)
    assert bucket.next_free(0.5) == 1.0


def test_token_bucket_burst_refill_is_capped() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.try_acquire(0.0) for _ in range(4)] == [True, True, True, False]
    # a long idle spell refills to the burst, no further
    assert [bucket.try_acquire(1000.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.next_free(1000.0) == 1000.5


def test_token_bucket_starts_full_at_its_start_time() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, now=50.0)
    assert bucket.try_acquire(50.0) and bucket.try_acquire(50.0)
    assert not bucket.try_acquire(50.0)
    assert bucket.next_free(50.0) == 51.0


@given(
    rate=st.floats(min_value=0.01, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=60),
)
def test_next_free_is_exactly_when_acquire_succeeds(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    for gap in gaps:
        now += gap
        free = bucket.next_free(now)
        assert free >= now
        if free > now:
            assert not bucket.try_acquire(now)
        assert bucket.try_acquire(free)
        now = free


@pytest.mark.parametrize(
    "rate,burst,field", [(0.0, 1, "rate"), (-1.0, 1, "rate"), (1.0, 0, "burst")]
)
def test_rate_limit_validation(rate: float, burst: int, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RateLimitConfig(rate=rate, burst=burst)
    with pytest.raises(ValueError, match=field):
        TokenBucket(rate, burst)


# --- distribution windows ------------------------------------------------------------------


def test_next_window_every_fifteen_minutes() -> None:
    mode = DistributionMode(kind="batch", interval=900.0, offset=0.0)
    assert mode.next_window(0.0) == 0.0
    assert mode.next_window(1.0) == 900.0
    assert mode.next_window(900.0) == 900.0
    assert mode.next_window(900.5) == 1800.0


def test_next_window_per_endpoint_offset() -> None:
    mode = DistributionMode(kind="batch", interval=900.0, offset=0.0)
    assert mode.next_window(0.0, offset=300.0) == 300.0
    assert mode.next_window(301.0, offset=300.0) == 1200.0
    assert mode.next_window(1200.0, offset=300.0) == 1200.0
    # an offset beyond one interval is a phase: the window before it counts too
    assert mode.next_window(0.0, offset=1000.0) == 100.0
    nightly = DistributionMode(kind="batch", interval=86400.0, offset=7200.0)
    assert nightly.next_window(3600.0) == 7200.0
    assert nightly.next_window(7201.0) == 93600.0
    assert nightly.next_window(7201.0, offset=0.0) == 86400.0


@given(
    now=st.floats(min_value=-1e7, max_value=1e7),
    interval=st.floats(min_value=1e-3, max_value=1e6),
    offset=st.floats(min_value=-1e6, max_value=1e6),
)
def test_next_window_is_the_smallest_window_at_or_after_now(
    now: float, interval: float, offset: float
) -> None:
    w = DistributionMode(kind="batch", interval=interval).next_window(now, offset=offset)
    assert w >= now
    # The window before w lies before now, up to float rounding of offset + k * interval
    # (offset -1e-50 and interval 1 put the previous window at -1e-50, which rounds to 0).
    slack = 1e-9 * max(1.0, abs(now), abs(offset), interval)
    assert w - interval < now + slack


def test_is_batch_for() -> None:
    assert not DistributionMode("push").is_batch_for(False)
    assert DistributionMode("batch").is_batch_for(True)
    assert DistributionMode("hybrid").is_batch_for(False)
    assert not DistributionMode("hybrid").is_batch_for(True)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"interval": 0.0}, "interval"),
        ({"kind": "pull"}, "kind"),
        ({"offset": float("nan")}, "offset"),
    ],
)
def test_distribution_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DistributionMode(**kwargs)  # type: ignore[arg-type]


# --- dead-letter queue ---------------------------------------------------------------------


def entry(n: int, promo: str, endpoint: str) -> DeadLetterEntry:
    return DeadLetterEntry(
        delivery_id=f"d{n}",
        endpoint=endpoint,
        channel="pos",
        promo=promo,
        version=1,
        op="apply",
        attempts=5,
        reason="timeout",
        t=float(n),
    )


def test_dead_letter_queue_take_filters_and_removes() -> None:
    dlq = DeadLetterQueue()
    items = [
        entry(1, "P1", "store-1"),
        entry(2, "P2", "store-1"),
        entry(3, "P1", "store-2"),
        entry(4, "P1", "store-1"),
    ]
    for item in items:
        dlq.add(item)
    assert len(dlq) == 4 and dlq.entries() == items

    assert dlq.take(promo="P1", endpoint="store-1") == [items[0], items[3]]
    assert dlq.entries() == [items[1], items[2]]
    assert dlq.take(promo="P9") == []
    assert dlq.take(endpoint="store-2") == [items[2]]
    assert len(dlq) == 1
    assert dlq.take() == [items[1]]
    assert len(dlq) == 0 and dlq.entries() == []


def test_dead_letter_entries_is_a_copy_and_entries_are_frozen() -> None:
    dlq = DeadLetterQueue()
    dlq.add(entry(1, "P1", "e"))
    dlq.entries().clear()
    assert len(dlq) == 1
    with pytest.raises(AttributeError):
        dlq.entries()[0].reason = "x"  # type: ignore[misc]
