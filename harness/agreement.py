"""Sim vs live: which figures a live run can measure, and whether it agrees with its twin.

A figure computed from shoppers' records cannot be measured where there are no shoppers
(``harness/metrics/consistency.py``): rollback leakage, funding and "priced without
truth" are sums of the "discount" records that checkouts write; price consistency groups
the "quote" records of sampled shelf prices. The virtual-time run has both (its shoppers,
``harness/runtime/shoppers.py``). A ``live`` run — the reference orchestrator, or a system
under test with ``--sut`` — plays the operator timeline and nothing buys: its leakage is a
0 that means "nobody bought", not "nothing leaked". ``load`` has Locust shoppers that check
out through the estate (discount records) but sample no quotes. Such a figure is "not
measured live": never out of tolerance, never counted for or against agreement, never best.

Agreement (issue 19): a number agrees when ``|live - sim| <= tolerance * |sim|`` (so 0
agrees only with 0), anything else (a verdict) when equal. ``passed`` is judged on the
SLOs whose figure the live run measured, the others left out and named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.metrics.slo import resolve
from harness.metrics.summary import HEADLINE_FIGURES, to_plain

__all__ = [
    "NOT_MEASURED_LIVE",
    "TOLERANCE",
    "agreement",
    "needs",
    "shopper_records",
    "unmeasured",
    "within",
]

NOT_MEASURED_LIVE = "not measured live"
WITHIN, OUT, MISSING = "within tolerance", "out of tolerance", "not measured"
TOLERANCE = 0.20  # a live figure within 20% of the virtual-time one agrees

# Figure families by the shopper record they are computed from (dotted prefixes; "*" is
# any one segment). The first family that matches wins: "priced without truth" sits under
# price_consistency but is summed from discounts, which `load` has.
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("leakage_value", "sale"),
    ("rollbacks.*.leakage_value", "sale"),
    ("funding", "sale"),
    ("price_consistency.priced_without_truth", "sale"),
    ("price_consistency", "quote"),
)
# The shopper records each mode's runs write ("sim" has both).
_RECORDS: dict[str, frozenset[str]] = {
    "sim": frozenset({"sale", "quote"}),
    "load": frozenset({"sale"}),  # Locust checkouts; its price checks are not sampled quotes
    "live": frozenset(),  # `live` and `live --sut`: nobody buys
}


def _under(metric: str, family: str) -> bool:
    parts, prefix = metric.split("."), family.split(".")
    if len(parts) < len(prefix):
        return False
    return all(p == "*" or p == m for p, m in zip(prefix, parts, strict=False))


def needs(metric: str) -> str | None:
    """The shopper record ``metric`` is computed from: "sale", "quote", or None."""
    return next((record for family, record in _FAMILIES if _under(metric, family)), None)


def shopper_records(summary: Mapping[str, Any]) -> frozenset[str]:
    """The shopper records the run of ``summary`` had (by its mode; all when unknown)."""
    return _RECORDS.get(str(summary.get("mode")), _RECORDS["sim"])


def unmeasured(summary: Mapping[str, Any], metric: str) -> bool:
    """Is ``metric`` a figure the run of ``summary`` had no shoppers to measure?"""
    need = needs(metric)
    return need is not None and need not in shopper_records(summary)


def within(sim: Any, live: Any, tolerance: float = TOLERANCE) -> bool | None:
    """Does the live figure agree with the virtual-time one? Numbers: ``|live - sim| <=
    tolerance * |sim|`` (so 0 agrees only with 0); anything else (a verdict): equal.
    None when either run has no figure."""
    if sim is None or live is None:
        return None
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (sim, live))
    if not numbers:
        return bool(sim == live)
    return abs(live - sim) <= tolerance * abs(sim)


def _passed(summary: Mapping[str, Any], left_out: set[str]) -> Any:
    slos = summary.get("slos")
    if not isinstance(slos, list):
        return summary.get("passed")
    return all(bool(s.get("passed")) for s in slos if s.get("name") not in left_out)


def agreement(
    sim: Mapping[str, Any],
    live: Mapping[str, Any],
    tolerance: float = TOLERANCE,
    figures: Sequence[str] = HEADLINE_FIGURES,
) -> dict[str, Any]:
    """The sim-vs-live table as plain JSON (``summary.json``'s ``sim_vs_live``).

    ``figures``: one row per figure {figure, sim, live, live_over_sim, status}; status is
    "within tolerance", "out of tolerance", "not measured live" (the live run had no
    shoppers for it: its value null, the virtual run's shown) or "not measured" (a run
    lacks the figure).
    ``passed`` compares the SLOs on figures measured live; ``slos_left_out`` names the
    others. ``agrees``: no row out of tolerance (and at least one row compared)."""
    left_out = sorted(
        {
            str(s.get("name"))
            for s in [*(sim.get("slos") or []), *(live.get("slos") or [])]
            if isinstance(s, Mapping) and unmeasured(live, str(s.get("metric", "")))
        }
    )
    rows = []
    for metric in figures:
        if unmeasured(live, metric):
            a, b = resolve(sim, metric), None  # the live value is a 0 nobody bought
            status = NOT_MEASURED_LIVE
        else:
            if metric == "passed":
                a, b = _passed(sim, set(left_out)), _passed(live, set(left_out))
            else:
                a, b = resolve(sim, metric), resolve(live, metric)
            agrees = within(a, b, tolerance)
            status = MISSING if agrees is None else (WITHIN if agrees else OUT)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
        ratio = b / a if numbers and a else None
        rows.append(
            {"figure": metric, "sim": a, "live": b, "live_over_sim": ratio, "status": status}
        )
    compared = [r for r in rows if r["status"] in (WITHIN, OUT)]
    return to_plain(
        {
            "tolerance": tolerance,
            "figures": rows,
            "slos_left_out": left_out,
            "out_of_tolerance": [r["figure"] for r in rows if r["status"] == OUT],
            "not_measured_live": [r["figure"] for r in rows if r["status"] == NOT_MEASURED_LIVE],
            "agrees": bool(compared) and all(r["status"] == WITHIN for r in compared),
        }
    )
