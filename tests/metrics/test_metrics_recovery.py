"""Recovery figures from hand-written event logs, each figure derived by hand.

The log: one endpoint E (capacity 10/s), one attempt a second at integer t with its ok
result half a second later; a fault from 40 to 50. From 40 to 54 every second brings two
attempts (1 and 2, at t and t + 0.5): both time out until 49, from 50 the second one
succeeds (at t + 0.75). From 55 on it is one attempt a second again.
"""

from __future__ import annotations

import pytest

from harness.domain.eventlog import Record
from harness.metric_paths import unknown_metric
from harness.metrics import summarise
from harness.metrics.recovery import fault_windows, recovery
from harness.metrics.storm import retry_storm


def _send(t: float, n: int, attempt: int = 1, ep: str = "E") -> Record:
    return Record(t, "send", f"r{n}", endpoint=ep, channel="erp", attempt=attempt)


def _result(t: float, n: int, outcome: str, attempt: int = 1, ep: str = "E") -> Record:
    return Record(
        t, "result", f"r{n}", endpoint=ep, channel="erp", attempt=attempt, outcome=outcome
    )


def _inventory(ep: str = "E") -> Record:
    return Record(0.0, "endpoint", endpoint=ep, channel="erp", value=10.0, detail="realtime")


def _fault(start: float, duration: float, ep: str = "E") -> Record:
    return Record(start, "fault", endpoint=ep, channel="erp", value=duration, detail="capacity:0.2")


def storm_log(*, heals_at: int = 55, until: int = 100) -> list[Record]:
    log = [_inventory(), _fault(40.0, 10.0)]
    for t in range(until):
        if 40 <= t < heals_at:
            log += [_send(t, t), _result(t + 0.25, t, "timeout"), _send(t + 0.5, t, 2)]
            ok = t >= 50
            log.append(_result(t + 0.75, t, "ok" if ok else "timeout", 2))
        else:
            log += [_send(t, t), _result(t + 0.5, t, "ok")]
    return sorted(log, key=lambda r: r.t)


def test_recovery_time_goodput_and_waste_by_hand() -> None:
    (w,) = recovery(storm_log())
    # Pre-fault [10, 40): 30 attempts, 30 successes (10.5 .. 39.5).
    assert w["pre_fault"] == {"attempt_rate": 1.0, "success_rate": 1.0}
    # [50 + j, 55 + j): j = 0..4 still hold doubled attempts (10, 9, 8, 7, 6 of them); j = 5
    # ([55, 60)) has 5 attempts and 5 successes (55.5 .. 59.5).
    assert w["recovery_seconds"] == 5.0
    assert w["sustained"] is False
    # Sent in [40, 55): 15 seconds x 2 = 30; timed out: 10 x 2 (t = 40..49) + 5 (t = 50..54).
    assert w["attempts"] == 30
    assert w["wasted_attempts"] == 25
    assert w["wasted_share"] == pytest.approx(25 / 30)
    # Nothing succeeds in [40, 50); after: [50, 99.5) (the last record) holds 50.75 .. 54.75
    # and 55.5 .. 98.5: 5 + 44.
    assert w["goodput"] == {"before": 1.0, "during": 0.0, "after": pytest.approx(49 / 49.5)}
    assert (w["start"], w["end"], w["where"], w["cause"]) == (40.0, 50.0, "E", "capacity:0.2")


def test_a_storm_that_never_heals_is_sustained() -> None:
    (w,) = recovery(storm_log(heals_at=100))
    assert w["sustained"] is True
    assert w["recovery_seconds"] is None
    storm = retry_storm(storm_log(heals_at=100))
    assert storm["sustained"] is True and storm["recovery_seconds"] is None


def test_a_window_cut_short_by_the_run_end_is_sustained() -> None:
    # Heals at 55 but the last record is at 59.5: no full 5 s window [55, 60) fits, unless
    # the run is said to last until 60.
    (w,) = recovery(storm_log(until=60))
    assert w["sustained"] is True
    (w,) = recovery(storm_log(until=60), horizon=60.0)
    assert w["recovery_seconds"] == 5.0


