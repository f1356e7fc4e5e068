"""Runs of one scenario side by side: ``promoharness compare RUN_DIR RUN_DIR ...``.

Reads each run folder (written by ``run``, ``live`` or ``load``): its summary.json for the
figures and verdicts, its events.parquet for the curves, which the report page draws with
the same metric functions as a run's own report. Builds the compare.json body: the runs,
what makes them not comparable (a different scenario, seed or mode, flagged rather than
silently compared), the headline figures per run with the best value per row, and each
rollback's verdict per run with its violations.

A figure a run did not measure is ``null`` (or the string "not measured") in its
summary.json, e.g. a system under test whose own view of acknowledgements cannot be read.
It shows as "not measured", never as zero, and never counts for "best". A propagation time
that the run measured but never reached (``t95`` null while only 80 % of the targets were
applied) is "not reached": the worst value of its row, not a missing one. A figure computed
from shoppers' records in a run that had no such shoppers (leakage in a ``live`` run: its 0
means nobody bought; ``harness.agreement``) is "not measured live": no value, never best.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from harness.agreement import NOT_MEASURED_LIVE, unmeasured
from harness.inputs import InputError
from harness.metrics.frame import read_events
from harness.metrics.slo import resolve
from harness.metrics.summary import HEADLINE_FIGURES, summary_json, to_plain

__all__ = [
    "FIGURES",
    "NOT_MEASURED",
    "NOT_MEASURED_LIVE",
    "NOT_REACHED",
    "Run",
    "check_metrics",
    "comparison",
    "direction",
    "figure_cell",
    "load_runs",
    "mismatches",
    "write_compare",
]

NOT_MEASURED = "not measured"
NOT_REACHED = "not reached"
MEASURED = "measured"
LOWER, HIGHER = "lower", "higher"
# The rows of the table: the headline figures every comparison shows, then a few that
# tell integration patterns apart (how much they sent, how often the belief was wrong).
FIGURES: tuple[str, ...] = (
    *HEADLINE_FIGURES,
    "propagation.overall.applied",
    "propagation.overall.ghosts.applied_not_acked",
    "propagation.overall.ghosts.acked_not_applied",
    "retry_storm.attempts",
    "retry_storm.retry_share.overall",
    "retry_storm.retry_share.during_outage",
    "price_consistency.spread_value",
)
# Which way is better, by the figure's last key (a --metric row gets it the same way).
_LOWER_KEYS = {
    "t50", "t95", "t99", "t100", "acked_t95", "amplification", "dead_lettered", "attempts",
    "peak_attempt_rate_over_capacity", "leakage_value", "mismatch_rate", "mismatched",
    "spread_value", "applied_not_acked", "acked_not_applied", "overall", "during_outage",
    "after_outage", "throttled", "budget_exhausted", "overrun", "count",
}  # fmt: skip
_HIGHER_KEYS = {"passed", "applied", "acked"}
_TIMES = {"t50": "applied", "t95": "applied", "t99": "applied", "t100": "applied"}
_TIMES["acked_t95"] = "acked"
# Violations per rollback and run kept in compare.json; the rest are in the run's summary.
MAX_VIOLATIONS = 200


class Run(NamedTuple):
    """One run folder: its label on the page, its path, summary.json and event log."""

    label: str
    path: Path
    summary: dict[str, Any]
    events: pd.DataFrame


def direction(metric: str) -> str | None:
    """ "lower" or "higher" (which value of ``metric`` is better), None when it has none."""
    last = metric.rsplit(".", 1)[-1]
    if last in _HIGHER_KEYS:
        return HIGHER
    if last in _LOWER_KEYS:
        return LOWER
    return None


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def figure_cell(summary: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """One run's cell of a row: ``{"value", "status"}``, status "measured", "not reached",
    "not measured" or "not measured live" (module docstring). ``value`` is the summary's
    own value, or None."""
    if unmeasured(summary, metric):
        return {"value": None, "status": NOT_MEASURED_LIVE}
    value = resolve(summary, metric)
    if isinstance(value, str) and value.strip().lower() == NOT_MEASURED:
        return {"value": None, "status": NOT_MEASURED}
    if value is not None:
        return {"value": value, "status": MEASURED}
    parent, _, last = metric.rpartition(".")
    block = resolve(summary, parent) if parent else None
    counted = _TIMES.get(last)
    if counted and isinstance(block, Mapping):
        # Targets were counted and so were the endpoints that got there: the share was
        # measured and never reached. A null count means the run could not see it.
        targets, got = block.get("targets"), block.get(counted)
        if _number(targets) and targets > 0 and _number(got):
            return {"value": None, "status": NOT_REACHED}
    return {"value": None, "status": NOT_MEASURED}


def _rank(cell: Mapping[str, Any], way: str) -> float | None:
    """The cell as a number where smaller is better; None when it cannot be ranked."""
    if cell["status"] == NOT_REACHED:
        return math.inf if way == LOWER else None
    value = cell["value"]
    if cell["status"] != MEASURED or not (_number(value) or isinstance(value, bool)):
        return None
    x = float(value)
    return x if way == LOWER else -x


def best_of(cells: Mapping[str, Mapping[str, Any]], way: str | None) -> list[str]:
    """Labels holding the row's best value: at least two comparable cells, not all equal,
    and the best one a reached value. Ties for best are all marked."""
    if way is None:
        return []
    ranks = {label: r for label, c in cells.items() if (r := _rank(c, way)) is not None}
    if len(ranks) < 2 or len(set(ranks.values())) == 1:
        return []
    top = min(ranks.values())
    return [] if math.isinf(top) else [label for label, r in ranks.items() if r == top]


def figure_rows(runs: Sequence[Run], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per figure: metric, direction, cells (label -> cell), best (labels)."""
    rows = []
    for metric in metrics:
        way = direction(metric)
        cells = {run.label: figure_cell(run.summary, metric) for run in runs}
        rows.append({"metric": metric, "better": way, "cells": cells, "best": best_of(cells, way)})
    return rows


