"""Tests for ``promoharness sweep`` (harness.sweep, harness.report.sweep_report, the CLI).

Every run uses a tiny scenario written into tmp_path (20 stores, 15 simulated minutes,
one promotion published at t=60), so a run takes well under a second.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_driver import assert_one_line_error, run_cli
from typer.testing import CliRunner

from harness.cli import app
from harness.inputs import InputError
from harness.report.sweep_report import render_html
from harness.sweep import (
    HEADLINE_FIGURES,
    cell_table,
    expand_grid,
    figures_of,
    parse_vary,
    run_grid,
    validate_grid,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEED = 3
TINY = """\
name: tiny-sweep
description: 20 stores and a web shop, one promotion published at t=60 s.
seed: {seed}
start: 2026-11-28T17:00:00Z
duration: 900
estate: {{stores: 20, products: 40}}
promotions:
  - id: TOYS-30
    name: "30% off toys"
    validity: {{start: 2026-11-28T00:00:00, end: 2026-11-29T00:00:00, timezone: America/New_York}}
    scope: {{channels: [pos, ecommerce]}}
    conditions: {{categories: [toys]}}
    benefit: {{type: percent_off, percent: 30}}
timeline:
  - {{at: 0, action: create, promo: TOYS-30}}
  - {{at: 10, action: submit, promo: TOYS-30}}
  - {{at: 20, action: validate, promo: TOYS-30}}
  - {{at: 30, action: approve, promo: TOYS-30}}
  - {{at: 60, action: publish, promo: TOYS-30}}
traffic: {{rate_per_store: 6, rate_online: 60, quote_interval: 300, quote_stores: 5}}
faults:
  - {{kind: error_rate, channel: pos, rate: 0.0}}
policies:
  pos: {{timeout: 10, max_attempts: 5, backoff: {{kind: fixed, base: 5, cap: 5}}}}
slos:
  - {{name: half the endpoints within 10 min, metric: propagation.overall.t50, op: "<=",
      threshold: 600}}
"""
GRID = [
    "--vary",
    "faults.0.rate=0.0,0.5",
    "--vary",
    "policies.pos.backoff.kind=fixed,full_jitter",
]
EXTRA_METRIC = "retry_storm.retry_share.overall"


def write_tiny(folder: Path) -> Path:
    path = folder / "tiny-sweep.yaml"
    path.write_text(TINY.format(seed=SEED), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path)


def cli_sweep(scenario: Path, out: Path, *args: str) -> int:
    result = CliRunner().invoke(
        app, ["sweep", str(scenario), *args, "--out", str(out), "-q"], catch_exceptions=False
    )
    return result.exit_code


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 2x2 grid, 2 repeats, swept in-process and with two worker processes."""
    folder = tmp_path_factory.mktemp("sweep")
    scenario = write_tiny(folder)
    outs = {}
    for jobs in (1, 2):
        out = folder / f"jobs{jobs}"
        args = [*GRID, "--repeats", "2", "--jobs", str(jobs), "--metric", EXTRA_METRIC]
        assert cli_sweep(scenario, out, *args) == 0  # t50 <= 600 s holds in every cell
        outs[f"jobs{jobs}"] = out
    return outs


def test_parse_vary_reads_yaml_scalars() -> None:
    vary = parse_vary("estate.stores=100, 300")
    assert vary.key == "estate.stores" and vary.values == (100, 300)
    assert parse_vary("a.b=fixed,true,0.5").values == ("fixed", True, 0.5)
    for bad in ("estate.stores", "estate.stores=", "estate.stores=1,,2", "a..b=1", "x=1,1"):
        with pytest.raises(InputError):
            parse_vary(bad)


def test_grid_is_the_cartesian_product_times_the_seeds(tiny: Path) -> None:
    varies = [parse_vary(GRID[1]), parse_vary(GRID[3])]
    specs = expand_grid(varies, repeats=2, seed=SEED)
    assert len(specs) == 2 * 2 * 2
    combos = [dict(s.values) for s in specs[::2]]
    assert combos == [
        {"faults.0.rate": r, "policies.pos.backoff.kind": k}
        for r in (0.0, 0.5)
        for k in ("fixed", "full_jitter")
    ]
    for cell in range(4):
        runs = [s for s in specs if s.cell == cell]
        assert [s.seed for s in runs] == [SEED, SEED + 1]  # the same seeds in every cell
        assert runs[0].overrides == runs[1].overrides
    assert specs[0].overrides == ("faults.0.rate=0.0", "policies.pos.backoff.kind=fixed")
    path, scenario = validate_grid(tiny, [], varies)
    assert path.is_absolute() and scenario.name == "tiny-sweep"


def test_jobs_do_not_change_the_results(swept: dict[str, Path]) -> None:
    for name in ("sweep.csv", "summary.csv"):
        one = (swept["jobs1"] / name).read_bytes()
        assert one == (swept["jobs2"] / name).read_bytes(), name
    runs = pd.read_csv(swept["jobs1"] / "sweep.csv")
    assert len(runs) == 8
    assert list(runs["seed"]) == [SEED, SEED + 1] * 4
    assert list(runs["cell"]) == sorted(runs["cell"])
    assert {*HEADLINE_FIGURES, EXTRA_METRIC} <= set(runs.columns)


