"""Metastability lab tests: a hand-derived tiny run, the published outcomes, monotonicity.

The tiny run uses dyadic times (1/8 s between requests, 1/16 s service, 1/4 s while the
capacity is cut) so that every instant below is exact in binary floating point and the
queue can be followed by hand. The published outcomes are those of Huang et al. (OSDI
2022), README of ``lexiangh/Metastability/Retry_Metastability``, never figures this code
printed.
"""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from harness.lab import app
from harness.lab.metastable import POLICIES, PUBLISHED, Experiment, run_trial
from harness.lab.metastable_report import write_lab
from harness.lab.metastable_study import (
    PUBLISHED_POINTS,
    boundary,
    calibrate,
    monotone_violations,
    run_cells,
    run_study,
)

# --- a tiny run, derived by hand --------------------------------------------------------
#
# Requests every 1/8 s (8/s) to one slot serving 16/s; from t = 60 to 70 the capacity is cut
# to a quarter (cut 0.5 of 2 cores): a request starting service then takes 1/4 s. No
# resends, 3 s timeout. Number the requests k = 0, 1, ... from the one arriving at 60:
# - k < 40 start at 60 + k/4 (the queue grows by 4/s) and finish 1/4 s later, so their
#   response time is 1/4 + k/8: k <= 22 answer in time (k = 22: exactly 3 s), k = 23..39
#   time out.
# - k = 40 (arrived at 65) starts at 70, uncut; k >= 40 start at 70 + (k - 40)/16 while
#   that is after their arrival, i.e. up to k = 120 (arrived 75.0, starts 75.0); response
#   time 7.5625 - k/16 <= 3 for k >= 73: k = 40..72 time out, 50 timeouts in all
#   (k = 23..72), 23 successes during the cut.
# - successes: k = 73..120 at 72.125 + (k - 73)/16 (16/s) up to 75.0625, then 8/s again
#   at 60.0625 + k/8 from 75.1875.
# Recovery windows [70 + j, 75 + j) need 36..44 successes (8/s +-10 % over 5 s); attempts
# stay at 8/s throughout. j = 0: 46, j = 1: 48 + 7 = 55, j = 2: 48 + 15 = 63, j = 3:
# 34 + 23 = 57, j = 4: 18 + 31 = 49, j = 5: 2 + 39 = 41 -> recovered 5 s after the trigger.
TINY = Experiment(
    capacity=16.0,
    cut=0.5,
    duration=10.0,
    interval=0.125,
    resends=0,
    slots=1,
    scale=1.0,
)


def test_tiny_run_recovers_at_the_hand_derived_time() -> None:
    trial = run_trial(TINY)
    w = trial.window
    assert w["pre_fault"] == {"attempt_rate": 8.0, "success_rate": 8.0}
    assert trial.recovered
    assert trial.recovery_seconds == 5.0
    assert trial.timed_out == 50
    # Attempts sent in [60, 75): k = 0..119, of which k = 23..72 timed out.
    assert w["attempts"] == 120
    assert w["wasted_attempts"] == 50
    assert trial.goodput("during") == pytest.approx(23 / 10)
    # After: [70, 130): 48 at 16/s, then k = 121..559 (completing before 130).
    assert trial.goodput("after") == pytest.approx((48 + 439) / 60)


def test_tiny_run_resends_at_the_instant_of_each_timeout() -> None:
    # One resend: every first attempt that timed out is sent again at that very instant
    # (mongoC3.go resends at once), and nothing else is.
    records = run_trial(TINY.but(resends=1)).records
    timeouts = {
        (r.promo, r.t)
        for r in records
        if r.kind == "result" and r.attempt == 1 and r.outcome == "timeout"
    }
    resends = {(r.promo, r.t) for r in records if r.kind == "send" and r.attempt == 2}
    assert len(timeouts) >= 50
    assert resends == timeouts
    assert max(r.attempt for r in records if r.kind == "send") == 2


def test_a_longer_deeper_cut_never_ends_up_faster() -> None:
    # The tiny set-up, every cut and duration: monotone with both outcomes present.
    cells = [TINY.but(resends=4, cut=x, duration=d) for x in (0.25, 0.5, 1.0) for d in (4, 10, 20)]
    rows = run_cells(cells)
    assert monotone_violations(rows) == []
    assert {r["recovered"] for r in rows} == {True, False}


def test_monotone_check_catches_a_violation() -> None:
    rows = [
        {"cut": 0.4, "duration": 10.0, "interval_us": 75.0, "recovered": False},
        {"cut": 0.3, "duration": 12.0, "interval_us": 75.0, "recovered": True},
        {"cut": 0.5, "duration": 5.0, "interval_us": 75.0, "recovered": True},
    ]
    bad = monotone_violations(rows)
    assert len(bad) == 1 and "X=0.3, D=12 recovered" in bad[0]
    assert boundary(rows, "duration", "cut") == {0.3: None, 0.4: 10.0, 0.5: None}


