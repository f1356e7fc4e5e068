"""The live runtime's journal: every event round-trips through JSON; the store is atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.domain.eventlog import Record
from harness.orchestrator import events as ev
from harness.runtime import codec
from harness.runtime.store import Store
from harness.scenario import load_scenario

TINY = Path(__file__).with_name("tiny.yaml")


def every_event() -> list[object]:
    promotion = load_scenario(TINY).promotions[0]
    scope = ev.TargetScope(("pos",), ("east",), ("S0001", "S0002"))
    return [
        ev.CreateDraft(promotion),
        ev.Submit("P1"),
        ev.Validate("P1"),
        ev.Approve("P1", actor="alice"),
        ev.Reject("P1", reason="no budget"),
        ev.Schedule("P1", 120.5, scope),
        ev.Publish("P1", scope),
        ev.Pause("P1", "pos"),
        ev.Resume("P1", "pos"),
        ev.Rollback("P1", scope, deadline=30.0),
        ev.End("P1"),
        ev.Settle("P1"),
        ev.Reconcile("P1"),
        ev.ReplayDeadLetters(),
        ev.ReplayDeadLetters("P1", "S0001"),
        ev.ValidationResult("P1", 1, False, ("budget", "sku")),
        ev.DeliveryResult("d", "S0001", "P1", 1, "apply", 3, "throttled", 429, 2.5, "x"),
        ev.Ack("S0001", "P1", 2, "revoke", "webhook"),
        ev.TimerFired("retry:d:2", ("d", 2)),
    ]


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips(event: object) -> None:
    text = codec.encode(event)
    json.loads(text)  # plain JSON
    assert codec.decode(text) == event


def test_every_event_type_is_covered() -> None:
    assert {type(e).__name__ for e in every_event()} == set(codec.EVENT_TYPES)


def test_store_journals_events_with_their_records_atomically(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    r1 = Record(1.0, "submit", "P1", 1)
    r2 = Record(1.0, "state", "P1", 1, detail="draft->submitted")
    seq = store.append(1.0, codec.encode(ev.Submit("P1")), [r1, r2])
    assert seq == 1
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll the whole event back
        store.append(2.0, codec.encode(ev.Approve("P1")), [Record(2.0, "approve", "P1", 1), None])  # type: ignore[list-item]
    assert store.journal_length() == 1
    assert [r for _, r in store.records()] == [r1, r2]
    store.close()
    # Reopened (as after a crash): the same journal and trail, and the metadata.
    again = Store(tmp_path / "state.db")
    again.put("epoch", 123.5)
    assert [codec.decode(text) for _, _, text in again.journal()] == [ev.Submit("P1")]
    assert [seq for seq, _ in again.records()] == [1, 2]
    assert again.get("epoch") == "123.5"
    assert [r for _, r in again.records(since=1)] == [r2]
