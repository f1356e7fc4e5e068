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
SLOs whose figure the live run measured, the others left out and named. Each rollback's
verdict has a row of its own.

What a faithful speed vouches for (``harness/faithful.py``) is *claimed*: propagation T95
and T99, acknowledged T95, retry amplification, dead letters, every rollback verdict and
the SLO verdict; ``agrees`` is judged on those. The other headline figures are reported
beside them and marked in or out of tolerance as well, but the harness does not claim
them at a faithful speed: a fan-out's T50 lands as late as the stack takes to send the
whole fan-out (600 stores: a few scenario seconds at 25x, against a modelled 0.13 s),
which no timeout or retry races, so the formula leaves it out.

The run's own verdict follows the same rule (``judge_measured``): an SLO on a figure the
run did not measure is "not measured" (no value, no verdict), out of the run's ``passed``
and so of its exit code, whatever it declares it ``expect``-s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.metrics.slo import resolve
from harness.metrics.summary import HEADLINE_FIGURES, to_plain

__all__ = [
    "NOT_MEASURED",
    "NOT_MEASURED_LIVE",
    "TOLERANCE",
    "agreement",
    "claimed",
    "judge_measured",
    "needs",
    "not_measured_reason",
    "shopper_records",
    "unmeasured",
    "within",
]

NOT_MEASURED_LIVE = "not measured live"
WITHIN, OUT, MISSING = "within tolerance", "out of tolerance", "not measured"
NOT_MEASURED = MISSING  # an SLO's status when the run did not measure its figure
TOLERANCE = 0.20  # a live figure within 20% of the virtual-time one agrees

# What agreement is judged on (module docstring); "rollbacks.*.verdict" rows are added
# per rollback of the virtual run.
CLAIMED: frozenset[str] = frozenset(
    {
        "propagation.overall.t95",
        "propagation.overall.t99",
        "propagation.overall.acked_t95",
        "retry_storm.amplification",
        "retry_storm.dead_lettered",
        "passed",
    }
)


def claimed(metric: str) -> bool:
    """Is ``metric`` one the harness claims agreement on at a faithful speed?"""
    parts = metric.split(".")
    is_verdict = len(parts) == 3 and parts[0] == "rollbacks" and parts[2] == "verdict"
    return metric in CLAIMED or is_verdict


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


# What each record is, and why a mode lacks it: the reason an SLO is not measured.
_FROM = {
    "sale": "summed from shoppers' sales (discount records)",
    "quote": "computed from shoppers' sampled shelf prices (quote records)",
}
_WHY = {
    "live": "a live run has no shoppers: nobody buys or samples a price",
    "load": "load's Locust shoppers check out but sample no shelf prices",
}
_WHERE = {"live": "live", "load": "under load"}


def not_measured_reason(summary: Mapping[str, Any], metric: str) -> str | None:
    """Why the run of ``summary`` did not measure ``metric`` ("not measured live: ..."),
    or None when it did (or ``metric`` needs no shopper record)."""
    need = needs(metric)
    if need is None or need in shopper_records(summary):
        return None
    mode = str(summary.get("mode"))
    return (
        f"not measured {_WHERE.get(mode, mode)}: {metric} is {_FROM[need]}; "
        f"{_WHY.get(mode, 'this run has no such records')}"
    )


def judge_measured(summary: dict[str, Any]) -> list[str]:
    """Take the SLOs on figures this run did not measure out of its verdict; their names.

    Each such entry of ``summary["slos"]`` gets ``status`` "not measured" and its
    ``reason``, and ``value`` and ``passed`` null (the figure is a 0 nobody bought, not a
    measurement: it neither passes nor fails). ``summary["passed"]`` is then every
    *measured* SLO passed: True when none was measured, as with no SLOs at all (a QA gate
    cannot fail on what the run had no means to see; the console, report and junit.xml
    say nothing was judged). Entries on measured figures are left exactly as they were,
    so a virtual-time summary is unchanged."""
    left_out: list[str] = []
    for slo in summary.get("slos") or []:
        reason = not_measured_reason(summary, str(slo.get("metric", "")))
        if reason is not None:
            slo.update(value=None, passed=None, status=NOT_MEASURED, reason=reason)
            left_out.append(str(slo.get("name")))
    slos = summary.get("slos") or []
    summary["passed"] = all(bool(s.get("passed")) for s in slos if s.get("status") != NOT_MEASURED)
    return left_out


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

    ``figures``: one row per figure {figure, sim, live, live_over_sim, status, claimed}
    (the headline figures, then each rollback's verdict); status is "within tolerance",
    "out of tolerance", "not measured live" (the live run had no shoppers for it: its
    value null, the virtual run's shown) or "not measured" (a run lacks the figure).
    ``passed`` compares the SLOs on figures measured live; ``slos_left_out`` names the
    others. ``agrees``: no claimed row out of tolerance (and at least one compared);
    ``out_of_tolerance`` lists every row out, claimed or not."""
    left_out = sorted(
        {
            str(s.get("name"))
            for s in [*(sim.get("slos") or []), *(live.get("slos") or [])]
            if isinstance(s, Mapping) and unmeasured(live, str(s.get("metric", "")))
        }
    )
    rollbacks = sim.get("rollbacks")
    verdicts = [f"rollbacks.{i}.verdict" for i in range(len(rollbacks))] if rollbacks else []
    rows = []
    for metric in [*figures, *verdicts]:
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
            {
                "figure": metric,
                "sim": a,
                "live": b,
                "live_over_sim": ratio,
                "status": status,
                "claimed": claimed(metric),
            }
        )
    compared = [r for r in rows if r["status"] in (WITHIN, OUT) and r["claimed"]]
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
