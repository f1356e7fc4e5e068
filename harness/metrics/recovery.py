"""Recovery after a fault: did the retry storm end when the fault did, or sustain itself?

Read from the event log alone: "outage" and "fault" records give the fault windows
(t = start, value = duration), "send" records the attempt rate and successful "result"
records (outcome ok / accepted) the goodput at the endpoints a window covers.

For each fault window [start, end):

- the **pre-fault level** is the attempt rate and the success rate (successes/s) over the
  ``PRE_FAULT_S`` seconds before ``start`` (less when the run or an earlier fault window
  on those endpoints leaves less; None under ``WINDOW_S``);
- **recovered at** ``end + k * STEP_S`` for the smallest k >= 0 such that over
  ``[end + k * STEP_S, end + k * STEP_S + WINDOW_S)`` both rates are within ``TOLERANCE``
  (10 %) of their pre-fault level; ``recovery_seconds = k * STEP_S``. An endpoint that was
  idle before the fault (level 0) has recovered when a window passes with no attempt;
- **sustained** when windows fit between the fault's end and the run's end (the last
  record) or the next fault window on those endpoints, and none of them qualifies:
  ``recovery_seconds`` is then None. When not even one window fits (a fault that lasts
  until the run ends), ``sustained`` is None too: nothing can be told, and a fault still
  on is no storm outliving it;
- **goodput** (successes/s) before, during and in the ``AFTER_S`` seconds after;
- **wasted attempts**: attempts sent in [start, recovered at or the limit) whose result
  was a timeout (the server may have done the work; nobody waited for it), and their share
  of the attempts sent then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import inventory, to_frame

__all__ = [
    "AFTER_S",
    "PRE_FAULT_S",
    "STEP_S",
    "TOLERANCE",
    "WINDOW_S",
    "FaultWindow",
    "fault_windows",
    "recovery",
    "recovery_summary",
]

TOLERANCE = 0.10
WINDOW_S = 5.0
STEP_S = 1.0
PRE_FAULT_S = 30.0
AFTER_S = 60.0
SUCCESS = ("ok", "accepted")


class FaultWindow(NamedTuple):
    """One fault: [start, end) at ``endpoints``; ``cause`` is the record's detail."""

    start: float
    end: float
    endpoints: tuple[str, ...]
    kind: str  # "outage" | "fault"
    cause: str
    where: str  # the endpoint, or "<region> <channel>" for a broad record


def fault_windows(events: Iterable[Record] | pd.DataFrame) -> list[FaultWindow]:
    """The fault windows of a log, in start order.

    A switched fault writes one "fault" record per endpoint it hits, all at one ``t``: they
    make one window. An "outage" record with a blank endpoint covers every endpoint of its
    channel and region (blank = any), as in ``storm.outage_flags``.
    """
    df = to_frame(events)
    inv = inventory(df)
    rows = df.loc[df["kind"].isin(("outage", "fault"))]
    groups: dict[tuple[str, float, float, str, str], list[str]] = {}
    labels: dict[tuple[str, float, float, str, str], str] = {}
    for r in rows.itertuples(index=False):
        if r.endpoint:
            eps, where = [str(r.endpoint)], str(r.endpoint)
        else:
            ch, rg = str(r.channel), str(r.region)
            hit = ((inv["channel"] == ch) | (ch == "")) & ((inv["region"] == rg) | (rg == ""))
            eps = [str(e) for e in inv.index[hit]]
            where = " ".join(x for x in (rg, ch) if x) or "estate"
        # Per-endpoint outage records of one cause at one time are separate faults unless
        # they are switched-fault records (one per target of one fault).
        key_ep = "" if r.kind == "fault" else where
        key = (str(r.kind), float(r.t), float(r.value), str(r.detail), key_ep)
        groups.setdefault(key, []).extend(eps)
        labels.setdefault(key, where)
    out = []
    for key, eps in groups.items():
        kind, start, duration, cause, _ = key
        unique = tuple(sorted(set(eps)))
        # An outage is named as recorded (its endpoint, or its region and channel); the
        # per-endpoint records of one switched fault by how many endpoints they hit.
        where = labels[key] if kind == "outage" or len(unique) <= 1 else f"{len(unique)} endpoints"
        out.append(FaultWindow(start, start + duration, unique, kind, cause, where))
    out.sort(key=lambda w: (w.start, w.end, w.where))
    return out


def _rate(times: np.ndarray, lo: np.ndarray | float, span: float) -> np.ndarray:
    """Events per second in [lo, lo + span) for sorted ``times``."""
    lo_arr = np.asarray(lo, dtype=np.float64)
    hi = np.searchsorted(times, lo_arr + span, side="left")
    return (hi - np.searchsorted(times, lo_arr, side="left")) / span


def _within(rate: np.ndarray, level: float, tolerance: float) -> np.ndarray:
    # A hair of slack so that a rate exactly 10 % off, computed in floats, still counts.
    return np.abs(rate - level) <= tolerance * level + 1e-9


