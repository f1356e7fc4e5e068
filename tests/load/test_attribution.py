"""Wrong prices attributed to the endpoint's modelled behaviour, or to nothing modelled:
hand-made event logs, each built so that exactly one rule decides (harness/load/attribution.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.domain.eventlog import Record
from harness.load.attribution import (
    HARNESS,
    MODELLED,
    NOT_YET,
    STALE,
    Sample,
    attribute_all,
    parse_sample,
    stale_attribution,
    summarise_attribution,
)
from harness.load.figures import stale_samples

E, P = "S0007", "PROMO"
TOL = 1.0


def _r(
    t: float, kind: str, outcome: str = "", value: float = 0.0, detail: str = "", n: int = 1
) -> Record:
    return Record(t, kind, P, 1, E, "pos", "north", n, outcome, value, detail)


def _recv(t: float, outcome: str, service: float = 0.1, op: str = "apply", n: int = 1) -> Record:
    return _r(t, "received", outcome, service, f"{op}:k{t}", n)


PUBLISH = [_r(600, "target", "apply"), _r(600.2, "send", "apply")]
LATE = Sample(NOT_YET, P, E, 1600.0)  # publish 600 + grace 900 < 1600


def _cause(records: list[Record], sample: Sample = LATE) -> tuple[str, bool]:
    (row,) = attribute_all([sample], records, TOL, {"pos": GAP})
    return row.cause, row.explained


GAP = 310.0  # the pos policy's longest wait between attempts (timeout + backoff cap)


def test_modelled_causes_explain_a_late_price() -> None:
    # an outage from before the publish to after the answer: no delivery could land
    outage = Record(500, "outage", endpoint=E, value=1200, detail="refuse")
    assert _cause([*PUBLISH, outage]) == ("outage", True)
    # the last attempt (600.2) reached the endpoint on time and was refused; the retry
    # is due within GAP of 1500.3
    retried = [*PUBLISH, _recv(600.3, "error"), _r(1500.2, "send", "apply", n=2)]
    assert _cause([*retried, _recv(1500.3, "error", n=2)]) == ("endpoint error", True)
    assert _cause([*retried, _recv(1500.3, "unavailable", n=2)]) == (
        "endpoint unavailable",
        True,
    )
    assert _cause([*PUBLISH, _recv(600.3, "lost"), _r(700, "dlq")]) == ("reply lost", True)
    # in service at the answer: received 600.3, modelled service 1200 s (a slow endpoint)
    assert _cause([*PUBLISH, _recv(600.3, "ok", service=1200)]) == ("modelled slow service", True)
    # accepted for a later pick-up (batch store, asynchronous activation)
    assert _cause([*PUBLISH, _recv(600.3, "accepted")]) == ("async pick-up", True)


def test_what_the_model_does_not_account_for_is_unexplained() -> None:
    # refused at 600.3, then no retry for 1000 s (> GAP) and no dead letter
    assert _cause([*PUBLISH, _recv(600.3, "error")]) == ("retry overdue", False)
    # an outage that ends before the answer does not cover the window
    short = Record(500, "outage", endpoint=E, value=600, detail="refuse")
    assert _cause([*PUBLISH, short, _recv(600.3, "unavailable")]) == ("retry overdue", False)
    # ...nor one that starts after the publish (a prompt delivery would have landed)
    after = Record(700, "outage", endpoint=E, value=2000, detail="refuse")
    assert _cause([*PUBLISH, after]) == ("sent, not received in time", False)
    # sent at 600.2, never received (a late estate loop or transport), or received late
    assert _cause(PUBLISH) == ("sent, not received in time", False)
    assert _cause([*PUBLISH, _recv(640, "error")]) == ("sent, received late", False)
    # answered ok at 600.3 after 0.1 s of modelled service, the change only at 1700
    late = [*PUBLISH, _recv(600.3, "ok"), _r(1700, "applied")]
    assert _cause(late) == ("answered ok, changed late", False)
    # the change landed at 700, the answer at 1600 still said otherwise
    assert _cause([*PUBLISH, _recv(600.3, "ok"), _r(700, "applied")]) == (
        "changed before the answer",
        False,
    )
    assert _cause([_r(600, "target", "apply")]) == ("not sent", False)
    assert _cause([]) == ("no target", False)
    assert _cause(PUBLISH, Sample("dialect mismatch", "d1", E, 900)) == (
        "not a delivery delay",
        False,
    )


def test_only_the_last_attempt_before_the_answer_counts() -> None:
    # attempt 1 was received late (the harness), attempt 2 on time and refused: the
    # endpoint was refusing anyway, the model explains the sample
    retried = [
        *PUBLISH,
        _recv(640, "error"),
        _r(1500, "send", "apply", n=2),
        _recv(1500.2, "error", n=2),
    ]
    assert _cause(retried) == ("endpoint error", True)
    # an attempt sent after the answer does not count: attempt 1 decides (accepted)
    later = [_r(1600.5, "send", "apply", n=2), _recv(1600.6, "ok", service=5, n=2)]
    assert _cause([*PUBLISH, _recv(600.3, "accepted"), *later]) == ("async pick-up", True)


def test_a_late_receipt_inside_an_outage_is_the_models() -> None:
    # down 1000..2000: attempt 2 sent at 1500 was received late (1550) or not at all,
    # but on time it would have been refused all the same
    down = Record(1000, "outage", endpoint=E, value=1000, detail="refuse")
    first = [*PUBLISH, _recv(600.3, "error"), down, _r(1500, "send", "apply", n=2)]
    assert _cause([*first, _recv(1550, "unavailable", n=2)]) == ("endpoint unavailable", True)
    assert _cause(first) == ("outage", True)
    # sent at 900, before the outage: an on-time arrival could have landed
    early = [*PUBLISH, _recv(600.3, "error"), down, _r(900, "send", "apply", n=2)]
    assert _cause([*early, _recv(1050, "unavailable", n=2)]) == ("sent, received late", False)
    assert _cause(early) == ("sent, not received in time", False)


def test_a_stale_price_after_rollback_reads_the_revoke() -> None:
    revoke = [
        *PUBLISH,
        _recv(600.3, "ok"),
        _r(600.4, "applied"),
        _r(2400, "target", "revoke"),
        _r(2400.1, "send", "revoke"),
    ]
    sample = Sample(STALE, P, E, 2700.0)
    assert _cause([*revoke, _recv(2400.2, "hang", service=0, op="revoke")], sample) == (
        "endpoint hung",
        True,
    )
    # the apply's receipt (op apply) is no answer to the revoke: never received
    assert _cause(revoke, sample) == ("sent, not received in time", False)


def test_counts_weigh_samples_and_rank_unexplained_endpoints_first() -> None:
    other = "S0009"
    records = [
        *PUBLISH,
        _recv(600.3, "error"),
        Record(600, "target", P, 1, other, "pos", "", 1, "apply"),
    ]
    samples = [LATE._replace(count=3), Sample(NOT_YET, P, other, 1601.0, 2)]
    section = summarise_attribution(attribute_all(samples, records, TOL, {"default": 1000}))
    assert (section["samples"], section["explained"], section["unexplained"]) == (5, 3, 2)
    assert section["by_cause"] == {"endpoint error": 3, "not sent": 2}
    assert [r["endpoint"] for r in section["worst"]] == [other, E]
    assert section["worst"][1]["causes"] == "endpoint error 3"
    assert set(MODELLED).isdisjoint(HARNESS)


def test_failure_messages_give_the_samples(tmp_path: Path) -> None:
    assert parse_sample("CatchResponseError('not yet active: P-1 @ S0001 t=1234.5')", 4) == (
        Sample(NOT_YET, "P-1", "S0001", 1234.5, 4)
    )
    assert parse_sample("CatchResponseError('not yet active: P-1')") is None  # no endpoint
    prefix = tmp_path / "locust"
    rows = [
        "Method,Name,Error,Occurrences,First Seen,Last Seen",
        "POST,price pos,CatchResponseError('stale after rollback: P @ S1 t=10.0'),2,a,b",
        "POST,operator rollback,CatchResponseError('stale after rollback: P @ S1 t=9.0'),1,a,b",
        "POST,price web,HTTP 503,1,a,b",
    ]
    Path(f"{prefix}_failures.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert stale_samples(prefix) == [Sample(STALE, "P", "S1", 10.0, 2)]
    events = pd.DataFrame([*PUBLISH, _recv(600.3, "error")])
    section = stale_attribution([LATE], events, TOL, {"pos": 1000})
    assert section["explained"] == 1 and section["tolerance_s"] == TOL


def test_back_to_back_and_region_wide_outages_cover_the_window_together() -> None:
    # 500-1100 then 1100-1800 (a random outage ending as a scheduled one starts): together
    # they cover the publish (600) to the answer (1600); neither alone does.
    first = Record(500, "outage", endpoint=E, value=600, detail="refuse")
    second = Record(1100, "outage", endpoint=E, value=700, detail="refuse")
    assert _cause([*PUBLISH, first, second]) == ("outage", True)
    assert _cause([*PUBLISH, second]) == ("sent, not received in time", False)
    # An outage recorded for the endpoint's region and channel, with no endpoint, is its
    # outage too; another region's is not.
    north = Record(500, "outage", channel="pos", region="north", value=1200, detail="refuse")
    south = Record(500, "outage", channel="pos", region="south", value=1200, detail="refuse")
    assert _cause([*PUBLISH, north]) == ("outage", True)
    assert _cause([*PUBLISH, south]) == ("sent, not received in time", False)
