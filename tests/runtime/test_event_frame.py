"""The event log built column by column (runner.event_frame) is the log built through one
DataFrame of Python objects (runner.event_frame_slow): same rows, order, values, dtypes."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domain.eventlog import Record
from harness.metrics.frame import _is_normalised
from harness.runner import event_frame, event_frame_slow
from harness.runtime.shoppers import Columns
from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world
from harness.scenario import load_scenario

# Few distinct times, so records and shopper rows tie often: ties keep their order,
# delivery records first.
TIMES = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5, 7.0])
TEXT = st.sampled_from(["", "a", "S-001", "PL-1", "b3"])


def assert_same(records: list, columns: Columns | None) -> None:
    fast = event_frame(records, columns)
    slow = event_frame_slow(records, columns)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert _is_normalised(fast)
    for col in ("kind", "channel"):
        assert list(fast[col].cat.categories) == list(slow[col].cat.categories)
    # What the runner does: the shopper lists are emptied as their columns are built.
    consumed = event_frame(records, columns, consume=True)
    pd.testing.assert_frame_equal(consumed, slow, check_exact=True)
    if columns is not None:
        assert len(columns) == 0 and not any(vars(columns).values())


def test_a_run_with_shoppers() -> None:
    world = build_world(load_scenario("inconsistent-channels"))
    runtime = SimRuntime(world)
    records = runtime.run()
    assert runtime.shoppers is not None and len(runtime.shoppers.columns) > 100
    assert_same(records, runtime.shoppers.columns)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.builds(
            Record,
            t=TIMES,
            kind=st.sampled_from(["send", "result", "applied", "fault"]),
            promo=TEXT,
            version=st.integers(0, 3),
            endpoint=TEXT,
            channel=st.sampled_from(["pos", "erp", ""]),
            region=TEXT,
            attempt=st.integers(0, 4),
            outcome=st.sampled_from(["", "ok", "timeout"]),
            value=st.floats(-10, 10),
            detail=TEXT,
        ),
        max_size=8,
    ),
    sales=st.lists(
        st.tuples(
            TIMES,
            st.sampled_from(["sale", "discount", "quote"]),
            TEXT,
            st.integers(0, 3),
            st.sampled_from(["pos", "ecommerce", "marketplace"]),
            st.sampled_from(["north", "", None]),  # an online endpoint has no region
            st.floats(0, 100),
            TEXT,
        ),
        max_size=12,
    ),
)
def test_any_mix_of_records_and_shopper_rows(records: list, sales: list) -> None:
    columns = Columns()
    for t, kind, promo, version, channel, region, value, detail in sorted(
        sales, key=lambda s: s[0]
    ):
        model = SimpleNamespace(id=f"{channel}-1", channel=channel, region=region)
        columns.add(t, kind, promo, version, model, value, detail)  # type: ignore[arg-type]
    assert_same(records, columns if len(columns) else None)