def recovery(
    events: Iterable[Record] | pd.DataFrame,
    *,
    tolerance: float = TOLERANCE,
    window: float = WINDOW_S,
    step: float = STEP_S,
    pre_fault: float = PRE_FAULT_S,
    after: float = AFTER_S,
    horizon: float | None = None,
) -> list[dict[str, Any]]:
    """One dict per fault window (see the module docstring for every figure)."""
    df = to_frame(events)
    windows = fault_windows(df)
    if not windows:
        return []
    end_of_run = float(df["t"].max()) if horizon is None else float(horizon)
    sends = df.loc[df["kind"] == "send", ["t", "endpoint", "promo", "attempt"]]
    results = df.loc[df["kind"] == "result", ["t", "endpoint", "outcome", "attempt", "promo"]]
    ok = results[results["outcome"].isin(SUCCESS)]
    touts = results[results["outcome"] == "timeout"]
    # Row positions per endpoint, found once: a window then reads only its endpoints' rows
    # (a 5,000-store estate has thousands of per-store windows; a scan of every send per
    # window made this quadratic in the stores).
    at_send, at_ok, at_tout = _rows_by(sends), _rows_by(ok), _rows_by(touts)
    send_all = sends["t"].to_numpy(np.float64)
    ok_all = ok["t"].to_numpy(np.float64)
    touching = _overlaps(windows)
    out = []
    for i, w in enumerate(windows):
        mine = _rows(at_send, w.endpoints)
        send_t = np.sort(send_all[mine])
        ok_t = np.sort(ok_all[_rows(at_ok, w.endpoints)])
        # Earlier and later windows touching the same endpoints bound the search.
        others = [windows[j] for j in touching[i]]
        prev_end = max((o.end for o in others if o.end <= w.start), default=0.0)
        limit = min([end_of_run, *(o.start for o in others if o.start >= w.end)])
        pre_lo = max(0.0, w.start - pre_fault, prev_end)
        pre_span = w.start - pre_lo
        level_a = level_s = None
        recovered_at = None
        measurable = pre_span >= window
        # No whole window left between the fault's end and the run's end (or the next
        # fault): whether it recovered cannot be told, which is not "sustained".
        judged = False
        if measurable:
            level_a = float(_rate(send_t, pre_lo, pre_span))
            level_s = float(_rate(ok_t, pre_lo, pre_span))
            n = int(np.floor((limit - window - w.end) / step + 1e-9)) + 1
            judged = n > 0
            if judged:
                starts = w.end + step * np.arange(n)
                good = _within(_rate(send_t, starts, window), level_a, tolerance) & _within(
                    _rate(ok_t, starts, window), level_s, tolerance
                )
                hit = np.flatnonzero(good)
                if len(hit):
                    recovered_at = float(starts[hit[0]])
        counted_to = recovered_at if recovered_at is not None else limit
        mine_t = send_all[mine]
        in_span = mine[(mine_t >= w.start) & (mine_t < counted_to)]
        answers = _rows(at_tout, w.endpoints)
        timed_out = 0
        if len(in_span) and len(answers):  # frames cut only where a timeout can match
            timed_out = _timed_out(sends.iloc[in_span], touts.iloc[answers], w.start, counted_to)
        after_span = max(0.0, min(after, end_of_run - w.end))
        out.append(
            {
                "where": w.where,
                "endpoints": len(w.endpoints),
                "kind": w.kind,
                "cause": w.cause,
                "start": w.start,
                "end": w.end,
                "pre_fault": {"attempt_rate": level_a, "success_rate": level_s},
                "recovery_seconds": None if recovered_at is None else recovered_at - w.end,
                "sustained": None if not judged else recovered_at is None,
                "goodput": {
                    "before": level_s,
                    "during": float(_rate(ok_t, w.start, w.end - w.start))
                    if w.end > w.start
                    else None,
                    "after": float(_rate(ok_t, w.end, after_span)) if after_span > 0 else None,
                },
                "attempts": len(in_span),
                "wasted_attempts": timed_out,
                "wasted_share": timed_out / len(in_span) if len(in_span) else None,
            }
        )
    return out


def _rows_by(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Endpoint -> positions of its rows in ``frame``."""
    if frame.empty:
        return {}
    codes, names = pd.factorize(frame["endpoint"].to_numpy(dtype=object))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(e): order[bounds[k] : bounds[k + 1]] for k, e in enumerate(names)}


def _rows(at: dict[str, np.ndarray], endpoints: tuple[str, ...]) -> np.ndarray:
    """Positions of the rows of ``endpoints``, in frame order."""
    parts = [at[e] for e in endpoints if e in at]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]


def _overlaps(windows: list[FaultWindow]) -> list[list[int]]:
    """For each window, the other windows sharing an endpoint with it, in window order."""
    holders: dict[str, list[int]] = {}
    for j, w in enumerate(windows):
        for e in w.endpoints:
            holders.setdefault(e, []).append(j)
    out = []
    for i, w in enumerate(windows):
        seen: set[int] = set()
        for e in w.endpoints:
            seen.update(holders[e])
        seen.discard(i)
        out.append(sorted(seen))
    return out


def _timed_out(span_sends: pd.DataFrame, touts: pd.DataFrame, lo: float, hi: float) -> int:
    """Timeout results (``touts``, at the window's endpoints) answering attempts sent in
    [lo, hi) (``span_sends``).

    A result answers the latest earlier send of the same (promo, endpoint, attempt), so
    each timeout is matched to that send and counted when the send lies in the span.
    """
    if span_sends.empty or touts.empty:
        return 0
    sent = span_sends.assign(sent=span_sends["t"])
    key = ["promo", "endpoint", "attempt"]
    matched = pd.merge_asof(
        touts.sort_values("t")[["t", *key]],
        sent.sort_values("t")[["t", "sent", *key]],
        on="t",
        by=key,
        direction="backward",
    )
    inside = matched["sent"].notna() & (matched["sent"] >= lo) & (matched["sent"] < hi)
    return int(inside.sum())


def recovery_summary(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The SLO-ready scalars over all windows: ``recovery_seconds`` = the longest recovery
    (None when there is no measurable window or any is sustained) and ``sustained`` = any
    window's storm outlived the run or the next fault."""
    sustained = any(w["sustained"] for w in windows)
    times = [w["recovery_seconds"] for w in windows if w["recovery_seconds"] is not None]
    return {
        "recovery_seconds": None if sustained or not times else max(times),
        "sustained": sustained,
    }
