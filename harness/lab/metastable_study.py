"""Metastability lab studies: calibration, phase diagrams and the policy comparison.

``calibrate`` fits the one free parameter (the primary's capacity at full cores) on the two
published calibration points by bisection: X = 0.45, D = 10 s must recover (capacity at
least ``low``) and X = 0.40, D = 10 s must stay metastable (capacity under ``high``); the
capacity used is the middle of [low, high). Everything else is a prediction: the two
other published points, the phase diagram over (X, D) and over the request interval, and
which client policies make the metastable case recover. Every cell is one ``run_trial``,
a pure function of its ``Experiment``, so Dask workers (``harness.distributed``, local
or a cluster) give the same rows as one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.distributed import CellsFailed, Executor
from harness.lab.metastable import POLICIES, PUBLISHED, Experiment, run_trial

__all__ = [
    "DEFAULT_CUTS",
    "DEFAULT_DURATIONS",
    "DEFAULT_INTERVALS",
    "PUBLISHED_POINTS",
    "Calibration",
    "Point",
    "boundary",
    "calibrate",
    "describe",
    "monotone_violations",
    "run_cells",
    "run_study",
]


class Point(NamedTuple):
    """A published run (README of Retry_Metastability, experiments.sh)."""

    label: str
    cut: float
    duration: float
    interval: float
    metastable: bool
    role: str  # "calibration" | "prediction"


PUBLISHED_POINTS: tuple[Point, ...] = (
    Point("a) baseline, 10 s at 0.45 cores", 0.45, 10.0, 75e-6, False, "calibration"),
    Point("b) metastable, 10 s at 0.40 cores", 0.40, 10.0, 75e-6, True, "calibration"),
    Point("c) shorter trigger, 9 s at 0.40 cores", 0.40, 9.0, 75e-6, False, "prediction"),
    Point("d) lower load, 100 µs interval", 0.40, 10.0, 100e-6, False, "prediction"),
)
DEFAULT_CUTS: tuple[float, ...] = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
DEFAULT_DURATIONS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 9.0, 10.0, 12.0, 15.0, 20.0)
DEFAULT_INTERVALS: tuple[float, ...] = tuple(
    us * 1e-6 for us in (60, 65, 70, 75, 80, 85, 90, 100, 110, 120)
)
Progress = Callable[[int, int], None]


def _row(exp: Experiment) -> dict[str, Any]:
    """One cell's figures (no event log: rows cross process boundaries)."""
    trial = run_trial(exp)
    w = trial.window
    return {
        "policy": exp.policy,
        "capacity": exp.capacity,
        "cut": exp.cut,
        "duration": exp.duration,
        "interval_us": round(exp.interval * 1e6, 6),
        "load": exp.load,
        "recovered": trial.recovered,
        "recovery_seconds": trial.recovery_seconds,
        "goodput_before": trial.goodput("before"),
        "goodput_during": trial.goodput("during"),
        "goodput_after": trial.goodput("after"),
        "requests": trial.requests,
        "served_share": trial.succeeded / trial.requests if trial.requests else None,
        "amplification": trial.attempts / trial.requests if trial.requests else None,
        "wasted_share": w["wasted_share"],
    }


def describe(exp: Experiment) -> str:
    """A cell as the user reads it: its policy, cut, trigger length and interval."""
    interval = f"{exp.interval * 1e6:g} us"
    return f"{exp.policy} X={exp.cut:g} D={exp.duration:g} s interval={interval}"


