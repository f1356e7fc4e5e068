"""The retry-storm plot: delivery attempts per second against capacity, outages shaded.

Read from the "send", "endpoint" (capacity) and "outage" records of the event log. Sends
come in bursts (a publish fans out to 600 stores in a second, retries trickle for
minutes, a rollback hours later), so over a long axis each bar shows the busiest 1 s
window of its bin: a peak-preserving summary, never an average that hides the storm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import inventory, to_frame
from harness.metrics.storm import attempts_per_second, peak_attempts
from harness.report.figures import RETRY, colour, figure, mark_operators, save, time_scale

__all__ = ["plot_attempts"]

# At most this many bars across the axis, so a 1 s burst stays visible on a 4 h run.
MAX_BARS = 400
# Zoomed columns for bursts of sends apart by idle gaps, at most this many.
MAX_SEGMENTS = 3
_BIN_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
OUTAGE = "#f4a582"


def _rate(x: float) -> str:
    """A capacity for a title: 2.5 stays 2.5, 23492 becomes 23,492."""
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _plural(n: float, word: str) -> str:
    return f"{n:,.0f} {word}" + ("" if n == 1 else "s")


def _outages(df: pd.DataFrame, inv: pd.DataFrame) -> pd.DataFrame:
    """Every outage expanded to the endpoints it covers: endpoint, channel, start, end,
    broad (a blank-endpoint record covering a channel and/or region), label."""
    parts = []
    for o in df.loc[df["kind"] == "outage"].itertuples(index=False):
        start, end, ch, rg = float(o.t), float(o.t + o.value), str(o.channel), str(o.region)
        if o.endpoint:
            eps = [o.endpoint]
        else:
            hit = (inv["channel"] == ch) | (ch == "")
            eps = list(inv.index[hit & ((inv["region"] == rg) | (rg == ""))])
        where = o.endpoint or " ".join(x for x in (rg, ch) if x) or "estate"
        label = f"outage: {where}" + (f" ({o.detail})" if o.detail else "")
        for e in eps:
            chan = str(inv["channel"].get(e, "")) or ch or "unknown"
            parts.append((e, chan, start, end, not o.endpoint, label))
    frame = pd.DataFrame(parts, columns=["endpoint", "channel", "start", "end", "broad", "label"])
    # Typed even when empty: a boolean mask from an untyped empty column selects columns.
    return frame.astype({"start": np.float64, "end": np.float64, "broad": bool})


def _shade(ax: Any, outs: pd.DataFrame, scale: float, lo: float, hi: float) -> None:
    """Outage intervals as shaded spans, one legend entry per distinct outage."""
    seen: set[str] = set()
    for o in outs.drop_duplicates(["start", "end", "label"]).itertuples(index=False):
        if o.end < lo or o.start > hi:
            continue
        label = None if o.label in seen else o.label
        seen.add(o.label)
        left, right = max(o.start, lo) / scale, min(o.end, hi) / scale
        ax.axvspan(left, right, color=OUTAGE, alpha=0.3, lw=0, label=label)


def _strip(ax: Any, outs: pd.DataFrame, scale: float, lo: float, hi: float) -> bool:
    """Per-endpoint outages as a strip along the top of the panel, overlaps darker: a
    channel with hundreds of store outages would be painted over by full-height spans."""
    outs = outs[(outs["end"] >= lo) & (outs["start"] <= hi)]
    if outs.empty:
        return False
    bars = [
        (max(s, lo) / scale, (min(e, hi) - max(s, lo)) / scale)
        for s, e in zip(outs["start"], outs["end"], strict=True)
    ]
    alpha = max(0.08, min(0.6, 3.0 / len(bars)))
    ax.broken_barh(
        bars, (0.93, 0.07), transform=ax.get_xaxis_transform(), color="dimgrey", alpha=alpha, lw=0
    )
    return True


def _binned(first: np.ndarray, retries: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bin of ``width`` seconds, the first/retry split of its busiest second."""
    if width == 1:
        return first, retries
    n = math.ceil(len(first) / width) * width
    f = np.pad(first, (0, n - len(first))).reshape(-1, width)
    r = np.pad(retries, (0, n - len(retries))).reshape(-1, width)
    pick = (f + r).argmax(axis=1)
    rows = np.arange(len(pick))
    return f[rows, pick], r[rows, pick]


