"""Garbage-collector settings for the length of one virtual-time run.

A run allocates a few container objects per simulated event — commands, SimPy events,
deliveries, records — and keeps a good share of them (the event log grows throughout).
With CPython's default threshold the youngest generation is collected every 700 net
allocations, each pass promoting survivors that older passes then scan again, up to
full collections over everything alive, the world included: about a fifth of the wall
time of a 600-store fan-out (``promoharness bench sim``).

For the run's length the youngest generation is collected every ``YOUNG_THRESHOLD``
allocations instead; the older generations keep their ratios, so reference cycles are
still found, only in fewer, larger passes. Nothing is frozen or switched off, and the
threshold is restored when the outermost run ends, whatever way it ends. The setting is
the process's: a thread running beside a run sees it too (nothing here runs simulations
in threads), and a threshold changed during a run is put back at its end.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "quiet_collector"]

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Collect the young generation every ``YOUNG_THRESHOLD`` allocations, until exit."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if _saved[0]:  # 0 means automatic collection is off: leave it off
                gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
