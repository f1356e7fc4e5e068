"""Retry-storm metrics: how much extra load the orchestrator's retries put on the estate.

Read from the "send" records (one per delivery attempt), the endpoint inventory
(capacity), "outage" records and "dlq" records (../shared/DESIGN.md, "Metrics —
definitions"). Produces amplification, peak attempt rate over capacity, retry share
around outages and the dead-letter count, double applications (ground truth), plus the
attempts-per-second series for plots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import channel_of, inventory, to_frame
from harness.metrics.recovery import recovery, recovery_summary

__all__ = [
    "AFTER_OUTAGE_S",
    "DOUBLE_EXAMPLES",
    "attempts_per_second",
    "double_applied",
    "outage_flags",
    "retry_storm",
]

# How long after an outage ends its backlog of retries is still counted as outage load.
AFTER_OUTAGE_S = 60.0
DOUBLE_EXAMPLES = 20


def _share(retry: pd.Series) -> float | None:
    return float(retry.mean()) if len(retry) else None


def outage_flags(df: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``rows`` (e.g. sends): ``during`` / ``after`` an outage of its endpoint.

    An outage record covers [t, t + value] (value = duration). ``during`` = inside one;
    ``after`` = within ``AFTER_OUTAGE_S`` after one ends and not during any. An outage whose
    ``endpoint`` is blank covers every endpoint matching its ``channel`` and ``region``
    (blank = any), so an estate- or region-wide fault needs one record.
    """
    inv = inventory(df)
    out = df.loc[df["kind"] == "outage", ["endpoint", "channel", "region", "t", "value"]]
    out = out.assign(end=out["t"] + out["value"]).astype({"channel": object})
    during = np.zeros(len(rows), dtype=bool)
    after = np.zeros(len(rows), dtype=bool)
    if len(rows) == 0 or len(out) == 0:
        return pd.DataFrame({"during": during, "after": after}, index=rows.index)
    t = rows["t"].to_numpy(dtype=np.float64)
    # Per-endpoint outages: join on endpoint, so cost is sends x outages-of-that-endpoint.
    own = out[out["endpoint"] != ""]
    if len(own):
        left = pd.DataFrame(
            {"_row": np.arange(len(rows)), "endpoint": rows["endpoint"].to_numpy(), "t": t}
        )
        j = left.merge(own[["endpoint", "t", "end"]].rename(columns={"t": "start"}), on="endpoint")
        in_d = (j["t"] >= j["start"]) & (j["t"] <= j["end"])
        in_a = (j["t"] > j["end"]) & (j["t"] <= j["end"] + AFTER_OUTAGE_S)
        during[j.loc[in_d, "_row"].to_numpy()] = True
        after[j.loc[in_a, "_row"].to_numpy()] = True
    broad = out[out["endpoint"] == ""]
    if len(broad):
        channel = channel_of(rows, inv).to_numpy(dtype=object)
        region = (
            rows["region"]
            .astype(object)
            .where(rows["region"] != "", rows["endpoint"].map(inv["region"]).astype(object))
            .fillna("")
            .to_numpy(dtype=object)
        )
        for o in broad.itertuples(index=False):
            match = np.ones(len(rows), dtype=bool)
            if o.channel:
                match &= channel == o.channel
            if o.region:
                match &= region == o.region
            during |= match & (t >= o.t) & (t <= o.end)
            after |= match & (t > o.end) & (t <= o.end + AFTER_OUTAGE_S)
    return pd.DataFrame({"during": during, "after": after & ~during}, index=rows.index)


def _peak(df: pd.DataFrame, sends: pd.DataFrame) -> dict[str, Any]:
    """Max over endpoints (with capacity > 0) of max over 1 s windows [floor(t), floor(t)+1)
    of sends to the endpoint, divided by its capacity; ties go to the first endpoint by
    name, then the earliest window."""
    none = {"ratio": None, "endpoint": None, "t": None, "attempts": None, "capacity": None}
    if sends.empty:
        return none
    counts = (
        sends.assign(window=np.floor(sends["t"].to_numpy()))
        .groupby(["endpoint", "window"], sort=False)
        .size()
        .reset_index(name="attempts")
    )
    counts["capacity"] = counts["endpoint"].map(inventory(df)["capacity"]).fillna(0.0)
    counts = counts[counts["capacity"] > 0]
    if counts.empty:
        return none
    counts["ratio"] = counts["attempts"] / counts["capacity"]
    best = counts.sort_values(
        ["ratio", "endpoint", "window"], ascending=[False, True, True], kind="stable"
    ).iloc[0]
    return {
        "ratio": float(best["ratio"]),
        "endpoint": str(best["endpoint"]),
        "t": float(best["window"]),
        "attempts": int(best["attempts"]),
        "capacity": float(best["capacity"]),
    }