# --- the published experiment -----------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated() -> float:
    # A coarse bisection keeps this to about ten runs; the bracket still separates the two
    # published calibration runs.
    cal = calibrate(Experiment(capacity=1.0), lo=20_000.0, hi=60_000.0, tol=1_500.0)
    assert cal.consistent, cal
    return cal.capacity


def test_calibration_points_reproduce_their_published_outcomes(calibrated: float) -> None:
    base = Experiment(capacity=calibrated)
    for point in PUBLISHED_POINTS:
        trial = run_trial(base.but(cut=point.cut, duration=point.duration, interval=point.interval))
        assert (not trial.recovered) == point.metastable, point.label


def test_phase_diagram_is_monotone(calibrated: float) -> None:
    base = Experiment(capacity=calibrated)
    cells = [base.but(cut=x, duration=d) for x in (0.3, 0.4, 0.5) for d in (5.0, 10.0, 20.0)]
    cells += [base.but(cut=0.4, duration=10.0, interval=i) for i in (60e-6, 100e-6, 120e-6)]
    rows = run_cells(cells)  # in this process: an embedded cluster costs more than 12 cells
    assert monotone_violations(rows[:9]) == []
    assert {r["recovered"] for r in rows[:9]} == {True, False}
    # Less load (a longer interval) never turns recovered into metastable.
    sweep = rows[9:]
    seen_recovered = False
    for r in sorted(sweep, key=lambda r: r["interval_us"]):
        seen_recovered = seen_recovered or r["recovered"]
        assert r["recovered"] or not seen_recovered


def test_retry_budget_and_breaker_recover_the_metastable_case(calibrated: float) -> None:
    meta = Experiment(capacity=calibrated, cut=0.40, duration=10.0)
    published = run_trial(meta)
    assert not published.recovered
    for policy in ("retry_budget", "circuit_breaker"):
        trial = run_trial(meta.but(policy=policy))
        assert trial.recovered, policy
        assert trial.succeeded > published.succeeded, policy


def test_outcomes_do_not_depend_on_the_rate_scale() -> None:
    # Far from the boundary (capacity 35 000 req/s) the simulated fraction of the real
    # rates changes nothing: waits depend on load over capacity only.
    for cut, duration in ((0.30, 20.0), (0.60, 4.0)):
        outcomes = {
            run_trial(Experiment(capacity=35_000, cut=cut, duration=duration, scale=s)).recovered
            for s in (0.0025, 0.005, 0.01)
        }
        assert len(outcomes) == 1


def test_every_policy_runs_within_its_attempt_limit() -> None:
    for name in POLICIES:
        trial = run_trial(TINY.but(policy=name, resends=2, observe=10.0))
        attempts = [r.attempt for r in trial.records if r.kind == "send"]
        assert trial.requests > 600
        assert max(attempts) <= 3
        assert trial.attempts == len(attempts) <= 3 * trial.requests


# --- outputs and the command line -------------------------------------------------------


def test_write_lab_and_cli_on_a_tiny_grid(tmp_path) -> None:
    out = tmp_path / "lab"
    result = CliRunner().invoke(
        app,
        [
            *("metastable", "--capacity", "35500", "--cuts", "0.4", "--durations", "10"),
            *("--intervals", "100", "--policies", "published", "--jobs", "1"),
            *("--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "metastable.csv",
        "metastable.md",
        "metastable_interval.png",
        "metastable_phase.png",
        "metastable_policies.png",
        "metastable_timeline.png",
    ]
    with (out / "metastable.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["study"] for r in rows] == ["published"] * 4 + ["phase", "interval", "policies"]
    assert (
        "| b) metastable, 10 s at 0.40 cores | calibration | metastable |"
        in (out / "metastable.md").read_text()
    )


def test_run_study_with_a_given_capacity_skips_calibration(tmp_path) -> None:
    study = run_study(
        Experiment(capacity=1.0),
        capacity=35_500.0,
        cuts=(0.6,),
        durations=(2.0,),
        intervals=(120e-6,),
        policies=(PUBLISHED,),
    )
    assert study["calibration"] is None
    assert study["phase"][0]["recovered"]
    paths = write_lab(study, tmp_path, timeline=False)
    assert "Given: 35,500 requests/s" in paths[1].read_text()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--service", "gamma"], "--service"),
        (["--cuts", "0.4,3"], "--cuts"),
        (["--durations", "ten"], "--durations"),
        (["--policies", "published,bogus"], "--policies"),
    ],
)
def test_cli_reports_bad_input_as_input_error(tmp_path, args: list[str], field: str) -> None:
    from harness.inputs import InputError

    result = CliRunner().invoke(app, ["metastable", *args, "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, InputError)
    assert result.exception.field == field
    assert not (tmp_path / "x").exists()
