"""A sweep's output folder: sweep.csv, summary.csv, one PNG per figure, report.html.

Reads only the tables ``harness.sweep`` produces (one row per run, one row per cell).
Each figure is plotted against the first varied key, one line per combination of the
other varied keys, with error bars of one sample sd over the repeats. Every file is
written atomically (temp file in the same folder, then ``os.replace``) so a reader never
sees half a report; report.html is self-contained (inline CSS, PNGs as data URIs).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.progress import Stages
from harness.report.atomic import atomic_path
from harness.report.atomic import write_text as _write_text

__all__ = ["FIGURE_LABELS", "plot_figure", "plottable", "render_html", "write_sweep"]

DPI = 110
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_DASHES = ("--", "-.", ":")
FIGURE_LABELS: dict[str, str] = {
    "propagation.overall.t50": "T50 propagation, all endpoints (s)",
    "propagation.overall.t95": "T95 propagation, all endpoints (s)",
    "propagation.overall.t99": "T99 propagation, all endpoints (s)",
    "propagation.overall.t100": "T100 propagation, all endpoints (s)",
    "propagation.overall.acked_t95": "T95 until acknowledged, all endpoints (s)",
    "retry_storm.amplification": "retry amplification (attempts / delivery)",
    "retry_storm.peak_attempt_rate_over_capacity": "peak attempts/s over capacity (ratio)",
    "retry_storm.dead_lettered": "deliveries dead-lettered (count)",
    "leakage_value": "discount leaked after rollback ($)",
    "price_consistency.mismatch_rate": "price mismatch rate (share of samples, 0–1)",
    "passed": "share of runs passing every SLO (0–1)",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em}
.meta{color:#555} code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right;vertical-align:top}
th{background:#f5f5f5} td.key{text-align:left;font-weight:600}
tr.fail td{background:#fdecea} .range{color:#777;font-size:.85em}
.ok{color:#1b7a2e;font-weight:600} .bad{color:#b3261e;font-weight:600}
figure{margin:1em 0} img{max-width:100%;border:1px solid #eee}
"""


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write(tmp_path)`` fill a temp file beside ``path``, then move it into place."""
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    # pandas hands back numpy scalars; format them like the Python values they stand for.
    return value.item() if hasattr(value, "item") else value


def _fmt(value: Any) -> str:
    value = _plain(value)
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _file_name(figure: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", figure).strip("._") or "figure"
    name, n = f"{stem}.png", 1
    while name in taken:  # two --metric paths may sanitise to the same name
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return name


def plot_figure(
    cells: pd.DataFrame,
    figure: str,
    grid: Sequence[tuple[str, Sequence[Any]]],
    out: Path,
    title: str = "",
) -> Path:
    """One figure's cell means against the first varied key (error bars: sd over repeats).

    Cells are numbered in grid order with the first key slowest, so a cell's x position is
    ``cell // inner`` and its line ``cell % inner`` (inner = cells per x value); reading
    positions off the values instead would trip over 1 vs 1.0 vs numpy scalars.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8), dpi=DPI)
    # Fixed margins rather than constrained layout: that lays out every draw twice, which
    # made the plots cost more than a tiny sweep's runs.
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.92)
    ax = fig.add_subplot()
    (x_key, x_values), others = grid[0], [k for k, _ in grid[1:]]
    inner = math.prod(len(values) for _, values in grid[1:])
    categorical = not all(_is_number(v) for v in x_values)
    cell = cells["cell"].astype(int)
    lines = sorted(set(cell % inner))
    # Side by side on a categorical axis, so error bars of different lines do not overlap.
    spread = 0.25 if categorical and len(lines) > 1 else 0.0
    plotted, hollow = 0, False
    for g, line in enumerate(lines):
        group = cells[cell % inner == line].assign(_pos=cell // inner).sort_values("_pos")
        mean = group[f"{figure}.mean"].astype(float)
        sd = group[f"{figure}.sd"].astype(float).fillna(0.0)
        if categorical:
            offset = (g / (len(lines) - 1) - 0.5) * spread if len(lines) > 1 else 0.0
            x = group["_pos"].astype(float) + offset
        else:
            x = pd.Series([float(x_values[p]) for p in group["_pos"]], index=group.index)
        first = group.iloc[0]
        if len(others) == 1:  # the legend title already names the key
            label = _fmt(first[others[0]])
        else:
            label = ", ".join(f"{k}={_fmt(first[k])}" for k in others)
        # Distinct markers and dashes: lines with equal values would otherwise hide each other.
        bars = ax.errorbar(
            x,
            mean,
            yerr=sd,
            marker=_MARKERS[g % len(_MARKERS)],
            ls=_DASHES[(g // len(_MARKERS)) % len(_DASHES)] if g else "-",
            capsize=4,
            lw=1.6,
            label=label or None,
        )
        partial = group[f"{figure}.n"] < group["runs"]
        if partial.any():  # hollow: the mean covers only the runs that have the figure
            colour = bars.lines[0].get_color()
            marker = _MARKERS[g % len(_MARKERS)]
            ax.plot(
                x[partial],
                mean[partial],
                ls="",
                marker=marker,
                color=colour,
                mfc="white",
                zorder=3,
            )
            hollow = True
        plotted += int(mean.notna().sum())
    if categorical:
        ax.set_xticks(range(len(x_values)), [_fmt(v) for v in x_values])
        ax.set_xlim(-0.5, len(x_values) - 0.5)
    else:
        # Span every varied value even where no run produced the figure.
        lo, hi = float(min(x_values)), float(max(x_values))
        pad = (hi - lo) * 0.05 or abs(lo) * 0.05 or 1.0
        ax.set_xlim(lo - pad, hi + pad)
        if len(x_values) <= 12:
            ax.set_xticks([float(v) for v in x_values], [_fmt(v) for v in x_values])
    if hollow:
        ax.text(
            0.01,
            0.01,
            "hollow marker: figure missing in some runs (e.g. never reached)",
            transform=ax.transAxes,
            fontsize=7,
            color="#555",
        )
    if not plotted:
        ax.text(
            0.5,
            0.5,
            "no run produced this figure (e.g. the share was never reached)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#777",
        )
    ax.set_xlabel(x_key)
    ax.set_ylabel(FIGURE_LABELS.get(figure, figure))
    ax.set_title(title or figure)
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=8, title=", ".join(others), title_fontsize=8)
    return _atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))


