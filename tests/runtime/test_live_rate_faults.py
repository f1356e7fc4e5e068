"""A live run plays the scenario's rate faults as the virtual-time run does.

Before, only ``promoharness estate`` switched ``error_rate``/``lost_acks``/``quota``/
``capacity`` faults on and off: ``live``, ``serve`` and ``load`` ran with none (no fault
records, no errors). The tiny scenario here has one window in which every POS delivery
fails; both runtimes must record the same fault windows, and the live run's POS errors
must fall inside that window.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from harness.live_run import run_live
from harness.runner import simulate
from harness.runtime.world import build_world
from harness.scenario import Scenario, load_scenario
from harness.stack import live_faults

TINY = Path(__file__).parent / "tiny.yaml"
ON, OFF = 15.0, 35.0  # the window: the publish (t=20) is inside, the rollback (t=40) after
# Scheduling only: a live switch lands when the event loop gets to it (at 5x, 1 scenario s
# is 200 ms of wall time, far more than a timer's lateness even on a loaded machine).
SLACK = 1.0


def faulted() -> Scenario:
    # The second fault changes nothing (rate 0) but is recorded: sharded, it is the first
    # fault of the shard that serves no POS store, whose player must reach it. The third is
    # open-ended: both runtimes record it until the scenario's end (60 s), although the
    # live run stops, and reads its truth, as that end arrives.
    faults = (
        f"faults=[{{kind: error_rate, channel: pos, start: {ON:g}, end: {OFF:g}, rate: 1.0}},"
        " {kind: error_rate, channel: ecommerce, start: 25, end: 30, rate: 0.0},"
        " {kind: lost_acks, channel: ecommerce, start: 45, rate: 0.0}]"
    )
    return load_scenario(str(TINY), [faults])


def fault_rows(events: pd.DataFrame) -> list[tuple[str, str, str, float, float]]:
    rows = events[events.kind == "fault"]
    return sorted(
        (r.endpoint, r.channel, r.detail, float(r.t), float(r.value)) for r in rows.itertuples()
    )


def pos_errors(events: pd.DataFrame) -> pd.Series:
    results = events[(events.kind == "result") & (events.channel == "pos")]
    return results[results.outcome == "error"].t


@pytest.mark.parametrize("shards", [0, 3], ids=["in-process", "sharded"])
def test_live_run_switches_the_scenario_rate_faults_as_the_virtual_run_does(
    tmp_path: Path, shards: int
) -> None:
    """Sharded, each shard switches the faults at its own endpoints (3 shards over 6
    endpoints: one serves no POS store, and must skip that fault, not stop playing)."""
    scenario = faulted()
    sim = simulate(scenario).events
    played = run_live(scenario, state=tmp_path / "s.db", speed=5.0, estate_shards=shards)
    live = asyncio.run(asyncio.wait_for(played, 300)).events

    expected = fault_rows(sim)
    assert [r[:3] for r in expected] == [
        ("S0001", "pos", "error_rate:1.0"),
        ("S0002", "pos", "error_rate:1.0"),
        ("web", "ecommerce", "error_rate:0.0"),
        ("web", "ecommerce", "lost_acks:0.0"),
    ]
    assert expected[-1][3:] == (45.0, 15.0)
    got = fault_rows(live)
    assert [r[:3] for r in got] == [r[:3] for r in expected]
    for (*_, t_sim, d_sim), (*_, t_live, d_live) in zip(expected, got, strict=True):
        assert t_live == pytest.approx(t_sim, abs=SLACK)
        assert t_live + d_live == pytest.approx(t_sim + d_sim, abs=SLACK)  # switched off

    # Every POS attempt answered inside the window failed; none outside it did.
    for errors in (pos_errors(sim), pos_errors(live)):
        assert len(errors) > 0
        assert errors.between(ON - SLACK, OFF + SLACK).all(), list(errors)
    live_pos = live[(live.kind == "result") & (live.channel == "pos")]
    after = live_pos[live_pos.t > OFF + SLACK]
    assert len(after) > 0 and (after.outcome != "error").all()


def test_a_restart_plays_only_what_is_left_of_each_window() -> None:
    """Scenario time ``now`` as a restart from a state file finds it: a window already over
    stays off (no zero-length record), one under way is switched on at once and off at its
    end, an open-ended fault is switched off at the scenario's end (60 s) as the virtual
    run's record says."""
    world = build_world(
        load_scenario(
            str(TINY),
            [
                "faults=[{kind: error_rate, channel: pos, start: 5, end: 10, rate: 1.0},"
                " {kind: lost_acks, channel: pos, start: 15, end: 35, rate: 0.5},"
                " {kind: error_rate, channel: ecommerce, start: 30, rate: 0.2},"
                " {kind: region_offline, region: east, start: 1, end: 50}]"
            ],
        )
    )
    assert [(s, e, f.kind) for s, e, f in live_faults(world, 0.0)] == [
        (5.0, 10.0, "error_rate"),
        (15.0, 35.0, "lost_acks"),
        (30.0, 60.0, "error_rate"),
    ]
    assert [(s, e, f.kind) for s, e, f in live_faults(world, 20.0)] == [
        (15.0, 35.0, "lost_acks"),
        (30.0, 60.0, "error_rate"),
    ]
    assert live_faults(world, 60.0) == []
