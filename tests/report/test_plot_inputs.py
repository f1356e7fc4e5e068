"""What the plots compute before drawing, against the metrics they stand in for."""

from __future__ import annotations

from harness.domain.eventlog import Record
from harness.metrics import to_frame
from harness.metrics.frame import channel_of, inventory
from harness.report.plots import _channel_codes


def test_channel_codes_are_channel_of() -> None:
    log = to_frame(
        [
            Record(0.0, "endpoint", endpoint="S-1", channel="pos", region="north", value=1),
            Record(1.0, "sale", endpoint="S-1", channel="pos", value=10.0),
            Record(2.0, "sale", endpoint="S-1", value=5.0),  # no channel: the inventory's
            Record(3.0, "discount", endpoint="W-1", channel="ecommerce", value=1.0),
            Record(4.0, "sale", endpoint="GHOST", value=2.0),  # nowhere: "unknown"
            Record(5.0, "sale", endpoint="W-1", channel="ecommerce", value=3.0),
        ]
    )
    rows = log[log["kind"].isin(["sale", "discount"]).to_numpy()]
    names, codes = _channel_codes(rows, inventory(log))
    assert [names[i] for i in codes] == channel_of(rows, inventory(log)).tolist()
    assert [names[i] for i in codes] == ["pos", "pos", "ecommerce", "unknown", "ecommerce"]
