"""`promoharness live` and its faithful speed (issue 19): refused above it before anything
is played; at it, a reduced default scenario agrees with its virtual-time twin."""

from __future__ import annotations

import pytest
from cli_driver import assert_one_line_error, run_cli

import harness.live_run


def test_live_above_its_faithful_speed_exits_2_before_playing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calibrated for real (a small estate), compared, refused: no scenario is played."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the scenario was played although --speed is above faithful")

    monkeypatch.setattr(harness.live_run, "run_live", refuse)
    # No machine is faithful at a million times real time.
    outcome = run_cli(
        "live", "weekend-private-label", "--set", "estate.stores=20", "--speed", "1000000", "-q"
    )
    line = assert_one_line_error(outcome, "--speed 1e+06", "faithful speed", "--force")
    assert "timeout" in line or "latency" in line
