"""When the harness saturated: the rule, and summary.json's ``harness`` section.

Pure (no clock, no I/O): it judges samples taken by ``harness/selfwatch.py``. A component
saturated when, in some ``LAG_WINDOW`` window, its event loop spent more than
``LATE_SHARE`` of the window late by more than the bound (``bounds_for``: 10 % of the
smallest delivery timeout in wall seconds, never under 100 ms) — the sum of the lags over
the bound, so one 3 s stall counts and one 120 ms hiccup does not (a quantile of ~100
samples a window would be its single worst sample) — or a Locust process's CPU stays
above ``CPU_PERCENT`` for ``CPU_HOLD`` seconds.
Then the SLOs/gates whose figures it took part in are untrustworthy and the exit code is
``SATURATED`` (4). Stated in docs/architecture.md, "The harness watches itself".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

# The saturation rule (stated in docs/architecture.md, "The harness watches itself").
LAG_FRACTION = 0.10  # lag may reach this share of the smallest delivery timeout (wall)...
LAG_FLOOR = 0.100  # ...but the bound is never below 100 ms: lag that size is noise
LAG_WINDOW = 5.0  # wall seconds: each such window is judged on its own
LATE_SHARE = 0.10  # a window whose lags over the bound sum past this share is saturated
CPU_PERCENT = 90.0  # a Locust process above this (100 = one core)...
CPU_HOLD = 5.0  # ...for this many wall seconds running is saturated (Locust warns at 90 %)

# What each kind of component takes part in: its saturation makes these figures (dotted
# summary.json paths, by prefix) untrustworthy. The estate answers shoppers and
# deliveries; the orchestrator decides and sends every delivery; Locust times shoppers.
TIMED = (
    "propagation",
    "retry_storm",
    "rollbacks",
    "leakage_value",
    "price_consistency",
    "funding",
)
AFFECTS: dict[str, tuple[str, ...]] = {
    "estate": (*TIMED, "load"),
    "orchestrator": (*TIMED, "load.stale_price", "load.operator", "load.callback"),
    "locust": ("funding", "load"),
}


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (None when there are none)."""
    if not ordered:
        return None
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


# --- the rule ------------------------------------------------------------------------------


class Bounds(NamedTuple):
    lag_s: float  # lag over this, for over LATE_SHARE of a window: saturated
    window_s: float
    cpu_percent: float  # a process's CPU above this for cpu_hold_s: saturated
    cpu_hold_s: float
    basis: str  # where lag_s comes from, in words


def bounds_for(timeouts: Iterable[float], speed: float) -> Bounds:
    """The bound for a run at ``speed`` whose smallest delivery timeout (scenario seconds)
    is among ``timeouts``: 10 % of it in wall seconds, never below 100 ms."""
    positive = [t for t in timeouts if t > 0]
    if positive:
        scaled = LAG_FRACTION * min(positive) / speed
        basis = (
            f"max({LAG_FLOOR * 1000:g} ms, {LAG_FRACTION:.0%} of the smallest delivery "
            f"timeout {min(positive):g} s / speed {speed:g} = {scaled * 1000:.1f} ms)"
        )
    else:
        scaled, basis = 0.0, f"{LAG_FLOOR * 1000:g} ms (no delivery timeout to scale)"
    return Bounds(max(LAG_FLOOR, scaled), LAG_WINDOW, CPU_PERCENT, CPU_HOLD, basis)


class Span(NamedTuple):
    start: float  # wall time
    end: float
    peak: float  # the worst lag (s) or CPU sample (%) in it


