"""The capacity fault and paced series that the metastable scenario is built from.

A ``capacity`` fault cuts an endpoint's throughput to a share of itself while it is on
(every service time 1/share as long, the slots unchanged); ``series_every`` spaces the
copies of a series promotion into a steady feed. The library scenario built on both,
``erp-brownout-metastable``, must recover under the budgeted policy its header names.
"""

from __future__ import annotations

import pytest

from harness.inputs import InputError
from harness.runner import simulate
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from simulators.profiles import Latency, Profile, capacity_cut

BUDGET = [
    "policies.erp.retry_budget.max_tokens=20",
    "policies.erp.retry_budget.token_ratio=0.1",
]


@pytest.mark.parametrize(
    "latency",
    [
        Latency.fixed(0.2),
        Latency.uniform(0.1, 0.3),
        Latency.exponential(0.2),
        Latency.lognormal(0.2, 0.5),
    ],
)
def test_a_capacity_cut_stretches_service_and_keeps_the_slots(latency: Latency) -> None:
    base = Profile(latency=latency, capacity=3)
    cut = capacity_cut(base, 0.25)
    assert cut.capacity == 3
    assert cut.throughput == pytest.approx(base.throughput * 0.25)
    assert cut.latency.kind == latency.kind
    assert capacity_cut(base, 1.0) is base
    for share in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="capacity share"):
            capacity_cut(base, share)


def test_the_scenario_switches_the_erp_capacity_for_the_fault_window() -> None:
    scenario = load_scenario("erp-brownout-metastable")
    world = build_world(scenario)
    (fault,) = scenario.faults
    (erp,) = world.set_fault(fault, on=True)
    healthy = world.base_profiles[erp.id]
    assert erp.profile.throughput == pytest.approx(healthy.throughput * fault.rate)
    world.set_fault(fault, on=False)
    assert erp.profile == healthy


def test_series_every_paces_the_copies() -> None:
    scenario = load_scenario("erp-brownout-metastable")
    publishes = sorted(s.at for s in scenario.timeline if s.action == "publish")
    assert len(publishes) == 800
    assert publishes[:3] == [20.0, 20.5, 21.0]
    assert publishes[-1] == 20.0 + 799 * 0.5
    # Each copy keeps its own order of steps: created before it is published.
    created = {s.promo: s.at for s in scenario.timeline if s.action == "create"}
    assert all(created[s.promo] + 20.0 == s.at for s in scenario.timeline if s.action == "publish")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("faults.0.rate=0", "faults.0"),
        ("faults.0.rate=1.5", "faults.0"),
        ("series_every.LIGHTNING-DEAL=0", "series_every"),
        ("series_every.OTHER=1", "series_every"),
    ],
)
def test_bad_capacity_faults_and_paces_are_input_errors(override: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        load_scenario("erp-brownout-metastable", [override])
    assert field in str(caught.value)


def test_the_budgeted_policy_ends_the_storm_with_the_brownout() -> None:
    # The header's cure: every SLO passes, the storm does not outlive the fault.
    summary = simulate(load_scenario("erp-brownout-metastable", BUDGET)).summary
    assert [s["name"] for s in summary["slos"] if not s["passed"]] == []
    storm = summary["retry_storm"]
    assert storm["sustained"] is False
    (window,) = storm["recovery"]
    assert window["cause"] == "capacity:0.1"
    assert 0 < storm["recovery_seconds"] <= 120
    # The storm stopped, but the ERP first had to work off its queue of abandoned work.
    assert window["goodput"]["during"] < window["goodput"]["before"]
