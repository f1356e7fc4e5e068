"""Random scopes over random estates, live: the same property as test_scope_sim.py over real
HTTP (simulators and orchestrator on 127.0.0.1), read back from the simulators' ground
truth. Few examples: each one starts a stack."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from scope_cases import estates_and_scopes, expected_removals, removal_sets, scenario_data

from harness.live_run import run_live
from harness.scenario import Scenario


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=estates_and_scopes())
def test_a_live_rollback_removes_exactly_its_scope(case: dict, tmp_path: Path) -> None:
    scenario = Scenario.model_validate(scenario_data(case))
    state = tmp_path / f"state-{abs(hash(repr(case)))}.sqlite"
    result = asyncio.run(run_live(scenario, state=state, speed=20.0))
    carrying, removed, inv = removal_sets(result.events, 40.0)
    assert carrying
    assert removed == expected_removals(inv, case["scope"], carrying)
    (verdict,) = result.summary["rollbacks"]
    assert verdict["verdict"] == "pass", verdict["violations"]
