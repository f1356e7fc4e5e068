"""Rollback oracle: did a rollback take the promotion back everywhere, and only there?

Read from the "rollback" record (value = deadline in seconds, detail = scope as JSON),
its "target" records (outcome "revoke") and the endpoints' ground truth ("applied" /
"removed") plus "discount" records for leakage (../shared/DESIGN.md, "Metrics —
definitions"). Loops over rollbacks (a handful); the per-endpoint work is vectorised.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.consistency import leakage
from harness.metrics.frame import to_frame

__all__ = [
    "rollback_correctness",
    "rollback_report",
    "rollback_scopes",
    "rollback_timeline",
    "rollbacks_table",
]

NOT_REMOVED = "not_removed_by_deadline"
OUTSIDE = "touched_outside_scope"
RESURRECTED = "resurrected"


def rollbacks_table(df: pd.DataFrame) -> pd.DataFrame:
    """The "rollback" records in time order: ``rollback`` (index), promo, version, t, deadline,
    detail."""
    rb = df.loc[df["kind"] == "rollback", ["promo", "version", "t", "value", "detail"]]
    rb = rb.sort_values("t", kind="stable").reset_index(drop=True)
    rb = rb.rename(columns={"value": "deadline"})
    rb.insert(0, "rollback", np.arange(len(rb), dtype=np.int64))
    return rb


def _next_apply(df: pd.DataFrame, rows: pd.DataFrame, on: str) -> pd.Series:
    """For each row (promo, endpoint, ``on``): t of the next "target" apply of that promo at
    that endpoint strictly after ``on`` (a re-publish), or inf."""
    if rows.empty:
        return pd.Series(np.inf, index=rows.index, dtype=np.float64)
    apply = df.loc[
        (df["kind"] == "target") & (df["outcome"] == "apply"), ["promo", "endpoint", "t"]
    ]
    left = rows[["promo", "endpoint", on]].reset_index(names="_row").sort_values(on, kind="stable")
    right = apply.rename(columns={"t": "until"}).sort_values("until", kind="stable")
    m = pd.merge_asof(
        left,
        right,
        left_on=on,
        right_on="until",
        by=["promo", "endpoint"],
        direction="forward",
        allow_exact_matches=False,
    )
    return m.set_index("_row")["until"].reindex(rows.index).fillna(np.inf).astype(np.float64)


def rollback_scopes(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """One row per (rollback, endpoint in its scope S): S = the "target" records of the
    promotion with outcome "revoke" at exactly the rollback's t. Columns ``rollback``,
    ``promo``, ``t_rollback``, ``deadline``, ``endpoint``, ``until`` (next re-publish of
    the promotion to the endpoint, else inf)."""
    df = to_frame(events)
    rb = rollbacks_table(df)[["rollback", "promo", "t", "deadline"]]
    rev = df.loc[(df["kind"] == "target") & (df["outcome"] == "revoke"), ["promo", "t", "endpoint"]]
    sc = rb.merge(rev, on=["promo", "t"]).rename(columns={"t": "t_rollback"})
    sc = sc.drop_duplicates(["rollback", "endpoint"]).reset_index(drop=True)
    sc["until"] = _next_apply(df, sc, "t_rollback")
    return sc.sort_values(["rollback", "endpoint"], kind="stable").reset_index(drop=True)


def _state_at(truth: pd.DataFrame, t: float) -> pd.Series:
    """Per endpoint: is the promotion active just after time ``t`` (last applied/removed
    record with time <= t is "applied"; ties keep log order)."""
    upto = truth[truth["t"] <= t]
    last = upto.groupby("endpoint", sort=False)["kind"].last()
    return last.astype(object) == "applied"


def _stray_removals(df: pd.DataFrame, rb: pd.DataFrame, sc: pd.DataFrame) -> pd.DataFrame:
    """Removals an instruction does not explain, each with the rollback that owns it.

    A "removed" of P at e is explained when the latest "target" of P at e at or before it
    is a revoke (this rollback's, an earlier rollback's, or any other revoke). An
    unexplained removal inside a rollback's window (t_r, t_r + d] belongs to the latest
    such rollback of P, so it is reported once.
    """
    removed = df.loc[df["kind"] == "removed", ["promo", "endpoint", "t"]]
    removed = removed[removed["promo"].isin(rb["promo"].unique())]
    if removed.empty:
        return removed.assign(rollback=pd.Series(dtype=np.int64))
    tg = df.loc[df["kind"] == "target", ["promo", "endpoint", "t", "outcome"]]
    tg = tg.rename(columns={"t": "t_target"}).sort_values("t_target", kind="stable")
    m = pd.merge_asof(
        removed.sort_values("t", kind="stable"),
        tg,
        left_on="t",
        right_on="t_target",
        by=["promo", "endpoint"],
        direction="backward",
    )
    stray = m[m["outcome"].astype(object).fillna("") != "revoke"][["promo", "endpoint", "t"]]
    w = stray.merge(
        rb[["rollback", "promo", "t", "deadline"]].rename(columns={"t": "t_r"}), on="promo"
    )
    w = w[(w["t"] > w["t_r"]) & (w["t"] <= w["t_r"] + w["deadline"])]
    w = w.sort_values(["t_r", "rollback"], kind="stable")
    w = w.drop_duplicates(["promo", "endpoint", "t"], keep="last")
    # Never charge a rollback with touching its own scope.
    own = sc[["rollback", "endpoint"]].assign(_in=True)
    w = w.merge(own, on=["rollback", "endpoint"], how="left")
    return w[w["_in"].isna()][["rollback", "promo", "endpoint", "t"]]


def _fmt(t: float) -> str:
    return f"{t:.6f}".rstrip("0").rstrip(".")


def _violations_of(row: Any, scope: pd.DataFrame, truth: pd.DataFrame) -> list[dict[str, Any]]:
    """not_removed_by_deadline and resurrected violations of one rollback."""
    t_r, d = float(row.t), float(row.deadline)
    in_scope = truth[truth["endpoint"].isin(scope["endpoint"])]
    active = _state_at(in_scope, t_r)
    active = active[active]
    removed = in_scope[(in_scope["kind"] == "removed") & (in_scope["t"] > t_r)]
    first_removal = removed.groupby("endpoint", sort=True)["t"].min()
    out: list[dict[str, Any]] = []
    deadline = t_r + d
    for e in sorted(active.index):
        r = first_removal.get(e)
        if r is not None and r <= deadline:
            continue
        late = "never removed" if r is None else f"removed late at {_fmt(r)}"
        detail = f"active at rollback t={_fmt(t_r)}; deadline {_fmt(deadline)}; {late}"
        out.append({"endpoint": e, "t": deadline, "property": NOT_REMOVED, "detail": detail})
    if len(first_removal):
        until = scope.set_index("endpoint")["until"]
        applied = in_scope[in_scope["kind"] == "applied"]
        back = applied.assign(
            removal=applied["endpoint"].map(first_removal), until=applied["endpoint"].map(until)
        )
        back = back[(back["t"] > back["removal"]) & (back["t"] < back["until"])]
        first_back = back.groupby("endpoint", sort=True).agg(
            t=("t", "min"), removal=("removal", "first")
        )
        for e, b in first_back.iterrows():
            out.append(
                {
                    "endpoint": e,
                    "t": float(b["t"]),
                    "property": RESURRECTED,
                    "detail": f"removed at {_fmt(b['removal'])}, applied again at {_fmt(b['t'])}",
                }
            )
    return out


def _scope_value(detail: str) -> Any:
    """The rollback's scope as declared (its detail, JSON); the raw text if not JSON."""
    if not detail:
        return None
    try:
        return json.loads(detail)
    except ValueError:
        return detail


