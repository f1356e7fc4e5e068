"""The run's collector setting is scoped: restored after the run, nested runs included."""

from __future__ import annotations

import gc

import pytest

from harness.runtime.gcscope import YOUNG_THRESHOLD, quiet_collector


@pytest.fixture
def default_threshold():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_raised_inside_restored_after(default_threshold: None) -> None:
    with quiet_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert gc.isenabled()
        with quiet_collector():
            assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)  # the outer run is still on
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_run_fails(default_threshold: None) -> None:
    with pytest.raises(RuntimeError), quiet_collector():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_cycles_are_still_collected_during_a_run(default_threshold: None) -> None:
    import weakref

    class Node:
        pass

    with quiet_collector():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        alive = weakref.ref(a)
        del a, b
        # Enough live allocations to trigger the young generation on its own.
        keep = [[] for _ in range(3 * YOUNG_THRESHOLD)]
        assert alive() is None
        assert len(keep) == 3 * YOUNG_THRESHOLD


def test_automatic_collection_left_off_when_it_was_off() -> None:
    saved = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with quiet_collector():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*saved)
