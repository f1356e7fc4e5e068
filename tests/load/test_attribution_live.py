"""Wrong prices attributed on real load runs (ci-smoke, loopback): a web shop taken
offline over the publish by a modelled outage gives wrong prices the model explains; an
estate whose event loop the harness itself holds (the PROMOHARNESS_TEST_BLOCK_LOOP hook)
gives wrong prices it does not. Nothing here times the machine: the outage covers the
whole run, and the hold spans the rollback for any stack start-up from 1 to 14 s."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.load.attribution import HARNESS, MODELLED
from harness.load.campaign import load_campaign
from harness.metrics.keys import undocumented
from harness.selfwatch import BLOCK_ENV

ROOT = Path(__file__).resolve().parents[2]
# The web shop offline from before the publish (600) to long after the run (25 s at 100x).
WEB_DOWN = "faults=[{kind: endpoint_offline, endpoints: [web], start: 500, end: 9000}]"


# Each test is a load run of its own, sharing nothing: one per free worker.
SPREAD_OVER_WORKERS = True


def _load(tmp_path: Path, campaign: str, *args: str, env: dict[str, str] | None = None) -> tuple:
    if importlib.util.find_spec("locust") is None:  # never import it here: gevent patching
        pytest.skip("locust is not installed")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness.load.cli", "load", campaign, "--out", str(out), *args]
    # generous: a hang guard (a run takes ~35 s idle, ~80 s with both cores busy)
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    assert (out / "summary.json").exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.returncode, json.loads((out / "summary.json").read_text()), out


def _samples_at(out: Path, endpoint: str) -> int:
    with (out / "locust_failures.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return sum(int(r["Occurrences"]) for r in rows if f" @ {endpoint} t=" in r["Error"])


def _untimed(tmp_path: Path) -> str:
    """ci-smoke with a publish grace of 600 s (6 s wall): the stores a busy machine makes
    late stay inside it, the web shop offline from 500 on does not."""
    data = {**load_campaign("ci-smoke").model_dump(mode="json"), "grace": 600}
    path = tmp_path / "ci-smoke-grace.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_an_outage_over_the_publish_explains_the_web_shops_wrong_prices(tmp_path: Path) -> None:
    code, summary, out = _load(tmp_path, _untimed(tmp_path), "--set", WEB_DOWN)
    blame = summary["load"]["stale_attribution"]
    web = _samples_at(out, "web")
    assert web > 0, summary["load"]["failures_by_reason"]  # prices from 1200 on are wrong
    # each one explained by the outage (other endpoints may add theirs, never take away)
    assert blame["by_cause"].get("outage", 0) >= web, blame
    rows = [r for r in blame["worst"] if r["endpoint"] == "web"]
    assert all(r["unexplained"] == 0 and r["causes"].startswith("outage") for r in rows), rows
    assert blame["samples"] == summary["load"]["stale_prices"]  # every one attributed
    assert code in (1, 4)  # the stale-price gate fails (4: the machine saturated the harness)
    assert [k for k in undocumented(summary) if k.startswith("load")] == []
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "wrong prices explained by the model" in page


# Slow, and not in CI: whether the holds leave a wrong price depends on where they fall
# against the timeline, and since t=0 is taken when the stack serves (not when its sampler
# starts) that varies with the start-up: a clean-clone CI run had holds and no wrong price
# at all (exit 4, 0 samples). The attribution's "unexplained" rules are proved on
# hand-built logs in test_attribution.py; this end-to-end proof runs under -m slow.
@pytest.mark.slow
def test_an_estate_loop_held_by_the_harness_leaves_wrong_prices_unexplained(
    tmp_path: Path,
) -> None:
    # 60 s of ci-smoke at 100x; the estate's loop held for 20 s from 6 s after its sampler
    # started, and again 6 s after each hold. t=0 is when the stack serves, s = 0.5-14 s
    # after its sampler starts: holds span t = [6 - s, 26 - s] and [32 - s, 52 - s], so
    # one of them covers the rollback (15 s) or its 3 s deadline while Locust still runs:
    # shoppers' requests queued before the revokes are answered first, with the
    # rolled-back promotion.
    code, summary, _ = _load(
        tmp_path, "ci-smoke", "--duration", "60", env={BLOCK_ENV: "estate:20:6"}
    )
    blame = summary["load"]["stale_attribution"]
    assert code == 4 and summary["harness"]["saturated"]  # the hold, seen by the self-watch
    assert blame["unexplained"] > 0, blame
    assert blame["samples"] == summary["load"]["stale_prices"]  # every one attributed
    unexplained = {c for c, n in blame["by_cause"].items() if c not in MODELLED and n}
    assert unexplained <= set(HARNESS)
    # What the held loop did: deliveries it received late or not before the answer, or
    # (the orchestrator serves on the same loop as the estate in one process) a change
    # it had not yet sent when the shopper asked.
    assert unexplained & {"sent, received late", "sent, not received in time", "not sent"}, blame