def double_applied(df: pd.DataFrame) -> dict[str, Any]:
    """A version applied twice: an "applied" of (P, v) at an endpoint whose previous ground
    truth record for P there is an "applied" of the same v (no removal in between) — a
    non-idempotent endpoint storing a second copy, the harm a duplicate retry does.

    Read from the ground truth alone (the endpoint's own "double" label is not trusted).
    A re-apply after a removal is the rollback oracle's ``resurrected``, not counted here.
    ``count``; ``examples``: up to 20 of {promo, version, endpoint, t}, earliest first.
    """
    truth = df.loc[
        df["kind"].isin(["applied", "removed"]), ["t", "kind", "promo", "version", "endpoint"]
    ]
    truth = truth.sort_values("t", kind="stable")
    applied = (truth["kind"].astype(object) == "applied").to_numpy()
    by = truth.groupby(["promo", "endpoint"], sort=False)
    prev_applied = by["kind"].shift(1).astype(object).eq("applied").to_numpy()
    same = (by["version"].shift(1) == truth["version"]).to_numpy()
    twice = truth[applied & prev_applied & same].head(DOUBLE_EXAMPLES)
    return {
        "count": int((applied & prev_applied & same).sum()),
        "examples": [
            {"promo": p, "version": int(v), "endpoint": e, "t": float(t)}
            for p, v, e, t in zip(
                twice["promo"], twice["version"], twice["endpoint"], twice["t"], strict=True
            )
        ],
    }


def retry_storm(events: Iterable[Record] | pd.DataFrame) -> dict[str, Any]:
    """Retry-storm figures.

    - ``amplification`` = attempts ("send" records) / distinct deliveries, a delivery being
      a distinct (promo, endpoint, version, op) among sends, op = the send's ``outcome``
      ("apply" | "revoke"; blank counts as one op) so a rollback's revokes are deliveries of
      their own, not retries of the publish. None when there are no sends.
    - ``peak_attempt_rate_over_capacity`` = max over endpoints of (max sends in a 1 s
      window floor(t)) / the endpoint's capacity from its "endpoint" inventory record;
      endpoints with capacity 0 are skipped; ``peak`` says where and when.
    - ``retry_share`` = share of sends with attempt > 1: ``overall``, ``during_outage``
      (inside an "outage" [t, t+value] of that endpoint), ``after_outage`` (within 60 s after
      its end), ``outage_window`` (either); None when no sends fall there.
    - ``dead_lettered`` = number of "dlq" records; also counts of "throttle" records,
      "breaker" records with outcome "open" and "budget" records with outcome "exhausted".
    - ``double_applied`` = versions applied twice at an endpoint (``double_applied``).
    - ``recovery``: one entry per fault window (``metrics.recovery``: recovery time, goodput
      before / during / after, attempts wasted on timeouts); ``recovery_seconds`` = the
      longest recovery (None when none is measurable or any is sustained) and
      ``sustained`` = whether any storm outlived its fault until the run (or the next
      fault) ended.
    """
    df = to_frame(events)
    sends = df.loc[df["kind"] == "send"]
    attempts = len(sends)
    deliveries = len(sends[["promo", "endpoint", "version", "outcome"]].drop_duplicates())
    peak = _peak(df, sends)
    retry = sends["attempt"] > 1
    flags = outage_flags(df, sends)
    kind = df["kind"]
    return {
        "attempts": attempts,
        "deliveries": deliveries,
        "amplification": attempts / deliveries if deliveries else None,
        "peak_attempt_rate_over_capacity": peak["ratio"],
        "peak": {k: v for k, v in peak.items() if k != "ratio"},
        "dead_lettered": int((kind == "dlq").sum()),
        "retry_share": {
            "overall": _share(retry),
            "during_outage": _share(retry[flags["during"]]),
            "after_outage": _share(retry[flags["after"]]),
            "outage_window": _share(retry[flags["during"] | flags["after"]]),
        },
        "throttled": int((kind == "throttle").sum()),
        "breaker_opened": int(((kind == "breaker") & (df["outcome"] == "open")).sum()),
        "budget_exhausted": int(((kind == "budget") & (df["outcome"] == "exhausted")).sum()),
        "double_applied": double_applied(df),
        **recovery_summary(windows := recovery(df)),
        "recovery": windows,
    }


def peak_attempts(events: Iterable[Record] | pd.DataFrame) -> dict[str, Any]:
    """``retry_storm(events)["peak"]`` alone, without the other figures (recovery's cost)."""
    df = to_frame(events)
    peak = _peak(df, df.loc[df["kind"] == "send"])
    return {k: v for k, v in peak.items() if k != "ratio"}


def attempts_per_second(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """Sends per 1 s window and channel: columns ``t`` (window start, floor of the send's t),
    ``channel``, ``attempts``, ``retries`` (attempt > 1); sorted by t then channel."""
    df = to_frame(events)
    sends = df.loc[df["kind"] == "send"]
    frame = pd.DataFrame(
        {
            "t": np.floor(sends["t"].to_numpy(dtype=np.float64)),
            "channel": channel_of(sends, inventory(df)).to_numpy(dtype=object),
            "attempts": 1,
            "retries": (sends["attempt"] > 1).to_numpy().astype(np.int64),
        }
    )
    out = frame.groupby(["t", "channel"], sort=True).sum().reset_index()
    return out.astype({"t": np.float64, "attempts": np.int64, "retries": np.int64})
