"""Metastability lab studies: calibration, phase diagrams and the policy comparison.

``calibrate`` fits the one free parameter (the primary's capacity at full cores) on the two
published calibration points by bisection: X = 0.45, D = 10 s must recover (capacity at
least ``low``) and X = 0.40, D = 10 s must stay metastable (capacity under ``high``); the
capacity used is the middle of [low, high). Everything else is a prediction: the two
other published points, the phase diagram over (X, D) and over the request interval, and
which client policies make the metastable case recover. Every cell is one ``run_trial``,
a pure function of its ``Experiment``, so a process pool gives the same rows as one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, NamedTuple

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


def run_cells(
    cells: Sequence[Experiment], jobs: int = 1, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """``_row`` of every cell, in ``cells`` order whatever ``jobs`` is."""
    done, total = 0, len(cells)
    if jobs <= 1 or total <= 1:
        rows = []
        for exp in cells:
            rows.append(_row(exp))
            done += 1
            if progress:
                progress(done, total)
        return rows
    out: dict[int, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_row, exp): i for i, exp in enumerate(cells)}
        for future in as_completed(futures):
            out[futures[future]] = future.result()
            done += 1
            if progress:
                progress(done, total)
    return [out[i] for i in range(total)]


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
) -> Calibration:
    """Bisect the capacity thresholds of the two calibration points (in parallel)."""
    a, b = (p for p in PUBLISHED_POINTS if p.role == "calibration")
    tasks = [(base.but(policy=PUBLISHED), p, lo, hi, tol) for p in (a, b)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=2) as pool:
            (low, ra), (high, rb) = pool.map(_point_threshold, tasks)
    else:
        (low, ra), (high, rb) = map(_point_threshold, tasks)
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
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Calibrate (unless ``capacity`` is given), then every study at that capacity."""
    calibration = None
    if capacity is None:
        if progress:
            progress("calibrating", 0, 1)
        calibration = calibrate(base, jobs=jobs)
        if progress:
            progress("calibrating", 1, 1)
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
    rows = run_cells(cells, jobs=jobs, progress=tick)
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
