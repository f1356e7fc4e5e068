"""Event-loop lag of a served app, sampled while it serves: how late the loop wakes a task
that asked to sleep a fixed interval is how long every request on that loop waited for
other work. The estate's apps and the orchestrator's API install it; the harness reads it
over ``GET /_harness/lag`` (``harness/selfwatch.py``) and judges it
(``harness/saturation.py``). It lives beside the estate's apps because the estate depends
on the domain only (a guard in tests/test_purity_guard.py).

Test hook: ``PROMOHARNESS_TEST_BLOCK_LOOP=COMPONENT:SECONDS:AFTER`` makes the sampler of
every component whose name starts with COMPONENT block its own event loop for SECONDS
wall, AFTER wall seconds after it started and again every AFTER seconds after each block
(a stand-in for a saturated estate; repeated, so a slow start-up cannot make a test's
run miss it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NamedTuple

__all__ = [
    "BLOCK_ENV",
    "INTERVAL",
    "KEEP",
    "LAG_PATH",
    "LATE_KEPT",
    "Block",
    "LagSampler",
    "install",
]

LAG_PATH = "/_harness/lag"
INTERVAL = 0.05  # wall seconds between wake-ups: 20 samples a second
KEEP = 72_000  # samples kept (an hour at INTERVAL); older ones are dropped, and counted...
# ...except those later than this: the saturation rule (harness/saturation.py) never counts
# a lag at or under its 100 ms floor, so keeping the later ones judges a run of any length
# whole. Each stands for over 150 ms of wall time: at most ~24,000 an hour.
LATE_KEPT = 0.100
BLOCK_ENV = "PROMOHARNESS_TEST_BLOCK_LOOP"


class Block(NamedTuple):
    """The test hook: block the loop for ``seconds``, ``after`` s into sampling and every
    ``after`` s after each block."""

    seconds: float
    after: float


def block_from_env(component: str, value: str | None = None) -> Block | None:
    """The hook for ``component`` from ``PROMOHARNESS_TEST_BLOCK_LOOP``, if it names it."""
    value = os.environ.get(BLOCK_ENV, "") if value is None else value
    if not value:
        return None
    try:
        prefix, seconds, after = value.split(":")
        block = Block(float(seconds), float(after))
    except ValueError:
        raise ValueError(f"{BLOCK_ENV}={value!r}: expected COMPONENT:SECONDS:AFTER") from None
    return block if component.startswith(prefix) else None


class LagSampler:
    """Event-loop lag of the loop it runs on: ``samples`` holds (wall time, lag seconds).

    ``clock`` (monotonic), ``wall`` (epoch seconds, so processes line up) and ``sleep``
    are injectable: a test drives it with a scripted clock and gets exact lags."""

    def __init__(
        self,
        component: str,
        *,
        interval: float = INTERVAL,
        keep: int = KEEP,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        block: Block | None = None,
    ) -> None:
        self.component = component
        self.interval = interval
        self.samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self.late_dropped: list[tuple[float, float]] = []  # dropped samples over LATE_KEPT
        self.count = 0  # samples taken, kept or dropped
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.block = block
        self.task: asyncio.Task[None] | None = None

    async def run(self, limit: int | None = None) -> None:
        """Sample until cancelled (or ``limit`` samples)."""
        started = self.clock()
        while limit is None or self.count < limit:
            before = self.clock()
            if self.block is not None and before - started >= self.block.after:
                seconds, started = self.block.seconds, before + self.block.seconds
                time.sleep(seconds)  # the test hook: holds the loop, as busy work would
            await self.sleep(self.interval)
            after = self.clock()
            samples = self.samples
            if len(samples) == samples.maxlen and samples[0][1] > LATE_KEPT:
                self.late_dropped.append(samples[0])
            samples.append((self.wall(), max(0.0, after - before - self.interval)))
            self.count += 1

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_harness/lag`` answers (seconds; ``samples``: [[wall t, lag]] of the
        last ``KEEP``, percentiles over them; ``late_dropped``: the older samples over
        ``LATE_KEPT``, for the saturation rule)."""
        lags = sorted(lag for _, lag in self.samples)
        return {
            "component": self.component,
            "interval_s": self.interval,
            "count": self.count,
            "dropped": self.count - len(self.samples),
            "samples": [[round(t, 3), round(lag, 6)] for t, lag in self.samples],
            "late_dropped": [[round(t, 3), round(lag, 6)] for t, lag in self.late_dropped],
            "p50": _nearest_rank(lags, 0.50),
            "p99": _nearest_rank(lags, 0.99),
            "max": lags[-1] if lags else None,
        }


def install(app: Any, component: str, *, interval: float = INTERVAL) -> LagSampler:
    """Sample ``app``'s event loop while it serves (its lifespan) and serve the samples at
    ``GET /_harness/lag``. Returns the sampler (also ``app.state.selfwatch``)."""
    sampler = LagSampler(component, interval=interval, block=block_from_env(component))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        sampler.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            await sampler.stop()

    async def lag() -> dict[str, Any]:
        return sampler.snapshot()

    app.router.lifespan_context = lifespan
    app.add_api_route(LAG_PATH, lag, methods=["GET"], include_in_schema=False)
    app.state.selfwatch = sampler
    return sampler


def _nearest_rank(ordered: Sequence[float], q: float) -> float | None:
    # the same nearest-rank rule as harness.saturation.quantile, which judges these samples
    if not ordered:
        return None
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])
