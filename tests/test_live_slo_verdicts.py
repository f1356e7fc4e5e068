"""An SLO on a figure the run could not measure is "not measured", never a PASS on the 0.

A live run has no shoppers, so its leakage, funding and price consistency are 0s nobody
bought (``harness.agreement``): regional-outage-rollback's "leakage under $15k" passed on
that 0 and counted in the run's ``passed``, its exit code, the console, the report and
junit.xml. Here the SLOs go through the real verdict code (``summarise`` on hand-built
event logs, ``judge_measured``) and one real small live run goes through the CLI, its
calibration given (the seam ``tests/test_live_speed.py`` uses) so no figure depends on
the machine's speed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pandas as pd
import pytest
from cli_driver import run_cli

import harness.live_calibrate
from harness.agreement import NOT_MEASURED, judge_measured
from harness.cli.common import _print_verdicts
from harness.compare import Run, comparison
from harness.domain.eventlog import Record
from harness.faithful import Overhead
from harness.load.run import _expected_result
from harness.metrics import summarise, to_frame
from harness.report.compare_page import render_compare
from harness.report.html import render_html
from harness.report.junit import junit_xml
from harness.saturation import exit_code, mark_untrustworthy

LEAK = {"name": "leakage under $15k", "metric": "leakage_value", "op": "<", "threshold": 15000}
GRANTED = {"name": "P gave a discount", "metric": "funding.P.granted", "op": ">", "threshold": 0}
PRICES = {
    "name": "channels agree on price",
    "metric": "price_consistency.mismatch_rate",
    "op": "<=",
    "threshold": 0.01,
}
APPLIED = {
    "name": "S1 applied",
    "metric": "propagation.overall.applied",
    "op": ">=",
    "threshold": 1,
}
NEVER = {
    "name": "T95 under 0.5 s",
    "metric": "propagation.overall.t95",
    "op": "<",
    "threshold": 0.5,
}

# One POS store: the publish at t=1 applied at t=2 (T95 1 s), then a rollback it honours;
# no shopper record at all, as in a live run (a sale would be a "discount" row).
ROWS = [
    Record(0.0, "endpoint", "", 0, "S1", "pos", "east", 0, "", 5.0, "push"),
    Record(1.0, "publish", "P", 1, "", "", "", 0, "", 0.0, ""),
    Record(1.0, "target", "P", 1, "S1", "pos", "east", 0, "apply", 0.0, ""),
    Record(2.0, "applied", "P", 1, "S1", "pos", "east", 0, "", 0.0, ""),
]


def _summary(mode: str, slos: list[dict[str, Any]]) -> dict[str, Any]:
    """The real summary of ``ROWS`` in ``mode`` with ``slos``, judged as that mode's run."""
    summary = summarise(pd.DataFrame(ROWS), scenario="x", seed=1, mode=mode, slos=slos)
    if mode != "sim":
        judge_measured(summary)
    return summary


def _by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in summary["slos"]}


def test_a_live_slo_on_a_shopper_figure_is_not_measured_not_passed() -> None:
    summary = _summary("live", [LEAK, GRANTED, APPLIED])
    slos = _by_name(summary)
    # leakage 0 < 15,000 would pass and nothing granted > 0 would fail: neither is judged.
    for slo in (LEAK, GRANTED):
        entry = slos[slo["name"]]
        assert (entry["status"], entry["value"], entry["passed"]) == (NOT_MEASURED, None, None)
        assert entry["reason"].startswith(f"not measured live: {slo['metric']} is summed from")
        assert "a live run has no shoppers" in entry["reason"]
    assert slos[APPLIED["name"]] == {**APPLIED, "value": 1, "passed": True}  # untouched
    assert summary["passed"] is True and exit_code(summary) == 0


def test_a_failing_measured_slo_still_fails_the_run() -> None:
    summary = _summary("live", [LEAK, NEVER])
    assert _by_name(summary)[NEVER["name"]]["passed"] is False  # T95 is 1 s
    assert summary["passed"] is False and exit_code(summary) == 1