def test_a_quiet_endpoint_recovers_when_its_retries_stop() -> None:
    # No traffic before the fault (level 0): recovered once a 5 s window holds no attempt.
    log = [_inventory(), _fault(40.0, 10.0)]
    for i, t in enumerate((41.0, 44.0, 50.0, 52.5, 53.0)):
        log += [_send(t, i), _result(t + 3.0, i, "timeout")]
    log.append(Record(90.0, "sale", endpoint="S1"))  # the run goes on to 90
    (w,) = recovery(sorted(log, key=lambda r: r.t))
    assert w["pre_fault"] == {"attempt_rate": 0.0, "success_rate": 0.0}
    # Windows from 50: [50, 55) .. [53, 58) hold an attempt; [54, 59) is the first without.
    assert w["recovery_seconds"] == 4.0


def test_no_pre_fault_span_means_no_verdict() -> None:
    log = [_inventory(), _fault(3.0, 5.0), _send(4.0, 1), _result(4.5, 1, "ok")]
    (w,) = recovery([*log, Record(60.0, "sale", endpoint="S1")])
    assert w["sustained"] is None and w["recovery_seconds"] is None


def test_switched_fault_records_make_one_window_and_broad_outages_cover_their_channel() -> None:
    log = [_inventory("A"), _inventory("B"), _fault(40.0, 10.0, "A"), _fault(40.0, 10.0, "B")]
    log.append(Record(100.0, "outage", channel="erp", value=5.0, detail="maintenance"))
    windows = fault_windows(log)
    assert [(w.start, w.end, w.endpoints, w.kind) for w in windows] == [
        (40.0, 50.0, ("A", "B"), "fault"),
        (100.0, 105.0, ("A", "B"), "outage"),
    ]
    assert [w.where for w in windows] == ["2 endpoints", "erp"]


def test_the_next_fault_bounds_the_search() -> None:
    # A second fault at 57 on E: the windows after the first must end by 57, so [50 + j,
    # 55 + j) for j <= 2 only — all still storming: sustained until the next fault.
    log = [*storm_log(), _fault(57.0, 2.0)]
    first = recovery(sorted(log, key=lambda r: r.t))[0]
    assert first["sustained"] is True


def test_no_fault_gives_no_windows_and_slo_ready_scalars() -> None:
    log = [_inventory(), _send(1.0, 1), _result(1.5, 1, "ok")]
    storm = retry_storm(log)
    assert storm["recovery"] == []
    assert storm["recovery_seconds"] is None and storm["sustained"] is False
    # Existing keys keep their meaning.
    assert storm["amplification"] == 1.0 and storm["attempts"] == 1


def test_recovery_figures_are_slo_paths_in_the_summary() -> None:
    assert unknown_metric("retry_storm.recovery_seconds", [], 0) is None
    assert unknown_metric("retry_storm.sustained", [], 0) is None
    summary = summarise(storm_log(), scenario="x", seed=0, mode="sim")
    assert summary["retry_storm"]["recovery_seconds"] == 5.0
    assert summary["retry_storm"]["recovery"][0]["wasted_attempts"] == 25


def test_the_recovery_plot_draws_the_worst_window(tmp_path) -> None:
    from harness.report.recovery_plot import plot_recovery, worst_window

    assert plot_recovery([_inventory(), _send(1.0, 1)], tmp_path / "none.png") is None
    path = plot_recovery(storm_log(), tmp_path / "recovery.png")
    assert path is not None and path.stat().st_size > 0
    windows = [
        {"sustained": False, "recovery_seconds": 3.0},
        {"sustained": True, "recovery_seconds": None},
        {"sustained": False, "recovery_seconds": 9.0},
    ]
    assert worst_window(windows) == 1
    assert worst_window(windows[::2]) == 1  # the 9 s one


def test_a_fault_that_lasts_until_the_run_ends_is_not_a_sustained_storm() -> None:
    """No window fits after the fault: recovery cannot be told, and is not 'sustained'
    (the default scenario's last random store outage ran to the end of the run and its
    report called the storm sustained, with no attempt anywhere in it)."""
    from harness.domain.eventlog import Record
    from harness.metrics.recovery import recovery, recovery_summary

    log = [
        Record(0.0, "endpoint", endpoint="S1", channel="pos", region="east", value=4.0),
        Record(100.0, "outage", endpoint="S1", channel="pos", value=98.0, detail="refuse"),
        Record(200.0, "applied", promo="P", version=1, endpoint="S2"),
    ]
    (window,) = recovery(log)
    assert window["sustained"] is None and window["recovery_seconds"] is None
    assert recovery_summary([window]) == {"recovery_seconds": None, "sustained": False}
