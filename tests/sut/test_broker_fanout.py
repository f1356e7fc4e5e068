"""The broker fan-out (examples/sut/broker_fanout, Redis Streams) as a system under test,
run through its driver by ``promoharness live --sut`` and judged from what the run writes:
the summary, and the estate's ground truth in events.parquet.

- the outage scenario: every endpoint in the publish's scope ends applied, the west-only
  rollback passes its verdict (summary alone);
- a consumer SIGKILLed mid-publish (the ``--crash-after pos:3`` hook): another consumer
  claims its pending events, and every endpoint ends with the promotion applied exactly
  once; the endpoints the dead consumer had processed never get it again;
- a one-attempt budget dead-letters the stores in outage, and the operator's replay
  brings each of them the promotion once.

Needs Debian's redis-server (``.ci/run`` installs it); the system starts and stops its own
on a free loopback port. Runs at speed 10: each run takes its scenario's 14-24 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.scope import covers

ROOT = Path(__file__).parents[2]
# By its path: examples/ is no installed package (plain ``pytest`` has no cwd on sys.path).
_spec = importlib.util.spec_from_file_location(
    "broker_fanout_scope", ROOT / "examples" / "sut" / "broker_fanout" / "scope.py"
)
assert _spec is not None and _spec.loader is not None
bf_scope = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf_scope)
DRIVER = ROOT / "examples" / "sut" / "broker-fanout.yaml"
OUTAGE = Path(__file__).with_name("outage.yaml")
BROKER = Path(__file__).with_name("broker.yaml")
SPEED = "10"

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (Debian package redis-server; .ci/run installs it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _live(scenario: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``promoharness live SCENARIO --sut broker-fanout.yaml``; bounded only against hangs."""
    argv = [sys.executable, "-m", "harness.cli", "live", str(scenario), "--sut", str(DRIVER)]
    argv += ["--speed", SPEED, "--estate-port", str(_free_port()), "--out", str(out), "-q"]
    environ = {**os.environ, "PROMO_BROKER_PORT": str(_free_port()), **env}
    done = subprocess.run(
        argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    assert (out / "summary.json").exists(), done.stdout + done.stderr
    return done


def _clean(out: Path) -> int:
    """A passing run's exit code: 0, or 4 when a busy machine saturated the harness's own
    estate loop (then the run is no verdict: harness/saturation.py)."""
    summary = json.loads((out / "summary.json").read_text())
    return 4 if summary["harness"]["saturated"] else 0


def _truth(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "events.parquet")


def _stats(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "broker-fanout" / "stats.json").read_text()))


