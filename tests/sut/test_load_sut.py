"""``load CAMPAIGN --sut DRIVER``: Locust shoppers on the estate while the naive relay
(examples/sut) delivers the timeline of tests/sut/outage.yaml to it, judged from the
summary it writes — and a driver that is wrong, or a system that is down, stopping the
run with exit 2 before Locust starts.

The end-to-end run is 13 wall seconds of load (the 260 s scenario at 20x). Nothing here
depends on the machine's speed: the assertions are about what the figures are made of
(truth-only, not measured, Locust's own counts) and about the relay's faults as the
estate's ground truth records them; the exit code is forced by a gate on a figure the
relay's driver cannot give (acknowledged T95), which must fail as "not measured".
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_driver import run_cli

from harness.scenario import load_scenario
from harness.sut.driver import ActionResult, Believed, Step
from harness.sut.play import step_of
from loadtests.common import StepsFeed
from loadtests.oracle import Endpoint, Timeline

ROOT = Path(__file__).parents[2]
OUTAGE = Path(__file__).with_name("outage.yaml")
RELAY = ROOT / "examples" / "sut" / "naive-relay.yaml"
ORACLE_REASONS = {"stale after rollback", "not yet active", "unexpected promotion"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _campaign(tmp_path: Path) -> Path:
    campaign = {
        "name": "sut-load-smoke",
        "description": "the naive relay under 20 req/s of checked shoppers",
        "scenario": str(OUTAGE),
        "speed": 20,
        "duration": 13,  # the whole 260 s scenario
        "rate": 20,
        "users": 10,
        "grace": {"default": 30},
        "gates": [
            {"name": "shopper error rate", "metric": "load.error_rate", "op": "<=",
             "threshold": 0.01},
            {"name": "P1 reached an endpoint", "metric": "propagation.overall.applied",
             "op": ">=", "threshold": 1},
            # The relay's driver has no view: this figure is not measured, and fails.
            {"name": "acknowledged T95", "metric": "propagation.overall.acked_t95",
             "op": "<=", "threshold": 1e9},
        ],
    }  # fmt: skip
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign), encoding="utf-8")
    return path


def _load(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "load", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang guard only
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PROMO_RELAY_PORT": str(_free_port())},
    )


@pytest.fixture(scope="module")
def relay_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    if importlib.util.find_spec("locust") is None:  # never import it here: gevent patching
        pytest.skip("locust is not installed (the dev extra has it)")
    tmp = tmp_path_factory.mktemp("load-sut")
    out = tmp / "out"
    done = _load(
        str(_campaign(tmp)),
        "--sut",
        str(RELAY),
        "--estate-port",
        str(_free_port()),
        "--out",
        str(out),
    )
    assert done.returncode in (0, 1, 4), done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads((out / "summary.json").read_text()), out


def test_the_exit_code_is_the_gates_and_a_figure_not_measured_fails_its_gate(
    relay_run: tuple[int, dict[str, Any], Path],
) -> None:
    code, summary, _ = relay_run
    gates = {g["name"]: g for g in summary["slos"]}
    assert set(gates) == {"shopper error rate", "P1 reached an endpoint", "acknowledged T95"}
    assert gates["acknowledged T95"]["value"] is None and not gates["acknowledged T95"]["passed"]
    assert gates["P1 reached an endpoint"]["passed"]  # truth-only: the estate applied P1
    assert summary["passed"] is False
    # 4: the harness itself saturated on a busy machine (the estate's loop or Locust's CPU)
    assert code == (4 if summary["harness"]["saturated"] else 1)
    assert {r["component"] for r in summary["harness"]["loop_lag"]} == {"estate"}


def test_figures_come_from_the_estate_truth_and_the_view_is_not_measured(
    relay_run: tuple[int, dict[str, Any], Path],
) -> None:
    _, summary, _ = relay_run
    assert summary["sut"] == "naive-relay" and summary["mode"] == "load"
    overall = summary["propagation"]["overall"]
    # The scope rule: P1 covers pos, ecommerce and loyalty; 12 stores + the web shop +
    # loyalty + the ERP (system of record) = 15 endpoints the publish must reach.
    assert overall["targets"] == 15
    assert 1 <= overall["applied"] <= 15 and overall["t50"] is not None
    for figure in ("propagation.*.acked_t95", "propagation.*.ghosts", "propagation.*.acked"):
        assert figure in summary["not_measured"]
    assert overall["acked_t95"] is None and overall["ghosts"] is None  # never zero
    storm = summary["retry_storm"]
    assert (
        storm["dead_lettered"] is None and "retry_storm.dead_lettered" in (summary["not_measured"])
    )
    # The east is dark from 30 to 90 s and the relay retries every second: the endpoints
    # received more attempts than deliveries.
    assert storm["attempts"] > storm["deliveries"] >= 15
    # The west rollback taken off everywhere: the truth names endpoints outside the west.
    rollback = summary["rollbacks"][0]
    assert rollback["verdict"] == "fail"
    outside = {
        v["endpoint"] for v in rollback["violations"] if v["property"] == "touched_outside_scope"
    }
    assert {"erp", "web", "loyalty"} <= outside, rollback["violations"]


def test_locust_ran_shoppers_only_and_the_driver_played_the_timeline(
    relay_run: tuple[int, dict[str, Any], Path],
) -> None:
    _, summary, out = relay_run
    load = summary["load"]
    assert load["campaign"] == "sut-load-smoke"
    assert load["requests"] > 0 and load["p50_ms"] is not None and load["p95_ms"] is not None
    names = {e["name"] for e in json.loads((out / "locust.json").read_text())}
    assert names and all(n.startswith(("price ", "checkout ")) for n in names), names
    assert load["operator"] == "driver" and load["operator_steps"] == 6
    assert load["operator_refused"] == 0 and load["refused"] == []
    assert load["callbacks"] >= 1  # the web shop acknowledges the relay by webhook
    assert "expected targets" in load["oracle"]
    assert set(load["failures_by_reason"]) <= ORACLE_REASONS  # no HTTP error, no bad body
    steps = [json.loads(x) for x in (out / "sut-steps.jsonl").read_text().splitlines()]
    assert [s["i"] for s in steps if "sent" in s] == list(range(6))
    assert all(s["ok"] for s in steps if "ok" in s)
    assert (out / "report.html").exists() and (out / "load_rps.png").exists()


# --- exit 2 before Locust starts -------------------------------------------------------------
# These call the real entry point in this process (tests/cli_driver.py: the exit code and
# what a user reads), not a fresh interpreter: the refusal comes before anything that
# would need one, and each subprocess cost ~3.5 s of CPU in imports alone.

BAD = """\
name: tiny-system
base_url: http://127.0.0.1:{port}
health: /healthz
timeout: 2
actions:
  create: {{url: /promotions}}
  submit: skip
  validate: skip
  aprove: skip
  publish: {{url: "/promotions/{{promo}}/publish"}}
  rollback: {{url: "/promotions/{{promo}}/rollback"}}
