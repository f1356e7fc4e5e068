"""The comparison page's plots: several runs of one scenario overlaid on one set of axes.

Each ``plot_*`` takes the runs (``harness.compare.Run``: label and event log) and returns
PNG bytes, or None when no run has anything to draw. Curves come from the same metric
functions as a run's own report (``publish_targets``, ``attempts_per_second``,
``rollback_timeline``), so a curve here is the curve of that run's report. A run keeps its
colour and line style in every figure; all runs share one scale per figure, so a bigger
storm looks bigger.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.compare import Run
from harness.metrics.propagation import publish_targets, time_to_share
from harness.metrics.rollback import rollback_timeline
from harness.metrics.storm import attempts_per_second
from harness.report.figures import (
    DPI,
    RETRY,
    figure,
    log_time_axis,
    mark_operators,
    time_scale,
)

__all__ = ["plot_coverage", "plot_latency_cdf", "plot_rollbacks", "plot_storms", "run_style"]

# No red: red is for retries in the storm plot.
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2")
RUN_DASHES = ("-", "--", "-.", ":")
MAX_BINS = 400
_BIN_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0}


def run_style(i: int) -> dict[str, Any]:
    """The i-th run's colour and line style (distinct in colour and, past 7, in dash)."""
    return {"color": RUN_COLOURS[i % len(RUN_COLOURS)], "ls": RUN_DASHES[i // len(RUN_COLOURS) % 4]}


def _width(i: int, n: int) -> float:
    """Line width of the i-th of n overlaid runs: earlier runs wider, so a run whose curve
    equals a later one's still shows as a band around it instead of vanishing under it."""
    return 1.4 + 1.3 * min(n - 1 - i, 4)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _targets(runs: Sequence[Run]) -> list[pd.DataFrame]:
    return [publish_targets(run.events) for run in runs]


def _steps(latency: np.ndarray, n: int, lo: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Coverage steps: x = lo, each finite latency, end; y = share of ``n`` reached (%)."""
    lat = np.sort(latency[np.isfinite(latency)])
    x = np.concatenate([[lo], np.maximum(lat, lo), [end]])
    y = np.concatenate([[0.0], np.arange(1, len(lat) + 1), [len(lat)]]) / n * 100
    return x, y


def plot_coverage(
    runs: Sequence[Run], targets: Sequence[pd.DataFrame] | None = None
) -> bytes | None:
    """Coverage over time since publish, all targets, one curve per run: applied (truth)
    thick, acknowledged (belief) thin, when the run has acks."""
    targets = targets if targets is not None else _targets(runs)
    if all(t.empty for t in targets):
        return None
    both = pd.concat([pd.concat([t["latency"], t["acked_latency"]]) for t in targets])
    end = max(float(both.max()) * 1.03 if both.notna().any() else 1.0, 1.0)
    scale, unit = time_scale(end)
    fig = figure(10, 5.2)
    ax = fig.add_subplot()
    for i, (run, t) in enumerate(zip(runs, targets, strict=True)):
        if t.empty:
            continue
        style = run_style(i)
        lat = t["latency"].to_numpy(dtype=np.float64)
        x, y = _steps(lat, len(t), 0.0, end)
        got = f"{int(np.isfinite(lat).sum())}/{len(t)} applied"
        ax.step(
            x / scale,
            y,
            where="post",
            lw=_width(i, len(runs)),
            label=f"{run.label}: {got}",
            **style,
        )
        acked = t["acked_latency"].to_numpy(dtype=np.float64)
        if np.isfinite(acked).any():
            x, y = _steps(acked, len(t), 0.0, end)
            ax.step(x / scale, y, where="post", lw=1.0, alpha=0.7, color=style["color"], ls=":")
    ax.axhline(95, color="grey", lw=0.8, ls=":")
    ax.set(xlim=(0, end / scale), ylim=(0, 103), yticks=[0, 20, 40, 60, 80, 95, 100])
    ax.set_xlabel(f"time since publish ({unit})")
    ax.set_ylabel("targets with the promotion (%)")
    ax.set_title("Propagation coverage, all targets: applied (thick) vs acknowledged (dotted)")
    ax.grid(alpha=0.3)
    ax.legend(title="run", fontsize=9, **_OUTSIDE)
    return _png(fig)


def plot_latency_cdf(
    runs: Sequence[Run], targets: Sequence[pd.DataFrame] | None = None
) -> bytes | None:
    """Truth latency CDF, one panel per channel (and "all" with several), runs overlaid,
    markers at T50 ●, T95 ▲, T99 ■; one x axis for every panel (log over decades)."""
    targets = targets if targets is not None else _targets(runs)
    lat = np.concatenate([t["latency"].to_numpy(dtype=np.float64) for t in targets])
    finite = lat[np.isfinite(lat)]
    if len(finite) == 0:
        return None
    positive = finite[finite > 0]
    floor = float(positive.min()) if len(positive) else 1e-3
    hi = max(float(finite.max()) * 1.2, floor * 2)
    use_log = hi / floor > 100
    scale, unit = (1.0, "s") if use_log else time_scale(hi)
    channels = sorted({str(c) for t in targets for c in pd.unique(t["channel"])})
    panels = (["all"] if len(channels) > 1 else []) + channels
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    fig = figure(11, 1.2 + 3.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for i, (run, t) in enumerate(zip(runs, targets, strict=True)):
            g = t if panel == "all" else t[t["channel"] == panel]
            if g.empty:
                continue
            style = run_style(i)
            x_lat = g["latency"].to_numpy(dtype=np.float64)
            x, y = _steps(x_lat, len(g), floor, hi)
            got = f"{int(np.isfinite(x_lat).sum())}/{len(g)}"
            ax.step(
                x / scale,
                y,
                where="post",
                lw=_width(i, len(runs)),
                label=f"{run.label} ({got})",
                **style,
            )
            for p, marker in ((50, "o"), (95, "^"), (99, "s")):
                tp = time_to_share(x_lat, p)
                if tp is not None:
                    at = max(tp, floor) / scale
                    ax.plot(at, p, marker, color=style["color"], ms=6, mec="black", mew=0.5)
        ax.set_title(f"channel {panel}" if panel != "all" else "all targets", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    first = axes[0]
    if use_log:
        log_time_axis(first, floor * 0.8, hi)
        label = "propagation latency: first 'applied' minus publish (log scale)"
    else:
        first.set_xlim(0, hi / scale)
        label = f"propagation latency: first 'applied' minus publish ({unit})"
    first.set_ylim(0, 103)
    fig.supxlabel(label, fontsize=10)
    fig.supylabel("targets applied within the latency (%)", fontsize=10)
    fig.suptitle("Propagation latency CDF per channel (markers: T50 ●, T95 ▲, T99 ■)")
    return _png(fig)


def _per_second(aps: pd.DataFrame, lo: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Total attempts and retries per 1 s window over [lo, lo + n), all channels summed."""
    idx = (aps["t"].to_numpy(dtype=np.float64) - lo).astype(np.int64)
    total = np.bincount(idx, weights=aps["attempts"].to_numpy(np.float64), minlength=n)[:n]
    retries = np.bincount(idx, weights=aps["retries"].to_numpy(np.float64), minlength=n)[:n]
    return total - retries, retries


def _busiest(first: np.ndarray, retries: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bin of ``width`` s, the first/retry split of its busiest second (a peak, never
    an average that would hide the storm)."""
    if width == 1:
        return first, retries
    n = math.ceil(len(first) / width) * width
    f = np.pad(first, (0, n - len(first))).reshape(-1, width)
    r = np.pad(retries, (0, n - len(retries))).reshape(-1, width)
    pick = (f + r).argmax(axis=1)
    rows = np.arange(len(pick))
    return f[rows, pick], r[rows, pick]


def _outage_spans(df: pd.DataFrame) -> list[tuple[float, float]]:
    """The union of the run's outage intervals (any endpoint, channel or region)."""
    out = df.loc[df["kind"] == "outage", ["t", "value"]].sort_values("t")
    spans: list[tuple[float, float]] = []
    for t, d in zip(out["t"].to_numpy(float), out["value"].to_numpy(float), strict=True):
        if spans and t <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], t + d))
        else:
            spans.append((t, t + d))
    return spans


def _count_ticks(axis: Any, top: float) -> None:
    """Plain-number ticks (0, 1, 2, 5, 10 ... or 0, 1, 10, 100 ...) on a symlog count axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    steps = (1, 2, 5) if top <= 100 else (1,)
    ticks = [0.0] + [m * 10.0**k for k in range(9) for m in steps if m * 10.0**k <= top]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    axis.set_minor_locator(NullLocator())


def plot_storms(runs: Sequence[Run], summaries: Sequence[dict[str, Any]]) -> bytes | None:
    """Delivery attempts per second, one row per run on one time axis and one y scale:
    first attempts in the run's colour, retries in red from zero, outages shaded."""
    per_run = [attempts_per_second(run.events) for run in runs]
    if all(a.empty for a in per_run):
        return None
    lo = min(float(a["t"].min()) for a in per_run if len(a))
    hi = max(float(a["t"].max()) for a in per_run if len(a)) + 1
    n = int(hi - lo)
    width = next((w for w in _BIN_WIDTHS if n / w <= MAX_BINS), _BIN_WIDTHS[-1])
    span = n + 2.0
    scale, unit = time_scale(span)
    fig = figure(11, 1.3 + 1.9 * len(runs))
    axes = fig.subplots(len(runs), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    top = 1.0
    for i, (ax, run, aps) in enumerate(zip(axes, runs, per_run, strict=True)):
        storm = summaries[i].get("retry_storm") or {}
        amp, attempts = storm.get("amplification"), storm.get("attempts")
        words = [f"{attempts:,} attempts" if isinstance(attempts, int) else "attempts not measured"]
        words.append(f"amplification {amp:.2f}×" if isinstance(amp, int | float) else "")
        ax.set_title(f"{run.label}: " + ", ".join(w for w in words if w), fontsize=10, loc="left")
        for a, b in _outage_spans(run.events):
            ax.axvspan(a / scale, b / scale, color="#f4a582", alpha=0.3, lw=0)
        mark_operators(ax, run.events, scale, label=i == 0)
        ax.grid(alpha=0.3)
        if aps.empty:
            ax.text(0.5, 0.5, "no delivery attempts", transform=ax.transAxes, ha="center")
            continue
        first, retries = _busiest(*_per_second(aps, lo, n), width)
        x = (lo + np.arange(len(first) + 1) * width) / scale
        colour = run_style(i)["color"]
        f, r = np.append(first, first[-1]), np.append(retries, retries[-1])
        ax.fill_between(x, 0, f, step="post", color=colour, alpha=0.6, lw=0, label="first attempts")
        if r.any():
            ax.fill_between(x, 0, r, step="post", color=RETRY, alpha=0.85, lw=0, label="retries")
        top = max(top, float((f + r).max()))
        ax.legend(fontsize=8, loc="upper right")
    # symlog: linear below 1 attempt/s, so a trickle of retries under a spike stays visible.
    axes[0].set_yscale("symlog", linthresh=1.0, linscale=0.5)
    axes[0].set_ylim(0, top * 1.8)
    _count_ticks(axes[0].yaxis, top * 1.8)
    pad = max(1.0, 0.02 * n)
    axes[0].set_xlim((lo - pad) / scale, (hi + pad) / scale)
    binning = "1 s windows" if width == 1 else f"busiest 1 s per {width} s"
    axes[-1].set_xlabel(f"time since scenario start ({unit}); {binning}")
    fig.supylabel("attempts / s (symlog, one scale)", fontsize=10)
    fig.suptitle(
        "Delivery attempts per second, every run on one scale (retries red, outages shaded)"
    )
    return _png(fig)


def plot_rollbacks(runs: Sequence[Run]) -> bytes | None:
    """Per rollback (by position), the share of in-scope endpoints active at the rollback
    that have removed the promotion, over time since the rollback, runs overlaid."""
    lines = [rollback_timeline(run.events) for run in runs]
    count = max((int(tl["rollback"].max()) + 1 for tl in lines if len(tl)), default=0)
    if not count:
        return None
    span = max(
        max(float(tl["since"].max()) * 1.05, float(tl["deadline"].max()) * 1.3, 1.0)
        for tl in lines
        if len(tl)
    )
    scale, unit = time_scale(span)
    fig = figure(11, 1.0 + 3.0 * count)
    axes = fig.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        deadline, low = None, 0.0
        for i, (run, tl) in enumerate(zip(runs, lines, strict=True)):
            own = tl[tl["rollback"] == k]
            if own.empty:
                continue
            deadline = float(own["deadline"].iloc[0])
            n0 = int(own["active"].iloc[0])
            if not n0:  # still named: a missing curve must not look like a lost run
                ax.plot([], [], lw=0, label=f"{run.label}: none in scope carried it")
                continue
            share = (n0 - own["active"].to_numpy(dtype=float)) / n0 * 100
            low = min(low, float(share.min()))  # re-applied after the rollback: below 0
            x = np.append(own["since"].to_numpy(dtype=float), span) / scale
            ax.step(
                x,
                np.append(share, share[-1]),
                where="post",
                lw=_width(i, len(runs)),
                label=run.label,
                **run_style(i),
            )
        promo = next(
            (
                tl.loc[tl["rollback"] == k, "promo"].iloc[0]
                for tl in lines
                if (tl["rollback"] == k).any()
            ),
            "",
        )
        if deadline is not None:
            ax.axvline(deadline / scale, color="black", ls="--", lw=1.1, label="deadline")
        ax.set_title(f"rollback #{k} of {promo}", fontsize=10, loc="left")
        ax.set_ylim(min(-3.0, low - 3.0), 103)
        ax.set_ylabel("removed (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, **_OUTSIDE)
    axes[0].set_xlim(0, span / scale)
    axes[-1].set_xlabel(f"time since the rollback ({unit})")
    fig.suptitle("Rollback: in-scope endpoints that carried the promotion and have removed it")
    return _png(fig)
