"""The shipped scenario library: every file runs, and its SLO verdicts are the ones its
header documents (each SLO's ``expect``); runs are deterministic for a seed.

A scenario's run at its own seed is made once per module (``default_run``) and read by
every test that needs exactly that run: the verdicts, the storm an override must calm,
the first of the two same-seed runs (the second is always made afresh). A scenario whose
own seed is one of 1-10 has that very run judged by tests/test_library_verdicts.py (the
documented verdicts, seed by seed), so its verdicts are not simulated again here."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from test_library_verdicts import LIBRARY as VERDICTS_LIBRARY
from test_library_verdicts import SEEDS, documented_spread

from harness.metrics import summary_json
from harness.runner import simulate
from harness.scenario import library_names, load_scenario

LIBRARY = [
    "weekend-private-label",
    "black-friday-flash-sale",
    "regional-outage-rollback",
    "erp-quota-retry-storm",
    "batch-vs-event",
    "inconsistent-channels",
    "erp-brownout-metastable",
]


@cache
def default_run(name: str) -> dict[str, Any]:
    """The summary of ``name`` run at its own seed (this module's tests only read it)."""
    return simulate(load_scenario(name)).summary


def test_the_library_is_the_documented_one() -> None:
    assert sorted(library_names()) == sorted(LIBRARY)


def test_every_file_explains_its_expectations() -> None:
    for name in LIBRARY:
        scenario = load_scenario(name)
        # Each file explains its expectations in its header comment; at its own seed they
        # are its ``expect`` verdicts, with no seed line of its spread saying otherwise.
        assert scenario.description, name
        assert scenario.seed not in documented_spread(name), name


# Judged here unless tests/test_library_verdicts.py runs this very seed (in CI, not slow).
@pytest.mark.parametrize(
    "name", [n for n in LIBRARY if load_scenario(n).seed not in SEEDS or n not in VERDICTS_LIBRARY]
)
def test_scenario_verdicts_are_as_documented(name: str) -> None:
    scenario = load_scenario(name)
    summary = default_run(name)
    expected = {slo.name: slo.expect == "pass" for slo in scenario.slos}
    got = {slo["name"]: slo["passed"] for slo in summary["slos"]}
    assert got == expected, summary["slos"]
    assert summary["passed"] == all(expected.values())


def test_same_seed_same_summary_bytes_other_seed_other_figures() -> None:
    scenario = load_scenario("inconsistent-channels")
    first = summary_json(default_run("inconsistent-channels"))
    again = summary_json(simulate(scenario).summary)
    assert first == again
    other = simulate(scenario, seed=scenario.seed + 1).summary
    assert summary_json(other) != first
    assert other["seed"] == scenario.seed + 1


def test_overrides_change_the_run() -> None:
    base = load_scenario("erp-quota-retry-storm")
    cured = load_scenario(
        "erp-quota-retry-storm",
        [
            "policies.erp.backoff.kind=full_jitter",
            "policies.erp.backoff.cap=60",
            "policies.erp.honour_retry_after=true",
            "policies.erp.rate_limit.rate=5",
            "policies.erp.rate_limit.burst=5",
        ],
    )
    assert base.policies["erp"].backoff.kind != "full_jitter"
    assert cured.policies["erp"].backoff.kind == "full_jitter"
    storm = default_run("erp-quota-retry-storm")["retry_storm"]
    calm = simulate(cured).summary["retry_storm"]
    # Pacing at the quota removes the lock-step retries: fewer attempts per delivery.
    assert calm["amplification"] < storm["amplification"]
    assert calm["peak_attempt_rate_over_capacity"] < storm["peak_attempt_rate_over_capacity"]