def rollback_correctness(events: Iterable[Record] | pd.DataFrame) -> list[dict[str, Any]]:
    """One verdict per rollback; see ``rollback_report`` for the definitions."""
    return rollback_report(events)[0]


def rollback_report(
    events: Iterable[Record] | pd.DataFrame,
) -> tuple[list[dict[str, Any]], float]:
    """One verdict per "rollback" record of promotion P at t_r, scope S, deadline d.

    S = the "target" records of P with outcome "revoke" at t_r; d = the rollback's value.
    Violations ({endpoint, t, property, detail}, sorted by t, endpoint, property):

    - ``not_removed_by_deadline``: e in S with P active at t_r (applied and not removed at
      or before t_r) and no "removed" of P at e in (t_r, t_r + d]; an endpoint in S where P
      was not active is fine. t = the deadline.
    - ``touched_outside_scope``: a "removed" of P in (t_r, t_r + d] at an endpoint outside
      S whose latest "target" of P at or before the removal is not a revoke (so endpoints
      in the scope of another rollback of P at or before the removal are fine); reported
      under the latest rollback whose window holds it. t = the removal.
    - ``resurrected``: e in S with an "applied" of P after its first removal after t_r and
      before the next "target" apply of P at e (a re-publish is a new decision). t = the
      applied.

    ``leakage_value`` = sum of "discount" values of P at endpoints in S with t > t_r (up to
    a re-publish to that endpoint). ``verdict`` = "pass" when there is no violation.
    Returns (the verdicts in rollback time order, total leakage counting each discount
    record once even when two rollbacks cover it).
    """
    df = to_frame(events)
    rb = rollbacks_table(df)
    if rb.empty:
        return [], 0.0
    sc = rollback_scopes(df)
    truth = df.loc[
        df["kind"].isin(["applied", "removed"]) & df["promo"].isin(rb["promo"].unique()),
        ["promo", "endpoint", "t", "kind"],
    ]
    truth = truth.sort_values("t", kind="stable")
    strays = _stray_removals(df, rb, sc)
    leaked, total = leakage(df, sc)
    results: list[dict[str, Any]] = []
    for row in rb.itertuples(index=False):
        scope = sc[sc["rollback"] == row.rollback]
        vs = _violations_of(row, scope, truth[truth["promo"] == row.promo])
        for s in strays[strays["rollback"] == row.rollback].itertuples(index=False):
            vs.append(
                {
                    "endpoint": s.endpoint,
                    "t": float(s.t),
                    "property": OUTSIDE,
                    "detail": f"removed at {_fmt(s.t)} without a revoke for this endpoint",
                }
            )
        vs.sort(key=lambda v: (v["t"], v["endpoint"], v["property"]))
        results.append(
            {
                "promo": row.promo,
                "version": int(row.version),
                "t": float(row.t),
                "deadline": float(row.deadline),
                "scope": _scope_value(row.detail),
                "scope_endpoints": len(scope),
                "verdict": "pass" if not vs else "fail",
                "violations": vs,
                "leakage_value": leaked.get(int(row.rollback), 0.0),
            }
        )
    return results, total


