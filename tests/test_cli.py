"""The command line as a user meets it: exit codes, one-line errors, no tracebacks.

The help and the passing run go through a fresh interpreter as a user's shell would; the
rest call the same entry point (``harness.cli.main``) in this process, with the same exit
code and stderr, without paying a new process's ~3 s of imports each (tests/cli_driver.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_driver import Outcome, run_cli

import harness.report.pool

GOOD = Path(__file__).parent / "runtime" / "tiny.yaml"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def no_plot_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` forks two plot workers before it reads its input; forked from this test
    process for an input that is then refused, they only warm matplotlib. The real pool
    meets refused input in tests/test_cli_errors.py."""
    monkeypatch.setattr(harness.report.pool.PlotPool, "start", lambda self: self)


def assert_clean_error(result: Outcome, *needles: str) -> None:
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_help_lists_the_jobs() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("run", "sweep", "schema", "price", "bench", "lab"):
        assert command in result.stdout


def test_schema_promotion_is_json_schema() -> None:
    result = run_cli("schema", "promotion")
    schema = json.loads(result.stdout)
    assert schema["title"] == "promoharness canonical promotion"
    assert "benefit" in schema["properties"]


@pytest.mark.parametrize(
    ("edit", "marker", "field"),
    [
        # An unknown key (a typo) is named, with its line.
        (("  products: 20", "  products: 20\n  colour: red"), "colour: red", "estate.colour"),
        # A wrong type.
        (("duration: 60", "duration: soon"), "duration: soon", "duration"),
        # A bad value deep in a promotion.
        (("percent: 10", "percent: 120"), "percent: 120", "promotions.0.benefit.percent"),
    ],
)
@pytest.mark.usefixtures("no_plot_pool")
def test_bad_scenario_exits_2_naming_file_line_field(
    tmp_path: Path, edit: tuple[str, str], marker: str, field: str
) -> None:
    text = GOOD.read_text().replace(*edit)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if marker in row)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert_clean_error(run_cli("run", str(bad), "--quiet"), f"bad.yaml:{line}:", field)


@pytest.mark.usefixtures("no_plot_pool")
def test_bad_yaml_exits_2_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nseed: [1, 2\nduration: 5\n")
    assert_clean_error(run_cli("run", str(bad)), "broken.yaml:", "not valid YAML")


@pytest.mark.usefixtures("no_plot_pool")
def test_unknown_scenario_and_bad_override(tmp_path: Path) -> None:
    assert_clean_error(run_cli("run", "no-such-scenario"), "no-such-scenario")
    assert_clean_error(run_cli("run", str(GOOD), "--set", "duration"), "--set")
    assert_clean_error(run_cli("run", str(GOOD), "--set", "duration=-5"), "duration")


def test_run_writes_the_report_and_exits_by_slo(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli(
        "run",
        str(GOOD),
        "--out",
        str(out),
        "--quiet",
        "--set",
        "slos=[{name: fast, metric: propagation.overall.t100, op: '<=', threshold: 1}]",
    )
    assert result.returncode == 0, result.stderr
    for name in ("report.html", "summary.json", "events.parquet", "junit.xml"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "sim" and summary["passed"] is True
    # The same entry point in this process (its real plot pool): exit 1 for a failed SLO.
    failing = run_cli(
        "run",
        str(GOOD),
        "--out",
        str(tmp_path / "f"),
        "--quiet",
        "--set",
        "slos=[{name: instant, metric: propagation.overall.t100, op: '<', threshold: 0.1}]",
    )
    assert failing.code == 1, failing.stderr
    assert (tmp_path / "f" / "report.html").exists()


def test_price_example_and_bad_basket(tmp_path: Path) -> None:
    result = run_cli("price", "--at", "2026-11-28T10:00:00+01:00", "--json")
    assert result.code == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["applied"]
    bad = tmp_path / "basket.json"
    bad.write_text('{"lines": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]}')
    assert_clean_error(run_cli("price", str(bad)), "basket.json:1", "lines.0.quantity")
    assert_clean_error(run_cli("price", "--at", "yesterday"), "--at")
