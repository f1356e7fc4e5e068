"""Tests for the summary.json contract (harness.metrics.summary) and the plot series."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.domain.eventlog import Record
from harness.metrics import SLO, read_events, series, summarise, summary_json, write_events
from harness.metrics.summary import to_plain

DESIGN_KEYS = {
    "scenario",
    "seed",
    "mode",
    "propagation",
    "retry_storm",
    "rollbacks",
    "price_consistency",
    "leakage_value",
    "funding",
    "slos",
    "passed",
}


def run_log() -> list[Record]:
    """Three stores and a web shop: P published at 0, rolled back at 20 on s1 and s2."""
    log = [
        Record(0.0, "endpoint", endpoint=f"s{i}", channel="pos", region="east", value=2.0)
        for i in (1, 2, 3)
    ]
    log.append(Record(0.0, "endpoint", endpoint="web", channel="ecommerce", value=10.0))
    log.append(Record(0.0, "publish", promo="P", version=1, detail='{"channels": ["pos"]}'))
    for e, ch in (("s1", "pos"), ("s2", "pos"), ("s3", "pos"), ("web", "ecommerce")):
        log.append(
            Record(0.0, "target", promo="P", version=1, endpoint=e, channel=ch, outcome="apply")
        )
    for e, t in (("s1", 1.0), ("s2", 2.0), ("s3", 3.0), ("web", 1.0 / 3.0)):
        log.append(
            Record(t - 0.5, "send", promo="P", version=1, endpoint=e, attempt=1, outcome="apply")
        )
        log.append(Record(t, "applied", promo="P", version=1, endpoint=e))
        log.append(Record(t + 0.1, "ack", promo="P", version=1, endpoint=e))
    log.append(Record(0.7, "send", promo="P", version=1, endpoint="s1", attempt=2, outcome="apply"))
    log.append(
        Record(
            20.0, "rollback", promo="P", version=1, value=10.0, detail='{"stores": ["s1", "s2"]}'
        )
    )
    for e in ("s1", "s2"):
        log.append(Record(20.0, "target", promo="P", version=1, endpoint=e, outcome="revoke"))
        log.append(Record(25.0, "removed", promo="P", version=1, endpoint=e))
    log.append(Record(22.0, "discount", promo="P", endpoint="s1", value=1.5, detail="sale-9"))
    log.append(Record(5.0, "discount", promo="P", endpoint="s3", value=2.0, detail="sale-3"))
    log.append(Record(30.0, "quote", endpoint="s3", value=9.99, detail="sku1@1"))
    log.append(Record(30.0, "quote", endpoint="web", value=9.49, detail="sku1@1"))
    return log


def test_keys_exactly_as_design() -> None:
    s = summarise(run_log(), scenario="flash", seed=7, mode="sim")
    assert set(s) == DESIGN_KEYS
    for block in (s["propagation"]["overall"], *s["propagation"]["by_channel"].values()):
        assert {"t50", "t95", "t99", "t100", "acked_t95", "ghosts"} <= set(block)
    assert {"amplification", "peak_attempt_rate_over_capacity", "dead_lettered"} <= set(
        s["retry_storm"]
    )
    assert {"promo", "scope", "verdict", "violations", "leakage_value"} <= set(s["rollbacks"][0])
    assert {"mismatch_rate", "spread_value", "samples"} <= set(s["price_consistency"])
    assert (s["scenario"], s["seed"], s["mode"]) == ("flash", 7, "sim")


def test_figures() -> None:
    s = summarise(run_log(), scenario="flash", seed=7, mode="sim", budgets={"P": 3.0})
    o = s["propagation"]["overall"]
    # Latencies 1/3, 1, 2, 3 -> T50 = 1, T100 = 3; floats rounded to 6 decimals.
    assert (o["t50"], o["t100"]) == (1.0, 3.0)
    assert s["propagation"]["by_channel"]["ecommerce"]["t100"] == 0.333333
    # 5 sends over 4 deliveries.
    assert s["retry_storm"]["amplification"] == 1.25
    # s1: sends at 0.5 and 0.7 in window [0, 1) over capacity 2 -> 1.0.
    assert s["retry_storm"]["peak_attempt_rate_over_capacity"] == 1.0
    assert s["rollbacks"][0]["verdict"] == "pass"
    assert s["rollbacks"][0]["scope"] == {"stores": ["s1", "s2"]}
    assert s["leakage_value"] == 1.5
    assert s["price_consistency"]["mismatch_rate"] == 1.0
    assert s["price_consistency"]["spread_value"] == 0.5
    assert s["funding"]["P"]["overrun"] == 0.5
    assert s["slos"] == [] and s["passed"] is True


def test_slos_in_summary() -> None:
    slos = [
        SLO("fast", "propagation.overall.t95", "<=", 3.0),
        SLO("rollback ok", "rollbacks.0.verdict", "==", "pass"),
        SLO("missing", "propagation.overall.t42", "<", 1.0),
    ]
    s = summarise(run_log(), scenario="flash", seed=7, mode="live", slos=slos)
    assert [r["passed"] for r in s["slos"]] == [True, True, False]
    assert s["slos"][2]["value"] is None
    assert s["passed"] is False
    s2 = summarise(run_log(), scenario="flash", seed=7, mode="live", slos=slos[:2])
    assert s2["passed"] is True


def test_json_identical_for_identical_logs(tmp_path) -> None:
    slos = [SLO("fast", "propagation.overall.t95", "<=", 3.0)]
    kw = {"scenario": "flash", "seed": 7, "mode": "sim", "slos": slos, "budgets": {"P": 3.0}}
    first = summary_json(summarise(run_log(), **kw))
    second = summary_json(summarise(run_log(), **kw))
    assert first == second
    assert json.loads(first) == summarise(run_log(), **kw)
    # The same log read back from Parquet and CSV gives the same bytes.
    for name in ("events.parquet", "events.csv"):
        path = write_events(run_log(), tmp_path / name)
        assert summary_json(summarise(read_events(path), **kw)) == first


def test_empty_log() -> None:
    s = summarise([], scenario="empty", seed=0, mode="load")
    assert set(s) == DESIGN_KEYS
    assert s["propagation"]["overall"]["t50"] is None
    assert s["rollbacks"] == [] and s["leakage_value"] == 0.0 and s["passed"] is True
    json.dumps(s, allow_nan=False)


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        summarise([], scenario="x", seed=0, mode="prod")


def test_to_plain() -> None:
    out = to_plain({"a": np.float64(1 / 3), "b": np.int64(2), "c": [np.nan, -0.0, np.bool_(True)]})
    assert out == {"a": 0.333333, "b": 2, "c": [None, 0.0, True]}
    assert type(out["b"]) is int
    assert json.dumps(out["c"]) == "[null, 0.0, true]"


def test_series() -> None:
    out = series(run_log())
    assert set(out) == {"coverage", "attempts", "rollback_timeline"}
    assert list(out["coverage"].columns) == ["t", "channel", "coverage"]
    assert {"t", "channel", "attempts"} <= set(out["attempts"].columns)
    assert out["attempts"]["attempts"].sum() == 5
    tl = out["rollback_timeline"]
    assert list(tl["active"]) == [2, 1, 0]