@needs_redis
def test_outage_run_applies_everywhere_and_rolls_back_the_west_only(tmp_path: Path) -> None:
    done = _live(OUTAGE, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert done.returncode == _clean(tmp_path), done.stdout + done.stderr
    assert summary["sut"] == "broker-fanout" and summary["passed"] is True
    overall = summary["propagation"]["overall"]
    # 12 stores, the web shop, loyalty (the promotion's channels) and the ERP price book.
    assert overall["targets"] == 15 and overall["applied"] == 15
    (rollback,) = summary["rollbacks"]
    assert rollback["scope"]["regions"] == ["west"] and rollback["scope_endpoints"] == 6
    assert rollback["verdict"] == "pass" and rollback["violations"] == []
    assert summary["retry_storm"]["double_applied"]["count"] == 0
    # Its own view is read, with times: acked T95 is measured; what it believes acked
    # matches the truth, no ghosts.
    assert overall["acked_t95"] is not None
    assert not any("acked_t95" in k for k in summary["not_measured"])
    assert overall["ghosts"]["applied_not_acked"] == 0
    assert overall["ghosts"]["acked_not_applied"] == 0


@needs_redis
def test_a_consumer_killed_mid_publish_is_taken_over_and_nothing_applies_twice(
    tmp_path: Path,
) -> None:
    done = _live(BROKER, tmp_path, PROMO_BROKER_CRASH_AFTER="pos:3")
    crash = json.loads((tmp_path / "broker-fanout" / "crash.json").read_text())
    truth = _truth(tmp_path)
    targets = set(truth.loc[truth["kind"] == "target", "endpoint"])
    applied = truth[truth["kind"] == "applied"]
    assert done.returncode == _clean(tmp_path), done.stdout + done.stderr
    # Exactly once, everywhere: one "applied" record per endpoint, of version 1, none removed.
    assert applied.groupby("endpoint").size().to_dict() == dict.fromkeys(targets, 1)
    assert set(applied["version"]) == {1}
    assert (truth["kind"] == "removed").sum() == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["retry_storm"]["double_applied"]["count"] == 0
    # The dead consumer's processed-set held: an endpoint it had delivered to before dying
    # got no second successful delivery from the consumer that took over.
    pos = set(truth.loc[(truth["kind"] == "target") & (truth["channel"] == "pos"), "endpoint"])
    processed = sorted(set(crash["done"]) & pos)
    assert crash["channel"] == "pos" and len(processed) >= 3
    received = truth[(truth["kind"] == "received") & truth["outcome"].isin(["ok", "accepted"])]
    taken = received.groupby("endpoint").size()
    assert {e: int(taken.get(e, 0)) for e in processed} == dict.fromkeys(processed, 1)
    # Another consumer claimed the pending events and skipped what was processed (in the
    # pos event at least); at the end no event is pending with anyone.
    counters = _stats(tmp_path)["counters"]
    others = {k.split(":")[0] for k in counters} - {crash["consumer"]}
    assert any(counters.get(f"{c}:claimed", 0) >= 1 for c in others), counters
    skipped = sum(counters.get(f"{c}:skipped_done", 0) for c in others)
    assert skipped >= len(processed), counters
    pending = _stats(tmp_path)["pending"]
    assert all(n == 0 for group in pending.values() for n in group.values()), pending


@needs_redis
def test_dead_letters_are_replayed_once_each(tmp_path: Path) -> None:
    done = _live(BROKER, tmp_path, PROMO_BROKER_MAX_ATTEMPTS="1")
    truth = _truth(tmp_path)
    assert done.returncode == _clean(tmp_path), done.stdout + done.stderr
    replay_at = float(truth.loc[truth["kind"] == "replay", "t"].iloc[0])
    received = truth[truth["kind"] == "received"].sort_values("t")
    first = received.groupby("endpoint").first()
    # Stores whose one attempt met the outage: dead-lettered, not retried, then replayed.
    refused = set(first.index[first["outcome"] == "unavailable"])
    assert refused and refused <= set(truth.loc[truth["kind"] == "outage", "endpoint"])
    before = received[received["t"] < replay_at].groupby("endpoint").size()
    assert {e: int(before[e]) for e in refused} == dict.fromkeys(refused, 1)
    applied = truth[truth["kind"] == "applied"]
    targets = set(truth.loc[truth["kind"] == "target", "endpoint"])
    assert applied.groupby("endpoint").size().to_dict() == dict.fromkeys(targets, 1)
    late = applied[applied["endpoint"].isin(refused)]
    assert (late["t"] >= replay_at).all()
    stats = _stats(tmp_path)
    assert stats["counters"]["dead"] == len(refused) and stats["dead"] == 0  # replayed: gone


_names = st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True)
_scopes = st.fixed_dictionaries(
    {
        "channels": st.lists(
            st.sampled_from(["erp", "pos", "ecommerce", "loyalty"]), max_size=2, unique=True
        ),
        "regions": _names,
        "stores": _names,
    }
)


class _Scope:
    def __init__(self, d: dict[str, list[str]]) -> None:
        self.channels, self.regions, self.stores = d["channels"], d["regions"], d["stores"]


@settings(deadline=None)  # a busy CI machine must not fail a pure check
@given(
    _scopes,
    st.sampled_from(["erp", "pos", "ecommerce", "loyalty", "marketplace"]),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
)
def test_its_scope_rules_are_the_documented_ones(
    scope: dict[str, list[str]], channel: str, region: str, store: str, publish: bool
) -> None:
    """The system states docs/scope.md itself (it imports nothing of harness/): on any
    scope and endpoint it must decide as harness.domain.scope does."""
    place = (region, store) if channel == "pos" else (None, None)
    assert bf_scope.covers(scope, channel, *place, publish=publish) == covers(
        _Scope(scope), channel, *place, publish=publish
    )