def rollback_timeline(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """For plots: per rollback, how many endpoints of its scope still have the promotion
    active over time. Columns ``rollback``, ``promo``, ``t``, ``since`` (t - t_r),
    ``active``, ``deadline`` (seconds after t_r); one row at t_r, then one per ground-truth
    change at a scope endpoint after t_r."""
    df = to_frame(events)
    rb = rollbacks_table(df)
    sc = rollback_scopes(df)
    truth = df.loc[df["kind"].isin(["applied", "removed"]), ["promo", "endpoint", "t", "kind"]]
    truth = truth.sort_values("t", kind="stable")
    parts = []
    for row in rb.itertuples(index=False):
        t_r = float(row.t)
        own = truth[
            (truth["promo"] == row.promo)
            & truth["endpoint"].isin(sc.loc[sc["rollback"] == row.rollback, "endpoint"])
        ]
        start = _state_at(own, t_r)
        later = own[own["t"] > t_r]
        state = (later["kind"].astype(object) == "applied").astype(np.int64)
        before = state.groupby(later["endpoint"], sort=False).shift(1)
        initial = later["endpoint"].map(start).fillna(False).astype(np.int64)
        delta = state - before.fillna(initial).astype(np.int64)
        n0 = int(start.sum())
        parts.append(
            pd.DataFrame(
                {
                    "rollback": int(row.rollback),
                    "promo": row.promo,
                    "t": np.concatenate([[t_r], later["t"].to_numpy(dtype=np.float64)]),
                    "active": np.concatenate([[n0], n0 + delta.cumsum().to_numpy(dtype=np.int64)]),
                    "deadline": float(row.deadline),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=d)
                for c, d in [
                    ("rollback", np.int64),
                    ("promo", object),
                    ("t", np.float64),
                    ("since", np.float64),
                    ("active", np.int64),
                    ("deadline", np.float64),
                ]
            }
        )
    out = pd.concat(parts, ignore_index=True)
    out.insert(3, "since", out["t"] - out.groupby("rollback")["t"].transform("first"))
    return out