def lag_windows(
    samples: Iterable[tuple[float, float]], origin: float, bounds: Bounds
) -> list[Span]:
    """Windows of ``bounds.window_s`` from ``origin`` in which the lags over the bound sum
    past ``LATE_SHARE`` of the window, adjacent ones merged into one span. Samples before
    ``origin`` are start-up: ignored."""
    windows: dict[int, list[float]] = {}
    for t, lag in samples:
        if t >= origin:
            windows.setdefault(int((t - origin) // bounds.window_s), []).append(lag)
    spans: list[Span] = []
    for index in sorted(windows):
        late = sum(lag for lag in windows[index] if lag > bounds.lag_s)
        if late <= LATE_SHARE * bounds.window_s:
            continue
        worst = max(windows[index])
        start = origin + index * bounds.window_s
        last = spans[-1] if spans else None
        if last is not None and math.isclose(last.end, start):
            spans[-1] = Span(last.start, start + bounds.window_s, max(last.peak, worst))
        else:
            spans.append(Span(start, start + bounds.window_s, worst))
    return spans


def cpu_spans(samples: Sequence[tuple[float, float]], bounds: Bounds) -> list[Span]:
    """Runs of consecutive samples above ``bounds.cpu_percent`` lasting at least
    ``bounds.cpu_hold_s`` (from the sample before the first high one to the last)."""
    spans: list[Span] = []
    run: list[tuple[float, float]] = []
    previous: float | None = None
    for t, percent in [*samples, (math.inf, 0.0)]:
        if percent > bounds.cpu_percent:
            if not run:
                begin = previous if previous is not None else t
                run.append((begin, percent))
            run.append((t, percent))
        elif run:
            if run[-1][0] - run[0][0] >= bounds.cpu_hold_s:
                spans.append(Span(run[0][0], run[-1][0], max(p for _, p in run[1:])))
            run = []
        previous = t
    return spans


# --- the summary section -------------------------------------------------------------------


def kind_of(component: str) -> str:
    return next((k for k in AFFECTS if component.startswith(k)), "other")


def headroom(
    lag: Sequence[Mapping[str, Any]],
    cpu: Mapping[str, Sequence[tuple[float, float]]],
    bounds: Bounds,
    *,
    origin: float,
    end: float,
    speed: float,
    since: float | None = None,
    pids: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """summary.json's ``harness`` section from the components' snapshots (``lag``), the
    Locust processes' CPU series, the bounds, and the run's wall span [since, end]
    (``origin``: the wall time of scenario t=0, ``since`` by default; samples before
    ``since`` are start-up). Times in it are wall seconds since ``origin``."""
    since = origin if since is None else since
    loop_rows, cpu_rows, saturations = [], [], []

    def at(t: float) -> float:
        return round(t - origin, 3)

    for snap in lag:
        name = str(snap["component"])
        inside = [(t, v) for t, v in snap.get("samples", []) if since <= t <= end]
        lags = sorted(v for _, v in inside)
        # The sampler keeps its last hour whole and only the late samples before it: enough
        # for the rule (no lag at or under the bound counts), not for percentiles.
        older = [(t, v) for t, v in snap.get("late_dropped", []) if since <= t <= end]
        spans = lag_windows([*older, *inside], origin, bounds)
        loop_rows.append(
            {
                "component": name,
                "samples": len(lags),
                "percentiles_from_s": at(inside[0][0] if older and inside else since),
                "p50_s": quantile(lags, 0.50),
                "p99_s": quantile(lags, 0.99),
                "max_s": lags[-1] if lags else None,
                "saturated": bool(spans),
            }
        )
        saturations += [_span(name, "loop_lag", s, at, speed) for s in spans]
    for name, series in cpu.items():
        inside = [(t, p) for t, p in series if since <= t <= end]
        # Only the load generator is judged by its CPU; the stack's process is shown
        # beside it, judged by its loops' lag (a busy loop that keeps up is not saturated).
        judged = kind_of(name) == "locust"
        spans = cpu_spans(inside, bounds) if judged else []
        values = [p for _, p in inside]
        cpu_rows.append(
            {
                "process": name,
                "pid": (pids or {}).get(name),
                "samples": len(values),
                "mean_percent": round(sum(values) / len(values), 1) if values else None,
                "max_percent": max(values) if values else None,
                "judged": judged,
                "saturated": bool(spans),
            }
        )
        saturations += [_span(name, "cpu", s, at, speed) for s in spans]
    saturations.sort(key=lambda s: s["from_s"])
    return {
        "saturated": bool(saturations),
        "span": {"from_s": at(since), "to_s": at(end)},
        "bounds": {
            "lag_s": round(bounds.lag_s, 6),
            "window_s": bounds.window_s,
            "cpu_percent": bounds.cpu_percent,
            "cpu_hold_s": bounds.cpu_hold_s,
            "basis": bounds.basis,
        },
        "loop_lag": loop_rows,
        "cpu": cpu_rows,
        "saturations": saturations,
        "untrustworthy": [],
    }


def _span(name: str, measure: str, span: Span, at: Callable[[float], float], speed: float) -> dict:
    return {
        "component": name,
        "measure": measure,
        "from_s": at(span.start),
        "to_s": at(span.end),
        "scenario_from": round(at(span.start) * speed, 3),
        "scenario_to": round(at(span.end) * speed, 3),
        "peak": round(span.peak, 6),
    }


def mark_untrustworthy(summary: dict[str, Any]) -> list[str]:
    """Mark each SLO/gate whose figure a saturated component took part in
    (``slos[].trusted``) and list those figures in ``harness.untrustworthy``; an SLO
    "not measured" (``harness.agreement``) has no verdict to distrust and is left be."""
    section = summary["harness"]
    kinds = {kind_of(s["component"]) for s in section["saturations"]}
    prefixes = {p for kind in kinds for p in AFFECTS.get(kind, ("",))}  # unknown: all
    bad: list[str] = []
    for slo in summary.get("slos", []):
        if slo.get("status") == "not measured":  # no figure, no verdict to distrust
            continue
        metric = str(slo.get("metric", ""))
        slo["trusted"] = not any(metric.startswith(p) for p in prefixes)
        if not slo["trusted"] and metric not in bad:
            bad.append(metric)
    section["untrustworthy"] = bad
    return bad


SATURATED = 4  # the exit code: 0 ok, 1 an SLO or gate failed, 2 bad input, 3 sweep cells


def exit_code(summary: Mapping[str, Any]) -> int:
    """4 when the harness saturated (a failed gate then is no verdict), else 0 or 1."""
    if (summary.get("harness") or {}).get("saturated"):
        return SATURATED
    return 0 if summary.get("passed") else 1


def describe(section: Mapping[str, Any]) -> list[str]:
    """One line per saturation: which component, when, how far over its bound."""
    bounds = section["bounds"]
    lines = []
    for s in section["saturations"]:
        if s["measure"] == "loop_lag":
            what = (
                f"event loop late by more than {bounds['lag_s'] * 1000:.0f} ms for over "
                f"{LATE_SHARE:.0%} of a {bounds['window_s']:g} s window, worst "
                f"{s['peak'] * 1000:.0f} ms"
            )
        else:
            what = (
                f"CPU up to {s['peak']:.0f} % for {s['to_s'] - s['from_s']:.0f} s "
                f"(bound {bounds['cpu_percent']:g} % for {bounds['cpu_hold_s']:g} s)"
            )
        lines.append(
            f"{s['component']} saturated from {s['from_s']:.1f} s to {s['to_s']:.1f} s wall "
            f"(scenario t={s['scenario_from']:g}..{s['scenario_to']:g}): {what}"
        )
    return lines
