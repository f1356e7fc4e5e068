"""Tests for SLO verdicts (harness.metrics.slo)."""

from __future__ import annotations

import pytest

from harness.metrics.slo import SLO, evaluate_slos, resolve

SUMMARY = {
    "propagation": {"overall": {"t95": 12.5, "t100": None}},
    "retry_storm": {"amplification": 1.2},
    "rollbacks": [{"verdict": "pass"}, {"verdict": "fail"}],
    "by_promo": {"bf.2024": {"t95": 3.0}},
    "passed": True,
}


@pytest.mark.parametrize(
    ("op", "threshold", "passed"),
    [
        ("<", 13.0, True),
        ("<", 12.5, False),
        ("<=", 12.5, True),
        (">", 12.5, False),
        (">=", 12.5, True),
        ("==", 12.5, True),
        ("!=", 12.5, False),
    ],
)
def test_ops(op: str, threshold: float, passed: bool) -> None:
    (r,) = evaluate_slos(SUMMARY, [SLO("t95", "propagation.overall.t95", op, threshold)])
    assert r == {
        "name": "t95",
        "metric": "propagation.overall.t95",
        "op": op,
        "threshold": threshold,
        "value": 12.5,
        "passed": passed,
    }


def test_list_index_and_strings() -> None:
    results = evaluate_slos(
        SUMMARY,
        [
            SLO("first rollback", "rollbacks.0.verdict", "==", "pass"),
            SLO("second rollback", "rollbacks.1.verdict", "==", "pass"),
        ],
    )
    assert [(r["value"], r["passed"]) for r in results] == [("pass", True), ("fail", False)]


def test_missing_metric_fails_without_crashing() -> None:
    results = evaluate_slos(
        SUMMARY,
        [
            SLO("typo", "propagation.overal.t95", "<", 10),
            SLO("out of range", "rollbacks.7.verdict", "==", "pass"),
            SLO("bad index", "rollbacks.x.verdict", "==", "pass"),
            SLO("null figure", "propagation.overall.t100", "<", 10),
            SLO("through a number", "retry_storm.amplification.x", "<", 10),
        ],
    )
    assert [(r["value"], r["passed"]) for r in results] == [(None, False)] * 5


def test_incomparable_types_fail() -> None:
    (r,) = evaluate_slos(SUMMARY, [SLO("odd", "rollbacks.0.verdict", "<", 3)])
    assert r["value"] == "pass" and r["passed"] is False


def test_dotted_keys_and_mappings() -> None:
    assert resolve(SUMMARY, "by_promo.bf.2024.t95") == 3.0
    (r,) = evaluate_slos(
        SUMMARY,
        [{"name": "amp", "metric": "retry_storm.amplification", "op": "<=", "threshold": 2}],
    )
    assert r["passed"] is True


def test_invalid_op_is_rejected() -> None:
    with pytest.raises(ValueError, match="op"):
        SLO("x", "a.b", "=<", 1)
