"""A campaign gate marked ``expect: fail`` carries its modelled reason: the campaign must
give one (``because``), the gate's result carries it, and the exit code stays the verdict's
(1 when it fails, as for a scenario whose documented outcome is a failing SLO)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from harness.load.campaign import expectations, gates_of, load_campaign, resolve_scenario

ROOT = Path(__file__).resolve().parents[2]
GATE = {"name": "stale", "metric": "load.stale_price_rate", "op": "<=", "threshold": 0.001}


def _campaign(tmp_path: Path, **extra: object) -> Path:
    data = {"name": "c", "scenario": "regional-outage-rollback", "scenario_slos": False, **extra}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_expected_failures_carry_their_reason_in_gate_order(tmp_path: Path) -> None:
    gates = [GATE, {**GATE, "name": "p95", "metric": "load.p95_ms", "expect": "fail"}]
    path = _campaign(tmp_path, gates=gates, because={"p95": "stores modelled slow"})
    campaign = load_campaign(path)
    scenario = resolve_scenario(campaign)
    assert [g["name"] for g in gates_of(campaign, scenario)] == ["stale", "p95"]
    assert expectations(campaign, scenario) == [("pass", ""), ("fail", "stores modelled slow")]


def test_a_gate_expected_to_fail_without_a_reason_is_refused(tmp_path: Path) -> None:
    for extra in (
        {"gates": [{**GATE, "expect": "fail"}]},  # no reason
        {"gates": [GATE], "because": {"stale": "x"}},  # a reason for a gate expected to pass
    ):
        path = _campaign(tmp_path, **extra)
        cmd = [sys.executable, "-m", "harness.load.cli", "load", str(path), "--out", "x"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert "c.yaml" in proc.stderr and "because" in proc.stderr
        assert "Traceback" not in proc.stderr
