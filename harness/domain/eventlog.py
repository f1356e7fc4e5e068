"""The event log record: one flat row per thing that happened, in both runtimes.

A ``NamedTuple`` so that ``pandas.DataFrame(records)`` works directly and every metric can
be computed from the log alone (../shared/DESIGN.md, "The event log"). Missing text fields
are ``""`` and missing numbers ``0`` so that columns keep one dtype.
"""

from __future__ import annotations

from typing import NamedTuple

# Kinds written by the orchestrator, the endpoints (ground truth) and the shopper traffic.
OPERATOR_KINDS = frozenset(
    {
        "create",
        "submit",
        "validate",
        "validated",
        "approve",
        "reject",
        "schedule",
        "publish",
        "pause",
        "resume",
        "rollback",
        "end",
        "settle",
        "reconcile",
        "replay",
    }
)
DELIVERY_KINDS = frozenset({"send", "result", "ack", "dlq", "breaker", "budget", "stale"})
TRUTH_KINDS = frozenset({"applied", "removed"})
SALE_KINDS = frozenset({"sale"})
KINDS = OPERATOR_KINDS | DELIVERY_KINDS | TRUTH_KINDS | SALE_KINDS | {"state", "outage"}

# Outcomes of a delivery attempt ("result" records).
OUTCOMES = ("ok", "accepted", "error", "timeout", "throttled", "unavailable", "rejected")


class Record(NamedTuple):
    t: float
    kind: str
    promo: str = ""
    version: int = 0
    endpoint: str = ""
    channel: str = ""
    region: str = ""
    attempt: int = 0
    outcome: str = ""
    value: float = 0.0
    detail: str = ""


COLUMNS: tuple[str, ...] = Record._fields
