"""`promoharness live` without --speed runs at the faithful speed it calibrated, and says
so; an explicit --speed keeps its meaning (refused above the faithful speed). The
calibration's costs are given (``harness.live_calibrate.measure``, the seam its own
staging test uses), so the speeds here are hand-derived, whatever the machine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from cli_driver import assert_one_line_error, run_cli

import harness.cli.live
import harness.live_calibrate
import harness.live_run
from harness.cli.live import chosen_speed, speed_line
from harness.faithful import Faithful, Overhead

SMALL = ("weekend-private-label", "--set", "estate.stores=4", "-q")
# The smallest modelled round trip of the default scenario: healthy-pos, lognormal
# (median 0.08 s, sigma 0.4) plus its link's 0.02 s each way (tests/runtime/test_faithful).
ROUND_TRIP = 0.08 * math.exp(0.4**2 / 2) + 2 * 0.02
COST = 0.001  # wall s per delivery, alone: 10 % of 0.1267 s / 1 ms = 12.67x (under 16x)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[Any]]:
    """Calibration twins that measure ``COST``; a run that records its speed and stops.
    In a folder of its own: a run without --out makes its reports/ folder where it runs
    (it left empty ones in the repository's reports/)."""
    monkeypatch.chdir(tmp_path)
    seen: dict[str, list[Any]] = {"twins": [], "played": []}

    async def measure(*_args: object, speed: float, **_kwargs: object) -> Overhead:
        seen["twins"].append(speed)
        return Overhead(isolated=COST, at_concurrency=COST, speed=speed)

    def run_live(*_args: object, speed: float, **_kwargs: object) -> None:
        seen["played"].append(speed)
        raise SystemExit(7)

    monkeypatch.setattr(harness.live_calibrate, "measure", measure)
    monkeypatch.setattr(harness.live_run, "run_live", run_live)
    return seen


def test_no_speed_runs_at_the_faithful_speed_and_says_why(stack: dict[str, list[Any]]) -> None:
    outcome = run_cli("live", *SMALL)
    assert outcome.code == 7, outcome.stderr
    faithful = 0.10 * ROUND_TRIP / COST
    assert stack["twins"]  # calibrated for real, at its twins' speeds (12.67x: under 16x)
    assert stack["played"] == [pytest.approx(faithful, rel=1e-9)]
    assert f"speed {faithful:.3g}x: the faithful speed on this machine" in outcome.stdout
    assert "no --speed given" in outcome.stdout
    # The scenario's 4 hours at 12.7x: 19 minutes of wall clock.
    assert f"{4 * 3600 / faithful / 60:.0f} min of wall clock" in outcome.stdout


def test_an_explicit_speed_under_the_faithful_one_is_kept(stack: dict[str, list[Any]]) -> None:
    outcome = run_cli("live", *SMALL, "--speed", "12")
    assert outcome.code == 7, outcome.stderr
    assert stack["played"] == [12.0]
    assert "no --speed given" not in outcome.stdout


def test_an_explicit_speed_above_it_is_refused_before_playing(
    stack: dict[str, list[Any]],
) -> None:
    outcome = run_cli("live", *SMALL, "--speed", "13")
    assert_one_line_error(outcome, "--speed 13", "faithful speed 12.7x", "--force")
    assert stack["played"] == []
    forced = run_cli("live", *SMALL, "--speed", "13", "--force")
    assert forced.code == 7 and stack["played"] == [13.0]


def test_with_sut_the_default_is_real_time_and_nothing_is_calibrated(
    stack: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    speeds: list[float] = []

    def live_sut(*_args: object, speed: float, **_kwargs: object) -> None:
        speeds.append(speed)

    monkeypatch.setattr(harness.cli.live, "_live_sut", live_sut)
    outcome = run_cli("live", *SMALL, "--sut", "driver.yaml")
    assert outcome.code == 0, outcome.stderr
    assert speeds == [1.0] and stack["twins"] == []
    assert "speed 1x (real time; the default with --sut" in outcome.stdout
    run_cli("live", *SMALL, "--sut", "driver.yaml", "--speed", "20")
    assert speeds == [1.0, 20.0]


def test_chosen_speed_is_finite() -> None:
    unlimited = Faithful(math.inf, None, 0.0)
    assert chosen_speed(unlimited, Overhead(0.0, 0.0, speed=32.0)) == 32.0
    assert chosen_speed(Faithful(21.5, None, 0.001), Overhead(0.001, 0.001)) == 21.5
    assert speed_line(16.0, 14400).endswith("4.0 h of scenario in about 15 min of wall clock")
