"""The lifecycle table: every legal transition accepted, every other pair rejected."""

from __future__ import annotations

import itertools

import pytest

from harness.domain.lifecycle import (
    DELIVERY_EVENTS,
    EVENTS,
    PHASE_STATES,
    STATES,
    TRANSITIONS,
    IllegalTransition,
    legal_events,
    transition,
)

LEGAL = sorted(TRANSITIONS.items())
ILLEGAL = [
    (state, event)
    for state, event in itertools.product(STATES, EVENTS)
    if (state, event) not in TRANSITIONS
]


@pytest.mark.parametrize(("pair", "target"), LEGAL, ids=[f"{s}-{e}" for (s, e), _ in LEGAL])
def test_every_legal_transition_is_accepted(pair: tuple[str, str], target: str) -> None:
    state, event = pair
    assert transition(state, event) == target
    assert event in legal_events(state)


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_every_other_pair_is_rejected_naming_state_and_event(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(state, event)
    assert str(caught.value) == f"cannot '{event}' a promotion in state '{state}'"
    assert isinstance(caught.value, ValueError)
    assert (caught.value.state, caught.value.event) == (state, event)
    assert event not in legal_events(state)


def test_the_example_message() -> None:
    with pytest.raises(IllegalTransition, match=r"^cannot 'approve' a promotion in state 'draft'$"):
        transition("draft", "approve")


def test_unknown_states_and_events_are_rejected_too() -> None:
    with pytest.raises(IllegalTransition, match="cannot 'fly' a promotion in state 'draft'"):
        transition("draft", "fly")
    with pytest.raises(IllegalTransition, match="in state 'limbo'"):
        transition("limbo", "submit")


def test_the_table_speaks_only_its_own_vocabulary() -> None:
    assert len(set(STATES)) == len(STATES) and len(set(EVENTS)) == len(EVENTS)
    for (state, event), target in TRANSITIONS.items():
        assert state in STATES and event in EVENTS and target in STATES
    assert set(PHASE_STATES) <= set(STATES)
    assert set(DELIVERY_EVENTS.values()) == set(PHASE_STATES)


def test_every_state_is_reachable_from_draft() -> None:
    seen, frontier = {"draft"}, ["draft"]
    while frontier:
        state = frontier.pop()
        for event in legal_events(state):
            target = transition(state, event)
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(STATES)


def test_terminal_states() -> None:
    assert legal_events("rejected") == ()
    assert legal_events("reconciled") == ()


def test_the_happy_path() -> None:
    state = "draft"
    path = ["submit", "validate", "validation_passed", "approve", "schedule", "publish"]
    path += ["all_acked", "end", "settle", "reconcile"]
    visited = []
    for event in path:
        state = transition(state, event)
        visited.append(state)
    assert visited == [
        "submitted",
        "submitted",
        "validated",
        "approved",
        "scheduled",
        "publishing",
        "active",
        "ended",
        "settled",
        "reconciled",
    ]


def test_pause_and_resume_never_change_the_state() -> None:
    for state in STATES:
        for event in ("pause", "resume"):
            if (state, event) in TRANSITIONS:
                assert transition(state, event) == state


def test_delivery_events_move_between_phase_states_only() -> None:
    for (state, event), target in TRANSITIONS.items():
        if event in DELIVERY_EVENTS:
            assert state in PHASE_STATES and target == DELIVERY_EVENTS[event] != state
