"""Metastability lab outputs: metastable.csv, metastable.md and four PNGs.

``write_lab(study, out)`` writes every row of every study to one CSV (a ``study`` column
says which), a markdown summary (calibration, the published points beside the model's
outcome, the phase diagram with its boundary, the interval sweep, the policy table) and
the plots: the (X, D) phase diagram, the interval sweep, the policy comparison, and the
time series of the metastable case under the published client and under each policy
that recovers it (drawn by ``report.recovery_plot``, as in a run's report).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from harness.lab.metastable import POLICIES, PUBLISHED, run_trial
from harness.lab.metastable_study import PUBLISHED_POINTS, boundary, monotone_violations
from harness.report.figures import figure, save
from harness.report.recovery_plot import draw_recovery

__all__ = ["FIELDS", "summary_markdown", "write_lab"]

FIELDS = (
    "study",
    "label",
    "policy",
    "capacity",
    "cut",
    "duration",
    "interval_us",
    "load",
    "recovered",
    "recovery_seconds",
    "goodput_before",
    "goodput_during",
    "goodput_after",
    "served_share",
    "amplification",
    "wasted_share",
    "healthy_served_share",
    "published_metastable",
)
STUDIES = ("published", "phase", "interval", "policies")


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def _outcome(row: dict[str, Any]) -> str:
    if row["recovered"]:
        return f"recovers ({_fmt(row['recovery_seconds'], 'g')} s)"
    return "metastable"


def summary_markdown(study: dict[str, Any]) -> str:
    exp, cal = study["experiment"], study["calibration"]
    lines = [
        "# Metastability lab: Huang et al. (OSDI 2022), retry experiment",
        "",
        f"Open-loop client, one request every {exp.interval * 1e6:g} µs, {exp.timeout:g} s "
        f"timeout, up to {exp.resends} immediate resends; the primary ({exp.slots} FIFO "
        f"slots, {exp.service} service time) drops from {exp.cores:g} to X cores for D s, "
        f"{exp.trigger_at:g} s in; {exp.observe:g} s observed after. Rates simulated at "
        f"{exp.scale:g} of the real ones. Recovered = attempt and success rates back within "
        "10 % of their pre-fault level (5 s windows) before the run ends.",
        "",
        "## Calibration (the one free parameter: capacity at full cores)",
        "",
    ]
    if cal is None:
        lines.append(f"Given: {study['capacity']:,.0f} requests/s (no calibration run).")
    else:
        lines += [
            f"- a) X = 0.45, D = 10 s recovers from {cal.low:,.0f} requests/s up;",
            f"- b) X = 0.40, D = 10 s stays metastable below {cal.high:,.0f} requests/s;",
            f"- both hold in [{cal.low:,.0f}, {cal.high:,.0f}) "
            + ("" if cal.consistent else "(EMPTY: the model cannot reproduce both) ")
            + f"-> capacity {cal.capacity:,.0f} requests/s, load {exp.load:.2f} "
            f"({cal.runs} runs to bisect).",
        ]
    lines += [
        "",
        "## Published outcomes beside the model's",
        "",
        "| run | role | published | model | match |",
        "|---|---|---|---|---|",
    ]
    for row in study["published"]:
        published = "metastable" if row["published_metastable"] else "recovers"
        match = row["published_metastable"] == (not row["recovered"])
        lines.append(
            f"| {row['label']} | {row['role']} | {published} | {_outcome(row)} | "
            f"{'yes' if match else '**no**'} |"
        )
    phase = study["phase"]
    cuts = sorted({r["cut"] for r in phase})
    durations = sorted({r["duration"] for r in phase})
    cell = {(r["cut"], r["duration"]): r for r in phase}
    lines += [
        "",
        "## Phase diagram over X (cores during the trigger) and D (trigger seconds)",
        "",
        "`M` = metastable; a number = seconds to recover after the trigger ended.",
        "",
        "| X \\ D | " + " | ".join(f"{d:g}" for d in durations) + " |",
        "|---:|" + "---:|" * len(durations),
    ]
    for x in cuts:
        marks = []
        for d in durations:
            r = cell.get((x, d))
            marks.append(
                "—"
                if r is None
                else ("M" if not r["recovered"] else _fmt(r["recovery_seconds"], "g"))
            )
        lines.append(f"| {x:g} | " + " | ".join(marks) + " |")
    edge = boundary(phase, "duration", "cut")
    lines += ["", "Metastable boundary (shortest metastable trigger per X): "]
    lines.append(
        ", ".join(
            f"X={x:g}: " + (f"D>={d:g} s" if d is not None else f"none up to {max(durations):g} s")
            for x, d in edge.items()
        )
    )
    bad = monotone_violations(phase)
    lines += ["", "Monotone (a deeper or longer cut never recovers where a milder one did not): "
              + ("yes" if not bad else "NO — " + "; ".join(bad))]  # fmt: skip
    sweep = study["interval"]
    lines += [
        "",
        f"## Request interval (X = {sweep[0]['cut']:g}, D = {sweep[0]['duration']:g} s)",
        "",
        "| interval (µs) | load | outcome | goodput after (req/s) |",
        "|---:|---:|---|---:|",
    ]
    for r in sweep:
        lines.append(
            f"| {r['interval_us']:g} | {r['load']:.2f} | {_outcome(r)} | "
            f"{_fmt(r['goodput_after'], ',.0f')} |"
        )
    meta = [r["interval_us"] for r in sweep if not r["recovered"]]
    lines.append("")
    lines.append(
        f"Metastable up to a {max(meta):g} µs interval "
        f"(load {1 / (max(meta) * 1e-6 * study['capacity']):.2f})."
        if meta
        else "No interval in the sweep is metastable."
    )
    lines += [
        "",
        "## Client policies on the metastable case (X = 0.40, D = 10 s)",
        "",
        "| policy | outcome | goodput during / after (req/s) | served | attempts per request | "
        "wasted (timed-out) attempts | served without a trigger | what it is |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in study["policies"]:
        lines.append(
            f"| {r['policy']} | {_outcome(r)} | {_fmt(r['goodput_during'], ',.0f')} / "
            f"{_fmt(r['goodput_after'], ',.0f')} | {_fmt(r['served_share'], '.1%')} | "
            f"{_fmt(r['amplification'], '.2f')} | {_fmt(r['wasted_share'], '.0%')} | "
            f"{_fmt(r['healthy_served_share'], '.1%')} | {POLICIES[r['policy']].note} |"
        )
    lines += [
        "",
        "Served = share of all requests of the run that succeeded (the goodput cost);",
        "goodput after = successes/s over the 60 s after the trigger; offered load is "
        f"{1 / exp.interval:,.0f} req/s.",
        "",
        "Plots: `metastable_phase.png`, `metastable_interval.png`, `metastable_policies.png`,",
        "`metastable_timeline.png`; every cell in `metastable.csv`.",
        "",
    ]
    return "\n".join(lines)


def _plot_phase(study: dict[str, Any], out: Path) -> Path:
    phase = study["phase"]
    fig = figure(8, 5)
    ax = fig.add_subplot()
    ok = [r for r in phase if r["recovered"]]
    bad = [r for r in phase if not r["recovered"]]
    ax.scatter([r["duration"] for r in ok], [r["cut"] for r in ok], marker="o", c="#2ca02c",
               s=60, label="recovers")  # fmt: skip
    ax.scatter([r["duration"] for r in bad], [r["cut"] for r in bad], marker="s", c="#d62728",
               s=60, label="metastable")  # fmt: skip
    edge = boundary(phase, "duration", "cut")
    xs = [(d, x) for x, d in sorted(edge.items()) if d is not None]
    if xs:
        ax.step([d for d, _ in xs], [x for _, x in xs], where="mid", color="#333333", ls="--",
                label="metastable boundary")  # fmt: skip
    for p in PUBLISHED_POINTS:
        if p.interval == study["experiment"].interval:
            ax.scatter([p.duration], [p.cut], marker="*", s=260, facecolors="none",
                       edgecolors="black", linewidths=1.2)  # fmt: skip
            ax.annotate(p.label.split(")")[0] + ")", (p.duration, p.cut), xytext=(6, 6),
                        textcoords="offset points", fontsize=8)  # fmt: skip
    ax.set_xlabel("trigger duration D (s)")
    ax.set_ylabel("cores during the trigger X (of 2)")
    ax.set_title(
        f"Retry metastability, capacity {study['capacity']:,.0f} req/s, "
        f"interval {study['experiment'].interval * 1e6:g} µs (stars: published runs)",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, out)


def _plot_interval(study: dict[str, Any], out: Path) -> Path:
    sweep = study["interval"]
    fig = figure(8, 4.5)
    ax = fig.add_subplot()
    xs = [r["interval_us"] for r in sweep]
    ax.plot(xs, [r["goodput_after"] or 0 for r in sweep], marker="o", color="#2ca02c",
            label="goodput after the trigger")  # fmt: skip
    ax.plot(xs, [1e6 / r["interval_us"] for r in sweep], ls="--", color="#555555",
            label="offered load")  # fmt: skip
    for r in sweep:
        if not r["recovered"]:
            ax.axvspan(
                r["interval_us"] - 2.5, r["interval_us"] + 2.5, color="#d62728", alpha=0.15, lw=0
            )
    ax.set_xlabel("request interval (µs) — red: metastable")
    ax.set_ylabel("requests/s")
    ax.set_title(f"X = {sweep[0]['cut']:g}, D = {sweep[0]['duration']:g} s", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out)


def _plot_policies(study: dict[str, Any], out: Path) -> Path:
    rows = study["policies"]
    fig = figure(9, 4.5)
    ax = fig.add_subplot()
    names = [r["policy"] for r in rows]
    served = [100 * (r["served_share"] or 0) for r in rows]
    healthy = [100 * (r["healthy_served_share"] or 0) for r in rows]
    idx = range(len(rows))
    colours = ["#2ca02c" if r["recovered"] else "#d62728" for r in rows]
    ax.bar(
        [i - 0.2 for i in idx], served, width=0.4, color=colours, label="served, metastable case"
    )
    ax.bar([i + 0.2 for i in idx], healthy, width=0.4, color="#999999", label="served, no trigger")
    for i, r in enumerate(rows):
        ax.text(
            i - 0.2, served[i] + 1, _outcome(r), ha="center", fontsize=7, rotation=90, va="bottom"
        )
    ax.set_xticks(list(idx), names, fontsize=8)
    ax.set_ylabel("% of requests served")
    ax.set_ylim(0, 140)
    ax.set_title("Policies on X = 0.40, D = 10 s (green: recovers, red: metastable)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, out)


def _plot_timeline(study: dict[str, Any], out: Path) -> Path:
    m = next(p for p in PUBLISHED_POINTS if p.metastable)
    meta = study["experiment"].but(cut=m.cut, duration=m.duration, interval=m.interval)
    shown = [PUBLISHED, *[r["policy"] for r in study["policies"] if r["recovered"]][:3]]
    fig = figure(10, 2.8 * len(shown))
    for i, name in enumerate(shown, start=1):
        ax = fig.add_subplot(len(shown), 1, i)
        trial = run_trial(meta.but(policy=name))
        draw_recovery(ax, trial.records, 0, per=meta.scale, legend=i == 1)
        ax.set_title(f"{name}: " + ax.get_title(), fontsize=9)
    return save(fig, out)


def write_lab(study: dict[str, Any], out_dir: Path, *, timeline: bool = True) -> list[Path]:
    """Write metastable.csv, .md and the PNGs into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "metastable.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        for name in STUDIES:
            for row in study[name]:
                writer.writerow({**row, "study": name})
    md = out_dir / "metastable.md"
    md.write_text(summary_markdown(study), encoding="utf-8")
    paths = [
        csv_path,
        md,
        _plot_phase(study, out_dir / "metastable_phase.png"),
        _plot_interval(study, out_dir / "metastable_interval.png"),
        _plot_policies(study, out_dir / "metastable_policies.png"),
    ]
    if timeline:
        paths.append(_plot_timeline(study, out_dir / "metastable_timeline.png"))
    return paths
