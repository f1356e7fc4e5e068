"""Money metrics from the shoppers' records: price consistency, rollback leakage, funding.

Read from "quote" records (sampled shelf prices, detail "sku@sample") and "discount"
records (one per promotion that gave money on a sale) of the event log
(../shared/DESIGN.md, "Metrics — definitions"). Vectorised: a big run logs millions of
these, so nothing here loops over rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import channel_of, inventory, to_frame

__all__ = ["PRICE_EXAMPLES", "funding", "leakage", "price_consistency", "priced_without_truth"]

PRICE_EXAMPLES = 20


def _cents(values: pd.Series) -> np.ndarray:
    """Prices as whole cents (int64), so "distinct price" is exact, not float equality."""
    return np.round(values.to_numpy(dtype=np.float64) * 100.0).astype(np.int64)


def price_consistency(events: Iterable[Record] | pd.DataFrame) -> dict[str, Any]:
    """Price consistency over sampled quotes.

    "quote" records are grouped by sample (their detail "sku@sample"); per sample, the
    distinct prices (rounded to cents) across the endpoints quoting it. ``mismatch_rate`` =
    share of samples with more than one distinct price (None without quotes);
    ``spread_value`` = sum over samples of (max - min). ``by_channel_pair["a|b"]`` (a <= b)
    = number of samples in which a price quoted on channel a differs from one quoted on
    channel b ("a|a": the channel's own endpoints disagree). ``examples``: up to 20
    mismatching samples, widest spread first, with each channel's distinct prices.
    """
    df = to_frame(events)
    q = df.loc[df["kind"] == "quote"]
    if q.empty:
        return {
            "samples": 0,
            "mismatched": 0,
            "mismatch_rate": None,
            "spread_value": 0.0,
            "by_channel_pair": {},
            "examples": [],
        }
    quotes = pd.DataFrame(
        {
            "sample": q["detail"].to_numpy(dtype=object),
            "channel": channel_of(q, inventory(df)).to_numpy(dtype=object),
            "cents": _cents(q["value"]),
        }
    )
    per = quotes.groupby("sample", sort=True)["cents"].agg(["nunique", "min", "max"])
    per["spread"] = per["max"] - per["min"]
    mismatched = per[per["nunique"] > 1]
    pc = quotes.groupby(["sample", "channel"], sort=True)["cents"].agg(["min", "max"]).reset_index()
    pairs = pc.merge(pc, on="sample", suffixes=("_a", "_b"))
    pairs = pairs[pairs["channel_a"] <= pairs["channel_b"]]
    # Two channels agree on a sample only if both quote one and the same price.
    agree = (
        (pairs["min_a"] == pairs["max_a"])
        & (pairs["min_b"] == pairs["max_b"])
        & (pairs["min_a"] == pairs["min_b"])
    )
    dis = pairs[~agree]
    counts = (dis["channel_a"] + "|" + dis["channel_b"]).value_counts()
    by_pair = {str(k): int(v) for k, v in sorted(counts.items())}
    top = (
        mismatched.reset_index()
        .sort_values(["spread", "sample"], ascending=[False, True], kind="stable")
        .head(PRICE_EXAMPLES)
    )
    examples = []
    for sample, spread in zip(top["sample"], top["spread"], strict=True):
        rows = quotes[quotes["sample"] == sample]
        by_ch = rows.groupby("channel", sort=True)["cents"].unique()
        examples.append(
            {
                "sample": sample,
                "sku": sample.rsplit("@", 1)[0],
                "spread": int(spread) / 100.0,
                "prices": sorted(int(c) / 100.0 for c in pd.unique(rows["cents"])),
                "by_channel": {
                    str(ch): sorted(int(c) / 100.0 for c in v) for ch, v in by_ch.items()
                },
            }
        )
    return {
        "samples": len(per),
        "mismatched": len(mismatched),
        "mismatch_rate": len(mismatched) / len(per),
        "spread_value": int(per["spread"].sum()) / 100.0,
        "by_channel_pair": by_pair,
        "examples": examples,
    }


def priced_without_truth(events: Iterable[Record] | pd.DataFrame) -> dict[str, Any]:
    """Discounts a till gave for a promotion its endpoint does not carry: a stale price.

    A "discount" record of P at endpoint e at t counts when e's ground truth does not
    carry P at t (no "applied" of P at e at or before t, or a "removed" after the last
    one) — a shelf or till still pricing with a promotion that was taken away (or never
    arrived). ``count`` and up to 20 ``examples`` {promo, endpoint, t, amount}, by time.
    """
    df = to_frame(events)
    disc = df.loc[df["kind"] == "discount", ["promo", "endpoint", "t", "value"]]
    empty = {"count": 0, "examples": []}
    if disc.empty:
        return empty
    truth = df.loc[df["kind"].isin(["applied", "removed"]), ["promo", "endpoint", "t", "kind"]]
    truth = truth.rename(columns={"t": "t_truth"}).astype({"kind": object})
    m = pd.merge_asof(
        disc.reset_index(drop=True).sort_values("t", kind="stable"),
        truth.sort_values("t_truth", kind="stable"),
        left_on="t",
        right_on="t_truth",
        by=["promo", "endpoint"],
        direction="backward",
    )
    stale = m[m["kind"].fillna("") != "applied"].sort_values(["t", "endpoint"], kind="stable")
    if stale.empty:
        return empty
    return {
        "count": len(stale),
        "examples": [
            {"promo": r.promo, "endpoint": r.endpoint, "t": float(r.t), "amount": float(r.value)}
            for r in stale.head(PRICE_EXAMPLES).itertuples(index=False)
        ],
    }


def leakage(
    events: Iterable[Record] | pd.DataFrame, scopes: pd.DataFrame
) -> tuple[dict[int, float], float]:
    """Discount granted after a rollback at endpoints in its scope.

    ``scopes`` has one row per (rollback, endpoint in its scope S) with columns
    ``rollback``, ``promo``, ``endpoint``, ``t_rollback`` and ``until`` (the next "target"
    apply of the promotion at that endpoint after the rollback — a re-publish — or inf).
    Leakage of a rollback of P at t_r = sum of "discount" values of P at endpoints in S
    with t_r < t < until. Returns (per rollback, total); the total counts each discount
    record once even when two rollbacks of P cover it.
    """
    df = to_frame(events)
    per = dict.fromkeys((int(r) for r in pd.unique(scopes["rollback"])), 0.0)
    if scopes.empty:
        return per, 0.0
    # Narrow the (millions of) discount rows before the join.
    disc = df.loc[
        (df["kind"] == "discount")
        & (df["t"] > scopes["t_rollback"].min())
        & df["promo"].isin(pd.unique(scopes["promo"]))
        & df["endpoint"].isin(pd.unique(scopes["endpoint"]))
    ]
    if disc.empty:
        return per, 0.0
    d = disc[["promo", "endpoint", "t", "value"]].reset_index(names="_row")
    j = d.merge(
        scopes[["rollback", "promo", "endpoint", "t_rollback", "until"]], on=["promo", "endpoint"]
    )
    j = j[(j["t"] > j["t_rollback"]) & (j["t"] < j["until"])]
    sums = j.groupby("rollback", sort=True)["value"].sum()
    per.update({int(k): float(v) for k, v in sums.items()})
    total = float(j.drop_duplicates("_row")["value"].sum())
    return per, total


def funding(
    events: Iterable[Record] | pd.DataFrame, budgets: Mapping[str, float] | None = None
) -> dict[str, dict[str, Any]]:
    """Per promotion: discount granted against its funded budget.

    ``granted`` = sum of its "discount" records' value; ``budget`` from ``budgets`` (the
    log carries none; None when not given); ``overrun`` = max(0, granted - budget);
    ``utilisation`` = granted / budget (None without a budget or with budget 0);
    ``discounts`` = number of discount records. Promotions listed: those with discounts,
    with a budget, or with a "create"/"publish" record, sorted by id.
    """
    df = to_frame(events)
    budgets = dict(budgets or {})
    disc = df.loc[df["kind"] == "discount"]
    granted = disc.groupby("promo", sort=True)["value"].agg(["sum", "size"])
    named = df.loc[df["kind"].isin(["create", "publish"]) & (df["promo"] != ""), "promo"]
    promos = sorted(set(granted.index) | set(budgets) | set(pd.unique(named)))
    out: dict[str, dict[str, Any]] = {}
    for promo in promos:
        g = float(granted["sum"].get(promo, 0.0))
        budget = budgets.get(promo)
        budget = None if budget is None else float(budget)
        out[promo] = {
            "granted": g,
            "budget": budget,
            "overrun": None if budget is None else max(0.0, g - budget),
            "utilisation": g / budget if budget else None,
            "discounts": int(granted["size"].get(promo, 0)),
        }
    return out
