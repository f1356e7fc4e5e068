"""The load run's own plots: requests per second against the target arrival curve,
latency percentiles over time, and propagation over time (endpoints holding each
promotion, from the event log's ``applied`` / ``removed`` truth); and the harness's
headroom (``plot_headroom``: loop lag and Locust CPU, live and load runs alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from harness.runtime.shoppers import curve_multiple
from harness.scenario import CurveSpec

CAPTIONS = {
    "load — requests per second": "Shopper requests per second reached (solid) against the "
    "target arrival rate of the flash-sale curve (dashed), and failed requests per second.",
    "load — latency percentiles": "Response time percentiles over time, all requests "
    "(Locust's rolling window), in milliseconds.",
    "load — propagation over time": "Endpoints holding each promotion over scenario time "
    "(ground truth from the simulators): publishes rising, rollbacks falling.",
    "harness headroom": "The harness's own headroom through the run: event-loop lag of each "
    "estate shard and of the orchestrator (p99 per second, milliseconds, log scale) against "
    "the saturation bound (dashed), and CPU (100 % = one core) of each Locust process "
    "against 90 %, with the stack's process and the whole machine beside them; shaded: "
    "where a component saturated (its figures are untrustworthy).",
}


def plot_rps(rps: pd.Series, fails: pd.Series, config: dict[str, Any], out: Path) -> Path | None:
    if rps.empty:
        return None
    t0 = float(rps.index.min())
    curve = CurveSpec(**config["curve"])
    xs = [float(ts) - t0 for ts in rps.index]
    target = [
        config["rate"]
        * curve_multiple(curve, (ts - config["epoch"]) * config["speed"])
        / curve.peak_multiple
        for ts in rps.index
    ]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(xs, rps.values, label="reached")
    ax.plot(xs, target, "--", label="target (curve)")
    if not fails.empty:
        ax.plot([float(ts) - t0 for ts in fails.index], fails.values, label="failed", color="red")
    ax.set_xlabel("wall seconds since load start")
    ax.set_ylabel("shopper requests / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_latency(hist: pd.DataFrame, out: Path) -> Path | None:
    if hist.empty or hist["95%"].isna().all():
        return None
    x = hist["Timestamp"] - hist["Timestamp"].min()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for col in ("50%", "95%", "99%"):
        ax.plot(x, hist[col], label=f"p{col.rstrip('%')}")
    ax.set_xlabel("wall seconds since load start")
    ax.set_ylabel("ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_propagation(events: pd.DataFrame, out: Path) -> Path | None:
    df = events[events["kind"].isin(["applied", "removed"])] if len(events) else events
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for promo, group in df.sort_values("t").groupby("promo"):
        held: set[str] = set()
        xs, ys = [], []
        for row in group.itertuples(index=False):
            (held.add if row.kind == "applied" else held.discard)(row.endpoint)
            xs.append(row.t)
            ys.append(len(held))
        ax.step(xs, ys, where="post", label=str(promo))
    ax.set_xlabel("scenario seconds")
    ax.set_ylabel("endpoints holding it")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_headroom(
    lag: Sequence[Mapping[str, Any]],
    cpu: Mapping[str, Sequence[tuple[float, float]]],
    section: Mapping[str, Any],
    *,
    origin: float,
    out: Path,
) -> Path | None:
    """Loop lag p99 per wall second of each component (``lag``: their ``/_harness/lag``
    snapshots) and CPU % per Locust process, x in wall seconds since ``origin`` (t=0);
    ``section``: summary.json's ``harness`` (bounds and saturations, shaded)."""
    span = section["span"]
    low, high = origin + span["from_s"], origin + span["to_s"]  # what the rule judged
    series = {
        str(s["component"]): [(t, v) for t, v in s.get("samples") or [] if low <= t <= high]
        for s in lag
    }
    cpu = {name: [(t, p) for t, p in points if low <= t <= high] for name, points in cpu.items()}
    if not any(series.values()) and not any(cpu.values()):
        return None
    rows = 2 if cpu else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.6 * rows + 0.6), sharex=True, squeeze=False)
    ax = axes[0][0]
    for name, samples in series.items():
        if not samples:
            continue
        frame = pd.DataFrame(samples, columns=["t", "lag"])
        per_second = frame.groupby((frame["t"] - origin).floordiv(1))["lag"].quantile(0.99)
        ax.plot(per_second.index, per_second.to_numpy() * 1000, label=name, lw=1)
    bounds = section["bounds"]
    ax.axhline(bounds["lag_s"] * 1000, ls="--", color="grey", label="saturation bound")
    ax.set_yscale("log")
    ax.set_ylabel("event-loop lag p99 (ms)")
    ax.legend(fontsize="small")
    if cpu:
        cax = axes[1][0]
        for name, points in cpu.items():
            if points:
                cax.plot([t - origin for t, _ in points], [p for _, p in points], label=name)
        cax.axhline(bounds["cpu_percent"], ls="--", color="grey", label="saturation bound")
        cax.set_ylabel("CPU (%, 100 = a core)")
        cax.legend(fontsize="small")
    for s in section.get("saturations", []):
        for row in axes:
            row[0].axvspan(s["from_s"], s["to_s"], color="red", alpha=0.15)
    axes[-1][0].set_xlabel("wall seconds since scenario t=0")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