def test_a_virtual_time_summary_is_unchanged() -> None:
    summary = summarise(pd.DataFrame(ROWS), scenario="x", seed=1, mode="sim", slos=[LEAK])
    before = copy.deepcopy(summary)
    assert judge_measured(summary) == []
    assert summary == before  # its leakage SLO judged on its shoppers' (here: none) sales
    assert _by_name(summary)[LEAK["name"]]["passed"] is True


def test_load_judges_sales_but_not_quotes_even_when_expected_to_fail() -> None:
    """Locust shoppers check out (leakage is theirs) but sample no shelf prices; a gate
    the campaign documents as failing is no more judged than any other on that figure."""
    summary = summarise(pd.DataFrame(ROWS), scenario="x", seed=1, mode="load", slos=[LEAK, PRICES])
    summary["slos"][1] |= {"expect": "fail", "because": "the web shop caches prices"}
    assert judge_measured(summary) == [PRICES["name"]]
    slos = _by_name(summary)
    assert slos[LEAK["name"]]["passed"] is True and "status" not in slos[LEAK["name"]]
    prices = slos[PRICES["name"]]
    assert prices["status"] == NOT_MEASURED and prices["passed"] is None
    assert prices["reason"].startswith("not measured under load: ")
    assert _expected_result(prices) == "not measured under load"
    assert summary["passed"] is True


def test_judging_twice_changes_nothing() -> None:
    summary = _summary("live", [LEAK, NEVER])
    again = copy.deepcopy(summary)
    judge_measured(again)
    assert again == summary


def test_junit_marks_an_unmeasured_slo_skipped_with_its_reason() -> None:
    summary = _summary("live", [LEAK, GRANTED, NEVER])
    suite = ET.fromstring(junit_xml(summary))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "2")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    for slo in (LEAK, GRANTED):
        (child,) = list(cases[slo["name"]])
        assert child.tag == "skipped"
        assert child.get("message", "").startswith(f"not measured live: {slo['metric']}")
    assert [c.tag for c in cases[NEVER["name"]]] == ["failure"]


def test_the_terminal_says_not_measured_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    _print_verdicts(_summary("live", [LEAK, APPLIED]))
    out, err = capsys.readouterr()
    leak_row = next(line for line in out.splitlines() if "leakage under" in line)
    assert "not measured live" in leak_row and "pass" not in leak_row
    assert "leakage under $15k: not measured live: leakage_value is summed" in out
    assert "1 of 2 SLOs not measured: left out of the verdict and the exit code" in out
    assert "warning" not in err  # one SLO was measured


def test_when_no_slo_was_measured_the_run_says_it_judged_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = _summary("live", [LEAK, GRANTED])
    # A QA gate: exit 0 as with no SLOs (it cannot fail on what it had no means to see),
    # said loudly on stderr, in the report's badge and as skipped cases in junit.xml.
    assert summary["passed"] is True and exit_code(summary) == 0
    _print_verdicts(summary)
    err = capsys.readouterr().err
    assert "warning: none of the 2 SLOs was measured in this run: nothing was judged" in err
    page = render_html(summary, {}, title="t", description="")
    assert '<span class="badge unmeasured">NOTHING MEASURED</span>' in page
    assert "SLOs passed <b>0/0</b> · SLOs not measured <b>2</b>" in page
    assert ET.fromstring(junit_xml(summary)).get("skipped") == "2"


def test_the_report_shows_the_reason_not_a_pass() -> None:
    summary = _summary("live", [LEAK, APPLIED])
    page = render_html(summary, {}, title="t", description="")
    assert '<span class="badge pass">PASS</span>' in page
    assert "SLOs passed <b>1/1</b> · SLOs not measured <b>1</b>" in page
    assert '<td class="skip">not measured live: leakage_value is summed from' in page
    slos = page[page.index('<section id="slos">') :].split("</section>")[0]
    assert slos.count('<td class="ok">pass</td>') == 1  # the measured one only