def test_output_folder_is_complete_and_self_contained(swept: dict[str, Path]) -> None:
    out = swept["jobs2"]
    figures = figures_of([EXTRA_METRIC])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == len(figures)  # every figure here is numeric, so each has a plot
    assert {"sweep.csv", "summary.csv", "report.html"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    cells = pd.read_csv(out / "summary.csv")
    assert len(cells) == 4 and list(cells["runs"]) == [2] * 4
    for stat in ("mean", "sd", "min", "max"):
        assert f"retry_storm.amplification.{stat}" in cells.columns
    page = (out / "report.html").read_text(encoding="utf-8")
    uris = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(uris) == len(pngs)
    assert all(base64.b64decode(u).startswith(PNG_MAGIC) for u in uris)
    assert not re.search(r"<(link|script)\b", page)  # nothing fetched when read offline
    assert "policies.pos.backoff.kind" in page and "full_jitter" in page


def test_more_injected_errors_mean_more_retries(tiny: Path) -> None:
    # With a per-attempt failure probability f, the attempts of one delivery follow a
    # geometric law cut at max_attempts m: E = (1 - f^m) / (1 - f), increasing in f. An
    # error_rate fault p raises f from the stores' own q to 1 - (1 - q)(1 - p), so the
    # amplification (attempts / delivery) must rise with p, and stay at most m.
    vary = parse_vary("faults.0.rate=0.0,0.5")
    path, _ = validate_grid(tiny, [], [vary])
    specs = expand_grid([vary], repeats=2, seed=SEED)
    figures = figures_of([EXTRA_METRIC])
    runs = run_grid(path, [], specs, figures, jobs=1)
    cells = cell_table(runs, [vary.key], figures).set_index(vary.key)
    amp = cells["retry_storm.amplification.mean"]
    assert 1.0 <= amp[0.0] < amp[0.5] <= 5
    share = cells[f"{EXTRA_METRIC}.mean"]  # the share of attempts that are retries follows
    assert share[0.0] < share[0.5]


def test_exit_code_follows_the_slos(tiny: Path, tmp_path: Path) -> None:
    one_cell = ["--vary", "policies.pos.timeout=5,10", "--jobs", "1"]
    assert cli_sweep(tiny, tmp_path / "pass", *one_cell) == 0
    strict = ["--set", "slos.0.threshold=0.000001"]  # no store applies within 1 µs
    assert cli_sweep(tiny, tmp_path / "fail", *one_cell, *strict) == 1
    cells = pd.read_csv(tmp_path / "fail" / "summary.csv")
    assert (cells["passed_runs"] == 0).all()


def test_bad_vary_key_exits_2_naming_it_before_any_run(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    # The real entry point in this process (a piped sweep below goes through a real
    # interpreter): same exit code and stderr, without a Python start-up per case.
    for key, values in (("policies.pos.no_such_knob", "1,2"), ("policies.pos.timeout", "5,-1")):
        args = [str(tiny), "--vary", f"{key}={values}", "--out", str(out), "-q"]
        assert_one_line_error(run_cli("sweep", *args), f"--vary {key}")
        assert not out.exists()  # validation happens before any run writes anything


def test_html_escapes_text() -> None:
    # One cell with a text figure: the page must show both without letting markup through.
    cells = pd.DataFrame(
        [{"cell": 0, "k": "<b>x</b>", "runs": 1, "passed_runs": 1, "v.values": "<script>"}]
    )
    page = render_html(
        title="a <title>",
        description="<img src=x onerror=alert(1)>",
        grid=[("k", ["<b>x</b>"])],
        seeds=[1],
        cells=cells,
        figures=["v"],
        pngs={},
    )
    assert "<b>x</b>" not in page and "<script>" not in page and "<img src=x" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_a_piped_sweep_prints_a_line_per_stage(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from harness.cli import main; main()", "sweep", str(tiny)]
    args = ["--vary", "faults.0.rate=0.0,0.5", "--jobs", "1", "--out", str(out)]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # One line per stage, in order, each ending with its wall time (never judged).
    lines = proc.stderr.splitlines()
    assert [line.split(":")[0].split(" (")[0] for line in lines] == [
        "simulating 2 runs of tiny-sweep",
        "computing the cell table",
        "writing sweep.csv, summary.csv",
        "plotting",
        "writing report.html",
    ]
    assert lines[0].startswith("simulating 2 runs of tiny-sweep (2/2 runs): ")
    assert all(line.endswith(" s") for line in lines)


def test_a_replay_trace_is_shipped_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sweep import grid_jobs, run_job

    tiny = Path(__file__).resolve().parent / "runtime" / "tiny.yaml"
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "export.csv").write_text("t,endpoint,basket\n25,S0001,b0\n")
    monkeypatch.chdir(tmp_path)  # the driver names the trace relative to its own folder
    replay = ["traffic={kind: replay, file: traces/export.csv}"]
    varies = [parse_vary("traffic.quote_interval=20")]
    path, _ = validate_grid(tiny, replay, varies)
    [job] = grid_jobs(path, replay, expand_grid(varies, 1, 1), figures_of([]))
    assert job[0].traffic.file == str(tmp_path / "traces" / "export.csv")
    (tmp_path / "worker").mkdir()
    monkeypatch.chdir(tmp_path / "worker")  # a worker started in another folder reads it
    assert run_job(job)["passed"] in (True, False)
