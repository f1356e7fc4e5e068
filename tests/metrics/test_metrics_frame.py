"""Tests for harness.metrics.frame: fixed dtypes, defaults and the event-log files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.domain.eventlog import COLUMNS, Record
from harness.metrics.frame import inventory, read_events, to_frame, write_events

RECORDS = [
    Record(0.0, "endpoint", endpoint="s1", channel="pos", region="north", value=5, detail="batch"),
    Record(1.5, "send", promo="P", version=2, endpoint="s1", attempt=1, outcome="apply"),
    Record(2.0, "applied", promo="P", version=2, endpoint="web", channel="ecommerce"),
]


def test_dtypes_and_order() -> None:
    df = to_frame(RECORDS)
    assert tuple(df.columns) == COLUMNS
    assert df["t"].dtype == np.float64 and df["value"].dtype == np.float64
    assert df["version"].dtype == np.int64 and df["attempt"].dtype == np.int64
    assert isinstance(df["kind"].dtype, pd.CategoricalDtype)
    assert isinstance(df["channel"].dtype, pd.CategoricalDtype)
    assert list(df["kind"]) == ["endpoint", "send", "applied"]
    assert list(df["channel"]) == ["pos", "", "ecommerce"]
    # The whole vocabulary is in the categories, so frames of different runs line up.
    assert {"send", "quote", "rollback"} <= set(df["kind"].cat.categories)


def test_normalised_frame_is_returned_as_is() -> None:
    df = to_frame(RECORDS)
    assert to_frame(df) is df


def test_missing_columns_and_nan_get_record_defaults() -> None:
    raw = pd.DataFrame({"t": [1.0, 2.0], "kind": ["send", "ack"], "promo": ["P", None]})
    df = to_frame(raw)
    assert tuple(df.columns) == COLUMNS
    assert list(df["promo"]) == ["P", ""]
    assert list(df["endpoint"]) == ["", ""]
    assert list(df["attempt"]) == [0, 0]
    assert list(df["value"]) == [0.0, 0.0]


def test_empty() -> None:
    df = to_frame([])
    assert len(df) == 0
    assert tuple(df.columns) == COLUMNS
    assert to_frame(df) is df


@pytest.mark.parametrize("name", ["events.parquet", "sub/events.csv"])
def test_round_trip(tmp_path, name: str) -> None:
    df = to_frame(RECORDS)
    path = write_events(df, tmp_path / name)
    back = read_events(path)
    pd.testing.assert_frame_equal(back, df)


def test_inventory_falls_back_to_first_seen_channel() -> None:
    inv = inventory(to_frame(RECORDS))
    assert inv.loc["s1", "capacity"] == 5.0
    assert inv.loc["s1", "mode"] == "batch"
    assert inv.loc["web", "channel"] == "ecommerce"
    assert inv.loc["web", "capacity"] == 0.0