"""


def _no_locust(out: Path) -> bool:
    return not (out / "locust.json").exists() and not (out / "locust-config.json").exists()


def test_a_bad_driver_is_exit_2_naming_file_line_and_field(tmp_path: Path) -> None:
    driver = tmp_path / "driver.yaml"
    driver.write_text(BAD.format(port=9), encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli("load", str(_campaign(tmp_path)), "--sut", str(driver), "--out", str(out))
    assert done.code == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    line = 1 + BAD.splitlines().index("  aprove: skip")
    assert f"{driver}:{line}: actions.aprove: unknown action" in done.stdout + done.stderr
    assert _no_locust(out)


def test_a_system_that_is_down_is_exit_2_before_locust(tmp_path: Path) -> None:
    port = _free_port()  # closed: nothing listens
    driver = tmp_path / "driver.yaml"
    driver.write_text(BAD.format(port=port).replace("aprove", "approve"), encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli(
        "load",
        str(_campaign(tmp_path)),
        "--sut",
        str(driver),
        "--estate-port",
        str(_free_port()),
        "--out",
        str(out),
    )
    text = done.stdout + done.stderr
    assert done.code == 2, text
    assert f"system under test unreachable at http://127.0.0.1:{port}/healthz" in text
    assert "Traceback" not in text and _no_locust(out)


def test_sut_and_host_together_are_exit_2(tmp_path: Path) -> None:
    done = run_cli("load", str(_campaign(tmp_path)), "--sut", str(RELAY), "--host", "http://x:1")
    assert done.code == 2 and "--host" in done.stdout + done.stderr, done.stderr


# --- the oracle follows the steps as the system took them --------------------------------------


class _Fake:
    """A driver refusing rollbacks; it looks at the feed while the system is being told."""

    name = "fake"
    base_url = "http://127.0.0.1:9"

    def __init__(self, feed: StepsFeed) -> None:
        self.feed = feed
        self.known_while_acting: list[bool] = []

    def callbacks(self) -> dict[str, tuple[str, dict[str, str]]]:
        return {}

    async def start(self, estate_url: str, run: Any) -> None:
        return None

    def supports(self, action: str) -> bool:
        return True

    async def act(self, step: Step) -> ActionResult:
        before = len(self.feed.timeline.sent)
        self.feed.refresh(force=True)
        self.known_while_acting.append(len(self.feed.timeline.sent) == before + 1)
        return ActionResult(step.action != "rollback", 409 if step.action == "rollback" else 202)

    async def view(self, promo: str) -> list[Believed] | None:
        return None

    async def close(self) -> None:
        return None


def test_the_oracle_knows_a_step_before_the_system_does_and_drops_a_refused_one(
    tmp_path: Path,
) -> None:
    import asyncio

    from harness.load.sut import StepLog

    scenario = load_scenario(OUTAGE)
    steps = sorted(scenario.timeline, key=lambda s: s.at)
    timeline = Timeline(
        {p.id: p for p in scenario.promotions},
        [s.model_dump(mode="json") for s in steps],
        grace=30,
        track_sends=True,
    )
    path = tmp_path / "steps.jsonl"
    path.write_text("", encoding="utf-8")
    feed = StepsFeed(path, timeline)
    fake = _Fake(feed)
    clock = iter(float(s.at) + 0.5 for s in steps)  # each step goes half a second late
    log = StepLog(fake, path, lambda: next(clock))  # type: ignore[arg-type]

    async def play() -> None:
        for spec in steps:
            await log.act(step_of(spec, scenario))

    asyncio.run(play())
    feed.refresh(force=True)
    assert fake.known_while_acting == [True] * len(steps)
    assert timeline.sent == {i: s.at + 0.5 for i, s in enumerate(steps)}
    rollback = next(i for i, s in enumerate(steps) if s.action == "rollback")
    assert timeline.refused == {rollback}
    west = Endpoint("S0002", "pos", "west", "America/Los_Angeles")
    # Published at 40.5, grace 30: in flight until 70.5, then it must be live; the refused
    # rollback (160.5) changes nothing, so it must still be live at the end.
    assert timeline.allowed("P1", west, 60)[0] == {False, True}
    assert timeline.allowed("P1", west, 100)[0] == {True}
    assert timeline.allowed("P1", west, 250)[0] == {True}


def test_a_half_written_line_waits_for_the_next_read(tmp_path: Path) -> None:
    timeline = Timeline({}, [{"at": 0, "action": "create"}], track_sends=True)
    path = tmp_path / "steps.jsonl"
    path.write_text('{"i": 0, "sent": 1.5}\n{"i": 0, "o', encoding="utf-8")
    feed = StepsFeed(path, timeline)
    assert feed.refresh(force=True) and timeline.sent == {0: 1.5}
    assert not feed.refresh(force=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('k": false}\n')
    assert feed.refresh(force=True) and timeline.refused == {0}
