"""Live processes defer the collector's full collections while they serve (a full pass
over a run's records stalled the loop 0.5-0.76 s), and hand the thresholds back after."""

from __future__ import annotations

import gc

import pytest

from harness.runtime.live import FULL_COLLECTION_EVERY, full_collections_deferred, run


def test_full_collections_are_deferred_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with full_collections_deferred():
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
    assert gc.get_threshold() == before


def test_a_live_run_serves_with_them_deferred_and_restores_them_even_on_error() -> None:
    before = gc.get_threshold()

    async def seen() -> tuple[int, int, int]:
        return gc.get_threshold()

    assert run(seen())[2] == FULL_COLLECTION_EVERY
    assert gc.get_threshold() == before

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run(fails())
    assert gc.get_threshold() == before
