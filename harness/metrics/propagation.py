"""Propagation metrics: how long a publish takes to reach its endpoints, truth vs belief.

Read from the event log only (../shared/DESIGN.md, "Metrics — definitions"): the
"publish" record, its "target" records (outcome "apply"), and the "applied" (ground
truth) and "ack" (what the orchestrator believes) records of the promotion. Produces the
T50/T95/T99/T100 figures, acked T95, ghost states and late-for-start endpoints for the
summary, and the coverage curve for plots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import channel_of, inventory, shared, to_frame

__all__ = [
    "GHOST_EXAMPLES",
    "PERCENTS",
    "coverage_curve",
    "propagation",
    "publish_targets",
    "time_to_share",
]

PERCENTS: tuple[int, ...] = (50, 95, 99, 100)
GHOST_EXAMPLES = 20
ALL = "all"

_TARGET_COLUMNS = [
    "publish",
    "promo",
    "version",
    "t_publish",
    "endpoint",
    "channel",
    "applied_t",
    "acked_t",
    "latency",
    "acked_latency",
]


def time_to_share(
    latencies: Iterable[float] | np.ndarray | pd.Series, percent: int
) -> float | None:
    """The time by which ``percent`` % of the targets were applied.

    Latencies are one per target; NaN (or inf) means "never applied". With n targets this is
    the k-th smallest latency, k = ceil(percent * n / 100) (integer arithmetic, so 95 % of
    20 is exactly 19), i.e. the smallest t with Coverage(t) >= percent %. None when there
    are no targets or fewer than k were ever applied (e.g. T100 with one store never reached).
    """
    # None in a plain list becomes NaN ("never") through the float conversion.
    seq = latencies if isinstance(latencies, np.ndarray | pd.Series) else list(latencies)
    arr = np.asarray(seq, dtype=np.float64)
    n = len(arr)
    if n == 0:
        return None
    k = (percent * n + 99) // 100
    reached = np.sort(arr[np.isfinite(arr)])
    if k > len(reached):
        return None
    return float(reached[k - 1])


def _first_at_or_after(targets: pd.DataFrame, events: pd.DataFrame, name: str) -> pd.Series:
    """For each target row, the first ``events`` t >= its publish t at the same promo/endpoint."""
    if targets.empty:
        return pd.Series(np.nan, index=targets.index, dtype=np.float64)
    left = targets[["promo", "endpoint", "t_publish"]].reset_index(names="_row")
    left = left.sort_values("t_publish", kind="stable")
    right = events[["promo", "endpoint", "t"]].rename(columns={"t": name})
    right = right.sort_values(name, kind="stable")
    merged = pd.merge_asof(
        left,
        right,
        left_on="t_publish",
        right_on=name,
        by=["promo", "endpoint"],
        direction="forward",
        allow_exact_matches=True,
    )
    return merged.set_index("_row")[name].reindex(targets.index).astype(np.float64)


def publish_targets(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """One row per (publish, target endpoint) with truth and acked times and latencies.

    Targets of a publish of P at t_p are the "target" records of P with outcome "apply" at
    exactly t_p (the runtimes write them with the publish's clock reading). ``applied_t`` is
    the first "applied" of P at the endpoint with t >= t_p, ``acked_t`` the first "ack" of P
    there with t >= t_p (an ack whose outcome is "revoke" acknowledges a rollback, not this
    publish, and is ignored); latencies are those minus t_p, NaN when never. ``publish``
    numbers the publishes in log order by time.
    """
    df = to_frame(events)
    return shared("publish_targets", df, lambda: _publish_targets(df))


def _publish_targets(df: pd.DataFrame) -> pd.DataFrame:
    pubs = df.loc[
        (df["kind"] == "publish") & (df["outcome"] != "refused"), ["promo", "version", "t"]
    ]
    pubs = pubs.sort_values("t", kind="stable").reset_index(drop=True)
    pubs["publish"] = np.arange(len(pubs), dtype=np.int64)
    tgt = df.loc[(df["kind"] == "target") & (df["outcome"] == "apply")]
    tgt = tgt.assign(channel=channel_of(tgt, inventory(df)))[["promo", "t", "endpoint", "channel"]]
    out = pubs.merge(tgt, on=["promo", "t"], how="inner").rename(columns={"t": "t_publish"})
    out = out.drop_duplicates(["publish", "endpoint"]).reset_index(drop=True)
    applied = df.loc[df["kind"] == "applied"]
    acks = df.loc[(df["kind"] == "ack") & (df["outcome"] != "revoke")]
    out["applied_t"] = _first_at_or_after(out, applied, "applied_t")
    out["acked_t"] = _first_at_or_after(out, acks, "acked_t")
    out["latency"] = out["applied_t"] - out["t_publish"]
    out["acked_latency"] = out["acked_t"] - out["t_publish"]
    out = out.sort_values(["publish", "endpoint"], kind="stable").reset_index(drop=True)
    return out.astype({"publish": np.int64, "version": np.int64})[_TARGET_COLUMNS]


def _ghosts(block: pd.DataFrame) -> dict[str, Any]:
    """Ghost states among targets: applied but never acked, acked but never applied."""
    applied = block["applied_t"].notna().to_numpy()
    acked = block["acked_t"].notna().to_numpy()
    silent, phantom = applied & ~acked, acked & ~applied
    out: dict[str, Any] = {
        "applied_not_acked": int(silent.sum()),
        "acked_not_applied": int(phantom.sum()),
        "examples": [],
    }
    if not (silent.any() or phantom.any()):  # the usual case: no frame work at all
        return out
    kinds = np.where(silent, "applied_not_acked", np.where(phantom, "acked_not_applied", ""))
    ghost = block.assign(kind=kinds)[kinds != ""]
    ghost = ghost.sort_values(["publish", "endpoint"], kind="stable").head(GHOST_EXAMPLES)
    return {
        **out,
        "examples": [
            # t: the one thing that did happen (the apply, or the ack).
            {
                "promo": p,
                "version": int(v),
                "endpoint": e,
                "kind": k,
                "t": float(a if a == a else b),
            }
            for p, v, e, k, a, b in zip(
                ghost["promo"],
                ghost["version"],
                ghost["endpoint"],
                ghost["kind"],
                ghost["applied_t"],
                ghost["acked_t"],
                strict=True,
            )
        ],
    }


def _stats(block: pd.DataFrame) -> dict[str, Any]:
    """T50/T95/T99/T100 (truth), acked_t95, counts and ghost states for a set of targets."""
    lat = block["latency"].to_numpy(dtype=np.float64)
    stats: dict[str, Any] = {
        "targets": len(block),
        "applied": int(np.isfinite(lat).sum()),
        "acked": int(block["acked_t"].notna().sum()),
    }
    for p in PERCENTS:
        stats[f"t{p}"] = time_to_share(lat, p)
    stats["acked_t95"] = time_to_share(block["acked_latency"].to_numpy(dtype=np.float64), 95)
    stats["ghosts"] = _ghosts(block)
    return stats


def _by_channel(block: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(ch): _stats(g) for ch, g in block.groupby("channel", sort=True, observed=True)}


def _start_for(schedules: pd.DataFrame, promo: str, t_publish: float) -> float | None:
    """The start a publish must meet: the latest "schedule" of P at or before the publish,
    else the first one after it (a promotion may be published, then scheduled)."""
    own = schedules[schedules["promo"] == promo]
    before = own[own["t"] <= t_publish]
    if len(before):
        return float(before["value"].iloc[-1])
    if len(own):
        return float(own["value"].iloc[0])
    return None


def _late_for_start(
    targets: pd.DataFrame, schedules: pd.DataFrame, promo: str, start: float | None = None
) -> dict[str, Any] | None:
    """Targets of P's publishes not applied by the start (applied_t > start, or never).

    ``start``: the instant the promotion's validity opens (seconds since scenario start),
    when the runtime knows it; otherwise the "schedule" record's value. None when neither
    is known. The reported ``start`` is that of P's last publish."""
    starts = {
        pub: start if start is not None else _start_for(schedules, promo, float(tp))
        for pub, tp in targets.groupby("publish", sort=True)["t_publish"].first().items()
    }
    starts = {pub: s for pub, s in starts.items() if s is not None}
    if not starts:
        return None
    scoped = targets[targets["publish"].isin(list(starts))]
    start_of = scoped["publish"].map(starts)
    late = scoped[~(scoped["applied_t"] <= start_of)]
    return {
        "start": starts[max(starts)],
        "count": len(late),
        "endpoints": sorted(pd.unique(late["endpoint"]).tolist()),
    }


def propagation(
    events: Iterable[Record] | pd.DataFrame, starts: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """Propagation figures: ``{"overall", "by_channel", "by_promo"}``.

    For each target endpoint e of a publish at t_p: truth latency = first "applied" of P at
    e with t >= t_p, minus t_p; acked latency = first "ack" likewise. Coverage(t) = share of
    targets applied by t; T50/T95/T99/T100 = the time by which 50/95/99/100 % of targets
    were applied (None when that share is never reached), acked_t95 the same over acks.
    Ghosts: applied but never acked, acked but never applied (counts, up to 20 examples).
    ``overall``/``by_channel`` aggregate all targets of all publishes (each latency against
    its own publish); ``by_promo.<id>`` holds one promotion's publishes, with its
    ``by_channel`` and ``late_for_start`` ({start, count, endpoints} or None without a
    "schedule" record, whose value is the start time in seconds). ``starts``: promo ->
    validity start in seconds since scenario start, which takes precedence.
    """
    df = to_frame(events)
    targets = publish_targets(df)
    schedules = df.loc[df["kind"] == "schedule", ["promo", "t", "value"]]
    schedules = schedules.sort_values("t", kind="stable")
    by_promo: dict[str, Any] = {}
    for promo in sorted(pd.unique(df.loc[df["kind"] == "publish", "promo"]).tolist()):
        block = targets[targets["promo"] == promo]
        entry = _stats(block)
        entry["publishes"] = int((df["kind"].eq("publish") & df["promo"].eq(promo)).sum())
        entry["by_channel"] = _by_channel(block)
        entry["late_for_start"] = _late_for_start(
            block, schedules, promo, (starts or {}).get(promo)
        )
        by_promo[promo] = entry
    return {"overall": _stats(targets), "by_channel": _by_channel(targets), "by_promo": by_promo}


def _curve(latency: pd.Series, label: str) -> pd.DataFrame:
    """Coverage steps of one group: (0, share applied at 0) then one row per distinct latency."""
    n = len(latency)
    lat = np.sort(latency.to_numpy(dtype=np.float64)[np.isfinite(latency.to_numpy(np.float64))])
    ts = np.unique(np.concatenate([[0.0], lat]))
    covered = np.searchsorted(lat, ts, side="right")
    return pd.DataFrame({"t": ts, "channel": label, "coverage": covered / n})


def coverage_curve(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """Coverage(t) = share of targets applied by t (seconds after their own publish).

    Columns ``t``, ``channel`` ("all" for every target, then each channel), ``coverage``;
    a step function, one row at t=0 and at each distinct applied latency.
    """
    targets = publish_targets(events)
    parts = []
    if len(targets):
        parts.append(_curve(targets["latency"], ALL))
        for ch, g in targets.groupby("channel", sort=True, observed=True):
            parts.append(_curve(g["latency"], str(ch)))
    if not parts:
        return pd.DataFrame(
            {
                "t": pd.Series(dtype=np.float64),
                "channel": pd.Series(dtype=object),
                "coverage": pd.Series(dtype=np.float64),
            }
        )
    return pd.concat(parts, ignore_index=True)