def _bars(ax: Any, x: np.ndarray, first: np.ndarray, retries: np.ndarray, fill: str) -> float:
    """Step areas from zero, first attempts then retries over them (not stacked: on the
    symlog axis a trickle of retries under a publish spike stays visible); returns the
    peak total attempts per second."""
    f, r = np.append(first, first[-1]), np.append(retries, retries[-1])
    ax.fill_between(x, 0, f, step="post", color=fill, alpha=0.55, lw=0)
    if r.any():
        label = "retries (attempt > 1), from zero"
        ax.fill_between(x, 0, r, step="post", color=RETRY, alpha=0.85, lw=0, label=label)
    return float((f + r).max())


def _per_second(t: np.ndarray, lo: float, n: int) -> np.ndarray:
    idx = (np.floor(t) - lo).astype(np.int64)
    return np.bincount(idx, minlength=n)[:n].astype(np.float64)


def _segments(seconds: np.ndarray, lo: float, hi: float) -> list[tuple[float, float]]:
    """Bursts of sends apart by long idle gaps (a publish, hours later a rollback), each
    [start, end) in s, so each gets a zoomed column; one continuous range when there are
    more than ``MAX_SEGMENTS`` (sends spread over the run: the gaps are the story)."""
    t = np.unique(seconds)
    cuts = np.nonzero(np.diff(t) > max(300.0, 0.1 * (hi - lo)))[0]
    if len(cuts) == 0 or len(cuts) >= MAX_SEGMENTS:
        return [(lo, hi)]
    starts = np.concatenate([[t[0]], t[cuts + 1]])
    ends = np.concatenate([t[cuts] + 1, [t[-1] + 1]])
    return [(float(a), float(b)) for a, b in zip(starts, ends, strict=True)]


def _panels(
    df: pd.DataFrame, inv: pd.DataFrame, aps: pd.DataFrame, peak: dict[str, Any], lo: float, n: int
) -> list[dict[str, Any]]:
    """One row of the figure per channel, plus the busiest endpoint (by attempts over its
    own capacity) unless it is its channel's only endpoint: per-second series and labels."""
    grid = lo + np.arange(n)
    rows = []
    for name in sorted(pd.unique(aps["channel"]).tolist()):
        part = aps.loc[aps["channel"] == name, ["t", "attempts", "retries"]]
        part = part.set_index("t").reindex(grid, fill_value=0)
        retries = part["retries"].to_numpy(dtype=np.float64)
        own = inv[inv["channel"] == name]
        cap = float(own["capacity"].sum())
        over = _plural(len(own), "endpoint")
        rows.append(
            {
                "channel": name,
                "endpoint": "",
                "cap": cap,
                "retries": retries,
                "first": part["attempts"].to_numpy(dtype=np.float64) - retries,
                "title": f"{name}: capacity {_rate(cap)} req/s over {over}",
            }
        )
    e = str(peak["endpoint"] or "")
    if e and (inv["channel"] == inv["channel"].get(e, "")).sum() > 1:
        sends = df.loc[(df["kind"] == "send") & (df["endpoint"] == e)]
        t = sends["t"].to_numpy(dtype=np.float64)
        retries = _per_second(t[(sends["attempt"] > 1).to_numpy()], lo, n)
        ch, cap = str(inv["channel"].get(e, "unknown")), float(peak["capacity"] or 0)
        rows.append(
            {
                "channel": ch,
                "endpoint": e,
                "cap": cap,
                "retries": retries,
                "first": _per_second(t, lo, n) - retries,
                "title": f"busiest endpoint {e} ({ch}): capacity {_rate(cap)} req/s",
            }
        )
    return rows


def _pad(seg: tuple[float, float]) -> float:
    span = seg[1] - seg[0]
    return max(1.0, 0.03 * span, (30.0 - span) / 2)  # short bursts get >= 30 s


def _cell(
    ax: Any,
    row: dict[str, Any],
    seg: tuple[float, float],
    lo: float,
    ncols: int,
    outs: pd.DataFrame,
    scale: float,
) -> tuple[float, int]:
    """Draw one row's bars for one burst, x in units of ``scale`` s; returns (peak, bin width)."""
    a, b = seg
    i, j = int(a - lo), int(b - lo)
    width = next((w for w in _BIN_WIDTHS if (j - i) / w <= MAX_BARS / ncols), _BIN_WIDTHS[-1])
    pad = _pad(seg)
    f, r = _binned(row["first"][i:j], row["retries"][i:j], width)
    x = (a + np.arange(len(f) + 1) * width) / scale
    top = _bars(ax, x, f, r, colour(row["channel"]))
    if row["endpoint"]:
        _shade(ax, outs[outs["endpoint"] == row["endpoint"]], scale, a - pad, b + pad)
    else:
        mine = outs[outs["channel"] == row["channel"]]
        _shade(ax, mine[mine["broad"]], scale, a - pad, b + pad)
        if _strip(ax, mine[~mine["broad"]], scale, a - pad, b + pad):
            ax.plot([], [], color="dimgrey", lw=5, alpha=0.5, label="endpoint outages (top strip)")
    ax.set_xlim((a - pad) / scale, (b + pad) / scale)
    return top, width