def render_html(
    *,
    title: str,
    description: str,
    grid: Sequence[tuple[str, Sequence[Any]]],
    seeds: Sequence[int],
    cells: pd.DataFrame,
    figures: Sequence[str],
    pngs: dict[str, Path],
    notes: Sequence[str] = (),
) -> str:
    """The report page: grid, cell table (mean ± sd, min–max per figure), embedded plots."""
    e = html.escape
    keys = [k for k, _ in grid]
    failed = int((cells["passed_runs"] < cells["runs"]).sum())
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if description:
        parts.append(f"<p>{e(description)}</p>")
    parts.append("<ul class='meta'>")
    for key, values in grid:
        shown = ", ".join(e(_fmt(v)) for v in values)
        parts.append(f"<li>varied <code>{e(key)}</code>: {shown}</li>")
    seed_text = ", ".join(str(s) for s in seeds)
    parts.append(f"<li>{len(cells)} cells × {len(seeds)} seeds ({e(seed_text)})</li>")
    parts.extend(f"<li>{e(note)}</li>" for note in notes)
    verdict = (
        "<span class='ok'>every run passed its SLOs</span>"
        if not failed
        else f"<span class='bad'>{failed} of {len(cells)} cells had a failing run</span>"
    )
    names = _failed_names(cells)
    if names:
        verdict += ": " + ", ".join(
            f"<b>{e(n)}</b> failed in {k} run{'s' * (k != 1)}" for n, k in names
        )
    parts.append(f"<li>{verdict}</li></ul>")
    parts.append("<h2>Cells</h2><table><tr><th>cell</th>")
    parts.extend(f"<th>{e(k)}</th>" for k in keys)
    parts.append("<th>passed</th><th>failed SLOs (runs)</th>")
    parts.extend(f"<th>{e(f)}</th>" for f in figures if f != "passed")
    parts.append("</tr>")
    for _, row in cells.iterrows():
        css = " class='fail'" if row["passed_runs"] < row["runs"] else ""
        parts.append(f"<tr{css}><td>{e(str(row['cell']))}</td>")
        parts.extend(f"<td class='key'>{e(_fmt(row[k]))}</td>" for k in keys)
        parts.append(f"<td>{int(row['passed_runs'])}/{int(row['runs'])}</td>")
        failing = row.get("failed_slos", "")
        parts.append(f"<td class='key'>{e(str(failing)) if not _missing(failing) else ''}</td>")
        for figure in figures:
            if figure != "passed":
                parts.append(f"<td>{_cell_text(row, figure)}</td>")
        parts.append("</tr>")
    parts.append(
        "</table><p class='meta'>mean ± sd over the seeds, min–max below; a figure "
        "missing from a run (e.g. T95 never reached) is left out of its cell's statistics "
        "and the cell says in how many runs it exists; — means in none.</p>"
    )
    if pngs:
        parts.append(f"<h2>Figures against <code>{e(keys[0])}</code></h2>")
    left_out = [f for f in figures if f != "passed" and f not in pngs]
    if left_out:
        shown = ", ".join(f"<code>{e(f)}</code>" for f in left_out)
        parts.append(
            f"<p class='meta'>Not plotted: {shown} — no run produced a number for them "
            "(e.g. no rollback, or a share never reached), or they are text; see the table.</p>"
        )
    for figure, png in pngs.items():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f"<figure><img alt='{e(figure, quote=True)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{e(FIGURE_LABELS.get(figure, figure))}</figcaption></figure>"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    parts.append(f"<p class='meta'>generated {stamp} by promoharness sweep</p></body></html>")
    return "\n".join(parts)


