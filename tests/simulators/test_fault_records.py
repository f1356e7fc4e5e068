"""The live estate's fault records (``simulators/app_admin.FaultSwitch``) against a scripted
scenario clock: a scheduled fault is recorded when switched on with its planned end (as the
SimPy runtime records it), a hand switch-off before that end shortens its record, a
switch-on the loop reached after the window ended lasts no time, and a fault switched by
hand is recorded when switched off."""

from __future__ import annotations

from pathlib import Path

from test_apps import scenario_file

from harness.runtime.world import build_world
from harness.scenario import load_scenario
from simulators.apps import create_sim_app
from simulators.served import Fault

POS_ERRORS = Fault("error_rate", channel="pos", rate=1.0)


class ScriptedClock:
    """Scenario seconds the test sets (``FaultSwitch.switch`` reads only ``now``)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def switch_and_clock(tmp_path: Path):  # type: ignore[no-untyped-def]
    world = build_world(load_scenario(scenario_file(tmp_path)))
    app = create_sim_app(world, callback_url=None, callback_key="secret", speed=10.0)
    clock = ScriptedClock()
    app.state.sim.clock = clock
    return app.state.faults, app.state.sim.records, clock


def fault_rows(records) -> list[tuple[str, float, float, str]]:  # type: ignore[no-untyped-def]
    return [(r.endpoint, r.t, r.value, r.detail) for r in records if r.kind == "fault"]


def test_a_scheduled_fault_is_recorded_at_switch_on_with_its_planned_end(tmp_path: Path) -> None:
    faults, records, now = switch_and_clock(tmp_path)
    now.t = 15.0
    faults.switch(POS_ERRORS, True, until=35.0)
    stores = ["S0001", "S0002", "S0003"]
    assert fault_rows(records) == [(s, 15.0, 20.0, "error_rate:1.0") for s in stores]
    now.t = 35.0
    faults.switch(POS_ERRORS, False)  # at its planned end: nothing more to say
    assert fault_rows(records) == [(s, 15.0, 20.0, "error_rate:1.0") for s in stores]


def test_switched_off_by_hand_early_its_record_says_how_long_it_was_on(tmp_path: Path) -> None:
    faults, records, now = switch_and_clock(tmp_path)
    now.t = 15.0
    faults.switch(POS_ERRORS, True, until=35.0)
    now.t = 22.5
    faults.switch(POS_ERRORS, False)
    assert {row[1:] for row in fault_rows(records)} == {(15.0, 7.5, "error_rate:1.0")}


def test_a_switch_on_reached_after_the_window_lasts_no_time(tmp_path: Path) -> None:
    faults, records, now = switch_and_clock(tmp_path)
    now.t = 36.0
    faults.switch(POS_ERRORS, True, until=35.0)
    assert {row[1:] for row in fault_rows(records)} == {(36.0, 0.0, "error_rate:1.0")}


def test_a_fault_switched_by_hand_is_recorded_when_switched_off(tmp_path: Path) -> None:
    faults, records, now = switch_and_clock(tmp_path)
    now.t = 5.0
    faults.switch(POS_ERRORS, True)
    assert fault_rows(records) == []
    now.t = 9.0
    faults.switch(POS_ERRORS, False)
    assert {row[1:] for row in fault_rows(records)} == {(5.0, 4.0, "error_rate:1.0")}
