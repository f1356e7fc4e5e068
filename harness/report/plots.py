"""The report's PNG plots, drawn from the event log alone (never from live objects).

Each ``plot_*`` takes the event log (records or a frame), writes one PNG to ``out``
atomically and returns its path, or returns None when the log holds nothing to plot (no
publish, no rollback, no sales), so a report simply leaves the figure out. ``PLOTS``
lists them in report order; the retry-storm plot lives in ``storm_plot`` and the shared
figure machinery (colours, time axes, saving) in ``figures``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics.frame import channel_of, inventory, to_frame
from harness.metrics.propagation import publish_targets, time_to_share
from harness.metrics.rollback import rollback_report, rollback_scopes, rollback_timeline
from harness.report.figures import (
    DLQ,
    NEVER,
    RETRY,
    TITLE_Y,
    colour,
    duration_ticks,
    figure,
    fmt_duration,
    log_time_axis,
    mark_operators,
    save,
    time_scale,
)
from harness.report.recovery_plot import plot_recovery
from harness.report.storm_plot import plot_attempts

__all__ = [
    "PLOTS",
    "plot_attempts",
    "plot_coverage",
    "plot_heatmap",
    "plot_latency_cdf",
    "plot_rollback",
    "plot_sales",
]

Events = Iterable[Record] | pd.DataFrame
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0}


# --- propagation ----------------------------------------------------------------------


def _steps(latency: pd.Series, n: int, end: float) -> tuple[np.ndarray, np.ndarray]:
    """A coverage step curve: x = 0, each latency, ``end``; y = share of ``n`` reached."""
    lat = np.sort(latency.to_numpy(dtype=np.float64))
    lat = lat[np.isfinite(lat)]
    x = np.concatenate([[0.0], lat, [end]])
    y = np.concatenate([[0.0], np.arange(1, len(lat) + 1), [len(lat)]]) / n
    return x, y


def plot_coverage(events: Events, out: Path) -> Path | None:
    """Coverage over time since publish, per channel and overall: truth solid, acked dashed."""
    from matplotlib.lines import Line2D

    targets = publish_targets(events)
    if targets.empty:
        return None
    both = pd.concat([targets["latency"], targets["acked_latency"]])
    end = max(float(both.max()) * 1.03 if both.notna().any() else 1.0, 1.0)
    scale, unit = time_scale(end)
    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    groups = [(str(c), g) for c, g in targets.groupby("channel", sort=True)]
    if len(groups) > 1:  # with one channel "all" would only repeat it
        groups.insert(0, ("all", targets))
    for name, g in groups:
        # "all" as a wide translucent band under the channels: with 600 stores it runs
        # right along the pos curve and would hide it if drawn as a line on top.
        width, alpha = (6.0, 0.3) if name == "all" else (1.7, 1.0)
        style = {"where": "post", "color": colour(name), "alpha": alpha}
        x, y = _steps(g["latency"], len(g), end)
        label = f"{name}: {int(g['latency'].notna().sum())}/{len(g)} applied"
        ax.step(x / scale, y * 100, lw=width, label=label, **style)
        x, y = _steps(g["acked_latency"], len(g), end)
        ax.step(x / scale, y * 100, lw=width * 0.6, ls="--", **style)
    ax.axhline(95, color="grey", lw=0.8, ls=":")
    ax.set(xlim=(0, end / scale), ylim=(0, 103), yticks=[0, 20, 40, 60, 80, 95, 100])
    ax.set_xlabel(f"time since publish ({unit})")
    ax.set_ylabel("targets with the promotion (%)")
    ax.set_title(
        "Propagation coverage: applied at the endpoint (solid) vs acknowledged (dashed)", y=TITLE_Y
    )
    ax.grid(alpha=0.3)
    ax.add_artist(ax.legend(title="channel", fontsize=9, **_OUTSIDE))
    styles = [
        Line2D([], [], color="black", lw=1.7, label="applied (truth)"),
        Line2D([], [], color="black", lw=1.0, ls="--", label="acked (belief)"),
    ]
    ax.legend(handles=styles, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=9)
    return save(fig, out)


def plot_latency_cdf(events: Events, out: Path) -> Path | None:
    """Truth propagation latency CDF per channel (share of targets), log x over decades."""
    targets = publish_targets(events)
    lat_all = targets["latency"].to_numpy(dtype=np.float64)
    finite = lat_all[np.isfinite(lat_all)]
    if len(finite) == 0:
        return None
    positive = finite[finite > 0]
    floor = float(positive.min()) if len(positive) else 1e-3
    hi = max(float(finite.max()) * 1.2, floor * 2)
    use_log = hi / floor > 100
    scale, unit = (1.0, "s") if use_log else time_scale(hi)
    fig = figure(10, 5.5)
    ax = fig.add_subplot()
    for ch, g in targets.groupby("channel", sort=True):
        lat = g["latency"].to_numpy(dtype=np.float64)
        ok = np.sort(np.maximum(lat[np.isfinite(lat)], floor))
        if len(ok) == 0:
            continue
        c = colour(str(ch))
        x = np.concatenate([[floor], ok, [hi]]) / scale
        y = np.concatenate([[0.0], np.arange(1, len(ok) + 1), [len(ok)]]) / len(g) * 100
        ax.step(x, y, where="post", color=c, lw=1.8, label=f"{ch} ({len(ok)}/{len(g)})")
        for p, marker in ((50, "o"), (95, "^"), (99, "s")):
            tp = time_to_share(lat, p)
            if tp is not None:
                ax.plot(max(tp, floor) / scale, p, marker, color=c, ms=7, mec="black", mew=0.6)
    if use_log:
        log_time_axis(ax, floor * 0.8, hi)
        ax.set_xlabel("propagation latency: first 'applied' minus publish (log scale)")
    else:
        ax.set_xlim(0, hi / scale)
        ax.set_xlabel(f"propagation latency: first 'applied' minus publish ({unit})")
    ax.set_ylim(0, 103)
    ax.set_ylabel("targets applied within the latency (%)")
    ax.set_title("Propagation latency CDF by channel (markers: T50 ●, T95 ▲, T99 ■)", y=TITLE_Y)
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="channel (applied/targets)", fontsize=9, **_OUTSIDE)
    return save(fig, out)


# --- store estate -----------------------------------------------------------------------


def _estate_publish(df: pd.DataFrame, stores: pd.Index) -> pd.DataFrame:
    """Targets of the publish that reached most of ``stores`` (earliest on ties)."""
    targets = publish_targets(df)
    targets = targets[targets["endpoint"].isin(stores)]
    if targets.empty:
        return targets
    counts = targets.groupby("publish").size()
    return targets[targets["publish"] == counts[counts == counts.max()].index.min()]


# Store states after "applied", in display order: code, colour, hatch, legend label.
_STATES = ((1, DLQ, "///", "dead-lettered"), (2, NEVER, "", "never applied"))
_STATES += ((3, "white", "", "not targeted"),)


def plot_heatmap(events: Events, out: Path) -> Path | None:
    """Store activation by region: one row per region, its stores sorted by time of first
    'applied' after the estate-wide publish (colour), then dead-lettered (red, hatched),
    never applied (grey) and not targeted (white). A store dead-lettered and applied
    later (a dead-letter replay) keeps its colour, outlined red and hatched, and counts in
    its region's DLQ figure. Stores are POS endpoints (else every endpoint with a
    region); each row spans 100 % of its region."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Patch, Rectangle

    df = to_frame(events)
    inv = inventory(df)
    stores = inv[inv["channel"] == "pos"]
    stores = stores if len(stores) else inv[inv["region"] != ""]
    block = _estate_publish(df, stores.index)
    if block.empty:
        return None
    promo, t_pub = str(block["promo"].iloc[0]), float(block["t_publish"].iloc[0])
    seconds = block.set_index("endpoint")["latency"]
    dlq = (df["kind"] == "dlq") & (df["promo"] == promo) & (df["t"] >= t_pub)
    dead = set(df.loc[dlq, "endpoint"])
    done = seconds.dropna()
    # Colour by minutes, or seconds when everything landed within two minutes.
    per, unit = (60.0, "min") if len(done) and done.max() >= 120 else (1.0, "s")
    done = done / per
    lo = max(float(done[done > 0].min()) if (done > 0).any() else 0.01, 1e-3)
    hi = max(float(done.max()) if len(done) else 1.0, lo * 1.01)
    log = hi / lo > 100
    norm = LogNorm(lo, hi) if log else Normalize(0, hi)
    cmap = matplotlib.colormaps["viridis"]
    regions = sorted(pd.unique(stores["region"]).tolist())
    fig = figure(11, 1.9 + 0.6 * len(regions))
    ax = fig.add_subplot()
    stats, seen = [], set()
    # Membership by Python sets over plain arrays: pandas' isin on Arrow strings, six
    # times per region, was most of this plot's own time on a 5,000-store estate.
    is_targeted, is_dead = set(seconds.index), dead
    block_eps = block["endpoint"].to_numpy(dtype=object)
    region_of = stores["region"].to_numpy(dtype=object)
    for row, region in enumerate(regions):
        ids = stores.index[region_of == region]
        names = ids.to_numpy(dtype=object)
        m = seconds.reindex(ids) / per
        targeted = np.fromiter((e in is_targeted for e in names), bool, len(names))
        hit_dead = targeted & np.fromiter((e in is_dead for e in names), bool, len(names))
        rank = np.select([m.notna().to_numpy(), hit_dead, targeted], [0, 1, 2], 3)
        order = np.lexsort((ids.to_numpy(dtype=str), m.fillna(np.inf).to_numpy(), rank))
        vals, rank, width = m.to_numpy()[order], rank[order], 100.0 / len(ids)
        was_dead = hit_dead[order]
        y0 = len(regions) - 1 - row - 0.4  # first region on top
        x = float((rank == 0).sum()) * width
        if x:
            rgba = cmap(norm(np.maximum(vals[rank == 0], lo if log else 0)))
            ax.imshow(
                rgba[np.newaxis],
                extent=(0, x, y0, y0 + 0.8),
                aspect="auto",
                interpolation="nearest",
            )
        # Dead-lettered, then applied after a dead-letter replay: outlined in the DLQ
        # colour over their activation colour, so the replay's work stays visible.
        for i in np.nonzero(was_dead & (rank == 0))[0]:
            box = (float(i) * width, y0)
            ax.add_patch(Rectangle(box, width, 0.8, fill=False, hatch="///", ec=DLQ, lw=0.8))
            seen.add(0)
        for code, fill, hatch, _ in _STATES:
            k = int((rank == code).sum())
            if k:
                edge = "#555555" if code != 2 else fill
                ax.add_patch(
                    Rectangle(
                        (x, y0), k * width, 0.8, facecolor=fill, edgecolor=edge, hatch=hatch, lw=0.5
                    )
                )
                x += k * width
                seen.add(code)
        members = set(names)
        inside = np.fromiter((e in members for e in block_eps), bool, len(block_eps))
        t95 = time_to_share(block.loc[inside, "latency"], 95)
        t95_text = fmt_duration(t95) if t95 is not None else "not reached"
        replayed = int((was_dead & (rank == 0)).sum())
        later = f" ({replayed} replayed)" if replayed else ""
        stats.append(
            f"T95 {t95_text} · {int(was_dead.sum())} DLQ{later} · {(rank == 2).sum()} never"
        )
    ticks = [len(regions) - 1 - i for i in range(len(regions))]
    sizes = [int((region_of == r).sum()) for r in regions]
    names = [
        f"{r or '(no region)'}\n{n} store{'s' * (n != 1)}"
        for r, n in zip(regions, sizes, strict=True)
    ]
    ax.set_yticks(ticks, names)
    ax.set(ylim=(-0.55, len(regions) - 0.45), xlim=(0, 100))
    ax.set_xlabel("stores of the region, sorted by time to activation (% of the region's stores)")
    ax.secondary_yaxis("right").set_yticks(ticks, stats, fontsize=8)
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, pad=0.01, fraction=0.035)
    bar.set_label("publish to first 'applied'" + (" (log scale)" if log else f" ({unit})"))
    if log:
        duration_ticks(bar.ax.yaxis, lo, hi, per=per)
    legend = [
        Patch(facecolor=f, edgecolor="#555555", hatch=h, label=lab)
        for code, f, h, lab in _STATES
        if code in seen
    ]
    if 0 in seen:
        label = "dead-lettered, applied after a replay"
        legend.insert(0, Patch(fill=False, edgecolor=DLQ, hatch="///", label=label))
    if legend:
        # "outside": constrained layout makes room under the axes, whatever the height.
        fig.legend(handles=legend, loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    ax.set_title(
        f"Store activation by region: {promo}, published at {fmt_duration(t_pub)}, "
        f"{len(block)} of {len(stores)} stores targeted",
        y=TITLE_Y,
    )
    return save(fig, out)


# --- rollback ---------------------------------------------------------------------------


def plot_rollback(events: Events, out: Path) -> Path | None:
    """Per rollback: share of the endpoints active at the rollback that have removed the
    promotion, over time since the rollback, deadline dashed, resurrections crossed; below,
    cumulative discount granted at scope endpoints after the rollback (leakage)."""
    df = to_frame(events)
    timeline = rollback_timeline(df)
    if timeline.empty:
        return None
    verdicts, _ = rollback_report(df)
    scopes = rollback_scopes(df)
    disc = df.loc[df["kind"] == "discount", ["promo", "endpoint", "t", "value"]]
    span, curves = 1.0, []
    for i, tl in timeline.groupby("rollback", sort=True):
        v = verdicts[int(i)]
        t_r = float(v["t"])
        back = [x for x in v["violations"] if x["property"] == "resurrected"]
        sc = scopes[scopes["rollback"] == i]
        leak = disc.merge(sc[["promo", "endpoint", "until"]], on=["promo", "endpoint"])
        leak = leak[(leak["t"] > t_r) & (leak["t"] < leak["until"])].sort_values("t")
        ends = [float(v["deadline"]) * 1.3, float(tl["since"].max()) * 1.05]
        span = max(span, *ends, *(x["t"] - t_r + 1 for x in back))
        curves.append((v, tl, back, leak, len(sc)))
    scale, unit = time_scale(span)
    fig = figure(11, 7.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    palette = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2")
    for k, (v, tl, back, leak, size) in enumerate(curves):
        c, t_r, deadline = palette[k % len(palette)], float(v["t"]), float(v["deadline"])
        n0 = int(tl["active"].iloc[0])
        late = sum(1 for x in v["violations"] if x["property"] == "not_removed_by_deadline")
        name = f"{v['promo']} at {fmt_duration(t_r)}"
        if n0:
            share = (n0 - tl["active"].to_numpy(dtype=float)) / n0 * 100
            x = np.append(tl["since"].to_numpy(dtype=float), span) / scale
            label = f"{name}: {n0} of {size} in scope active,\n{late} not removed by deadline"
            top.step(x, np.append(share, share[-1]), where="post", color=c, lw=2, label=label)
            for b in back:
                at = max(int(np.searchsorted(tl["t"].to_numpy(), b["t"], side="right")) - 1, 0)
                top.plot(
                    (b["t"] - t_r) / scale,
                    share[at],
                    "x",
                    color=RETRY,
                    ms=11,
                    mew=2.5,
                    label="resurrected" if b is back[0] else None,
                )
        top.axvline(
            deadline / scale,
            color=c,
            ls="--",
            lw=1.2,
            label=f"deadline {fmt_duration(deadline)} ({v['verdict']})",
        )
        when = leak["t"].to_numpy() - t_r
        money = leak["value"].cumsum().to_numpy()
        inside = when <= span
        shown = float(money[inside][-1]) if inside.any() else 0.0
        later = float(v["leakage_value"]) - shown
        extra = f"\n(+{later:,.2f} after {fmt_duration(span)})" if later > 0.005 else ""
        lx = np.concatenate([[0.0], when[inside], [span]]) / scale
        ly = np.concatenate([[0.0], money[inside], [shown]])
        bottom.step(
            lx,
            ly,
            where="post",
            color=c,
            lw=1.8,
            label=f"{name}: {float(v['leakage_value']):,.2f}{extra}",
        )
    top.set_ylim(-2, 105)
    top.set_ylabel("removed (% of endpoints\nactive at the rollback)")
    top.set_title("Rollback: time from rollback to 'removed' at the endpoints in scope", y=TITLE_Y)
    top.legend(fontsize=8, **_OUTSIDE)
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("discount after rollback\n(cumulative, money)")
    bottom.set_title(
        "Leakage: discount granted at endpoints in scope after the rollback", y=TITLE_Y
    )
    bottom.set_xlabel(f"time since rollback ({unit})")
    bottom.set_xlim(0, span / scale)
    bottom.legend(fontsize=8, title="leakage", title_fontsize=8, **_OUTSIDE)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return save(fig, out)


# --- revenue ----------------------------------------------------------------------------


def plot_sales(events: Events, out: Path) -> Path | None:
    """Revenue per minute and discount granted per minute by channel (revenue impact)."""
    df = to_frame(events)
    # Only the columns used: a peak day has millions of sale rows, and a copy of every
    # text column of them cost most of this plot's time and memory.
    wanted = df["kind"].isin(["sale", "discount"]).to_numpy()
    rows = df.loc[wanted, ["t", "kind", "channel", "endpoint", "value"]]
    if rows.empty:
        return None
    inv = inventory(df)
    # The axis ends with the last sale, not the last record: quotes or a late apply after
    # the shoppers stop would add a flat zero tail that reads as a sales collapse.
    end = float(rows["t"].max())
    # Per-minute bins over a day are noise: widen them, still reported per minute.
    minutes = 1 if end <= 6 * 3600 else 5 if end <= 24 * 3600 else 15
    width = 60.0 * minutes
    nbins = max(int(np.ceil(end / width)), 1)
    scale, unit = time_scale(nbins * width)
    x = np.arange(nbins + 1) * width / scale
    fig = figure(11, 7)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, kind, what in ((axes[0], "sale", "revenue"), (axes[1], "discount", "discount")):
        part = rows[(rows["kind"] == kind).to_numpy()]
        names, codes = _channel_codes(part, inv)
        # The record at exactly t = end belongs in the last bin, not a bin of its own.
        idx = np.minimum((part["t"].to_numpy(dtype=float) // width).astype(int), nbins - 1)
        vals = part["value"].to_numpy(dtype=float)
        for ch in sorted({names[i] for i in np.unique(codes).tolist()}):
            mask = codes == names.index(ch)
            per = np.bincount(idx[mask], weights=vals[mask], minlength=nbins) / minutes
            label = f"{ch}\n(total {vals[mask].sum():,.2f})"
            ax.step(x, np.append(per, per[-1]), where="post", color=colour(ch), lw=1.2, label=label)
        if not len(part):
            ax.text(0.5, 0.5, f"no {kind} records", transform=ax.transAxes, ha="center")
        mark_operators(ax, df, scale, label=True)
        ax.set_ylabel(f"{what} (money / min)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, title="channel", title_fontsize=8, **_OUTSIDE)
    bins = "" if minutes == 1 else f"; {minutes}-min bins"
    axes[0].set_title("Sales revenue per minute by channel", y=TITLE_Y)
    axes[1].set_title("Discount granted per minute by channel", y=TITLE_Y)
    axes[1].set_xlabel(f"time since scenario start ({unit}){bins}")
    axes[1].set_xlim(0, nbins * width / scale)
    return save(fig, out)


def _channel_codes(part: pd.DataFrame, inv: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """``channel_of(part, inv)`` as (names, one code per row) from the categorical's codes:
    only rows without a channel of their own are looked up (none, for shopper rows)."""
    column = part["channel"].cat
    names = [str(c) for c in column.categories]
    codes = column.codes.to_numpy().astype(np.int64)
    blank = (codes < 0) | (codes == names.index("")) if "" in names else codes < 0
    if blank.any():
        found = channel_of(part.loc[blank], inv).tolist()
        names += sorted(set(found) - set(names))
        codes[blank] = [names.index(x) for x in found]
    return names, codes


# The report's plots in display order: name -> function (write_report writes "<name>.png").
PLOTS: dict[str, Callable[[Events, Path], Path | None]] = {
    "coverage": plot_coverage,
    "latency_cdf": plot_latency_cdf,
    "attempts": plot_attempts,
    "recovery": plot_recovery,
    "heatmap": plot_heatmap,
    "rollback": plot_rollback,
    "sales": plot_sales,
}
