"""Tests for the run report (harness.report): files written, self-contained HTML, plots,
atomic writes. Event logs are built by hand here; nothing runs the orchestrator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from harness.domain.eventlog import Record
from harness.metrics import read_events, summarise, to_frame
from harness.report import html as html_mod
from harness.report import plots, write_report
from harness.report.html import render_html
from harness.report.write import atomic_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
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
SLOS = [
    {
        "name": "T95 under a minute",
        "metric": "propagation.overall.t95",
        "op": "<=",
        "threshold": 60,
    },
    {"name": "no dead letters", "metric": "retry_storm.dead_lettered", "op": "==", "threshold": 0},
    {"name": "rollback clean", "metric": "rollbacks.0.verdict", "op": "==", "threshold": "pass"},
]
PLOT_FILES = {f"{name}.png" for name in plots.PLOTS}
ALL_FILES = {"summary.json", "events.parquet", "junit.xml", "report.html"} | PLOT_FILES


def small_log() -> list[Record]:
    """Stores s1, s2 (east) and s3 (west), a web shop and loyalty. P published at 10; s3 is
    in a west-wide outage, retried and dead-lettered; web applies but its ack is lost; P is
    rolled back at 100 on s1, s2 and web (s2 removed late, web resurrected)."""
    P = "P"
    log = [
        Record(0.0, "endpoint", endpoint="s1", channel="pos", region="east", value=5.0),
        Record(0.0, "endpoint", endpoint="s2", channel="pos", region="east", value=5.0),
        Record(0.0, "endpoint", endpoint="s3", channel="pos", region="west", value=2.0),
        Record(0.0, "endpoint", endpoint="web", channel="ecommerce", value=50.0),
        Record(0.0, "endpoint", endpoint="loy", channel="loyalty", value=20.0),
        Record(0.0, "create", promo=P, version=1),
        Record(10.0, "publish", promo=P, version=1, detail='{"channels": []}'),
        Record(11.0, "outage", channel="pos", region="west", value=30.0, detail="link down"),
    ]
    where = {"s1": ("pos", "east"), "s2": ("pos", "east"), "s3": ("pos", "west")}
    where |= {"web": ("ecommerce", ""), "loy": ("loyalty", "")}
    for e, (ch, rg) in where.items():
        log.append(Record(10.0, "target", P, 1, e, ch, rg, outcome="apply"))
    for e, lat in (("s1", 1.5), ("s2", 4.0), ("web", 0.4), ("loy", 0.8)):
        ch, rg = where[e]
        log.append(Record(10.1, "send", P, 1, e, ch, rg, attempt=1, outcome="apply"))
        log.append(Record(10.1 + lat, "result", P, 1, e, ch, rg, 1, "ok", lat))
        log.append(Record(10.1 + lat, "applied", P, 1, e, ch, rg))
        if e != "web":
            log.append(Record(10.2 + lat, "ack", P, 1, e, ch, rg))
    for attempt, t in enumerate((10.1, 12.1, 16.1, 24.1), start=1):
        log.append(Record(t, "send", P, 1, "s3", "pos", "west", attempt, "apply"))
        log.append(Record(t + 10, "result", P, 1, "s3", "pos", "west", attempt, "timeout", 10))
    log.append(Record(34.1, "dlq", P, 1, "s3", "pos", "west", 4, detail="max attempts"))
    scope = '{"channels": ["pos", "ecommerce"], "regions": ["east"]}'
    log.append(Record(100.0, "rollback", P, 1, value=30.0, detail=scope))
    for e in ("s1", "s2", "web"):
        ch, rg = where[e]
        log.append(Record(100.0, "target", P, 1, e, ch, rg, outcome="revoke"))
        log.append(Record(100.1, "send", P, 1, e, ch, rg, 1, "revoke"))
    log.append(Record(102.0, "removed", P, 1, "s1", "pos", "east"))
    log.append(Record(145.0, "removed", P, 1, "s2", "pos", "east"))
    log.append(Record(101.0, "removed", P, 1, "web", "ecommerce"))
    log.append(Record(111.0, "applied", P, 1, "web", "ecommerce"))
    for i, (t, e) in enumerate(((20, "s1"), (50, "web"), (110, "s2"), (115, "web"), (130, "s1"))):
        ch, rg = where[e]
        log.append(Record(float(t), "sale", "", 0, e, ch, rg, value=40.0, detail=f"b{i}"))
        log.append(Record(float(t), "discount", P, 1, e, ch, rg, value=8.0, detail=f"b{i}"))
    for e, price in (("s1", 7.99), ("web", 7.99), ("s3", 9.99)):
        ch, rg = where[e]
        log.append(Record(60.0, "quote", "", 0, e, ch, rg, value=price, detail="sku1@1"))
    return log


def small_summary(log: list[Record] | pd.DataFrame) -> dict:
    return summarise(log, scenario="flash-small", seed=3, mode="sim", slos=SLOS, budgets={"P": 20})


def big_log(seed: int = 7) -> pd.DataFrame:
    """A 600-store estate in 6 regions plus three online endpoints over three hours.

    P published at 10 min; mountain is offline for its first 15 min (retries with doubling
    backoff, some dead-lettered); 12 % of stores are batch (hourly pick-up); rolled back at
    2 h on east and the web shop, a few stores late or resurrected; Poisson sales.
    """
    rng = np.random.default_rng(seed)
    sizes = {"east": 160, "central": 140, "pacific": 110, "mountain": 90, "alaska": 50}
    sizes["hawaii"] = 50
    rows: list[tuple] = []

    def add(t, kind, promo="", e="", ch="", rg="", attempt=0, outcome="", value=0.0, detail=""):
        rows.append(
            (
                float(t),
                kind,
                promo,
                1 if promo else 0,
                e,
                ch,
                rg,
                attempt,
                outcome,
                float(value),
                detail,
            )
        )

    eps: list[tuple[str, str, str, bool]] = []
    for rg, n in sizes.items():
        for i in range(n):
            eps.append((f"{rg[:3]}-{i:03d}", "pos", rg, rng.random() < 0.12))
    eps += [("web-1", "ecommerce", "", False), ("loy-1", "loyalty", "", False)]
    eps += [("mkt-1", "marketplace", "", True)]
    for e, ch, rg, batch in eps:
        add(0, "endpoint", e=e, ch=ch, rg=rg, value=2 if batch else 8, detail="batch" * batch)
    t_pub, t_rb, out_end = 600.0, 7200.0, 780.0
    add(0, "create", "P")
    add(t_pub, "publish", "P", detail='{"channels": []}')
    add(590, "outage", ch="pos", rg="mountain", value=out_end - 590, detail="region offline")
    add(5000, "outage", e="cen-003", ch="pos", rg="central", value=600, detail="link flap")
    applied: dict[str, float] = {}
    for k, (e, ch, rg, batch) in enumerate(eps):
        add(t_pub, "target", "P", e, ch, rg, outcome="apply")
        t = t_pub + 0.005 * k
        for attempt in range(1, 9):
            add(t, "send", "P", e, ch, rg, attempt, "apply")
            if rg == "mountain" and t < out_end:
                add(t + 5, "result", "P", e, ch, rg, attempt, "timeout", 5)
                t += 5 + min(2.0**attempt, 120) * rng.uniform(0.5, 1.0)
                continue
            lat = float(rng.lognormal(0.5, 0.8))
            add(t + lat, "result", "P", e, ch, rg, attempt, "ok", lat)
            add(t + lat + 0.05, "ack", "P", e, ch, rg)
            when = t + lat + (rng.uniform(0, 3600) if batch else 0.0)
            if rng.random() > 0.004:
                add(when, "applied", "P", e, ch, rg)
                applied[e] = when
            break
        else:
            add(t, "dlq", "P", e, ch, rg, 8, detail="max attempts")
    add(
        t_rb,
        "rollback",
        "P",
        value=300,
        detail='{"regions": ["east"], "channels": ["pos", "ecommerce"]}',
    )
    removed: dict[str, float] = {}
    scope = [x for x in eps if x[2] == "east" or x[0] == "web-1"]
    for j, (e, ch, rg, _) in enumerate(scope):
        add(t_rb, "target", "P", e, ch, rg, outcome="revoke")
        add(t_rb + 0.01 * j, "send", "P", e, ch, rg, 1, "revoke")
        if e in applied and j != 5:
            late = j in (7, 11, 19)
            removed[e] = t_rb + (rng.uniform(400, 900) if late else rng.lognormal(2.0, 0.9))
            add(removed[e], "removed", "P", e, ch, rg)
            if j in (3, 30):
                add(removed[e] + 240, "applied", "P", e, ch, rg)
                applied[e] = removed[e] + 240
                removed[e] = np.inf
    rates = {"pos": 0.6, "ecommerce": 0.4, "loyalty": 0.1, "marketplace": 0.05}
    by_channel = {ch: [x for x in eps if x[1] == ch] for ch in rates}
    for ch, rate in rates.items():
        times = np.sort(rng.uniform(0, 10800, rng.poisson(rate * 10800)))
        picks = rng.integers(0, len(by_channel[ch]), len(times))
        for i, (t, p) in enumerate(zip(times, picks, strict=True)):
            e, _, rg, _ = by_channel[ch][p]
            value = float(rng.lognormal(3.5, 0.6))
            add(t, "sale", e=e, ch=ch, rg=rg, value=value, detail=f"b{ch[0]}{i}")
            if applied.get(e, np.inf) <= t < removed.get(e, np.inf):
                add(t, "discount", "P", e, ch, rg, value=value * 0.2, detail=f"b{ch[0]}{i}")
    for s in range(18):
        t = 900 + 600 * s
        for e, ch, rg, _ in [eps[i] for i in rng.choice(600, 8, replace=False)] + eps[600:602]:
            on = applied.get(e, np.inf) <= t < removed.get(e, np.inf)
            add(t, "quote", e=e, ch=ch, rg=rg, value=7.99 if on else 9.99, detail=f"sku{s % 5}@{s}")
    cols = list(Record._fields)
    return to_frame(pd.DataFrame(rows, columns=cols).sort_values("t", kind="stable"))


# --- write_report -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("small")
    log = small_log()
    summary = small_summary(log)
    paths = write_report(
        out,
        summary,
        to_frame(log),
        title="Flash sale <small>",
        description="Checks escaping: <script>alert('x')</script> & friends",
        extra_tables=[("Stores <by> region", pd.DataFrame({"region": ["east"], "n": [2]}))],
    )
    return out, summary, paths


def test_every_file_written(small_report: tuple[Path, dict, dict]) -> None:
    out, _, paths = small_report
    assert set(paths) == ALL_FILES
    for name, path in paths.items():
        assert path == out / name and path.is_file()
    # No temp file left behind by the atomic writes.
    assert {p.name for p in out.iterdir()} == ALL_FILES


def test_summary_json_has_design_keys(small_report: tuple[Path, dict, dict]) -> None:
    out, summary, _ = small_report
    loaded = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(loaded) == DESIGN_KEYS
    assert loaded == summary


def test_junit_one_case_per_slo(small_report: tuple[Path, dict, dict]) -> None:
    out, summary, _ = small_report
    suite = ET.parse(out / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [s["name"] for s in summary["slos"]]
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {s["name"] for s in summary["slos"] if not s["passed"]}
    assert failed  # the small log fails its dead-letter and rollback SLOs


def test_events_round_trip(small_report: tuple[Path, dict, dict]) -> None:
    out, _, _ = small_report
    back = read_events(out / "events.parquet")
    pd.testing.assert_frame_equal(back, to_frame(small_log()))


def test_pngs_are_real(small_report: tuple[Path, dict, dict]) -> None:
    out, _, _ = small_report
    for name in PLOT_FILES:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 10_000, name


def test_html_self_contained(small_report: tuple[Path, dict, dict]) -> None:
    out, summary, _ = small_report
    text = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text.lower().replace("&lt;script", "")
    assert text.count("data:image/png;base64,") == len(PLOT_FILES)
    verdict = "PASS" if summary["passed"] else "FAIL"
    assert f'class="badge {verdict.lower()}">{verdict}<' in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "Flash sale &lt;small&gt;" in text and "Stores &lt;by&gt; region" in text


def test_html_lists_violations(small_report: tuple[Path, dict, dict]) -> None:
    out, summary, _ = small_report
    text = (out / "report.html").read_text(encoding="utf-8")
    violations = summary["rollbacks"][0]["violations"]
    assert {v["property"] for v in violations} >= {"resurrected", "not_removed_by_deadline"}
    for v in violations:
        assert v["property"] in text and html_mod.escape(v["detail"]) in text


def test_pass_badge_when_all_slos_pass() -> None:
    slo = {
        "name": "T50 under a minute",
        "metric": "propagation.overall.t50",
        "op": "<",
        "threshold": 60,
    }
    summary = summarise(small_log(), scenario="ok", seed=1, mode="live", slos=[slo])
    assert summary["passed"]
    text = render_html(summary, {}, title="t", description="")
    assert 'class="badge pass">PASS<' in text and ">FAIL<" not in text


# --- plots on thin logs -------------------------------------------------------------------


def test_plots_return_none_without_data(tmp_path: Path) -> None:
    log = [r for r in small_log() if r.kind not in {"rollback", "sale", "discount"}]
    assert plots.plot_rollback(log, tmp_path / "r.png") is None
    assert plots.plot_sales(log, tmp_path / "s.png") is None
    empty = [Record(0.0, "endpoint", endpoint="s1", channel="pos", region="east", value=1.0)]
    for name, fn in plots.PLOTS.items():
        assert fn(empty, tmp_path / f"{name}.png") is None, name
    assert list(tmp_path.iterdir()) == []


def test_report_without_rollback_or_sales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the plots this test is about (drawing all six would only cost time).
    some = {k: plots.PLOTS[k] for k in ("rollback", "sales")}
    monkeypatch.setattr("harness.report.write.PLOTS", some)
    (tmp_path / "rollback.png").write_bytes(b"stale figure of an earlier run")
    log = [r for r in small_log() if r.kind not in {"rollback", "sale", "discount"}]
    paths = write_report(tmp_path, small_summary(log), to_frame(log), title="thin")
    assert set(paths) == ALL_FILES - PLOT_FILES
    assert not (tmp_path / "rollback.png").exists()
    text = paths["report.html"].read_text(encoding="utf-8")
    assert "data:image/png" not in text and "Nothing to plot." in text
    assert "No rollback in this run." in text


def test_attempts_without_inventory_or_outages(tmp_path: Path) -> None:
    # A bare live-run log: sends only, no "endpoint" inventory, no outage records.
    log = [Record(5.0 + i / 3, "send", "P", 1, f"e{i % 2}", attempt=1 + i // 2) for i in range(6)]
    path = plots.plot_attempts(log, tmp_path / "attempts.png")
    assert path is not None and path.read_bytes()[:8] == PNG_MAGIC


# --- atomic writes ------------------------------------------------------------------------


def _failing_render(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr("harness.report.write.render_html", boom)
    # The plots are not what these tests are about; skip their drawing time.
    monkeypatch.setattr("harness.report.write.PLOTS", {})


def test_failed_render_leaves_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = "<html>previous run</html>"
    (tmp_path / "report.html").write_text(old, encoding="utf-8")
    _failing_render(monkeypatch)
    log = small_log()
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(tmp_path, small_summary(log), to_frame(log), title="x")
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == old
    leftovers = {p.name for p in tmp_path.iterdir()} - ALL_FILES
    assert leftovers == set()


def test_failed_render_leaves_no_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_render(monkeypatch)
    log = small_log()
    with pytest.raises(RuntimeError):
        write_report(tmp_path, small_summary(log), to_frame(log), title="x")
    names = {p.name for p in tmp_path.iterdir()}
    # CI's files are written first and complete; the page is absent, not half-written.
    assert names == {"summary.json", "events.parquet", "junit.xml"}


def test_atomic_path_keeps_target_on_error(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text("half a fi", encoding="utf-8")
        raise OSError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# --- the estate at scale ------------------------------------------------------------------


def test_big_estate_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The 600-store heatmap is the plot this log is for; the rest are drawn for the small
    # log (and this one was looked at by eye while writing them).
    some = {"heatmap": plots.PLOTS["heatmap"]}
    monkeypatch.setattr("harness.report.write.PLOTS", some)
    events = big_log()
    summary = summarise(events, scenario="estate-600", seed=7, mode="sim", slos=SLOS)
    assert summary["propagation"]["by_channel"]["pos"]["targets"] == 600
    paths = write_report(tmp_path, summary, events, title="600 stores")
    assert set(paths) == ALL_FILES - PLOT_FILES | {f"{k}.png" for k in some}
    for name in some:
        assert paths[f"{name}.png"].read_bytes()[:8] == PNG_MAGIC
    text = paths["report.html"].read_text(encoding="utf-8")
    assert "not_removed_by_deadline" in text and "resurrected" in text
