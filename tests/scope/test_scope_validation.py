"""A scenario whose timeline names a place its estate lacks fails at load time (exit 2),
naming file, line and field — before anything is simulated."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_driver import run_cli

import harness.report.pool
from harness.inputs import InputError
from harness.scenario import load_scenario

TINY = Path(__file__).parents[1] / "runtime" / "tiny.yaml"


def _with_rollback_scope(tmp_path: Path, scope: str) -> Path:
    text = TINY.read_text(encoding="utf-8")
    old = "scope: {stores: [S0002]}"
    assert old in text
    path = tmp_path / "tiny-scope.yaml"
    path.write_text(text.replace(old, f"scope: {scope}"), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


@pytest.mark.parametrize(
    ("scope", "field", "name"),
    [
        ("{regions: [Atlantis]}", "timeline.5.scope.regions.0", "Atlantis"),
        ("{regions: [east, west]}", "timeline.5.scope.regions.1", "west"),
        ("{stores: [S0001, S0003]}", "timeline.5.scope.stores.1", "S0003"),
    ],
)
def test_unknown_places_name_file_line_and_field(
    tmp_path: Path, scope: str, field: str, name: str
) -> None:
    path = _with_rollback_scope(tmp_path, scope)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    err = caught.value
    assert err.path == str(path)
    assert err.line == _line_of(path, "action: rollback")
    assert err.field == field
    assert repr(name) in err.reason


def test_known_places_load(tmp_path: Path) -> None:
    path = _with_rollback_scope(tmp_path, "{channels: [pos, ecommerce], regions: [east]}")
    assert load_scenario(path).timeline[5].scope.regions == ["east"]


def test_an_override_that_shrinks_the_estate_is_checked_too() -> None:
    with pytest.raises(InputError, match="S0002"):
        load_scenario(TINY, ["estate.stores=1"])


def test_the_cli_exits_2_before_simulating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _with_rollback_scope(tmp_path, "{regions: [Atlantis]}")
    out = tmp_path / "report"
    # In this process (the real entry point, its exit code and stderr), without the two
    # plot workers `run` forks before reading its input (tests/test_cli_errors.py refuses
    # bad input with the real pool); a refusal needs no fresh interpreter.
    monkeypatch.setattr(harness.report.pool.PlotPool, "start", lambda self: self)
    done = run_cli("run", str(path), "--out", str(out))
    assert done.code == 2
    assert "Traceback" not in done.stderr
    assert "Atlantis" in done.stderr and "timeline.5.scope.regions.0" in done.stderr
    assert not out.exists()
