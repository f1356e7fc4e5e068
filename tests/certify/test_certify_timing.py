"""The timed checks decide on what the adapter does, not on how fast this machine is.

Each adapter here is a reference adapter made slow (or failing) on purpose by an ASGI
wrapper that sleeps before answering. A sleep is a lower bound on any machine, so "slower
than the limit" is certain when the limit is below the sleep; "within the limit" is
asserted only with a limit generous enough to guard against a hang, never a fast machine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from certify_support import TOKEN, load_adapter, serve_in_thread

from harness.certify.base import CheckResult, Settings
from harness.certify.runner import run_certification

Scope = dict[str, Any]
App = Callable[[Scope, Any, Any], Any]


class Slow:
    """Sleep ``delay`` seconds before answering ``method path``; with ``fail_every`` N,
    answer every Nth such request 503 instead."""

    def __init__(self, app: App, method: str, path: str, delay: float, fail_every: int = 0):
        self.app, self.method, self.path = app, method, path
        self.delay, self.fail_every, self.count = delay, fail_every, 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == (self.method, self.path):
            self.count += 1
            # This request's number, taken before the await: a busy machine bunches the
            # open-loop requests, and reading the shared count after the sleep let several
            # see the same later number (1 failure of 20 instead of every 5th).
            nth = self.count
            await asyncio.sleep(self.delay)
            if self.fail_every and nth % self.fail_every == 0:
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


@pytest.fixture
def serve() -> Iterator[Callable[[App], str]]:
    stops: list[Callable[[], None]] = []

    def start(app: App) -> str:
        url, stop = serve_in_thread(app)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


def _check(url: str, name: str, **settings: Any) -> CheckResult:
    cert = asyncio.run(
        run_certification(
            url,
            "pos",
            token=TOKEN,
            settings=Settings.for_level("basic", latency_seconds=1.0, **settings),
            only=[name],
        )
    )
    (result,) = cert.results
    return result


def _pos() -> App:
    app: App = load_adapter("reference_pos").create_app(TOKEN)
    return app


def test_latency_fails_an_adapter_slower_than_the_limit(serve: Callable[[App], str]) -> None:
    url = serve(Slow(_pos(), "POST", "/price", delay=0.4))
    slow = _check(url, "latency", p95_limit=0.2)
    assert not slow.passed
    assert any(re.fullmatch(r"FAIL: p95 \d+\.\d ms, limit 200 ms", f) for f in slow.failures), slow
    p50 = float(re.search(r"p50 (\d+\.\d) ms", " ".join(slow.evidence)).group(1))  # type: ignore[union-attr]
    assert p50 >= 400  # the sleep is in every answer the check timed
    # the same adapter, the same check: within a limit that only guards against a hang
    assert _check(url, "latency", p95_limit=60.0).passed


def test_latency_fails_an_adapter_that_errors_however_fast(serve: Callable[[App], str]) -> None:
    url = serve(Slow(_pos(), "POST", "/price", delay=0.0, fail_every=5))
    result = _check(url, "latency", p95_limit=60.0)
    assert not result.passed
    # 20 requests, every 5th is 503
    assert result.failures == ["FAIL: 4 non-200 answers of 20, expected none"]


def test_slow_callbacks_fails_deliveries_answered_late(serve: Callable[[App], str]) -> None:
    # A delivery answered only after a wait as long as the receiver's is what a webhook on
    # the delivery path looks like from outside.
    url = serve(Slow(_pos(), "POST", "/promotions", delay=0.5))
    late = _check(url, "faults_slow_callbacks", slow_callback_answer_limit=0.25)
    assert not late.passed
    assert sum("FAIL: apply" in f for f in late.failures) == 2, late.failures
    on_time = _check(url, "faults_slow_callbacks", slow_callback_answer_limit=30.0)
    assert on_time.passed, on_time.failures


class Serial:
    """Deliveries one at a time, ``delay`` seconds each (a single worker)."""

    def __init__(self, app: App, delay: float) -> None:
        self.app, self.delay, self.lock = app, delay, asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/promotions"):
            async with self.lock:
                await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def test_burst_fails_deliveries_that_take_effect_late(serve: Callable[[App], str]) -> None:
    # 50 deliveries one at a time, 0.1 s each: the 48th takes effect >= 4.8 s after the
    # burst started, and it was sent at most 0.5 s in (100/s), so p95 >= 4.3 s anywhere.
    url = serve(Serial(_pos(), delay=0.1))
    late = _check(url, "faults_burst", burst_p95_limit=1.0, burst_max_limit=60.0)
    assert not late.passed
    assert any(
        re.fullmatch(r"FAIL: delivery-to-effect p95 \d+\.\d ms, limit 1000 ms", f)
        for f in late.failures
    ), late.failures
    assert "at 100/s" in " ".join(late.evidence)
    generous = _check(url, "faults_burst", burst_p95_limit=60.0, burst_max_limit=60.0)
    assert generous.passed, generous.failures
