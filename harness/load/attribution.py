"""Why each wrong price was wrong: the endpoint's modelled behaviour, or nothing modelled.

A load run's price oracle (``loadtests/oracle.py``) names each wrong price with its
endpoint and the answer's scenario time (``"not yet active: P @ S0001 t=1234.5"``).
For each such sample this module reads the run's event log over the window ``[T, at]``,
``T`` the last target of that endpoint and promotion with the operation the sample waited
for (apply for "not yet active", revoke for "stale after rollback"), and asks whether the
model alone accounts for the endpoint lacking the change at ``at``:

* **explained by the model** — an outage window of the endpoint covers the whole window
  (from ``T`` + ``tolerance``: no delivery, however prompt, could have landed); or the
  last attempt sent before ``at`` reached the endpoint on time (within ``tolerance``
  of its send; attempts matched by version and attempt number) and the model answered
  it so that the change had not landed at ``at``: refused, hung or lost (``received``
  outcome error, unavailable, throttled, rejected, hang, lost: error rates, outages, full
  queues, rate limits, lost acks) with the policy's retry not yet due (``retry_gap``:
  timeout + backoff cap + breaker open time of the channel) or dead-lettered after it;
  still in its modelled service time at ``at`` (a slow endpoint); or accepted for later
  (a batch pick-up, an asynchronous activation).
  An attempt received late or not at all still counts as the model's when the endpoint
  was down from its send on (an on-time arrival would have been refused the same).
* **unexplained** — anything else, named by what the log shows: the last attempt not
  received in time or received late (a late loop or transport), a retry overdue after a
  refusal (a late orchestrator), an attempt answered ok whose change landed past its
  modelled service time (a late estate loop), nothing sent, the change landed before the
  answer said otherwise, no target, or a reason that is no delivery delay ("unexpected
  promotion", "dialect mismatch").

Earlier attempts made late by the harness are not held against a sample the last one
explains (the endpoint was refusing then anyway). Pure: records in, counts out; times
are scenario seconds (``load`` passes 50 ms of wall time as ``tolerance``).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

NOT_YET = "not yet active"
STALE = "stale after rollback"
# An oracle failure message (loadtests/locustfile.py), inside Locust's exception repr.
MESSAGE = re.compile(
    r"(?P<reason>stale after rollback|not yet active|unexpected promotion|dialect mismatch)"
    r": (?P<promo>\S*) @ (?P<endpoint>\S+) t=(?P<at>-?[\d.]+)"
)
REFUSED = {
    "error": "endpoint error",
    "unavailable": "endpoint unavailable",
    "throttled": "endpoint throttled",
    "rejected": "endpoint rejected",
    "hang": "endpoint hung",
    "lost": "reply lost",
}
MODELLED = ("outage", *REFUSED.values(), "modelled slow service", "async pick-up")
HARNESS = (
    "sent, not received in time",
    "sent, received late",
    "retry overdue",
    "answered ok, changed late",
    "not sent",
    "changed before the answer",
    "no target",
    "not a delivery delay",
)
TOP = 20  # endpoints in the summary's table


class Sample(NamedTuple):
    reason: str
    promo: str
    endpoint: str
    at: float  # scenario s
    count: int = 1


class Attributed(NamedTuple):
    sample: Sample
    cause: str
    explained: bool


def parse_sample(message: str, count: int = 1) -> Sample | None:
    m = MESSAGE.search(message)
    if m is None:
        return None
    return Sample(m["reason"], m["promo"], m["endpoint"], float(m["at"]), count)


class _Log:
    """The records attribution needs, indexed by endpoint (and promotion)."""

    def __init__(self, records: Iterable[Any]) -> None:
        self.outages: dict[str, list[tuple[float, float]]] = defaultdict(list)
        # Outages recorded without an endpoint: every endpoint of their channel and region
        # (blank = any), as harness/metrics/recovery.py reads them.
        self.wide: list[tuple[str, str, float, float]] = []
        self.where: dict[str, tuple[str, str]] = {}  # endpoint -> (channel, region)
        self.by_key: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
        for r in records:
            if r.endpoint and r.endpoint not in self.where:
                self.where[r.endpoint] = (str(r.channel), str(r.region))
            if r.kind == "outage":
                if r.endpoint:
                    self.outages[r.endpoint].append((r.t, r.t + r.value))
                else:
                    self.wide.append((str(r.channel), str(r.region), r.t, r.t + r.value))
            elif r.kind == "target":
                self.by_key[(r.endpoint, r.promo, "target")].append(r)
            elif r.kind in ("send", "received", "dlq", "applied", "removed"):
                self.by_key[(r.endpoint, r.promo, r.kind)].append(r)
        for rows in self.by_key.values():
            rows.sort(key=lambda r: r.t)

    def down(self, endpoint: str, lo: float, hi: float) -> bool:
        """Whether ``endpoint``'s outage windows cover all of ``[lo, hi]`` between them
        (back to back or overlapping windows are one long outage)."""
        channel, region = self.where.get(endpoint, ("", ""))
        windows = [
            *self.outages.get(endpoint, ()),
            *(
                (s, end)
                for ch, rg, s, end in self.wide
                if ch in ("", channel) and rg in ("", region)
            ),
        ]
        covered = lo
        for s, end in sorted(windows):
            if s > covered:
                break
            covered = max(covered, end)
            if covered >= hi:
                return True
        return False

    def rows(self, endpoint: str, promo: str, kind: str) -> list[Any]:
        return self.by_key.get((endpoint, promo, kind), [])


def _op_of(r: Any) -> str:
    """A record's operation: a target's outcome, a send's outcome, a receipt's detail."""
    if r.kind == "received":
        return str(r.detail).split(":", 1)[0]
    return str(r.outcome)


def _window(rows: list[Any], lo: float, hi: float) -> list[Any]:
    ts = [r.t for r in rows]
    return rows[bisect.bisect_left(ts, lo) : bisect.bisect_right(ts, hi)]


def attribute(
    sample: Sample, log: _Log, tolerance: float, retry_gap: Mapping[str, float]
) -> Attributed:
    """One sample's cause (see the module docstring for the rules)."""
    if sample.reason not in (NOT_YET, STALE):
        return Attributed(sample, "not a delivery delay", False)
    e, p, at = sample.endpoint, sample.promo, sample.at
    op, changed = ("apply", "applied") if sample.reason == NOT_YET else ("revoke", "removed")
    targets = [r for r in log.rows(e, p, "target") if r.t <= at + tolerance and r.outcome == op]
    if not targets:
        return Attributed(sample, "no target", False)
    start, channel = targets[-1].t, targets[-1].channel
    landed = [r.t for r in log.rows(e, p, changed) if r.t >= start]
    if landed and landed[0] < at - tolerance:
        return Attributed(sample, "changed before the answer", False)
    if log.down(e, start + tolerance, at):
        return Attributed(sample, "outage", True)
    sends = [r for r in _window(log.rows(e, p, "send"), start, at - tolerance) if _op_of(r) == op]
    if not sends:
        return Attributed(sample, "not sent", False)
    last = sends[-1]
    reached = [
        r
        for r in _window(log.rows(e, p, "received"), last.t, at + tolerance)
        if _op_of(r) == op and (r.version, r.attempt) == (last.version, last.attempt)
    ]
    # A late or missing receipt is the harness's, unless the endpoint was down from the
    # send on: then an on-time arrival would have been refused just the same.
    if not reached:
        if log.down(e, last.t, at):
            return Attributed(sample, "outage", True)
        return Attributed(sample, "sent, not received in time", False)
    r = reached[0]
    if r.t - last.t > tolerance and not (r.outcome in REFUSED and log.down(e, last.t, r.t)):
        return Attributed(sample, "sent, received late", False)
    if r.outcome in REFUSED:
        gap = retry_gap.get(channel, retry_gap.get("default", 0.0))
        if at - r.t <= gap + tolerance or _window(log.rows(e, p, "dlq"), r.t, at):
            return Attributed(sample, REFUSED[r.outcome], True)
        return Attributed(sample, "retry overdue", False)
    if r.outcome == "accepted":
        return Attributed(sample, "async pick-up", True)
    if r.t + r.value + tolerance >= at:
        return Attributed(sample, "modelled slow service", True)
    return Attributed(sample, "answered ok, changed late", False)


