"""Time series for the live dashboard, folded incrementally out of the event log.

Pure bookkeeping (no I/O, no clock): ``PromoSeries`` takes a promotion's orchestrator
records one at a time and keeps what the dashboard draws — coverage per channel over
time (share of the endpoints a publish targeted that the orchestrator believes applied),
retries (``send`` with attempt > 1) and dead letters per second, and the recent audit
trail; ``SalesSeries`` does the same for the simulators' ``sale`` / ``discount`` ground
truth. Both are fed by ``harness.service.dashboard`` and serialized to JSON on each poll.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from harness.domain.eventlog import OPERATOR_KINDS, Record

__all__ = ["ALL", "AUDIT_KEEP", "PromoSeries", "SalesSeries"]

ALL = "all"  # the pseudo-channel of overall coverage
AUDIT_KEEP = 200  # audit records kept per promotion (the page shows the newest)
_AUDIT_KINDS = OPERATOR_KINDS | {"state", "dlq", "breaker", "budget"}


def _point(series: list[list[float]], t: float, value: float) -> None:
    """Append (t, value), replacing the last point when it has the same time."""
    t = round(t, 3)
    value = round(value, 4)
    if series and series[-1][0] == t:
        series[-1][1] = value
    elif not series or series[-1][1] != value:
        series.append([t, value])


class PromoSeries:
    """One promotion's dashboard series, updated record by record."""

    def __init__(self) -> None:
        self.targets: dict[str, set[str]] = {}
        self.applied: dict[str, set[str]] = {}
        self.coverage: dict[str, list[list[float]]] = {}
        self.retries: dict[int, int] = {}
        self.dead: dict[int, int] = {}
        self.sends = 0
        self.audit: deque[Record] = deque(maxlen=AUDIT_KEEP)
        self.published_at: float | None = None
        self.last_t = 0.0

    def add(self, r: Record) -> None:
        self.last_t = max(self.last_t, r.t)
        kind = r.kind
        if kind in _AUDIT_KINDS:
            self.audit.append(r)
        if kind == "publish" and self.published_at is None:
            self.published_at = r.t
        elif kind == "target" and r.outcome == "apply":
            self.targets.setdefault(r.channel, set()).add(r.endpoint)
            self._cover(r.t, r.channel)
        elif kind == "ack":
            applied = self.applied.setdefault(r.channel, set())
            if r.outcome == "revoke":
                applied.discard(r.endpoint)
            else:
                applied.add(r.endpoint)
            self._cover(r.t, r.channel)
        elif kind == "send":
            self.sends += 1
            if r.attempt > 1:
                sec = int(r.t)
                self.retries[sec] = self.retries.get(sec, 0) + 1
        elif kind == "dlq":
            sec = int(r.t)
            self.dead[sec] = self.dead.get(sec, 0) + 1

    def _cover(self, t: float, channel: str) -> None:
        total = len(self.targets.get(channel, ()))
        done = len(self.applied.get(channel, set()) & self.targets.get(channel, set()))
        _point(self.coverage.setdefault(channel, []), t, done / total if total else 0.0)
        all_total = sum(len(s) for s in self.targets.values())
        all_done = sum(len(self.applied.get(c, set()) & s) for c, s in self.targets.items())
        _point(self.coverage.setdefault(ALL, []), t, all_done / all_total if all_total else 0.0)

    def to_json(self, now: float, audit: int = 30) -> dict[str, Any]:
        newest = list(self.audit)[-audit:][::-1]
        return {
            "now": round(now, 3),
            "published_at": self.published_at,
            "coverage": self.coverage,
            "retries": sorted([s, n] for s, n in self.retries.items()),
            "dead_letters": sorted([s, n] for s, n in self.dead.items()),
            "totals": {
                "sends": self.sends,
                "retries": sum(self.retries.values()),
                "dead_letters": sum(self.dead.values()),
            },
            "audit": [
                {
                    "t": round(r.t, 3),
                    "kind": r.kind,
                    "version": r.version,
                    "endpoint": r.endpoint,
                    "outcome": r.outcome,
                    "detail": r.detail,
                }
                for r in newest
            ],
        }


class SalesSeries:
    """Sales (all of them) and discount granted (per promotion), per second of scenario."""

    def __init__(self) -> None:
        self.cursor: int | str = 0  # the simulators' /truth cursor (their last "next")
        self.sales: dict[int, float] = {}
        self.count = 0
        self.discount: dict[str, dict[int, float]] = {}

    def add(self, r: dict[str, Any]) -> None:
        kind = r.get("kind")
        if kind == "sale":
            sec = int(r["t"])
            self.sales[sec] = self.sales.get(sec, 0.0) + float(r["value"])
            self.count += 1
        elif kind == "discount":
            sec = int(r["t"])
            by_sec = self.discount.setdefault(str(r["promo"]), {})
            by_sec[sec] = by_sec.get(sec, 0.0) + float(r["value"])

    def to_json(self, promo: str | None, now: float) -> dict[str, Any]:
        """Cumulative sales and discount (of ``promo``) as step series of [t, money]."""
        given = self.discount.get(promo, {}) if promo else {}
        return {
            "now": round(now, 3),
            "sales_count": self.count,
            "sales_total": round(sum(self.sales.values()), 2),
            "discount_total": round(sum(given.values()), 2),
            "sales": _cumulative(self.sales),
            "discount": _cumulative(given),
        }


def _cumulative(per_sec: dict[int, float]) -> list[list[float]]:
    out: list[list[float]] = []
    total = 0.0
    for sec in sorted(per_sec):
        total += per_sec[sec]
        out.append([float(sec), round(total, 2)])
    return out
