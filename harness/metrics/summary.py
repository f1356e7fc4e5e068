"""The run summary: every figure of the event log as the summary.json contract, and the
series behind the plots.

``summarise`` returns exactly the top-level keys ``SUMMARY_KEYS`` (every key down the tree,
with its unit and definition, is declared in ``harness.metrics.keys`` and listed in
docs/summary-json.md), as plain JSON values with floats rounded to 6 decimals, so
identical logs give a byte-identical summary.json. Bulky series (coverage curve, attempts per
second, rollback timeline) stay out of it and come from ``series`` instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.consistency import funding, price_consistency, priced_without_truth
from harness.metrics.frame import shared_results, to_frame
from harness.metrics.propagation import coverage_curve, propagation
from harness.metrics.rollback import rollback_report, rollback_timeline
from harness.metrics.slo import SLO, evaluate_slos
from harness.metrics.storm import attempts_per_second, retry_storm

__all__ = [
    "HEADLINE_FIGURES",
    "MODES",
    "SUMMARY_KEYS",
    "series",
    "summarise",
    "summary_json",
    "to_plain",
]

SUMMARY_KEYS: tuple[str, ...] = (
    "scenario",
    "seed",
    "mode",
    "propagation",
    "retry_storm",
    "rollbacks",
    "price_consistency",
    "leakage_value",
    "funding",
    "slos",
    "passed",
)
MODES: tuple[str, ...] = ("sim", "live", "load")
# The figures a comparison shows first (summary.json paths): every sweep's table and
# plots (--metric adds to them) and the sim-vs-live table of `promoharness live`.
HEADLINE_FIGURES: tuple[str, ...] = (
    "propagation.overall.t50",
    "propagation.overall.t95",
    "propagation.overall.t99",
    "propagation.overall.t100",
    "propagation.overall.acked_t95",
    "retry_storm.amplification",
    "retry_storm.peak_attempt_rate_over_capacity",
    "retry_storm.dead_lettered",
    "leakage_value",
    "price_consistency.mismatch_rate",
    "passed",
)
DECIMALS = 6


def to_plain(obj: Any) -> Any:
    """``obj`` as plain JSON values: dict (str keys), list, str, int, float, bool, None.

    numpy/pandas scalars become Python ones; floats are rounded to 6 decimals, NaN and
    infinities become None (JSON has neither) and -0.0 becomes 0.0, so the dump is stable.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        if not math.isfinite(x):
            return None
        return round(x, DECIMALS) + 0.0
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray | pd.Series):
        return [to_plain(v) for v in obj]
    if obj is pd.NA or obj is pd.NaT:
        return None
    raise TypeError(f"not JSON-serialisable in a summary: {type(obj).__name__}")


def summarise(
    events: Iterable[Record] | pd.DataFrame,
    *,
    scenario: str,
    seed: int,
    mode: str,
    slos: Sequence[SLO | Mapping[str, Any]] = (),
    budgets: Mapping[str, float] | None = None,
    starts: Mapping[str, float] | None = None,
    windows: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Every figure of a run, keyed exactly as summary.json (``SUMMARY_KEYS``).

    ``propagation`` (overall / by_channel / by_promo: t50, t95, t99, t100, acked_t95,
    ghosts, ...), ``retry_storm`` (amplification, peak_attempt_rate_over_capacity,
    dead_lettered, retry_share, ...), ``rollbacks`` (list of {promo, scope, verdict,
    violations, leakage_value, ...}), ``price_consistency`` (mismatch_rate, spread_value,
    samples, ...), ``leakage_value`` (all rollbacks, each discount counted once),
    ``funding`` (per promotion, against ``budgets``), ``slos`` (each SLO evaluated on the
    figures above) and ``passed`` (all SLOs passed; True when there are none). See each
    metric's module for its definition. ``starts``: promo -> validity start in seconds
    since scenario start, for the endpoints late for a scheduled start. ``windows``: promo
    -> (first, last) store-local opening in seconds since scenario start; mismatched price
    samples taken inside one are counted as by design (``price_consistency.opening_window``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, not {mode!r}")
    df = to_frame(events)
    with shared_results():  # the inventory and publish targets: computed once
        rollbacks, leaked = rollback_report(df)
        body: dict[str, Any] = to_plain(
            {
                "scenario": scenario,
                "seed": int(seed),
                "mode": mode,
                "propagation": propagation(df, starts),
                "retry_storm": retry_storm(df),
                "rollbacks": rollbacks,
                "price_consistency": {
                    **price_consistency(df),
                    "opening_window": opening_window(df, windows or {}),
                    "priced_without_truth": priced_without_truth(df),
                },
                "leakage_value": leaked,
                "funding": funding(df, budgets),
            }
        )
    results = to_plain(evaluate_slos(body, slos))
    body["slos"] = results
    body["passed"] = all(r["passed"] for r in results)
    return body


def opening_window(df: pd.DataFrame, windows: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """Mismatched price samples taken while a store-local promotion is open in some zones
    and not yet in others: a by-design disagreement, not a propagation fault.

    ``promos``: promo -> {first, last} opening (s since scenario start); ``mismatched``:
    mismatching samples (more than one distinct price, in cents) whose first quote falls in
    [first, last) of any of them.
    """
    promos = {p: {"first": a, "last": b} for p, (a, b) in sorted(windows.items())}
    quotes = df.loc[df["kind"] == "quote", ["detail", "t", "value"]]
    if quotes.empty or not promos:
        return {"promos": promos, "mismatched": 0}
    cents = np.round(quotes["value"].to_numpy(dtype=np.float64) * 100.0).astype(np.int64)
    per = quotes.assign(cents=cents).groupby("detail", sort=False)
    samples = pd.DataFrame({"t": per["t"].min(), "prices": per["cents"].nunique()})
    t = samples.loc[samples["prices"] > 1, "t"].to_numpy(dtype=np.float64)
    inside = np.zeros(len(t), dtype=bool)
    for a, b in windows.values():
        inside |= (t >= a) & (t < b)
    return {"promos": promos, "mismatched": int(inside.sum())}


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary.json text: key order as built, 2-space indent, no NaN, final newline."""
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def series(events: Iterable[Record] | pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The series behind the plots, kept out of the summary for their size:

    - ``coverage``: t (s after publish), channel ("all" or a channel), coverage (0..1);
    - ``attempts``: t (1 s window), channel, attempts, retries;
    - ``rollback_timeline``: rollback, promo, t, since, active, deadline.
    """
    df = to_frame(events)
    return {
        "coverage": coverage_curve(df),
        "attempts": attempts_per_second(df),
        "rollback_timeline": rollback_timeline(df),
    }
