"""Replay: a recorded trace drives the shoppers and the operator timeline.

The oracle: replaying a run's own event log against the same estate reproduces its sales
and the discount each promotion gave, sale for sale.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from cli_driver import run_cli

import harness.report.pool
from harness.metrics import write_events
from harness.runner import simulate
from harness.scenario import load_scenario

TINY = Path(__file__).with_name("tiny.yaml")
WITH_SHOPPERS = [
    "traffic={kind: generated, rate_per_store: 3600, rate_online: 3600, quote_interval: 20}",
    "duration=60",
]


def sales_of(events: pd.DataFrame) -> pd.DataFrame:
    sales = events[events["kind"].isin(["sale", "discount"])]
    return sales[["t", "kind", "promo", "endpoint", "value", "detail"]].reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_replaying_a_runs_own_log_reproduces_its_sales(tmp_path: Path, suffix: str) -> None:
    original = simulate(load_scenario(TINY, WITH_SHOPPERS))
    assert (original.events["kind"] == "sale").sum() > 100
    assert (original.events["kind"] == "discount").sum() > 0  # the promotion gave money
    trace = tmp_path / f"trace{suffix}"
    write_events(original.events, trace)
    replayed = simulate(
        load_scenario(
            TINY,
            [
                f"traffic={{kind: replay, file: '{trace}', quote_interval: 20}}",
                "duration=60",
                "timeline=[{at: 0, action: create, promo: P1}]",
            ],
        )
    )
    # The operator timeline came from the trace too (the scenario's was cut to a create).
    kinds = set(replayed.events["kind"])
    assert {"publish", "rollback", "applied", "removed"} <= kinds
    pd.testing.assert_frame_equal(sales_of(replayed.events), sales_of(original.events))


def test_a_sales_export_replays_against_the_estate(tmp_path: Path) -> None:
    scenario = load_scenario(TINY)
    world_skus = simulate(scenario).world.estate.catalog
    sku = world_skus[0].sku
    export = tmp_path / "export.csv"
    export.write_text(
        "t,endpoint,basket\n"
        f"25,S0001,{sku}:2\n"
        f"26,S0002,{sku}:1;{world_skus[1].sku}:3\n"
        f"45,S0002,{sku}:1\n"
    )
    result = simulate(load_scenario(TINY, [f"traffic={{kind: replay, file: '{export}'}}"]))
    sales = result.events[result.events["kind"] == "sale"]
    assert list(sales["t"]) == [25.0, 26.0, 45.0]
    assert list(sales["endpoint"]) == ["S0001", "S0002", "S0002"]
    # 10% off everything while applied: S0002 had it at 26 s, not at 45 s (rolled back at 40).
    discounts = result.events[result.events["kind"] == "discount"]
    assert list(discounts["t"]) == [25.0, 26.0]


def test_a_bad_trace_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "export.csv"
    export.write_text("t,endpoint,basket\n5,S9999,SKU-00001:1\n")
    # In this process (the real entry point, its exit code and stderr), without the two
    # plot workers `run` forks before reading its input (tests/test_cli_errors.py refuses
    # bad input with the real pool); a refusal needs no fresh interpreter.
    monkeypatch.setattr(harness.report.pool.PlotPool, "start", lambda self: self)
    override = f"traffic={{kind: replay, file: '{export}'}}"
    result = run_cli("run", str(TINY), "--quiet", "--set", override)
    assert result.code == 2
    assert "export.csv:2: endpoint: unknown endpoint 'S9999'" in result.stderr
    assert "Traceback" not in result.stderr
