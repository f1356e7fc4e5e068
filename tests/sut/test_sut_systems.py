"""Systems under test, judged from their reports alone (tests/sut/outage.yaml at 10x).

- The reference orchestrator driven through its public API (examples/sut/reference.yaml)
  and the built-in `live` path agree within 10 % on propagation T95 and amplification, and
  on every rollback verdict: the driver path measures what the built-in path measures.
- The naive relay (examples/sut/naive_relay.py): its west-region rollback takes the
  promotion off endpoints outside the scope, and its fixed one-second retries through the
  east's outage give an amplification above 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
OUTAGE = Path(__file__).with_name("outage.yaml")
SPEED = "10"
# Appended to the scenario: nobody buys in a live run, so this SLO is "not measured live"
# on either path (harness/agreement.py), never a pass on the 0.
LEAK_SLO = """
slos:
  - {name: nothing leaked after the rollback, metric: leakage_value, op: "==", threshold: 0}
"""


def _live(out: Path, *extra: str) -> dict[str, Any]:
    scenario = out.parent / OUTAGE.name
    scenario.write_text(OUTAGE.read_text(encoding="utf-8") + LEAK_SLO, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "live",
            str(scenario),
            "--speed",
            SPEED,
            "-q",
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env={
            **os.environ,
            "PROMO_REFERENCE_PORT": str(_free_port()),
            "PROMO_RELAY_PORT": str(_free_port()),
        },
    )
    assert "Traceback" not in done.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    assert done.returncode == _expected(summary), done.stderr[-2000:]
    return summary


def _expected(summary: dict[str, Any]) -> int:
    """The exit code the summary calls for: 4 when a busy machine saturated the harness's
    own loops (its figures are then no verdict: harness/saturation.py), else the SLOs'
    verdict. The figures this module compares do not depend on it."""
    if summary["harness"]["saturated"]:
        assert summary["harness"]["saturations"], "saturated, but no saturation named"
        return 4
    return 0 if summary["passed"] else 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def reference_via_driver(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sut") / "reference"
    return _live(out, "--sut", "examples/sut/reference.yaml", "--estate-port", str(_free_port()))


@pytest.fixture(scope="module")
def built_in(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # The driver path runs at 10x unguarded; the built-in path at the same speed needs
    # --force, since its calibration may put this machine's faithful speed below 10x.
    # The comparison holds regardless: T95 here is the east outage (about 50 s), far
    # beyond any per-delivery overhead, and both paths pay the same stack costs.
    return _live(tmp_path_factory.mktemp("sut") / "built-in", "--force")


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sut") / "relay"
    return _live(out, "--sut", "examples/sut/naive-relay.yaml", "--estate-port", str(_free_port()))


def _within(a: float, b: float, share: float) -> bool:
    return abs(a - b) <= share * max(abs(a), abs(b))


def test_the_driver_path_agrees_with_the_built_in_path(
    reference_via_driver: dict[str, Any], built_in: dict[str, Any]
) -> None:
    a, b = reference_via_driver, built_in
    assert a["sut"] == "reference-orchestrator" and "sut" not in b
    t95 = a["propagation"]["overall"]["t95"], b["propagation"]["overall"]["t95"]
    assert None not in t95 and _within(*t95, 0.10), t95
    amp = a["retry_storm"]["amplification"], b["retry_storm"]["amplification"]
    assert None not in amp and _within(*amp, 0.10), amp
    verdicts = [
        [(r["verdict"], r["scope_endpoints"], len(r["violations"])) for r in s["rollbacks"]]
        for s in (a, b)
    ]
    assert verdicts[0] == verdicts[1] and verdicts[0], verdicts
    # Figures only the orchestrator's own records give are not measured through a driver
    # that reads no timestamps — and say so rather than reading zero.
    assert a["propagation"]["overall"]["acked_t95"] is None
    assert "propagation.*.acked_t95" in a["not_measured"]
    assert a["retry_storm"]["dead_lettered"] is None and b["retry_storm"]["dead_lettered"] == 0
    # Nobody buys on either path: the leakage SLO is no verdict, not a pass on the 0.
    for summary in (a, b):
        (slo,) = summary["slos"]
        assert (slo["status"], slo["passed"], summary["passed"]) == ("not measured", None, True)
        assert slo["reason"].startswith("not measured live: leakage_value")


def test_the_naive_relay_s_report_shows_what_is_wrong_with_it(relay: dict[str, Any]) -> None:
    (rollback,) = relay["rollbacks"]
    assert rollback["scope"] == {"channels": [], "regions": ["west"], "stores": []}
    assert rollback["verdict"] == "fail"
    outside = {
        v["endpoint"] for v in rollback["violations"] if v["property"] == "touched_outside_scope"
    }
    # East stores, the web shop, loyalty and the ERP price book: everything not in the west.
    assert {"erp", "web", "loyalty"} <= outside
    assert outside and all(not e.startswith("S") or e in _east_stores() for e in outside)
    assert relay["retry_storm"]["amplification"] > 2
    assert relay["retry_storm"]["retry_share"]["during_outage"] > 0.5
    assert relay["not_measured"]  # it has no view of its own


def _east_stores() -> set[str]:
    from harness.runtime.world import build_world
    from harness.scenario import load_scenario

    world = build_world(load_scenario(OUTAGE))
    return {m.id for m in world.delivery_models if m.region == "east"}
