"""The live runs' event loop and the calibration's incremental tally (issue 19)."""

from __future__ import annotations

import asyncio
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