def run_cells(
    cells: Sequence[Experiment],
    jobs: int = 1,
    progress: Progress | None = None,
    *,
    scheduler: str | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """``_row`` of every cell, in ``cells`` order whatever ran them.

    Cells go to ``harness.distributed``: ``executor``, else ``jobs`` local Dask workers
    (1 = this process) or the cluster at ``scheduler``; a cell is retried once, and one
    that fails twice raises ``CellsFailed`` naming it. ``progress(done, total)`` counts
    cells.
    """
    with _pool(executor, scheduler, jobs) as pool:
        return _mapped(_row, cells, [describe(exp) for exp in cells], progress, pool)


def _pool(executor: Executor | None, scheduler: str | None, jobs: int) -> Any:
    """``executor`` as it is (its owner closes it), else one for this call only."""
    return contextlib.nullcontext(executor) if executor else Executor(scheduler, jobs)


def _mapped(
    fn: Callable[[Any], Any],
    cells: Sequence[Any],
    names: Sequence[str],
    progress: Progress | None,
    executor: Executor,
) -> list[Any]:
    """``executor.map`` with progress in cells; a cell that failed twice is named."""
    count = iter(range(1, len(cells) + 1))
    tick = None if progress is None else lambda _i, _r: progress(next(count), len(cells))
    mapped = executor.map(fn, cells, on_done=tick)
    if mapped.failures:
        raise CellsFailed([f"{names[f.index]}: {f.error}" for f in mapped.failures])
    return mapped.results


@dataclass(frozen=True, slots=True)
class Calibration:
    """``low``: least capacity at which point a) recovers; ``high``: least at which b)
    recovers. The published pair holds for capacities in [low, high)."""

    low: float
    high: float
    runs: int

    @property
    def consistent(self) -> bool:
        return self.low < self.high

    @property
    def capacity(self) -> float:
        return (self.low + self.high) / 2


def _threshold(base: Experiment, lo: float, hi: float, tol: float) -> tuple[float, int]:
    """Least capacity in (lo, hi] at which ``base`` recovers, to ``tol``, by bisection;
    recovery is taken to be monotone in capacity (more capacity never hurts)."""
    runs = 0
    if not run_trial(base.but(capacity=hi)).recovered:
        return float("inf"), 1
    while hi - lo > tol:
        mid = (lo + hi) / 2
        runs += 1
        if run_trial(base.but(capacity=mid)).recovered:
            hi = mid
        else:
            lo = mid
    return hi, runs + 1


def _point_threshold(args: tuple[Experiment, Point, float, float, float]) -> tuple[float, int]:
    base, point, lo, hi, tol = args
    return _threshold(
        base.but(cut=point.cut, duration=point.duration, interval=point.interval), lo, hi, tol
    )


def calibrate(
    base: Experiment,
    *,
    lo: float = 10_000.0,
    hi: float = 100_000.0,
    tol: float = 250.0,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> Calibration:
    """Bisect the capacity thresholds of the two calibration points, one cell each (on
    two workers when ``jobs`` > 1 or given ``scheduler``); ``progress(done, 2)`` per point."""
    a, b = (p for p in PUBLISHED_POINTS if p.role == "calibration")
    tasks = [(base.but(policy=PUBLISHED), p, lo, hi, tol) for p in (a, b)]
    names = [f"calibrating {p.label}" for p in (a, b)]
    with _pool(executor, scheduler, min(jobs, len(tasks))) as pool:
        (low, ra), (high, rb) = _mapped(_point_threshold, tasks, names, progress, pool)
    return Calibration(low, high, ra + rb)


def boundary(rows: Iterable[dict[str, Any]], along: str, by: str) -> dict[float, float | None]:
    """For each value of ``by``, the least ``along`` value whose cell is metastable (None:
    every cell recovered): the metastable boundary of a phase diagram."""
    out: dict[float, float | None] = {}
    for row in sorted(rows, key=lambda r: (r[by], r[along])):
        out.setdefault(row[by], None)
        if not row["recovered"] and out[row[by]] is None:
            out[row[by]] = row[along]
    return out


def monotone_violations(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Cells where a deeper or longer capacity cut recovered although a milder one (same
    interval, fewer cores or no shorter) was metastable; empty when the diagram is
    monotone. Fewer cores = deeper cut."""
    bad = []
    for r in rows:
        if not r["recovered"]:
            continue
        for m in rows:
            if (
                not m["recovered"]
                and m["interval_us"] == r["interval_us"]
                and r["cut"] <= m["cut"]
                and r["duration"] >= m["duration"]
            ):
                bad.append(
                    f"X={r['cut']:g}, D={r['duration']:g} recovered but X={m['cut']:g}, "
                    f"D={m['duration']:g} was metastable"
                )
                break
    return bad


def run_study(
    base: Experiment,
    *,
    cuts: Sequence[float] = DEFAULT_CUTS,
    durations: Sequence[float] = DEFAULT_DURATIONS,
    intervals: Sequence[float] = DEFAULT_INTERVALS,
    policies: Sequence[str] = tuple(POLICIES),
    capacity: float | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Calibrate (unless ``capacity`` is given), then every study at that capacity.

    ``progress(phase, done, total)``: phase "calibrating" (in points, of 2), then
    "simulating" (in cells). Rows do not depend on ``jobs`` or ``scheduler``.
    """
    with Executor(scheduler, jobs) as executor:  # one cluster for both phases
        return _study(base, cuts, durations, intervals, policies, capacity, executor, progress)


def _study(
    base: Experiment,
    cuts: Sequence[float],
    durations: Sequence[float],
    intervals: Sequence[float],
    policies: Sequence[str],
    capacity: float | None,
    executor: Executor,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:
    calibration = None
    if capacity is None:
        tick = (lambda d, t: progress("calibrating", d, t)) if progress else None
        if tick:
            tick(0, 2)
        calibration = calibrate(base, progress=tick, executor=executor)
        capacity = calibration.capacity
    exp = base.but(capacity=capacity, policy=PUBLISHED)
    m = next(p for p in PUBLISHED_POINTS if p.metastable)
    meta = exp.but(cut=m.cut, duration=m.duration, interval=m.interval)
    published = [
        exp.but(cut=p.cut, duration=p.duration, interval=p.interval) for p in PUBLISHED_POINTS
    ]
    phase = [exp.but(cut=x, duration=d) for x in cuts for d in durations]
    sweep = [meta.but(interval=i) for i in intervals]
    # Each policy on the metastable case, and on a run without a trigger (cut = all cores)
    # for what the policy costs when nothing goes wrong.
    compared = [meta.but(policy=p) for p in policies] + [
        meta.but(policy=p, cut=meta.cores) for p in policies
    ]
    cells = published + phase + sweep + compared
    tick = (lambda d, t: progress("simulating", d, t)) if progress else None
    if tick:
        tick(0, len(cells))
    rows = run_cells(cells, progress=tick, executor=executor)
    n1, n2, n3 = (
        len(published),
        len(published) + len(phase),
        len(published) + len(phase) + len(sweep),
    )
    for row, point in zip(rows[:n1], PUBLISHED_POINTS, strict=True):
        row["label"], row["role"], row["published_metastable"] = (
            point.label,
            point.role,
            point.metastable,
        )
    policy_rows = rows[n3:]
    half = len(policies)
    for row, healthy in zip(policy_rows[:half], policy_rows[half:], strict=True):
        row["healthy_served_share"] = healthy["served_share"]
        row["healthy_goodput"] = healthy["goodput_after"]
    return {
        "experiment": exp,
        "calibration": calibration,
        "capacity": capacity,
        "published": rows[:n1],
        "phase": rows[n1:n2],
        "interval": rows[n2:n3],
        "policies": policy_rows[:half],
    }
