"""The sim-vs-live table on hand-built summaries: a figure a live run cannot measure (no
shoppers buy or sample quotes) says "not measured live" and never counts against
agreement; a figure really out of tolerance still shows as out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.agreement import NOT_MEASURED_LIVE, agreement, needs, unmeasured
from harness.live_run import sim_vs_live
from harness.metrics.summary import HEADLINE_FIGURES

LEAK_SLO = "leakage after rollback under $15k"
T95_SLO = "T95 within 20 min"


def _slo(name: str, metric: str, value: Any, passed: bool) -> dict[str, Any]:
    return {
        "name": name,
        "metric": metric,
        "op": "<",
        "threshold": 0,
        "value": value,
        "passed": passed,
    }


def _summary(mode: str, *, t95: float, leakage: float, mismatch: float | None) -> dict[str, Any]:
    """A summary as `summarise` shapes it, with the figures the table reads. The leakage
    SLO's verdict follows the leakage (under 15,000 passes), the T95 one passes."""
    slos = [
        _slo(LEAK_SLO, "leakage_value", leakage, leakage < 15000),
        _slo(T95_SLO, "propagation.overall.t95", t95, True),
    ]
    return {
        "scenario": "regional-outage-rollback",
        "seed": 1,
        "mode": mode,
        "propagation": {
            "overall": {"t50": 10.0, "t95": t95, "t99": 300.0, "t100": 400.0, "acked_t95": t95}
        },
        "retry_storm": {"amplification": 1.5, "peak_attempt_rate_over_capacity": 2.0},
        "rollbacks": [{"promo": "P1", "verdict": "pass", "leakage_value": leakage}],
        "price_consistency": {"mismatch_rate": mismatch, "spread_value": 3.0},
        "leakage_value": leakage,
        "funding": {"P1": {"granted": leakage * 3}},
        "slos": slos,
        "passed": all(s["passed"] for s in slos),
    }


# The sim run's shoppers bought at a stale price after the rollback ($20,000: its leakage
# SLO fails); nobody buys in the live run (0: the SLO passes on nothing).
SIM = _summary("sim", t95=100.0, leakage=20000.0, mismatch=0.25)
LIVE = _summary("live", t95=110.0, leakage=0.0, mismatch=None)


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["figure"]: r for r in body["figures"]}


def test_shopper_figures_are_not_measured_live_and_do_not_break_agreement() -> None:
    body = agreement(SIM, LIVE)
    rows = _rows(body)
    assert [r["figure"] for r in body["figures"]] == [*HEADLINE_FIGURES, "rollbacks.0.verdict"]
    # The virtual run's value is shown; the live one (a 0 nobody bought, or null) is not.
    for figure, sim in (("leakage_value", 20000.0), ("price_consistency.mismatch_rate", 0.25)):
        assert rows[figure] == {
            "figure": figure,
            "sim": sim,
            "live": None,
            "live_over_sim": None,
            "status": NOT_MEASURED_LIVE,
            "claimed": False,
        }
    assert body["not_measured_live"] == ["leakage_value", "price_consistency.mismatch_rate"]
    # 110 against 100 is within 20 %; every other figure is equal in both.
    assert rows["propagation.overall.t95"]["status"] == "within tolerance"
    assert rows["propagation.overall.t95"]["live_over_sim"] == pytest.approx(1.1)
    # The sim run failed only the leakage SLO: judged on the SLOs measured live, both pass.
    assert SIM["passed"] is False and LIVE["passed"] is True
    assert rows["passed"]["sim"] is True and rows["passed"]["live"] is True
    assert rows["passed"]["status"] == "within tolerance"
    assert body["slos_left_out"] == [LEAK_SLO]
    assert body["out_of_tolerance"] == [] and body["agrees"] is True


def test_a_real_disagreement_still_shows_out_of_tolerance() -> None:
    live = copy.deepcopy(LIVE)
    live["propagation"]["overall"]["t95"] = 121.0  # 21 % above 100
    live["slos"][1]["passed"] = False  # and its SLO failed live
    body = agreement(SIM, live)
    rows = _rows(body)
    assert rows["propagation.overall.t95"]["status"] == "out of tolerance"
    assert rows["passed"]["status"] == "out of tolerance"
    assert body["out_of_tolerance"] == ["propagation.overall.t95", "passed"]
    assert rows["leakage_value"]["status"] == NOT_MEASURED_LIVE
    assert body["agrees"] is False


