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


def test_peak_attempts_is_retry_storms_peak() -> None:
    from pathlib import Path

    from harness.metrics.storm import peak_attempts, retry_storm
    from harness.runner import simulate
    from harness.scenario import load_scenario

    for scenario in (
        str(Path(__file__).parent.parent / "runtime" / "tiny.yaml"),
        "erp-quota-retry-storm",
    ):
        events = simulate(load_scenario(scenario)).events
        peak = peak_attempts(events)
        assert peak == retry_storm(events)["peak"]
        assert peak["endpoint"] is not None  # both runs send: a peak to find
