"""Workflow states of a promotion and the ONE table that owns their transitions.

Nothing else decides whether a promotion may move: the orchestrator asks ``transition``
and turns an :class:`IllegalTransition` into the driver's error (HTTP 409 in the service).

The happy path::

    draft -submit-> submitted -validate-> submitted -validation_passed-> validated
      -approve-> approved [-schedule-> scheduled] -publish-> publishing
      -all_acked-> active -end-> ended -settle-> settled -reconcile-> reconciled

Two kinds of event drive it:

* **operator events** (``submit``, ``approve``, ``publish``, ``rollback``, ``end``...), one
  per operator command;
* **delivery events** (``all_acked``, ``some_dead_lettered``, ``deliveries_outstanding``,
  ``revocations_outstanding``, ``all_revoked``) and the ERP's validation answer
  (``validation_passed`` / ``validation_failed``). The orchestrator derives the delivery
  events from its per-endpoint deliveries after every event it handles; each one is named
  after the state it leads to, because the delivery phase is a function of the deliveries
  alone: revocations outstanding -> rolling_back; else applies outstanding -> publishing;
  else applied somewhere -> active, or partially_active when some endpoint was
  dead-lettered; else (everything taken back) -> rolled_back. Replays, partial rollbacks
  and scope-extending publishes can lead from any of those five phase states to any other,
  so all such pairs are legal.

Refinements of the brief's state list, and why:

* **no promotion-wide ``paused`` state.** A pause holds one channel of one promotion while
  the other channels go on, so the promotion itself stays publishing/active/...; a single
  ``paused`` state would also lose which of those to return to on resume. ``pause`` and
  ``resume`` are therefore self-loops: the table still owns *when* they are legal, and the
  held deliveries show as ``held`` in the orchestrator's delivery view.
* **a partial rollback ends where the remaining endpoints are**: when every endpoint of
  the rollback scope is revoked (or dead-lettered) and endpoints outside it still carry
  the promotion, ``rolling_back`` goes to ``active`` / ``partially_active`` (or back to
  ``publishing`` if some of their applies are still under way); ``rolled_back`` means no
  endpoint is meant to carry it any more.
* ``rolled_back`` may be published again (a new revision is applied), and ``ended`` is
  reachable only when nothing is in flight (not from publishing/rolling_back): ending
  does not take the promotion off the endpoints, a rollback does.
"""

from __future__ import annotations

__all__ = [
    "DELIVERY_EVENTS",
    "EVENTS",
    "OPERATOR_EVENTS",
    "PHASE_STATES",
    "STATES",
    "TRANSITIONS",
    "IllegalTransition",
    "legal_events",
    "transition",
]

STATES: tuple[str, ...] = (
    "draft",
    "submitted",
    "validated",
    "rejected",
    "approved",
    "scheduled",
    "publishing",
    "active",
    "partially_active",
    "rolling_back",
    "rolled_back",
    "ended",
    "settled",
    "reconciled",
)

# The states whose successor the delivery events decide (see the module docstring).
PHASE_STATES: tuple[str, ...] = (
    "publishing",
    "active",
    "partially_active",
    "rolling_back",
    "rolled_back",
)

# Delivery event -> the phase state it leads to.
DELIVERY_EVENTS: dict[str, str] = {
    "deliveries_outstanding": "publishing",
    "all_acked": "active",
    "some_dead_lettered": "partially_active",
    "revocations_outstanding": "rolling_back",
    "all_revoked": "rolled_back",
}

# States where a pause/resume is meaningful: from approval (hold a channel before the
# sale goes out) until nothing more will ever be delivered.
_HOLDABLE = ("approved", "scheduled", *PHASE_STATES)

_OPERATOR_TABLE: dict[tuple[str, str], str] = {
    ("draft", "submit"): "submitted",
    # Asking again is allowed: the ERP may not have answered the first request.
    ("submitted", "validate"): "submitted",
    ("submitted", "validation_passed"): "validated",
    ("submitted", "validation_failed"): "rejected",
    ("submitted", "reject"): "rejected",
    ("validated", "reject"): "rejected",
    ("validated", "approve"): "approved",
    ("approved", "schedule"): "scheduled",
    ("scheduled", "schedule"): "scheduled",  # reschedule
    ("approved", "publish"): "publishing",
    ("scheduled", "publish"): "publishing",
    # Publishing to a further scope (a phased roll-out) or again after a rollback.
    ("publishing", "publish"): "publishing",
    ("active", "publish"): "publishing",
    ("partially_active", "publish"): "publishing",
    ("rolled_back", "publish"): "publishing",
    ("publishing", "rollback"): "rolling_back",
    ("active", "rollback"): "rolling_back",
    ("partially_active", "rollback"): "rolling_back",
    ("rolling_back", "rollback"): "rolling_back",  # widen a rollback under way
    ("approved", "end"): "ended",
    ("scheduled", "end"): "ended",
    ("active", "end"): "ended",
    ("partially_active", "end"): "ended",
    ("rolled_back", "end"): "ended",
    ("ended", "settle"): "settled",
    ("settled", "reconcile"): "reconciled",
    **{(state, "pause"): state for state in _HOLDABLE},
    **{(state, "resume"): state for state in _HOLDABLE},
}

TRANSITIONS: dict[tuple[str, str], str] = {
    **_OPERATOR_TABLE,
    **{
        (state, event): target
        for state in PHASE_STATES
        for event, target in DELIVERY_EVENTS.items()
        if target != state
    },
}

OPERATOR_EVENTS: tuple[str, ...] = tuple(
    dict.fromkeys(event for (_, event) in _OPERATOR_TABLE if event not in DELIVERY_EVENTS)
)
EVENTS: tuple[str, ...] = (*OPERATOR_EVENTS, *DELIVERY_EVENTS)


class IllegalTransition(ValueError):
    """An event the promotion's current state does not allow (HTTP 409 at the service)."""

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"cannot '{event}' a promotion in state '{state}'")
        self.state = state
        self.event = event


def transition(state: str, event: str) -> str:
    """The state ``event`` leads to from ``state``; raises :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def legal_events(state: str) -> tuple[str, ...]:
    """The events ``state`` accepts, in table order."""
    return tuple(event for (source, event) in TRANSITIONS if source == state)