def mismatches(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """What makes the runs not comparable: differing scenario, seed or mode, each with
    every run's value. Empty when they are runs of one scenario, seed and mode."""
    out = []
    for key in ("scenario", "seed", "mode"):
        values = {run.label: run.summary.get(key) for run in runs}
        if len({json.dumps(v) for v in values.values()}) > 1:
            out.append({"field": key, "values": values})
    return out


def rollback_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per rollback of the scenario (matched by its position in each run's
    summary): promo, time, scope, and per run its verdict, violations and leakage (None
    for a run without that rollback; None with ``leakage_status`` "not measured live" for
    a run without shoppers)."""
    lists = {run.label: list(run.summary.get("rollbacks") or []) for run in runs}
    no_sales = {run.label for run in runs if unmeasured(run.summary, "leakage_value")}
    rows = []
    for i in range(max((len(v) for v in lists.values()), default=0)):
        first = next(v[i] for v in lists.values() if len(v) > i)
        per_run: dict[str, Any] = {}
        for label, rbs in lists.items():
            if len(rbs) <= i:
                per_run[label] = None
                continue
            rb = rbs[i]
            violations = list(rb.get("violations") or [])
            per_run[label] = {
                "promo": rb.get("promo"),
                "t": rb.get("t"),
                "verdict": rb.get("verdict"),
                "scope_endpoints": rb.get("scope_endpoints"),
                "leakage_value": None if label in no_sales else rb.get("leakage_value"),
                "leakage_status": NOT_MEASURED_LIVE if label in no_sales else MEASURED,
                "violation_count": len(violations),
                "violations": violations[:MAX_VIOLATIONS],
            }
        rows.append(
            {
                "index": i,
                "promo": first.get("promo"),
                "t": first.get("t"),
                "deadline": first.get("deadline"),
                "scope": first.get("scope"),
                "runs": per_run,
            }
        )
    return rows


def comparison(runs: Sequence[Run], extra: Sequence[str] = ()) -> dict[str, Any]:
    """The compare.json body (plain JSON values)."""
    metrics = list(dict.fromkeys([*FIGURES, *extra]))
    return to_plain(
        {
            "runs": [
                {
                    "label": run.label,
                    "dir": str(run.path),
                    "scenario": run.summary.get("scenario"),
                    "seed": run.summary.get("seed"),
                    "mode": run.summary.get("mode"),
                    "passed": run.summary.get("passed"),
                }
                for run in runs
            ],
            "comparable": not mismatches(runs),
            "mismatches": mismatches(runs),
            "figures": figure_rows(runs, metrics),
            "rollbacks": rollback_rows(runs),
        }
    )


# --- reading run folders ------------------------------------------------------------------


def _label(path: Path, summary: Mapping[str, Any]) -> str:
    for key in ("label", "sut"):
        value = summary.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            return str(value["name"])
    return path.resolve().name or str(path)


def load_run(path: Path) -> Run:
    """Read one run folder; bad input (not a folder, no or bad summary.json or
    events.parquet) is an ``InputError`` naming the folder or file."""
    if not path.exists():
        raise InputError("no such run folder", path=path, field="RUN_DIR")
    if not path.is_dir():
        raise InputError("is a file; give a run folder (holding summary.json)", path=path)
    source = path / "summary.json"
    if not source.is_file():
        raise InputError("not a run folder: no summary.json in it", path=path, field="RUN_DIR")
    try:
        summary = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"not valid JSON ({exc})", path=source, line=line) from None
    if not isinstance(summary, dict):
        raise InputError("not a run summary (expected a JSON object)", path=source)
    for key in ("scenario", "seed", "propagation"):
        if key not in summary:
            raise InputError("missing from the run summary", path=source, field=key)
    log = path / "events.parquet"
    if not log.is_file():
        raise InputError("not a run folder: no events.parquet in it", path=path, field="RUN_DIR")
    try:
        events = read_events(log)
    except Exception as exc:  # pyarrow raises several kinds; all mean "not an event log"
        raise InputError(f"not a readable event log ({type(exc).__name__})", path=log) from None
    return Run(_label(path, summary), path, summary, events)


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Read every run folder (at least two); labels made unique by a "#2", "#3" suffix."""
    if len(paths) < 2:
        raise InputError(f"give at least two run folders to compare (got {len(paths)})")
    runs = [load_run(Path(p)) for p in paths]
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        n = seen[run.label] = seen.get(run.label, 0) + 1
        out.append(run._replace(label=run.label if n == 1 else f"{run.label} #{n}"))
    return out


def check_metrics(runs: Sequence[Run], extra: Sequence[str]) -> None:
    """Every extra row must be a figure some run's summary can hold (a typo would
    otherwise be a row of "not measured"); ``InputError`` naming --metric if not."""
    from harness.metric_paths import unknown_metric

    promos = sorted({p for r in runs for p in (resolve(r.summary, "propagation.by_promo") or {})})
    rollbacks = max(len(r.summary.get("rollbacks") or []) for r in runs)
    for metric in extra:
        values = [resolve(r.summary, metric) for r in runs]
        if any(isinstance(v, Mapping | list) for v in values):
            raise InputError(f"{metric!r} is a group of figures; name one", field="--metric")
        if any(v is not None for v in values):
            continue
        problem = unknown_metric(metric, promos, rollbacks)
        if problem:
            raise InputError(problem, field="--metric")


def default_out_dir(base: Path = Path("reports")) -> Path:
    """reports/compare-<UTC time>, never an existing folder."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out, n = base / f"compare-{stamp}", 1
    while out.exists():
        n += 1
        out = base / f"compare-{stamp}-{n}"
    return out


def write_compare(
    paths: Sequence[Path], out: Path | None = None, extra: Sequence[str] = ()
) -> tuple[Path, dict[str, Any]]:
    """Compare the run folders ``paths``; write compare.json and compare.html into
    ``out`` (default ``default_out_dir()``), each atomically. Returns (folder, body)."""
    from harness.report.atomic import write_text
    from harness.report.compare_page import render_compare

    runs = load_runs(paths)
    check_metrics(runs, extra)
    body = comparison(runs, extra)
    folder = out or default_out_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "compare.json", summary_json(body))
    write_text(folder / "compare.html", render_compare(runs, body, str(folder.resolve())))
    return folder, body
