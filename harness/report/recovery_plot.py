"""The recovery plot: attempt rate, goodput and capacity around a fault, the fault shaded.

Read from the event log alone (``metrics.recovery``): for the fault window whose storm
lasted longest (a sustained one first), attempts/s and successes/s at its endpoints in
1 s bins, the endpoints' capacity (cut to its share while a "capacity:<share>" fault is
on, 0 during an outage), the pre-fault level with its ±10 % band and the moment the rates
came back inside it. ``draw_recovery`` draws on a given axis, so the metastability lab
puts several runs side by side with the same picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import inventory, to_frame
from harness.metrics.recovery import SUCCESS, TOLERANCE, fault_windows, recovery
from harness.report.figures import RETRY, TITLE_Y, figure, save

__all__ = ["draw_recovery", "plot_recovery", "worst_window"]

FAULT = "#f4a582"
ATTEMPTS = "#1f77b4"
GOODPUT = "#2ca02c"
CAPACITY = "#555555"
# Seconds shown before the fault and after its end when the storm has no end in view.
MARGIN_S = 60.0


def worst_window(windows: list[dict[str, Any]]) -> int | None:
    """Index of the window to show: sustained first, else the longest recovery."""
    if not windows:
        return None

    def badness(i: int) -> tuple[int, float]:
        w = windows[i]
        return (1 if w["sustained"] else 0, w["recovery_seconds"] or 0.0)

    return max(range(len(windows)), key=badness)


def _share(cause: str) -> float | None:
    if cause.startswith("capacity:"):
        try:
            return float(cause.split(":", 1)[1])
        except ValueError:
            return None
    return None


def draw_recovery(
    ax: Any,
    events: Iterable[Record] | pd.DataFrame,
    index: int | None = None,
    *,
    per: float = 1.0,
    unit: str = "req/s",
    legend: bool = True,
    windows: list[Any] | None = None,
) -> dict[str, Any] | None:
    """Draw fault window ``index`` (default: the worst) on ``ax``; rates divided by ``per``
    (the lab passes its rate scale); ``windows``: ``recovery(events)`` when the caller
    has it already. Returns the window's figures, None if there is none."""
    df = to_frame(events)
    if windows is None:
        windows = recovery(df)
    if index is None:
        index = worst_window(windows)
    if index is None:
        return None
    w = windows[index]
    inv = inventory(df)
    fw = fault_windows(df)[index]
    eps = set(fw.endpoints)
    end_of_run = float(df["t"].max())
    lo = max(0.0, w["start"] - MARGIN_S)
    settle = w["recovery_seconds"] if w["recovery_seconds"] is not None else MARGIN_S
    hi = min(end_of_run, w["end"] + max(settle + 20.0, MARGIN_S))
    bins = np.arange(np.floor(lo), np.ceil(hi) + 1.0)
    sends = df.loc[(df["kind"] == "send") & df["endpoint"].isin(eps), "t"].to_numpy(np.float64)
    oks = df.loc[
        (df["kind"] == "result") & df["endpoint"].isin(eps) & df["outcome"].isin(SUCCESS), "t"
    ].to_numpy(np.float64)
    a, _ = np.histogram(sends, bins)
    g, _ = np.histogram(oks, bins)
    x = bins[:-1]
    ax.axvspan(w["start"], w["end"], color=FAULT, alpha=0.35, lw=0, label="fault")
    ax.step(x, a / per, where="post", color=ATTEMPTS, lw=1.2, label="attempts/s")
    ax.step(x, g / per, where="post", color=GOODPUT, lw=1.2, label="goodput (successes/s)")
    cap = float(inv.loc[inv.index.isin(eps), "capacity"].sum()) if len(inv) else 0.0
    if cap > 0 and np.isfinite(cap):
        share = _share(w["cause"])
        during = cap * share if share is not None else (0.0 if w["kind"] == "outage" else cap)
        ax.plot(
            [lo, w["start"], w["start"], w["end"], w["end"], hi],
            np.array([cap, cap, during, during, cap, cap]) / per,
            color=CAPACITY,
            ls="--",
            lw=1.0,
            label="capacity",
        )
    level = w["pre_fault"]["attempt_rate"]
    if level:
        ax.axhspan(
            level * (1 - TOLERANCE) / per,
            level * (1 + TOLERANCE) / per,
            color=ATTEMPTS,
            alpha=0.08,
            lw=0,
            label="pre-fault attempts ±10 %",
        )
    if w["recovery_seconds"] is not None:
        t = w["end"] + w["recovery_seconds"]
        ax.axvline(
            t, color=GOODPUT, ls=":", lw=1.4, label=f"recovered (+{w['recovery_seconds']:g} s)"
        )
        verdict = f"recovered {w['recovery_seconds']:g} s after the fault"
    elif w["sustained"]:
        verdict = "sustained: not recovered before the run ended"
    else:
        verdict = "no pre-fault level to recover to"
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel(unit)
    ax.set_title(f"{w['where']}: {w['cause'] or w['kind']} — {verdict}", fontsize=9, y=TITLE_Y)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper right")
    if w["sustained"]:
        ax.text(0.99, 0.02, "storm outlives the fault", transform=ax.transAxes, ha="right",
                va="bottom", color=RETRY, fontsize=8)  # fmt: skip
    return w


def plot_recovery(events: Iterable[Record] | pd.DataFrame, out: Path) -> Path | None:
    """The report's recovery PNG for the worst fault window; None when there is no fault."""
    df = to_frame(events)
    windows = recovery(df)
    if not windows:
        return None
    fig = figure(10, 4.5)
    ax = fig.add_subplot()
    draw_recovery(ax, df, windows=windows)  # computed once: it is most of this plot's cost
    return save(fig, Path(out))
