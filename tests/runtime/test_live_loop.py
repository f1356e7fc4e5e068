"""The live runs' event loop and the calibration's incremental tally (issue 19)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from harness.domain.eventlog import Record
from harness.live_calibrate import TINY, _Tally
from harness.runtime.live import run
from harness.runtime.sim import NETWORK_DELAY
from harness.runtime.store import Store


def test_live_runs_go_on_uvloop() -> None:
    """`promoharness live` calibrates and runs through ``run``: both on libuv's loop, so
    the faithful speed is measured on the loop it gates."""
    uvloop = pytest.importorskip("uvloop")

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run(loop_type()) is uvloop.Loop


def test_tally_reads_the_trail_incrementally_and_subtracts_the_modelled_round_trip(
    tmp_path: Path,
) -> None:
    """Two reads over a growing trail give what one read of the whole would: each
    send-to-result time less the twin's latency and the link both ways; an endpoint whose
    first attempt failed counts as answered; another promotion's records are ignored."""
    store = Store(tmp_path / "s.db")
    pos, erp = 2 * NETWORK_DELAY["pos"] + TINY, 2 * NETWORK_DELAY["erp"] + TINY

    def rec(t: float, kind: str, endpoint: str, channel: str, attempt: int = 1) -> Record:
        return Record(t, kind, "P", 1, endpoint, channel, "", attempt)

    store.append(0.0, "e1", [rec(10.0, "send", "S1", "pos"), rec(10.0, "send", "ERP", "erp")])
    store.append(0.0, "e2", [Record(10.5, "result", "OTHER", 1, "S1", "pos", "", 1)])
    store.append(0.0, "e3", [rec(10.0 + erp + 0.003, "result", "ERP", "erp")])
    tally = _Tally("P")
    durations, waiting = tally.read(store)
    assert durations == pytest.approx([0.003]) and waiting == 1  # S1 still out
    store.append(0.0, "e4", [rec(10.0 + pos + 0.002, "stale", "S1", "pos")])
    store.append(0.0, "e5", [rec(20.0, "send", "S1", "pos", attempt=2)])
    durations, waiting = tally.read(store)
    # S1's second attempt awaits its result, but S1 has answered once: nothing waits.
    assert durations == pytest.approx([0.003, 0.002]) and waiting == 0
    assert tally.read(store) == (durations, 0)  # nothing new, nothing counted twice
    store.close()


def test_a_live_runtime_keeps_the_heap_out_of_full_collections_while_it_runs(
    tmp_path: Path,
) -> None:
    """A full collection over the world stopped the loop for 0.23 s in a calibration
    burst; while any live runtime runs, what was alive at its start is frozen, and the
    last one to close hands it back to the collector."""
    from harness.runtime.live import EndpointDirectory, LiveClock, LiveRuntime
    from harness.runtime.world import build_world
    from harness.scenario import load_scenario

    world = build_world(load_scenario(str(Path(__file__).with_name("tiny.yaml"))))

    def runtime(name: str) -> LiveRuntime:
        directory = EndpointDirectory("http://127.0.0.1:9")  # never called here
        return LiveRuntime(world.orchestrator, Store(tmp_path / name), directory, LiveClock())

    async def scenario() -> list[int]:
        first, second = runtime("a.db"), runtime("b.db")
        counts = [gc.get_freeze_count()]
        await first.start()
        counts.append(gc.get_freeze_count())
        await second.start()
        await first.close()
        counts.append(gc.get_freeze_count())  # the second still runs
        await second.close()
        counts.append(gc.get_freeze_count())
        await second.close()  # closing twice thaws once
        first.store.close()
        second.store.close()
        return counts

    gc.unfreeze()  # a freeze another test in this worker left behind is not ours to judge
    before, running, one_left, after = run(scenario())
    assert running > before and one_left > before and after == before == 0
