"""``shared_results``: inside it a frame's inventory and publish targets are computed once
and every caller gets its own copy; outside it nothing is remembered."""

from __future__ import annotations

import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics import frame as frame_module
from harness.metrics.frame import inventory, shared_results, to_frame
from harness.metrics.propagation import publish_targets


def _log() -> pd.DataFrame:
    return to_frame(
        [
            Record(0.0, "endpoint", endpoint="S0001", channel="pos", region="east", value=5.0),
            Record(0.0, "endpoint", endpoint="web", channel="ecommerce", value=50.0),
            Record(1.0, "publish", promo="P", version=1),
            Record(1.0, "target", promo="P", version=1, endpoint="S0001", outcome="apply"),
            Record(1.0, "target", promo="P", version=1, endpoint="web", outcome="apply"),
            Record(3.0, "applied", promo="P", version=1, endpoint="S0001"),
            Record(4.0, "ack", promo="P", version=1, endpoint="web"),
        ]
    )


def _counting(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    real = frame_module._inventory

    def counted(df: pd.DataFrame) -> pd.DataFrame:
        calls.append(1)
        return real(df)

    monkeypatch.setattr(frame_module, "_inventory", counted)
    return calls


def test_inside_the_scope_a_frame_is_read_once_and_each_caller_owns_its_copy(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    calls = _counting(monkeypatch)
    df = _log()
    plain_inv, plain_targets = inventory(df), publish_targets(df)
    calls.clear()
    with shared_results():
        first = inventory(df)
        first.loc["S0001", "capacity"] = -1.0  # a caller scribbling on its copy
        second = inventory(df)
        targets = publish_targets(df)
        targets["latency"] = 0.0
        again = publish_targets(df)
    assert len(calls) == 1  # publish_targets used the shared inventory too
    pd.testing.assert_frame_equal(second, plain_inv)
    pd.testing.assert_frame_equal(again, plain_targets)


def test_outside_the_scope_nothing_is_remembered(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = _counting(monkeypatch)
    df = _log()
    with shared_results():
        inventory(df)
    inventory(df)
    inventory(df)
    assert len(calls) == 3
    # Another frame inside one scope is its own entry, not the first frame's result.
    other = to_frame([Record(0.0, "endpoint", endpoint="mkt", channel="marketplace")])
    with shared_results():
        assert list(inventory(df).index) == ["S0001", "web"]
        assert list(inventory(other).index) == ["mkt"]
