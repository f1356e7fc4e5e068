"""Figures of a system under test from the estate's ground truth alone.

The reference orchestrator writes records the metrics read ("target", "send", "ack",
"dlq"...). A system under test writes none: the harness writes, from the scenario and the
estate, what the system *should* have done ("target" records from the one scope rule,
``harness.domain.scope``), turns what the endpoints *received* into "send" records (the
retry storm as the endpoints saw it) and, when the driver can read the system's own view,
its acknowledgements into "ack" records. Figures that need that view and did not get it
are ``None`` and listed under ``not_measured`` — never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.domain.eventlog import Record
from harness.domain.promotion import Promotion
from harness.domain.scope import SYSTEM_OF_RECORD_CHANNELS, covers
from harness.metrics.slo import evaluate_slos
from harness.sut.driver import Believed

__all__ = [
    "EXPECTED",
    "STORM_INTERNALS",
    "VIEW_FIGURES",
    "ack_records",
    "endpoint_sends",
    "expected_targets",
    "mark_not_measured",
]

EXPECTED = "expected"  # detail of the "target" records the harness writes for a SUT
# Figures only the system's own view gives: what it believes was acknowledged.
VIEW_FIGURES = ("acked_t95", "ghosts")
# Orchestrator internals no estate can see.
STORM_INTERNALS = ("dead_lettered", "throttled", "breaker_opened", "budget_exhausted")


class _Scope:
    __slots__ = ("channels", "regions", "stores")

    def __init__(self, scope: Mapping[str, Sequence[str]]) -> None:
        self.channels = list(scope.get("channels", []))
        self.regions = list(scope.get("regions", []))
        self.stores = list(scope.get("stores", []))


def expected_targets(
    promotion: Promotion,
    scope: Mapping[str, Sequence[str]],
    inventory: Iterable[Record],
    *,
    t: float,
    op: str,
) -> list[Record]:
    """One "target" record per endpoint a publish (``op`` "apply") or rollback ("revoke")
    of ``promotion`` with sub-scope ``scope`` must reach, by docs/scope.md."""
    sub = _Scope(scope)
    out = []
    for inv in inventory:
        if inv.kind != "endpoint":
            continue
        region = inv.region or None
        store = inv.endpoint if inv.region else None  # a store's endpoint id is its store id
        own = inv.channel in SYSTEM_OF_RECORD_CHANNELS or promotion.scope.covers(
            inv.channel, region, store
        )
        if own and covers(sub, inv.channel, region, store, publish=op == "apply"):
            out.append(
                Record(
                    t,
                    "target",
                    promotion.id,
                    promotion.version,
                    inv.endpoint,
                    inv.channel,
                    inv.region,
                    outcome=op,
                    detail=EXPECTED,
                )
            )
    return out


def endpoint_sends(truth: Iterable[Record]) -> list[Record]:
    """A "send" record per "received" one: attempt n = the n-th time this endpoint received
    this (promo, version, op), whatever the sender called it; detail keeps its key."""
    seen: dict[tuple[str, int, str, str], int] = {}
    out = []
    for r in sorted((r for r in truth if r.kind == "received"), key=lambda r: r.t):
        op = r.detail.split(":", 1)[0]
        key = (r.promo, r.version, r.endpoint, op)
        n = seen[key] = seen.get(key, 0) + 1
        out.append(
            Record(
                r.t,
                "send",
                r.promo,
                r.version,
                r.endpoint,
                r.channel,
                r.region,
                n,
                op,
                0.0,
                r.detail,
            )
        )
    return out


def ack_records(
    believed: Mapping[str, list[Believed]], versions: Mapping[str, int], end: float
) -> tuple[list[Record], bool]:
    """ "ack" records for what the system believes acknowledged (at ``end`` when it gives no
    time), and whether every one came with its time."""
    out, timed = [], True
    for promo, rows in believed.items():
        for b in rows:
            if not b.acked:
                continue
            timed = timed and b.at is not None
            at = end if b.at is None else b.at
            out.append(
                Record(at, "ack", promo, versions.get(promo, 0), b.endpoint, outcome="apply")
            )
    return out, timed


def _blocks(summary: dict[str, Any]) -> Iterable[dict[str, Any]]:
    prop = summary.get("propagation") or {}
    if isinstance(prop.get("overall"), dict):
        yield prop["overall"]
    for group in ("by_channel", "by_promo"):
        for block in (prop.get(group) or {}).values():
            if isinstance(block, dict):
                yield block


def mark_not_measured(
    summary: dict[str, Any],
    *,
    view: bool,
    timed: bool,
    slos: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Null the figures this run could not measure, list them, and judge the SLOs again
    (an SLO on a figure not measured fails, saying so, rather than passing on a zero)."""
    missing: list[str] = []
    for block in _blocks(summary):
        if not (view and timed) and "acked_t95" in block:
            block["acked_t95"] = None
        if not view and "ghosts" in block:
            block["ghosts"] = None
        if not view and "acked" in block:
            block["acked"] = None
    if not (view and timed):
        missing.append("propagation.*.acked_t95")
    if not view:
        missing += ["propagation.*.acked", "propagation.*.ghosts"]
    storm = summary.get("retry_storm") or {}
    for key in STORM_INTERNALS:
        if key in storm:
            storm[key] = None
            missing.append(f"retry_storm.{key}")
    summary["not_measured"] = missing
    results = evaluate_slos(summary, slos)  # a figure not measured is None: its SLO fails
    summary["slos"] = results
    summary["passed"] = all(r["passed"] for r in results)
    return summary


def frame_of(records: list[Record]) -> pd.DataFrame:
    """The run's event frame, in time order (the metrics sort where they need to)."""
    from harness.metrics.frame import to_frame

    return to_frame(records).sort_values("t", kind="stable", ignore_index=True)
