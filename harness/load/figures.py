"""Locust's output -> the ``load`` section of summary.json, its tables and its plots.

Reads what ``python -m locust --headless --csv P --csv-full-history --json`` leaves:
``P.json`` (per request name: counts, the response-time histogram, requests per second),
``P_failures.csv`` (failure messages) and ``P_stats_history.csv`` (percentiles over
time). Shopper requests are those named ``price <channel>`` / ``checkout <channel>``;
operator and callback requests are counted apart; ``PACER`` entries are missed arrivals.
The price oracle's reasons (``loadtests/oracle.py``) are counted from failure messages.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from harness.load.attribution import Sample, parse_sample

# The oracle's failure reasons (loadtests/oracle.py; not imported: harness stays apart).
PRICE_REASONS = (
    "stale after rollback",
    "not yet active",
    "unexpected promotion",
    "dialect mismatch",
)


def is_shopper(name: str) -> bool:
    return name.startswith(("price ", "checkout "))


def read_json(prefix: Path) -> list[dict[str, Any]]:
    path = prefix.with_suffix(".json")
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "[]")
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return data if isinstance(data, list) else []


def percentile(histogram: Counter[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a {milliseconds: count} histogram."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = math.ceil(q * total), 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))


def failure_reasons(prefix: Path) -> Counter[str]:
    """Shopper failures by reason: the oracle's names, ``HTTP <code>``, or ``other``."""
    reasons: Counter[str] = Counter()
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return reasons
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not is_shopper(row["Name"]):
                continue
            error, count = row["Error"], int(row["Occurrences"])
            reason = next((r for r in PRICE_REASONS if r in error), None)
            if reason is None:
                reason = "HTTP " + error.split("HTTP ")[1][:3] if "HTTP " in error else "other"
            reasons[reason] += count
    return reasons


def stale_samples(prefix: Path) -> list[Sample]:
    """The oracle's wrong prices with their endpoint and time (``attribution.MESSAGE``),
    from every shopper row of the failures file; rows without them are left out."""
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if is_shopper(r["Name"])]
    found = (parse_sample(r["Error"], int(r["Occurrences"])) for r in rows)
    return [s for s in found if s is not None]


def per_second(entries: list[dict[str, Any]], key: str = "num_reqs_per_sec") -> pd.Series:
    """Shopper requests (or failures) per wall second, summed over request names."""
    totals: Counter[int] = Counter()
    for entry in entries:
        if is_shopper(entry["name"]):
            for ts, n in entry.get(key, {}).items():
                totals[int(float(ts))] += int(n)
    return pd.Series(totals, dtype="float64").sort_index()