def attribute_all(
    samples: Iterable[Sample],
    records: Iterable[Any],
    tolerance: float,
    retry_gap: Mapping[str, float] | None = None,
) -> list[Attributed]:
    log, gap = _Log(records), retry_gap or {}
    return [attribute(s, log, tolerance, gap) for s in samples]


def summarise_attribution(rows: list[Attributed], top: int = TOP) -> dict[str, Any]:
    """The ``load.stale_attribution`` section: counts (weighted by each sample's count),
    per cause, and the ``top`` endpoints with the most wrong prices."""
    causes: Counter[str] = Counter()
    per: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    spans: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        s = row.sample
        causes[row.cause] += s.count
        key = (s.endpoint, s.promo, s.reason)
        per[key]["explained" if row.explained else "unexplained"] += s.count
        per[key]["cause:" + row.cause] += s.count
        lo, hi = spans.get(key, [s.at, s.at])
        spans[key] = [min(lo, s.at), max(hi, s.at)]
    explained = sum(n for c, n in causes.items() if c in MODELLED)
    total = sum(causes.values())
    table = [
        {
            "endpoint": k[0],
            "promo": k[1],
            "reason": k[2],
            "samples": c["explained"] + c["unexplained"],
            "explained": c["explained"],
            "unexplained": c["unexplained"],
            "causes": ", ".join(
                f"{name[6:]} {n}" for name, n in c.most_common() if name.startswith("cause:")
            ),
            "first_at": spans[k][0],
            "last_at": spans[k][1],
        }
        for k, c in per.items()
    ]
    table.sort(key=lambda r: (-r["unexplained"], -r["samples"], r["endpoint"], r["promo"]))
    return {
        "samples": total,
        "explained": explained,
        "unexplained": total - explained,
        "by_cause": dict(sorted(causes.items())),
        "endpoints": len(table),
        "worst": table[:top],
    }