def test_the_table_marks_not_measured_live_never_no() -> None:
    table = sim_vs_live(SIM, LIVE)
    marks = dict(zip(table["figure"], table["within 20%"], strict=True))
    leak = table[table["figure"] == "leakage_value"].iloc[0]
    assert (leak["sim"], leak["live"], leak["live/sim"]) == (20000.0, "—", "—")
    assert marks["leakage_value"] == NOT_MEASURED_LIVE
    assert marks["price_consistency.mismatch_rate"] == NOT_MEASURED_LIVE
    assert marks["propagation.overall.t95"] == "yes"
    assert "NO" not in marks.values()
    live = copy.deepcopy(LIVE)
    live["retry_storm"]["amplification"] = 3.0
    marks = dict(zip(*(sim_vs_live(SIM, live)[c] for c in ("figure", "within 20%")), strict=True))
    assert marks["retry_storm.amplification"] == "NO"


def test_load_measures_sales_but_not_quotes() -> None:
    """Locust shoppers check out (discount records: leakage, funding) but sample no
    quotes: under `load` leakage is compared, price consistency is not measured live."""
    load = _summary("load", t95=100.0, leakage=30000.0, mismatch=None)
    rows = _rows(agreement(SIM, load))
    assert rows["leakage_value"]["status"] == "out of tolerance"  # 30,000 against 20,000
    assert rows["price_consistency.mismatch_rate"]["status"] == NOT_MEASURED_LIVE


@pytest.mark.parametrize(
    ("metric", "record"),
    [
        ("leakage_value", "sale"),
        ("rollbacks.0.leakage_value", "sale"),
        ("rollbacks.12.leakage_value", "sale"),
        ("funding.P1.granted", "sale"),
        ("price_consistency.priced_without_truth.count", "sale"),
        ("price_consistency.mismatch_rate", "quote"),
        ("price_consistency.opening_window.mismatched", "quote"),
        ("propagation.overall.t95", None),
        ("rollbacks.0.verdict", None),
        ("retry_storm.amplification", None),
        ("passed", None),
    ],
)
def test_which_record_a_figure_needs(metric: str, record: str | None) -> None:
    assert needs(metric) == record
    assert unmeasured({"mode": "live"}, metric) is (record is not None)
    assert unmeasured({"mode": "sim"}, metric) is False
    assert unmeasured({"mode": "load"}, metric) is (record == "quote")


def test_agreement_is_judged_on_the_claimed_figures_and_each_rollback_verdict() -> None:
    """A fan-out's T50 is reported, not claimed (the faithful speed does not cover how
    long the stack takes to send a whole fan-out): out of tolerance alone it leaves the
    run agreeing, marked "NO (reported only)". A rollback verdict is claimed, row by row:
    a live rollback that fails where the virtual one passes is disagreement."""
    live = copy.deepcopy(LIVE)
    live["propagation"]["overall"]["t50"] = 60.0  # 6x the virtual 10 s
    body = agreement(SIM, live)
    rows = _rows(body)
    assert rows["propagation.overall.t50"]["status"] == "out of tolerance"
    assert rows["propagation.overall.t50"]["claimed"] is False
    assert body["out_of_tolerance"] == ["propagation.overall.t50"]
    assert body["agrees"] is True
    marks = dict(zip(*(sim_vs_live(SIM, live)[c] for c in ("figure", "within 20%")), strict=True))
    assert marks["propagation.overall.t50"] == "NO (reported only)"
    assert marks["rollbacks.0.verdict"] == "yes"

    live["rollbacks"][0]["verdict"] = "fail"  # the POS rollback left stale prices live
    body = agreement(SIM, live)
    verdict = _rows(body)["rollbacks.0.verdict"]
    assert (verdict["sim"], verdict["live"], verdict["status"]) == (
        "pass",
        "fail",
        "out of tolerance",
    )
    assert verdict["claimed"] is True
    assert body["agrees"] is False
