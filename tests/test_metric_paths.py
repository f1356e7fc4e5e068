"""SLO metric paths are checked against the summary.json reference (harness/metrics/keys.py),
not a second copy of its shape: every documented path is accepted, every leaf of a real
run's summary too, and each kind of impossible path is refused with its own message."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.metric_paths import RUN_ONLY, _placeholders_stand_alone, unknown_metric
from harness.metrics.keys import KEYS, concrete_paths
from harness.runner import simulate
from harness.scenario import load_scenario

TINY = Path(__file__).resolve().parent / "runtime" / "tiny.yaml"
# What stands in each placeholder of KEYS for a run with promotions P1 and bf.2024.
EXAMPLE = {
    "<channel>": "pos",
    "<promo>": "bf.2024",
    "<pair>": "erp|pos",
    "<reason>": "x",
    "[]": "0",
}
PROMOS = ("P1", "bf.2024")


def test_every_documented_path_is_a_metric_and_run_only_ones_are_not() -> None:
    for key in KEYS:
        metric = ".".join(EXAMPLE.get(segment, segment) for segment in key.path)
        problem = unknown_metric(metric, PROMOS, 1)
        if key.path[0] in RUN_ONLY:
            assert problem is not None and problem.startswith(f"no figure '{key.path[0]}'")
        else:
            assert problem is None, (metric, problem)


def test_every_leaf_of_a_real_summary_is_a_metric() -> None:
    summary = simulate(load_scenario(str(TINY))).summary
    promos = list(summary["propagation"]["by_promo"])
    rollbacks = len(summary["rollbacks"])
    paths = {".".join("0" if s == "[]" else s for s in p) for p in concrete_paths(summary)}
    assert len(paths) > 100
    assert [p for p in sorted(paths) if unknown_metric(p, promos, rollbacks)] == []


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (
            "propagation.by_channel.pso.t95",
            "unknown channel 'pso' (one of erp, pos, ecommerce, loyalty, marketplace)"
            " in 'propagation.by_channel.pso.t95'",
        ),
        ("propagation.by_promo.P2.t95", "unknown promotion 'P2' in 'propagation.by_promo.P2.t95'"),
        (
            "funding.P1.overrunn",
            "no figure 'funding.P1.overrunn' in summary.json"
            " (there: budget, discounts, granted, overrun, utilisation)",
        ),
        (
            "rollbacks.1.verdict",
            "rollback index 1, but the timeline rolls back 1 times in 'rollbacks.1.verdict'",
        ),
        (
            "leakage_value.total",
            "'leakage_value' is a single figure; 'leakage_value.total' goes past it",
        ),
        ("slos.first.value", "'first' is not a list index in 'slos.first.value'"),
        (
            "price_consistency.by_channel_pair.a.b",
            "'price_consistency.by_channel_pair.a' is a single figure;"
            " 'price_consistency.by_channel_pair.a.b' goes past it",
        ),
    ],
)
def test_an_impossible_path_is_named_with_its_reason(metric: str, reason: str) -> None:
    assert unknown_metric(metric, PROMOS, 1) == reason


def test_a_dotted_promotion_id_and_a_group_of_figures_are_paths() -> None:
    assert unknown_metric("propagation.by_promo.bf.2024.by_channel.erp.t99", PROMOS, 0) is None
    assert unknown_metric("propagation.overall", PROMOS, 0) is None
    assert unknown_metric("rollbacks.-1.leakage_value", PROMOS, 2) is None
    assert unknown_metric("rollbacks.-3.leakage_value", PROMOS, 2) is not None


def test_each_placeholder_has_its_level_to_itself() -> None:
    # unknown_metric reads a level as data-keyed only when the placeholder is alone there.
    assert _placeholders_stand_alone() == []