KINDS = ("outage", "target", "send", "received", "dlq", "applied", "removed")


def stale_attribution(
    samples: list[Sample],
    events: Any,
    tolerance: float,
    retry_gap: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``load.stale_attribution`` from the oracle's samples and the run's events frame."""
    rows = events.loc[events["kind"].isin(KINDS)].itertuples(index=False)
    section = summarise_attribution(attribute_all(samples, rows, tolerance, retry_gap))
    return {**section, "tolerance_s": tolerance}


def retry_gaps(policies: Mapping[str, Any], default: Any) -> dict[str, float]:
    """Per channel (and ``default``): the longest wait the delivery policy itself puts
    between a refused attempt and the next — timeout, backoff cap, breaker open time."""

    def gap(policy: Any) -> float:
        breaker = policy.breaker.open_seconds if policy.breaker is not None else 0.0
        return float(policy.timeout + policy.backoff.cap + breaker)

    return {**{c: gap(p) for c, p in policies.items()}, "default": gap(default)}


def tables(section: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report's two tables: wrong prices by cause, and the worst endpoints."""
    import pandas as pd  # the report's, not the pure core's

    by_cause = pd.DataFrame(
        [
            {"cause": c, "wrong prices": n, "explained by the model": c in MODELLED}
            for c, n in section["by_cause"].items()
        ],
        columns=["cause", "wrong prices", "explained by the model"],
    )
    title = (
        f"Load: wrong prices explained by the model {section['explained']} of "
        f"{section['samples']}, unexplained {section['unexplained']}"
    )
    worst = pd.DataFrame(section["worst"])
    return [
        (title, by_cause),
        (f"Load: wrong prices per endpoint (worst {len(section['worst'])})", worst),
    ]
