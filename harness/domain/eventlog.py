"""The event log record: one flat row per thing that happened, in both runtimes.

A ``NamedTuple`` so that ``pandas.DataFrame(records)`` works directly and every metric can
be computed from the log alone (docs/architecture.md, "The event log"). Missing text fields
are ``""`` and missing numbers ``0`` so that columns keep one dtype.
"""

from __future__ import annotations

from typing import NamedTuple

# The record vocabulary. Both runtimes write exactly these; metrics read nothing else.
#
# inventory (t=0)  endpoint: one per endpoint; value = capacity (requests/s it serves),
#                  detail = "realtime" | "batch"
# operator         create submit validate validated approve reject schedule publish pause
#                  resume rollback end settle reconcile replay: one per command, promo-level;
#                  publish/rollback detail = the scope as JSON, rollback value = deadline (s)
# targets          target: one per endpoint a publish or rollback covers, at its time;
#                  outcome = "apply" | "revoke"
# lifecycle        state: detail = "from->to"
# delivery         send (attempt n), result (outcome, value = latency s), ack, dlq, stale
#                  (an ignored stale result/ack), breaker (outcome = new state), budget
#                  (outcome = "exhausted"), throttle (outcome = "rate" | "concurrency")
# ground truth     applied / removed: the endpoint's own state changed (version);
#                  received: a delivery attempt reached the endpoint (live estate): attempt
#                  as sent, outcome = the answer it gave (ok accepted throttled unavailable
#                  error rejected, or hang / lost), value = its modelled service time (s),
#                  detail = "op:idempotency key"
# faults           outage: value = duration (s), detail = cause; the record's t = its start;
#                  fault: a switched fault (error rate, lost acks, quota), same fields
# shoppers         sale: value = total paid, detail = sale id; discount: one per promotion
#                  that gave money on a sale, value = amount, detail = sale id; quote: a
#                  sampled shelf price, value = price, detail = "sku@sample"
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
DELIVERY_KINDS = frozenset(
    {"target", "send", "result", "ack", "dlq", "stale", "breaker", "budget", "throttle"}
)
TRUTH_KINDS = frozenset({"applied", "removed"})
TRAFFIC_KINDS = frozenset({"received"})
SHOPPER_KINDS = frozenset({"sale", "discount", "quote"})
KINDS = (
    OPERATOR_KINDS
    | DELIVERY_KINDS
    | TRUTH_KINDS
    | TRAFFIC_KINDS
    | SHOPPER_KINDS
    | {"endpoint", "state", "outage", "fault"}
)

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