def plot_attempts(events: Iterable[Record] | pd.DataFrame, out: Path) -> Path | None:
    """Delivery attempts per second per channel (retries stacked on first attempts) against
    the channel's summed capacity, outages shaded; plus the endpoint with the highest
    attempt rate over its own capacity against that capacity. None without sends.

    Bursts of sends apart by long idle gaps get a zoomed column each (``_segments``)."""
    from matplotlib.patches import Patch

    df = to_frame(events)
    aps = attempts_per_second(df)
    if aps.empty:
        return None
    inv = inventory(df)
    outs = _outages(df, inv)
    lo, hi = float(aps["t"].min()), float(aps["t"].max()) + 1
    rows = _panels(df, inv, aps, peak_attempts(df), lo, int(hi - lo))
    rows, quiet = _busy_rows(rows)
    segs = _segments(aps["t"].to_numpy(), lo, hi)
    # One time unit for every column, so a reader never compares minutes with seconds.
    scale, unit = time_scale(max(b - a + 2 * _pad((a, b)) for a, b in segs))
    # A fixed layout (inches): constrained layout would give each row its own margins,
    # and the burst columns of different rows would no longer line up.
    height = 1.7 + 2.1 * len(rows)
    fig = figure(11, height, layout=None)
    axes = fig.subplots(len(rows), len(segs), sharex="col", sharey="row", squeeze=False)
    fig.subplots_adjust(
        left=0.08, right=0.98, top=1 - 0.85 / height, bottom=1.25 / height, hspace=0.45, wspace=0.06
    )
    # One legend for the figure; first attempts are in the channel's colour, shown grey.
    legend: dict[str, Any] = {"first attempts (channel colour)": Patch(color="#8c8c8c")}
    for r, row in enumerate(rows):
        top = 0.0
        for c, seg in enumerate(segs):
            ax = axes[r, c]
            peak, width = _cell(ax, row, seg, lo, len(segs), outs, scale)
            top = max(top, peak)
            mark_operators(ax, df, scale, label=True)
            ax.grid(alpha=0.3)
            if r == len(rows) - 1:
                binning = "1 s windows" if width == 1 else f"busiest 1 s per {width} s"
                ax.set_xlabel(f"time since start ({unit}); {binning}", fontsize=9)
        cap = row["cap"]
        on_scale = cap > 0 and (cap <= 3 * top or bool(row["endpoint"]))
        for ax in axes[r]:
            if on_scale:
                ax.axhline(cap, color="black", ls="--", lw=1.2, label="capacity")
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(lab, h)
        # symlog: linear below 1 attempt/s, log above, so one retry a second under a
        # 1,200/s publish spike is still a visible band.
        axes[r, 0].set_yscale("symlog", linthresh=1.0, linscale=0.5)
        axes[r, 0].set_ylim(0, max(top, cap if on_scale else 0.0, 1.0) * 1.8)
        axes[r, 0].set_ylabel("attempts / s\n(symlog)")
        ratio = f" = {top / cap:.2g}× capacity" if cap > 0 else ""
        off = " (capacity line off scale)" if cap > 0 and not on_scale else ""
        box = axes[r, 0].get_position()
        fig.text(
            0.53,
            box.y1 + 0.08 / height,
            f"{row['title']}; peak {_plural(top, 'attempt')}/s{ratio}{off}",
            ha="center",
            va="bottom",
            fontsize=10,
        )
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=8)
    title = "Delivery attempts per second vs capacity (retries in red, outages shaded)"
    if quiet:
        title += "\nnot drawn, no retries: " + "; ".join(quiet)
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def _busy_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows worth a panel: channels with retries and the busiest endpoint. A channel with
    no retry is one number (its attempts), named in the title instead of an empty-looking
    panel; when no channel retried at all, every channel keeps its panel."""
    keep = [r for r in rows if r["endpoint"] or r["retries"].any()]
    channels = [r for r in keep if not r["endpoint"]]
    if not channels:
        return rows, []
    quiet = [
        f"{r['channel']} {_plural(float(r['first'].sum()), 'attempt')}"
        for r in rows
        if not any(r is k for k in keep)
    ]
    return keep, quiet