def _failed_names(cells: pd.DataFrame) -> list[tuple[str, int]]:
    """Every failed SLO over the cells with its number of failing runs, in first-seen order."""
    counts: dict[str, int] = {}
    if "failed_slos" not in cells.columns:
        return []
    for text in cells["failed_slos"]:
        for part in str(text or "").split("; "):
            name, _, tail = part.rpartition(" (")
            if name and tail.endswith(")"):
                counts[name] = counts.get(name, 0) + int(tail.split("/")[0])
    return list(counts.items())


def plottable(cells: pd.DataFrame, figure: str) -> bool:
    """True when some cell has a numeric mean for ``figure``: an empty plot says nothing."""
    column = f"{figure}.mean"
    return column in cells.columns and bool(pd.to_numeric(cells[column]).notna().any())


def _cell_text(row: pd.Series, figure: str) -> str:
    e = html.escape
    if f"{figure}.values" in row.index:
        return e(str(row[f"{figure}.values"]) or "—")
    mean, sd = row[f"{figure}.mean"], row[f"{figure}.sd"]
    text = e(_fmt(mean)) + ("" if _missing(sd) else f" ± {e(_fmt(sd))}")
    lo, hi = row[f"{figure}.min"], row[f"{figure}.max"]
    if not _missing(lo) and lo != hi:
        text += f"<br><span class='range'>{e(_fmt(lo))}–{e(_fmt(hi))}</span>"
    n, runs = int(row[f"{figure}.n"]), int(row["runs"])
    if 0 < n < runs:  # the mean leaves out runs without the figure: say how many it covers
        text += f"<br><span class='range'>in {n} of {runs} runs</span>"
    return text


def write_sweep(
    out: Path,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    *,
    grid: Sequence[tuple[str, Sequence[Any]]],
    figures: Sequence[str],
    seeds: Sequence[int],
    title: str,
    description: str = "",
    notes: Sequence[str] = (),
    stages: Stages | None = None,
) -> dict[str, Path]:
    """Write the whole folder; returns the files by name (figures by their summary path).

    A figure no run produced a number for (text, or e.g. no rollback happened) gets no
    plot, so the page shows no empty axes; the page lists what it left out.
    """
    stages = stages or Stages.off()
    out.mkdir(parents=True, exist_ok=True)
    with stages.stage("writing sweep.csv, summary.csv"):
        files: dict[str, Path] = {
            "sweep.csv": _write_text(out / "sweep.csv", runs.to_csv(index=False)),
            "summary.csv": _write_text(out / "summary.csv", cells.to_csv(index=False)),
        }
    pngs: dict[str, Path] = {}
    taken: set[str] = set()
    drawn = [f for f in figures if plottable(cells, f)]
    with stages.stage("plotting", len(drawn), fmt=lambda d, t: f"{d:.0f}/{t:.0f} plots") as tick:
        for done, figure in enumerate(drawn, start=1):
            pngs[figure] = plot_figure(
                cells, figure, grid, out / _file_name(figure, taken), title=f"{figure} — {title}"
            )
            tick(done)
    files.update(pngs)
    with stages.stage("writing report.html"):
        page = render_html(
            title=title,
            description=description,
            grid=grid,
            seeds=seeds,
            cells=cells,
            figures=figures,
            pngs=pngs,
            notes=notes,
        )
        files["report.html"] = _write_text(out / "report.html", page)
    return files
