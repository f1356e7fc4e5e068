"""The event loop live processes run on, and the scenario clock they keep.

``run`` drives a live coroutine on uvloop with the collector's full collections deferred;
``_freeze_heap``/``_thaw_heap`` keep what exists when a live runtime starts out of the
collector's reach while it runs; ``LiveClock`` is scenario time on the wall clock.
Split out of ``harness/runtime/live.py`` (re-exported there).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


# Generation-1 collections between two full ones while a live process serves: in effect
# none. A full collection walks every object the run made (truth records, sales, journal
# rows) with the loop stopped: 0.5-0.76 s stalls every ~15 s wall in black-friday-peak on
# a quiet machine, each longer than a 0.5 s wall timeout at 20x, so the harness judged
# itself saturated; with full collections deferred its worst lag was 28-38 ms. Young
# cycles are still collected (generations 0 and 1), where nearly all of them die.
FULL_COLLECTION_EVERY = 10_000_000


@contextlib.contextmanager
def full_collections_deferred() -> Iterator[None]:
    """Defer the collector's full collections for the duration (thresholds restored)."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a live coroutine to completion on uvloop (libuv's loop, with httptools under
    uvicorn: about half the wall cost per delivery of asyncio's loop and h11 here), or on
    asyncio's own loop where uvloop is not installed, with full collections deferred. The
    calibration and the run it gates must both go through here: the faithful speed holds
    for the loop it was measured on."""
    with full_collections_deferred():
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency; kept for a stripped install
            return asyncio.run(coro)
        return uvloop.run(coro)


_frozen = 0  # live runtimes started and not yet closed in this process
_kept = False  # the heap was frozen before the first of them started


def _freeze_heap() -> None:
    """Move everything alive now (the world, the estate, the replayed core) out of the
    collector's reach while live runtimes run. A full collection walked all of it: 0.23 s
    with the loop stopped, measured during a calibration burst — at 16x that is 3.7 s of
    scenario time on the wire, most of a 5 s timeout. Objects made later are collected
    as usual; ``_thaw_heap`` hands everything back when the last runtime closes."""
    global _frozen, _kept
    if _frozen == 0:
        _kept = gc.get_freeze_count() > 0  # someone else froze: theirs stays frozen
        gc.freeze()
    _frozen += 1


def _thaw_heap() -> None:
    global _frozen
    _frozen -= 1
    if _frozen == 0 and not _kept:
        gc.unfreeze()


class LiveClock:
    """Scenario seconds from a wall-clock epoch, ``speed`` times faster than real time."""

    def __init__(self, epoch: float | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.epoch = time.time() if epoch is None else epoch
        self.speed = speed

    def now(self) -> float:
        return (time.time() - self.epoch) * self.speed

    def wall(self, seconds: float) -> float:
        """Wall seconds for ``seconds`` of scenario time."""
        return max(0.0, seconds / self.speed)

    def monotonic_origin(self) -> float:
        """The ``time.monotonic()`` reading at which scenario time was 0 (for the apps)."""
        return time.monotonic() - (time.time() - self.epoch)
