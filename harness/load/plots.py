"""The load run's own plots: requests per second against the target arrival curve,
latency percentiles over time, and propagation over time (endpoints holding each
promotion, from the event log's ``applied`` / ``removed`` truth)."""

from __future__ import annotations

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
