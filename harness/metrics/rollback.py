"""Rollback oracle: did a rollback take the promotion back everywhere in its scope, only
there, and for good?

Read from the "rollback" record (value = deadline in seconds, detail = the scope as
JSON), the estate's inventory ("endpoint" records, written by the endpoint models or read
from the simulators, never by the orchestrator), "publish" records (a re-publish is a new
decision), the endpoints' ground truth ("applied" / "removed") and "discount" records for
leakage (docs/architecture.md, "Metrics — definitions").

The set S a rollback must clear is computed **here, independently of the orchestrator**
(from the inventory and the declared scope, by the table of docs/scope.md written out a
second time in ``_covered``), so an orchestrator that revokes the wrong endpoints cannot
also persuade the oracle that they were the right ones. Loops over rollbacks (a handful)
and the endpoints of each scope that carry the promotion.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.consistency import leakage
from harness.metrics.frame import inventory, to_frame

__all__ = [
    "APPLIED_AFTER",
    "NOT_REMOVED",
    "OUTSIDE",
    "RESURRECTED",
    "covered_endpoints",
    "rollback_correctness",
    "rollback_report",
    "rollback_scopes",
    "rollback_timeline",
    "rollbacks_table",
]

NOT_REMOVED = "not_removed_by_deadline"
OUTSIDE = "touched_outside_scope"
RESURRECTED = "resurrected"
APPLIED_AFTER = "applied_after_rollback"
_SYSTEM_OF_RECORD = "erp"


def rollbacks_table(df: pd.DataFrame) -> pd.DataFrame:
    """The "rollback" records in time order, refused ones left out: ``rollback`` (index),
    promo, version, t, deadline, detail."""
    taken = (df["kind"] == "rollback") & (df["outcome"] != "refused")
    rb = df.loc[taken, ["promo", "version", "t", "value", "detail"]]
    rb = rb.sort_values("t", kind="stable").reset_index(drop=True)
    rb = rb.rename(columns={"value": "deadline"})
    rb.insert(0, "rollback", np.arange(len(rb), dtype=np.int64))
    return rb


def _scope_lists(detail: str) -> tuple[list[str], list[str], list[str]]:
    """(channels, regions, stores) of a scope written as JSON; missing keys are empty."""
    value = _scope_value(detail)
    if not isinstance(value, dict):
        return [], [], []
    lists = []
    for key in ("channels", "regions", "stores"):
        names = value.get(key) or []
        lists.append([str(x) for x in names] if isinstance(names, list) else [str(names)])
    return lists[0], lists[1], lists[2]


def covered_endpoints(inv: pd.DataFrame, detail: str, *, publish: bool = False) -> pd.Index:
    """The inventory endpoints a scope (JSON ``detail``) covers, by docs/scope.md.

    Deliberately NOT ``harness.domain.scope.covers``: the oracle states the table again
    from the inventory alone. A store is an endpoint with a region (its id is the store
    id); the others (ERP, web shop, loyalty, marketplace) have no place. A region or store
    list reaches a place-less endpoint only when its channel is named; a store list decides
    over a region list; a publish reaches the ERP unless channels are named.
    """
    channels, regions, stores = _scope_lists(detail)
    ch = inv["channel"].astype(object)
    located = (inv["region"].astype(object) != "").to_numpy()
    in_channels = ch.isin(channels).to_numpy() if channels else np.ones(len(inv), dtype=bool)
    if stores:
        placed = inv.index.isin(stores)
    elif regions:
        placed = inv["region"].astype(object).isin(regions).to_numpy()
    else:
        placed = np.ones(len(inv), dtype=bool)
    unplaced = bool(channels) or not (regions or stores)
    placeless = np.full(len(inv), unplaced, dtype=bool)
    if publish and not channels:
        placeless |= (ch == _SYSTEM_OF_RECORD).to_numpy()
    keep = in_channels & np.where(located, placed, placeless)
    return inv.index[keep]


def _next_publish(df: pd.DataFrame, inv: pd.DataFrame, sc: pd.DataFrame) -> pd.Series:
    """For each scope row (promo, endpoint, t_rollback): t of the first "publish" of the
    promotion strictly after the rollback whose scope covers the endpoint, else inf."""
    until = pd.Series(np.inf, index=sc.index, dtype=np.float64)
    pubs = df.loc[
        (df["kind"] == "publish") & (df["outcome"] != "refused"), ["promo", "t", "detail"]
    ]
    pubs = pubs[pubs["promo"].isin(pd.unique(sc["promo"]))].sort_values("t", kind="stable")
    for pub in pubs.itertuples(index=False):
        reached = covered_endpoints(inv, pub.detail, publish=True)
        rows = (
            (sc["promo"] == pub.promo)
            & (sc["t_rollback"] < pub.t)
            & sc["endpoint"].isin(reached)
            & np.isinf(until)
        )
        until[rows] = float(pub.t)
    return until


def rollback_scopes(events: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """One row per (rollback, endpoint in its scope S): S = the inventory endpoints the
    rollback's declared scope covers (``covered_endpoints``). Columns ``rollback``,
    ``promo``, ``t_rollback``, ``deadline``, ``endpoint``, ``until`` (the next publish of
    the promotion reaching the endpoint, else inf)."""
    df = to_frame(events)
    rb = rollbacks_table(df)
    inv = inventory(df)
    parts = [
        pd.DataFrame(
            {
                "rollback": int(row.rollback),
                "promo": row.promo,
                "t_rollback": float(row.t),
                "deadline": float(row.deadline),
                "endpoint": covered_endpoints(inv, row.detail).astype(object),
            }
        )
        for row in rb.itertuples(index=False)
    ]
    columns = {
        "rollback": np.int64,
        "promo": object,
        "t_rollback": np.float64,
        "deadline": np.float64,
        "endpoint": object,
    }
    parts = [p for p in parts if len(p)]
    if not parts:
        sc = pd.DataFrame({c: pd.Series(dtype=d) for c, d in columns.items()})
    else:
        sc = pd.concat(parts, ignore_index=True).astype(columns)
    sc["until"] = _next_publish(df, inv, sc)
    return sc.sort_values(["rollback", "endpoint"], kind="stable").reset_index(drop=True)


def _state_at(truth: pd.DataFrame, t: float) -> pd.Series:
    """Per endpoint: is the promotion active just after time ``t`` (last applied/removed
    record with time <= t is "applied"; ties keep log order)."""
    upto = truth[truth["t"] <= t]
    last = upto.groupby("endpoint", sort=False)["kind"].last()
    return last.astype(object) == "applied"


def _stray_removals(df: pd.DataFrame, rb: pd.DataFrame, sc: pd.DataFrame) -> pd.DataFrame:
    """Removals no rollback's scope explains, each with the rollback that owns it.

    A "removed" of P at e is explained when e is in the scope S (as this oracle computes
    it) of a rollback of P at or before the removal. An unexplained removal after a
    rollback of P (inside its deadline or long after: a late retry of a leaked revoke is
    a leak all the same) belongs to the latest rollback of P before it, so it is reported
    once.
    """
    removed = df.loc[df["kind"] == "removed", ["promo", "endpoint", "t"]]
    removed = removed[removed["promo"].isin(rb["promo"].unique())]
    if removed.empty:
        return removed.assign(rollback=pd.Series(dtype=np.int64))
    cover = sc[["promo", "endpoint", "t_rollback"]].groupby(["promo", "endpoint"])["t_rollback"]
    first_cover = cover.min().rename("covered_since").reset_index()
    m = removed.merge(first_cover, on=["promo", "endpoint"], how="left")
    stray = m[~(m["covered_since"] <= m["t"])][["promo", "endpoint", "t"]]
    w = stray.merge(
        rb[["rollback", "promo", "t", "deadline"]].rename(columns={"t": "t_r"}), on="promo"
    )
    w = w[w["t"] > w["t_r"]]
    w = w.sort_values(["t_r", "rollback"], kind="stable")
    w = w.drop_duplicates(["promo", "endpoint", "t"], keep="last")
    return w[["rollback", "promo", "endpoint", "t"]]


def _fmt(t: float) -> str:
    return f"{t:.6f}".rstrip("0").rstrip(".")


def _violations_of(row: Any, scope: pd.DataFrame, truth: pd.DataFrame) -> list[dict[str, Any]]:
    """The in-scope violations of one rollback: an endpoint of S carrying the promotion at
    the deadline, applying it again after removing it, or first applying it after the
    deadline — each up to the next publish reaching that endpoint."""
    t_r, d = float(row.t), float(row.deadline)
    deadline = t_r + d
    until = scope.set_index("endpoint")["until"]
    own = truth[truth["endpoint"].isin(until.index)]
    out: list[dict[str, Any]] = []
    for e, rows in own.groupby("endpoint", sort=True):
        horizon = float(until[e])
        times = rows["t"].to_numpy(dtype=np.float64)
        applied = (rows["kind"].astype(object) == "applied").to_numpy()
        after = (times > t_r) & (times < horizon)
        removals = times[after & ~applied]
        flagged = False
        if deadline < horizon:
            upto = times <= deadline
            if upto.any() and applied[upto][-1]:
                late = times[(times > deadline) & ~applied & (times < horizon)]
                last_apply = times[upto & applied][-1]
                how = (
                    "active at the rollback"
                    if last_apply <= t_r
                    else f"applied at {_fmt(last_apply)} after the rollback"
                )
                end = "never removed" if not late.size else f"removed late at {_fmt(late[0])}"
                out.append(
                    {
                        "endpoint": e,
                        "t": deadline,
                        "property": NOT_REMOVED,
                        "detail": f"{how} (t={_fmt(t_r)}); deadline {_fmt(deadline)}; {end}",
                    }
                )
                flagged = True
        # An apply counts only if it stays past its instant: a batch store picking up a
        # queued publish and its revoke together applies and removes at one t.
        # (One instant: records within a microsecond, as float clocks leave them.)
        instant = np.concatenate([[0], np.cumsum(np.diff(times) > 1e-6)])
        last_of = {int(k): bool(a) for k, a in zip(instant, applied, strict=True)}
        stays = np.array([last_of[int(k)] for k in instant], dtype=bool)
        back = times[after & applied & stays]
        if removals.size:
            again = back[back > removals[0]]
            if again.size:
                out.append(
                    {
                        "endpoint": e,
                        "t": float(again[0]),
                        "property": RESURRECTED,
                        "detail": f"removed at {_fmt(removals[0])}, applied again at "
                        f"{_fmt(again[0])}",
                    }
                )
                continue
        late_first = back[back > deadline]
        if late_first.size and not flagged:
            out.append(
                {
                    "endpoint": e,
                    "t": float(late_first[0]),
                    "property": APPLIED_AFTER,
                    "detail": f"applied at {_fmt(late_first[0])}, after the rollback at "
                    f"{_fmt(t_r)} and its deadline {_fmt(deadline)}",
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

    S = the inventory endpoints the declared scope covers (``covered_endpoints``, computed
    here from the inventory, never from the orchestrator's targets); d = the rollback's
    value; h(e) = the next publish of P reaching e after t_r, else inf (a re-publish is a
    new decision and ends the rollback's claim on e). Violations ({endpoint, t, property,
    detail}, sorted by t, endpoint, property) — any endpoint of S that carries P at the
    deadline or at any time after it, however it got there:

    - ``not_removed_by_deadline``: e in S carrying P at t_r + d < h(e) (active at the
      rollback and never removed, removed late, or first applied after the rollback and
      still there). t = the deadline.
    - ``resurrected``: e in S with an "applied" of P in (t_r, h(e)) after a removal of P
      at e in (t_r, h(e)) (a late retry re-applying after removal). t = the applied.
    - ``applied_after_rollback``: e in S with a first "applied" of P after the deadline
      and before h(e), not already carrying P at the deadline. t = the applied.
    - ``touched_outside_scope``: a "removed" of P after t_r at an endpoint in the scope of
      no rollback of P at or before the removal; reported under the latest rollback of P
      before it. t = the removal.

    An apply already in flight that lands in (t_r, t_r + d] and is taken back by the
    deadline is no violation (the discount it gave is leakage).
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
                    "detail": f"removed at {_fmt(s.t)}, outside the scope of every rollback of "
                    f"{row.promo} so far",
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