def load_figures(prefix: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The ``load`` section of summary.json (latencies in milliseconds, rates per second)."""
    entries = read_json(prefix)
    shoppers = [e for e in entries if is_shopper(e["name"])]
    histogram: Counter[float] = Counter()
    for e in shoppers:
        histogram.update({float(ms): int(n) for ms, n in e["response_times"].items()})
    requests = sum(e["num_requests"] for e in shoppers)
    reasons = failure_reasons(prefix)
    stale = sum(reasons[r] for r in PRICE_REASONS)
    errors = sum(n for r, n in reasons.items() if r not in PRICE_REASONS)
    missed = sum(e["num_requests"] for e in entries if e["method"] == "PACER")
    operator = [e for e in entries if e["name"].startswith("operator ")]
    callbacks = [e for e in entries if e["name"].startswith("callback ")]
    rps = per_second(entries)
    busy = rps.iloc[1:-1] if len(rps) > 2 else rps  # first/last seconds are partial
    return {
        "requests": requests,
        "checkouts": sum(e["num_requests"] for e in shoppers if e["name"].startswith("checkout")),
        "failures": sum(e["num_failures"] for e in shoppers),
        "failures_by_reason": dict(reasons),
        "error_rate": errors / requests if requests else None,
        "stale_prices": stale,
        "stale_price_rate": stale / requests if requests else None,
        "missed_arrivals": missed,
        "missed_arrival_rate": missed / (requests + missed) if requests + missed else None,
        "p50_ms": percentile(histogram, 0.50),
        "p95_ms": percentile(histogram, 0.95),
        "p99_ms": percentile(histogram, 0.99),
        "max_ms": max(histogram) if histogram else None,
        "rps_mean": float(busy.mean()) if len(busy) else None,
        "rps_peak": float(busy.max()) if len(busy) else None,
        "rate_target_peak": config["rate"],
        "users_max": config["users"],
        "workers": config["workers"],
        "operator_steps": sum(e["num_requests"] for e in operator),
        "operator_refused": sum(e["num_failures"] for e in operator),
        "callbacks": sum(e["num_requests"] for e in callbacks),
        "callback_failures": sum(e["num_failures"] for e in callbacks),
    }


def request_table(prefix: Path) -> pd.DataFrame:
    """Per request name: count, failures, p50/p95/p99 (ms) and mean requests/s."""
    rows = []
    for e in read_json(prefix):
        hist: Counter[float] = Counter({float(k): int(v) for k, v in e["response_times"].items()})
        span = max(1e-9, e["last_request_timestamp"] - e["start_time"])
        rows.append(
            {
                "request": f"{e['method']} {e['name']}",
                "count": e["num_requests"],
                "failures": e["num_failures"],
                "p50 ms": percentile(hist, 0.5),
                "p95 ms": percentile(hist, 0.95),
                "p99 ms": percentile(hist, 0.99),
                "req/s": e["num_requests"] / span if e["num_requests"] > 1 else None,
            }
        )
    return pd.DataFrame(rows)


def history(prefix: Path) -> pd.DataFrame:
    """The Aggregated rows of the full history (one a second): users, req/s, percentiles."""
    path = Path(f"{prefix}_stats_history.csv")
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path, na_values=["N/A"])
    return df[df["Name"] == "Aggregated"].reset_index(drop=True)


def headroom_tables(section: dict[str, Any]) -> list[tuple[str, pd.DataFrame]]:
    """The report's "harness headroom" tables from summary.json's ``harness`` section:
    loop lag per component, CPU per Locust process, and each saturation (which, when)."""
    bounds = section["bounds"]
    lag = pd.DataFrame(
        [
            {
                "component": r["component"],
                "samples": r["samples"],
                "lag p50 ms": _ms(r["p50_s"]),
                "lag p99 ms": _ms(r["p99_s"]),
                "lag max ms": _ms(r["max_s"]),
                "saturated": "YES" if r["saturated"] else "no",
            }
            for r in section["loop_lag"]
        ]
    )
    title = (
        f"Harness headroom: event-loop lag (saturated above p99 {bounds['lag_s'] * 1000:.0f} ms "
        f"over {bounds['window_s']:g} s windows: {bounds['basis']})"
    )
    tables = [(title, lag)]
    if section["cpu"]:
        cpu = pd.DataFrame(
            [
                {
                    "process": r["process"],
                    "pid": r["pid"],
                    "samples": r["samples"],
                    "CPU mean %": r["mean_percent"],
                    "CPU max %": r["max_percent"],
                    "saturated": ("YES" if r["saturated"] else "no") if r["judged"] else "—",
                }
                for r in section["cpu"]
            ]
        )
        hold = f"above {bounds['cpu_percent']:g} % for {bounds['cpu_hold_s']:g} s"
        title = (
            f"Harness headroom: CPU, 100 % = one core (a Locust process saturated {hold}; "
            "the stack and the whole machine shown beside it, not judged)"
        )
        tables.append((title, cpu))
    if section["saturations"]:
        frame = pd.DataFrame(section["saturations"]).rename(
            columns={
                "from_s": "from (wall s)",
                "to_s": "to (wall s)",
                "scenario_from": "from (scenario t)",
                "scenario_to": "to (scenario t)",
                "peak": "peak (lag s or CPU %)",
            }
        )
        untrusted = ", ".join(section["untrustworthy"]) or "none of the gates"
        tables.append((f"HARNESS SATURATED — untrustworthy figures: {untrusted}", frame))
    return tables


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