def test_a_saturated_harness_distrusts_only_what_it_measured() -> None:
    summary = _summary("live", [LEAK, APPLIED])
    # A component of no known kind saturated: every figure it could touch is suspect.
    summary["harness"] = {"saturated": True, "saturations": [{"component": "other"}]}
    assert mark_untrustworthy(summary) == [APPLIED["metric"]]
    leak, applied = summary["slos"]
    assert "trusted" not in leak and applied["trusted"] is False
    assert exit_code(summary) == 4


def test_compare_counts_the_slos_each_run_judged() -> None:
    events = to_frame(ROWS)
    live = _summary("live", [LEAK, APPLIED])
    sim = summarise(events, scenario="x", seed=1, mode="sim", slos=[LEAK, APPLIED])
    runs = [Run("sim", Path("sim"), sim, events), Run("live", Path("live"), live, events)]
    page = render_compare(runs, comparison(runs))
    assert "<td>sim</td><td class='ok'>2/2 SLOs</td>" in page
    assert "<td>live</td><td class='ok'>1/1 SLOs (1 not measured)</td>" in page


# --- one real live run ---------------------------------------------------------------------

TINY = Path(__file__).parent / "runtime" / "tiny.yaml"
# Appended to tiny.yaml: its promotion P1 sells nothing live (nobody buys), its publish
# reaches both POS stores (two stores, no faults: hand-derived from the file).
SLOS = """
slos:
  - {name: leakage under $15k, metric: leakage_value, op: "<", threshold: 15000}
  - {name: P1 granted a discount, metric: funding.P1.granted, op: ">", threshold: 0}
  - {name: both stores applied, metric: propagation.by_channel.pos.applied, op: ">=", threshold: 2}
"""


def test_a_real_live_run_leaves_its_shopper_slos_out_of_the_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the leakage SLO passed on the 0, the funding one failed on it (exit 1).
    Now both are skipped and the run's verdict is its measured SLO's."""

    async def measure(*_args: object, speed: float, **_kwargs: object) -> Overhead:
        return Overhead(isolated=1e-5, at_concurrency=1e-5, speed=speed)  # a fast machine

    monkeypatch.setattr(harness.live_calibrate, "measure", measure)
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY.read_text(encoding="utf-8") + SLOS, encoding="utf-8")
    out = tmp_path / "out"
    # 50 s of scenario (the rollback at 40 s has a 5 s deadline) in 5 s of wall clock.
    outcome = run_cli(
        "live", str(scenario), "--set", "duration=50", "--speed", "10", "-q", "--out", str(out)
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    slos = {s["name"]: s for s in summary["slos"]}
    assert slos["both stores applied"]["passed"] is True, outcome.stdout
    for name in ("leakage under $15k", "P1 granted a discount"):
        assert slos[name]["status"] == "not measured" and slos[name]["passed"] is None
        assert slos[name]["reason"].startswith("not measured live: ")
    assert summary["passed"] is True
    # A busy machine may saturate the harness (exit 4 whatever 'passed' says); else 0.
    assert outcome.code == (4 if summary["harness"]["saturated"] else 0), outcome.stderr
    assert "2 of 3 SLOs not measured" in outcome.stdout
    # The sim-vs-live table says what agreement is judged on, and whether it holds.
    caption = " ".join(outcome.stdout.split())
    assert "agreement is judged on T95, T99, acked T95, amplification" in caption
    assert ("they agree" in caption) == summary["sim_vs_live"]["agrees"]
    suite = ET.fromstring((out / "junit.xml").read_text(encoding="utf-8"))
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "2")
    assert "SLOs not measured <b>2</b>" in (out / "report.html").read_text(encoding="utf-8")


def test_a_measured_figure_that_never_happened_reads_never(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A figure that is None because it never happened (T95 never reached) fails its SLO;
    the terminal says "never", not Python's None."""
    acked = {
        "name": "acked fast",
        "metric": "propagation.overall.acked_t95",
        "op": "<",
        "threshold": 9,
    }
    summary = _summary("sim", [acked])  # ROWS have no acknowledgement: acked T95 never came
    assert summary["slos"][0]["value"] is None
    _print_verdicts(summary)
    row = next(line for line in capsys.readouterr().out.splitlines() if "acked fast" in line)
    assert "never" in row and "None" not in row and "FAIL" in row
