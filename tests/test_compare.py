"""`promoharness compare`: real run folders of the tiny scenario side by side.

The runs are simulated here (tests/runtime/tiny.yaml: fixed latencies, two stores): one
calm, one whose stores fail half their deliveries, one with another seed. What the tests
know by construction: a calm run sends each delivery once (amplification exactly 1, the
least possible), a faulty one retries; a copy of a run whose summary marks figures "not
measured" must never show them as zero nor win a row with them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_driver import run_cli
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import (
    FIGURES,
    NOT_MEASURED,
    NOT_REACHED,
    best_of,
    comparison,
    figure_cell,
    load_runs,
    write_compare,
)
from harness.inputs import InputError
from harness.metrics.slo import resolve
from harness.runner import run_scenario
from harness.scenario import load_scenario

TINY = Path(__file__).parent / "runtime" / "tiny.yaml"
FAULTY = ["endpoints.pos.error_rate=0.5", "policies.pos.backoff.kind=fixed"]


def _run(out: Path, overrides: list[str], seed: int | None = None) -> Path:
    run_scenario(load_scenario(TINY, overrides), seed=seed, out=out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    return {
        "calm": _run(base / "calm", []),
        "faulty": _run(base / "faulty", FAULTY),
        "seed2": _run(base / "seed2", [], seed=2),
    }


def _summary(path: Path) -> dict[str, Any]:
    return json.loads((path / "summary.json").read_text())


def _unmeasured_copy(src: Path, dst: Path, **edits: Any) -> Path:
    """A copy of a run whose summary marks some figures the way a system-under-test run
    will: the acknowledged view unreadable (null counts) and a figure as "not measured"."""
    shutil.copytree(src, dst)
    summary = _summary(dst)
    overall = summary["propagation"]["overall"]
    overall["acked"] = None
    overall["acked_t95"] = None
    summary["retry_storm"]["amplification"] = "not measured"
    summary.update(edits)
    (dst / "summary.json").write_text(json.dumps(summary))
    return dst


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,  # only against a hang
    )


# --- the table --------------------------------------------------------------------------


def test_every_cell_is_the_runs_own_summary_value(runs: dict[str, Path], tmp_path: Path) -> None:
    body = comparison(load_runs([runs["calm"], runs["faulty"]]))
    assert [r["label"] for r in body["runs"]] == ["calm", "faulty"]
    assert [row["metric"] for row in body["figures"]] == list(FIGURES)
    for label in ("calm", "faulty"):
        summary = _summary(runs[label])
        for row in body["figures"]:
            cell, value = row["cells"][label], resolve(summary, row["metric"])
            assert cell["value"] == value, row["metric"]
            if value is None:
                assert cell["status"] in (NOT_MEASURED, NOT_REACHED)


def test_best_marks_the_run_that_never_retried(runs: dict[str, Path], tmp_path: Path) -> None:
    calm, faulty = _summary(runs["calm"]), _summary(runs["faulty"])
    # By construction: no fault, one attempt per delivery; half the pos sends fail.
    assert calm["retry_storm"]["amplification"] == 1.0
    assert faulty["retry_storm"]["amplification"] > 1.0
    body = comparison(load_runs([runs["faulty"], runs["calm"]]))
    rows = {row["metric"]: row for row in body["figures"]}
    assert rows["retry_storm.amplification"]["better"] == "lower"
    assert rows["retry_storm.amplification"]["best"] == ["calm"]
    assert rows["retry_storm.attempts"]["best"] == ["calm"]
    # Both runs have the same targets; the calm one applied all of them.
    applied = rows["propagation.overall.applied"]
    assert applied["better"] == "higher"
    assert calm["propagation"]["overall"]["applied"] == calm["propagation"]["overall"]["targets"]
    if faulty["propagation"]["overall"]["applied"] < calm["propagation"]["overall"]["applied"]:
        assert applied["best"] == ["calm"]
    # Same value in every run: nobody is "best".
    assert rows["passed"]["best"] == []


def test_same_scenario_and_seed_is_comparable(runs: dict[str, Path], tmp_path: Path) -> None:
    folder, body = write_compare([runs["calm"], runs["faulty"]], tmp_path / "out")
    assert body["comparable"] is True and body["mismatches"] == []
    page = (folder / "compare.html").read_text()
    assert "not comparable" not in page
    assert "Comparable: every run is of scenario <b>tiny</b>" in page


def test_a_different_seed_is_flagged_at_the_top(runs: dict[str, Path], tmp_path: Path) -> None:
    folder, body = write_compare([runs["calm"], runs["seed2"]], tmp_path / "out")
    assert body["comparable"] is False
    assert body["mismatches"] == [{"field": "seed", "values": {"calm": 1, "seed2": 2}}]
    page = (folder / "compare.html").read_text()
    alarm = page.index("not comparable")
    assert alarm < page.index('id="figures"')  # before any figure is read
    assert "different seed" in page[alarm:]


def test_a_different_scenario_is_flagged(runs: dict[str, Path], tmp_path: Path) -> None:
    other = _unmeasured_copy(runs["calm"], tmp_path / "other", scenario="black-friday")
    body = comparison(load_runs([runs["calm"], other]))
    fields = {m["field"]: m["values"] for m in body["mismatches"]}
    assert fields["scenario"] == {"calm": "tiny", "other": "black-friday"}


def test_not_measured_is_never_zero_nor_best(runs: dict[str, Path], tmp_path: Path) -> None:
    sut = _unmeasured_copy(runs["calm"], tmp_path / "sut", sut="naive-relay")
    folder, body = write_compare([runs["faulty"], sut, runs["calm"]], tmp_path / "out")
    rows = {row["metric"]: row for row in body["figures"]}
    amp = rows["retry_storm.amplification"]
    assert amp["cells"]["naive-relay"] == {"value": None, "status": NOT_MEASURED}
    assert amp["best"] == ["calm"]  # as zero it would have "won"
    acked = rows["propagation.overall.acked_t95"]["cells"]["naive-relay"]
    assert acked["status"] == NOT_MEASURED
    # Two runs only, one of them not measured: nothing to rank.
    pair = comparison(load_runs([runs["faulty"], sut]))
    amp = next(r for r in pair["figures"] if r["metric"] == "retry_storm.amplification")
    assert amp["best"] == []
    page = (folder / "compare.html").read_text()
    row = page[page.index("retry_storm.amplification") :].split("</tr>")[0]
    assert row.count("<td") == 4  # "better", then one cell per run
    assert "not measured" in row and "0.00×" not in row and "★" in row


def test_null_time_is_not_reached_only_when_the_share_was_counted() -> None:
    counted = {"propagation": {"overall": {"targets": 10, "applied": 8, "t95": None}}}
    assert figure_cell(counted, "propagation.overall.t95")["status"] == NOT_REACHED
    blind = {"propagation": {"overall": {"targets": 10, "acked": None, "acked_t95": None}}}
    assert figure_cell(blind, "propagation.overall.acked_t95")["status"] == NOT_MEASURED
    none = {"propagation": {"overall": {"targets": 0, "applied": 0, "t95": None}}}
    assert figure_cell(none, "propagation.overall.t95")["status"] == NOT_MEASURED
    assert figure_cell({}, "retry_storm.amplification")["status"] == NOT_MEASURED
    # "not reached" loses to any reached time, and is never best itself.
    cells = {
        "a": {"value": None, "status": NOT_REACHED},
        "b": {"value": 4.0, "status": "measured"},
    }
    assert best_of(cells, "lower") == ["b"]
    cells["b"] = {"value": None, "status": NOT_REACHED}
    assert best_of(cells, "lower") == []


@given(
    st.dictionaries(
        st.sampled_from("abcdef"),
        st.one_of(st.none(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False)),
        min_size=2,
    ),
    st.sampled_from(["lower", "higher"]),
)
def test_best_is_the_extreme_measured_value(values: dict[str, Any], way: str) -> None:
    cells = {
        k: {"value": v, "status": NOT_MEASURED if v is None else "measured"}
        for k, v in values.items()
    }
    best = best_of(cells, way)
    measured = {k: v for k, v in values.items() if v is not None}
    if len(measured) < 2 or len(set(measured.values())) == 1:
        assert best == []
        return
    pick = min if way == "lower" else max
    target = pick(measured.values())
    assert best == [k for k, v in measured.items() if v == target]


# --- the page ---------------------------------------------------------------------------


def test_page_is_self_contained_with_the_plots(runs: dict[str, Path], tmp_path: Path) -> None:
    named = _unmeasured_copy(runs["faulty"], tmp_path / "x", label="<b>relay</b>")
    folder, body = write_compare([runs["calm"], named], tmp_path / "out")
    page = (folder / "compare.html").read_text()
    for plot in ("coverage", "latency_cdf", "storms", "rollbacks"):
        assert f'id="plot-{plot}"><img alt="{plot} plot" src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert "<b>relay</b>" not in page and "&lt;b&gt;relay&lt;/b&gt;" in page
    assert sorted(p.name for p in folder.iterdir()) == ["compare.html", "compare.json"]
    # The rollback row: each run's verdict from its own summary.
    rb = body["rollbacks"][0]
    for label, path in (("calm", runs["calm"]), ("<b>relay</b>", named)):
        own = _summary(path)["rollbacks"][0]
        assert rb["runs"][label]["verdict"] == own["verdict"]
        assert rb["runs"][label]["violations"] == own["violations"]


def test_duplicate_labels_are_told_apart(runs: dict[str, Path]) -> None:
    loaded = load_runs([runs["calm"], runs["calm"]])
    assert [r.label for r in loaded] == ["calm", "calm #2"]


# --- the command line -------------------------------------------------------------------


def test_cli_writes_the_page(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = cli("compare", runs["calm"], runs["seed2"], "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"{out}/compare.html" in result.stdout
    assert "different seed" in result.stderr
    assert json.loads((out / "compare.json").read_text())["comparable"] is False


def test_bad_run_folders_are_named(runs: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    shutil.copytree(runs["calm"], broken)
    (broken / "summary.json").write_text('{"scenario": "tiny",\n "seed": }')
    nolog = tmp_path / "nolog"
    shutil.copytree(runs["calm"], nolog)
    (nolog / "events.parquet").write_text("not parquet")
    cases = [
        ([runs["calm"], empty], [str(empty), "no summary.json"]),
        ([runs["calm"], runs["calm"] / "summary.json"], ["is a file"]),
        ([runs["calm"], broken], [f"{broken}/summary.json:2", "not valid JSON"]),
        ([runs["calm"], nolog], [f"{nolog}/events.parquet", "not a readable event log"]),
    ]
    for paths, needles in cases:
        with pytest.raises(InputError) as caught:
            write_compare(paths, tmp_path / "never")
        for needle in needles:
            assert needle in str(caught.value), (needle, str(caught.value))
    for metric in ("retry_storm.nope", "propagation.overall"):
        with pytest.raises(InputError, match="--metric"):
            write_compare([runs["calm"], runs["faulty"]], tmp_path / "never", [metric])
    # A figure outside the default rows is a row of its own, with its direction.
    body = comparison(load_runs([runs["calm"], runs["faulty"]]), ["retry_storm.deliveries"])
    row = body["figures"][-1]
    assert row["metric"] == "retry_storm.deliveries" and row["better"] is None
    assert row["cells"]["calm"]["value"] == _summary(runs["calm"])["retry_storm"]["deliveries"]
    assert not (tmp_path / "never").exists()


def test_cli_bad_input_exits_2_on_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for args, needle in (
        ((runs["calm"], missing), f"{missing}: RUN_DIR: no such run folder"),
        ((runs["calm"],), "at least two run folders"),
    ):
        # In this process (the real entry point, its exit code and stderr): a refusal
        # needs no fresh interpreter's ~3 s of imports.
        result = run_cli("compare", *map(str, args), "--out", str(tmp_path / "never"))
        assert result.code == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "never").exists()


def test_a_live_runs_shopper_figures_are_not_measured_live(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """A live run has no shoppers: its leakage of 0 means nobody bought. It must show as
    "not measured live" (never zero, never best) beside a virtual-time run whose shoppers
    did buy after the rollback, while a figure both runs measured still ranks."""
    sim = _unmeasured_copy(runs["faulty"], tmp_path / "sim", label="sim")
    summary = _summary(sim)
    summary["retry_storm"]["amplification"] = 2.0
    summary["leakage_value"] = 12.5
    summary["rollbacks"][0]["leakage_value"] = 12.5
    (sim / "summary.json").write_text(json.dumps(summary))
    live = _unmeasured_copy(runs["calm"], tmp_path / "live", label="live", mode="live")
    live_summary = _summary(live)
    live_summary["retry_storm"]["amplification"] = 1.0
    (live / "summary.json").write_text(json.dumps(live_summary))
    assert live_summary["leakage_value"] == 0.0  # what a live run writes: nobody bought
    folder, body = write_compare([sim, live], tmp_path / "out")
    rows = {row["metric"]: row for row in body["figures"]}
    leak = rows["leakage_value"]
    assert leak["cells"]["live"] == {"value": None, "status": "not measured live"}
    assert leak["cells"]["sim"] == {"value": 12.5, "status": "measured"}
    assert leak["best"] == []  # the live 0 would have been best (lower is better)
    spread = rows["price_consistency.spread_value"]
    assert spread["cells"]["live"]["status"] == "not measured live"
    assert rows["retry_storm.amplification"]["best"] == ["live"]
    rollback = body["rollbacks"][0]["runs"]
    assert rollback["live"]["leakage_value"] is None
    assert rollback["live"]["leakage_status"] == "not measured live"
    assert rollback["sim"]["leakage_value"] == 12.5
    page = (folder / "compare.html").read_text()
    assert '<td class="nm">not measured live</td>' in page
    assert "leakage not measured live" in page
    on_disk = json.loads((folder / "compare.json").read_text())
    assert on_disk["figures"] == body["figures"]
