"""Random scopes over random estates, in virtual time: the endpoints a rollback removes are
exactly the endpoints docs/scope.md says it covers (among those carrying the promotion),
and the rollback oracle, which computes its scope on its own, agrees and passes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from scope_cases import (
    estates_and_scopes,
    expected_removals,
    removal_sets,
    scenario_data,
    scope_json,
)

from harness.metrics.frame import inventory
from harness.metrics.rollback import covered_endpoints
from harness.runner import simulate
from harness.scenario import Scenario


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=estates_and_scopes())
def test_a_rollback_removes_exactly_its_scope(case: dict) -> None:
    scenario = Scenario.model_validate(scenario_data(case))
    result = simulate(scenario)
    df = result.events
    carrying, removed, inv = removal_sets(df, 40.0)
    assert carrying, "the publish reached nothing: the case tests nothing"
    assert removed == expected_removals(inv, case["scope"], carrying)
    oracle = set(covered_endpoints(inventory(df), scope_json(case["scope"])))
    assert removed == oracle & carrying
    (verdict,) = result.summary["rollbacks"]
    assert verdict["verdict"] == "pass", verdict["violations"]
