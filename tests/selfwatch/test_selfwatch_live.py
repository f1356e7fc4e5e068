"""`promoharness live` watches its own event loops: a run whose estate loop is held for
2 s (the PROMOHARNESS_TEST_BLOCK_LOOP hook) exits 4 naming the estate, with its failed
SLO marked untrustworthy rather than failed; a calm run exits 0 with the headroom in its
report. No timing is asserted: the bound of the calm run (10 % of a 600 s timeout at 10x:
6 s) only guards against a stalled machine, and a 2 s block passes a 100 ms bound on any
machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.metrics.keys import undocumented
from harness.selfwatch import BLOCK_ENV
from tests.cli_driver import run_cli

TINY = Path(__file__).resolve().parents[1] / "runtime" / "tiny.yaml"
# An SLO no run meets (P1 reaches its stores in more than a microsecond): exit 1 when calm.
IMPOSSIBLE = (
    "slos=[{name: instant, metric: propagation.overall.t99, op: '<=', threshold: 0.000001}]"
)


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_a_blocked_estate_loop_exits_4_naming_it_and_the_failed_slo_is_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 5x the 60 s scenario plays for 12 s wall; each estate sampler (the calibration's
    # and the run's) holds its loop for 2 s, 4 s after it started and every 4 s after each
    # hold, so a hold lands inside the run however long the stack took to start.
    monkeypatch.setenv(BLOCK_ENV, "estate:2:4")
    out = tmp_path / "run"
    outcome = run_cli(
        "live", str(TINY), "--speed", "5", "--force", "-q", "--out", str(out),
        "--set", IMPOSSIBLE,
    )  # fmt: skip
    assert outcome.code == 4, outcome.stderr
    assert "harness saturated: estate saturated from" in " ".join(outcome.stderr.split())
    summary = _summary(out)
    harness = summary["harness"]
    assert harness["saturated"] is True
    estate = next(r for r in harness["loop_lag"] if r["component"] == "estate")
    # The 2 s block, at least, as this VM's monotonic clock measures it (once 1.999969 s).
    assert estate["saturated"] and estate["max_s"] >= 1.99
    assert "estate" in {s["component"] for s in harness["saturations"]}
    (slo,) = summary["slos"]
    assert slo["passed"] is False and slo["trusted"] is False
    assert harness["untrustworthy"] == ["propagation.overall.t99"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "HARNESS SATURATED" in page and "untrustworthy: harness saturated" in page
    assert (out / "harness_headroom.png").stat().st_size > 0
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert '<property name="harness_saturated" value="true" />' in junit
    # every key the run wrote under harness and slos is documented (docs/summary-json.md)
    assert [k for k in undocumented(summary) if k.startswith(("harness", "slos"))] == []


def test_a_calm_tiny_live_run_exits_0_with_its_headroom_reported(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outcome = run_cli(
        "live", str(TINY), "--speed", "10", "--force", "-q", "--out", str(out),
        "--set", "policies.default.timeout=600",
    )  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    harness = _summary(out)["harness"]
    assert harness["saturated"] is False and harness["saturations"] == []
    assert harness["bounds"]["lag_s"] == pytest.approx(6.0)  # 10 % of 600 s / 10
    rows = {r["component"]: r for r in harness["loop_lag"]}
    assert set(rows) == {"estate", "orchestrator"}
    assert all(r["samples"] > 0 and r["p50_s"] <= r["p99_s"] for r in rows.values())
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Harness headroom: event-loop lag" in page and 'id="plot-harness headroom"' in page
