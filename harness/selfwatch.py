"""The harness watches itself: event-loop lag of each served component, CPU of each Locust
process, and the rule saying when the harness saturated (then its figures measure it).

* ``LagSampler``: an asyncio task sleeping ``INTERVAL`` (50 ms) wall at a time and
  recording how late it woke. A loop busy with other work wakes it late by as long as that
  work held the loop, which is exactly the delay every request served by the loop gets.
  Memory is bounded: the last ``KEEP`` samples (an hour at 50 ms).
* ``install(app, component=...)``: starts a sampler in a FastAPI app's lifespan and serves
  its samples, read-only and without a key, at ``GET /_harness/lag`` (``LAG_PATH``),
  outside the app's OpenAPI.
* ``CpuWatch``: a thread in the parent sampling the CPU of processes (Locust's) each
  second with psutil (100 % = one core).
* The rule (``Bounds``, ``lag_windows``, ``cpu_spans``) and the ``harness`` section of
  summary.json (``headroom``), which also marks the SLOs/gates whose figures a saturated
  component took part in as untrustworthy (``slos[].trusted``).

Test hook: ``PROMOHARNESS_TEST_BLOCK_LOOP=COMPONENT:SECONDS:AFTER`` makes the sampler of
every component whose name starts with COMPONENT block its own event loop once, for
SECONDS wall, AFTER wall seconds after it started (a stand-in for a saturated estate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import threading
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "LAG_PATH",
    "Bounds",
    "CpuWatch",
    "LagSampler",
    "bounds_for",
    "cpu_spans",
    "exit_code",
    "fetch_lag",
    "headroom",
    "install",
    "lag_windows",
    "mark_untrustworthy",
]

LAG_PATH = "/_harness/lag"
INTERVAL = 0.05  # wall seconds between wake-ups: 20 samples a second
KEEP = 72_000  # samples kept (an hour at INTERVAL); older ones are dropped, and counted
BLOCK_ENV = "PROMOHARNESS_TEST_BLOCK_LOOP"

# The saturation rule (stated in docs/architecture.md, "The harness watches itself").
LAG_FRACTION = 0.10  # lag may reach this share of the smallest delivery timeout (wall)...
LAG_FLOOR = 0.100  # ...but the bound is never below 100 ms: lag that size is noise
LAG_WINDOW = 5.0  # wall seconds: the p99 of each such window is held to the bound
CPU_PERCENT = 90.0  # a Locust process above this (100 = one core)...
CPU_HOLD = 5.0  # ...for this many wall seconds running is saturated (Locust warns at 90 %)
CPU_INTERVAL = 1.0  # wall seconds between CPU samples

# What each kind of component takes part in: its saturation makes these figures (dotted
# summary.json paths, by prefix) untrustworthy. The estate answers shoppers and
# deliveries; the orchestrator decides and sends every delivery; Locust times shoppers.
TIMED = ("propagation", "retry_storm", "rollbacks", "leakage_value", "price_consistency")
AFFECTS: dict[str, tuple[str, ...]] = {
    "estate": (*TIMED, "funding", "load"),
    "orchestrator": (*TIMED, "load.stale_price", "load.operator", "load.callback"),
    "locust": ("funding", "load"),
}


# --- sampling ------------------------------------------------------------------------------


class Block(NamedTuple):
    """The test hook: block the loop once for ``seconds``, ``after`` s into sampling."""

    seconds: float
    after: float


def block_from_env(component: str, value: str | None = None) -> Block | None:
    """The hook for ``component`` from ``PROMOHARNESS_TEST_BLOCK_LOOP``, if it names it."""
    value = os.environ.get(BLOCK_ENV, "") if value is None else value
    if not value:
        return None
    try:
        prefix, seconds, after = value.split(":")
        block = Block(float(seconds), float(after))
    except ValueError:
        raise ValueError(f"{BLOCK_ENV}={value!r}: expected COMPONENT:SECONDS:AFTER") from None
    return block if component.startswith(prefix) else None


class LagSampler:
    """Event-loop lag of the loop it runs on: ``samples`` holds (wall time, lag seconds).

    ``clock`` (monotonic), ``wall`` (epoch seconds, so processes line up) and ``sleep``
    are injectable: a test drives it with a scripted clock and gets exact lags."""

    def __init__(
        self,
        component: str,
        *,
        interval: float = INTERVAL,
        keep: int = KEEP,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        block: Block | None = None,
    ) -> None:
        self.component = component
        self.interval = interval
        self.samples: deque[tuple[float, float]] = deque(maxlen=keep)
        self.count = 0  # samples taken, kept or dropped
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.block = block
        self.task: asyncio.Task[None] | None = None

    async def run(self, limit: int | None = None) -> None:
        """Sample until cancelled (or ``limit`` samples)."""
        started = self.clock()
        while limit is None or self.count < limit:
            before = self.clock()
            if self.block is not None and before - started >= self.block.after:
                seconds, self.block = self.block.seconds, None
                time.sleep(seconds)  # the test hook: holds the loop, as busy work would
            await self.sleep(self.interval)
            after = self.clock()
            self.samples.append((self.wall(), max(0.0, after - before - self.interval)))
            self.count += 1

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_harness/lag`` answers (seconds; ``samples``: [[wall t, lag]])."""
        lags = sorted(lag for _, lag in self.samples)
        return {
            "component": self.component,
            "interval_s": self.interval,
            "count": self.count,
            "dropped": self.count - len(self.samples),
            "samples": [[round(t, 3), round(lag, 6)] for t, lag in self.samples],
            "p50": quantile(lags, 0.50),
            "p99": quantile(lags, 0.99),
            "max": lags[-1] if lags else None,
        }


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (None when there are none)."""
    if not ordered:
        return None
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def install(app: Any, component: str, *, interval: float = INTERVAL) -> LagSampler:
    """Sample ``app``'s event loop while it serves (its lifespan) and serve the samples at
    ``GET /_harness/lag``. Returns the sampler (also ``app.state.selfwatch``)."""
    sampler = LagSampler(component, interval=interval, block=block_from_env(component))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        sampler.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            await sampler.stop()

    async def lag() -> dict[str, Any]:
        return sampler.snapshot()

    app.router.lifespan_context = lifespan
    app.add_api_route(LAG_PATH, lag, methods=["GET"], include_in_schema=False)
    app.state.selfwatch = sampler
    return sampler


def fetch_lag(base_url: str, timeout: float = 30.0) -> dict[str, Any] | None:
    """A component's samples over HTTP; None when it does not answer (it is reported as
    not watched rather than failing the run)."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}{LAG_PATH}", timeout=timeout) as r:
            data = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class CpuWatch:
    """CPU % of processes (by pid and name), sampled each ``interval`` s in a thread, from
    ``start()`` to ``stop()``. ``series``: name -> [(wall time, percent)]."""

    def __init__(self, interval: float = CPU_INTERVAL) -> None:
        self.interval = interval
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.pids: dict[str, int] = {}
        self._procs: dict[str, Any] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, name: str, pid: int) -> None:
        import psutil

        try:
            proc = psutil.Process(pid)
            proc.cpu_percent(None)  # the first call only sets the baseline
        except psutil.Error:
            return
        with self._lock:
            self._procs[name], self.pids[name] = proc, pid
            self.series.setdefault(name, [])

    def start(self) -> CpuWatch:
        self._thread = threading.Thread(target=self._loop, name="cpu-watch", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            with self._lock:
                procs = list(self._procs.items())
            for name, proc in procs:
                try:
                    percent = proc.cpu_percent(None)
                except psutil.Error:  # it ended: no more samples
                    with self._lock:
                        self._procs.pop(name, None)
                    continue
                self.series[name].append((time.time(), percent))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --- the rule ------------------------------------------------------------------------------


class Bounds(NamedTuple):
    lag_s: float  # event-loop lag p99 over a window above this: saturated
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
    peak: float  # the worst window p99 (s) or CPU sample (%) in it


def lag_windows(
    samples: Iterable[tuple[float, float]], origin: float, bounds: Bounds
) -> list[Span]:
    """Windows of ``bounds.window_s`` from ``origin`` whose lag p99 is above the bound,
    adjacent ones merged into one span. Samples before ``origin`` are start-up: ignored."""
    windows: dict[int, list[float]] = {}
    for t, lag in samples:
        if t >= origin:
            windows.setdefault(int((t - origin) // bounds.window_s), []).append(lag)
    spans: list[Span] = []
    for index in sorted(windows):
        p99 = quantile(sorted(windows[index]), 0.99) or 0.0
        if p99 <= bounds.lag_s:
            continue
        start = origin + index * bounds.window_s
        last = spans[-1] if spans else None
        if last is not None and math.isclose(last.end, start):
            spans[-1] = Span(last.start, start + bounds.window_s, max(last.peak, p99))
        else:
            spans.append(Span(start, start + bounds.window_s, p99))
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
    return next((k for k in AFFECTS if component.startswith(k)), "estate")


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
        spans = lag_windows(inside, origin, bounds)
        loop_rows.append(
            {
                "component": name,
                "samples": len(lags),
                "p50_s": quantile(lags, 0.50),
                "p99_s": quantile(lags, 0.99),
                "max_s": lags[-1] if lags else None,
                "saturated": bool(spans),
            }
        )
        saturations += [_span(name, "loop_lag", s, at, speed) for s in spans]
    for name, series in cpu.items():
        inside = [(t, p) for t, p in series if since <= t <= end]
        spans = cpu_spans(inside, bounds)
        values = [p for _, p in inside]
        cpu_rows.append(
            {
                "process": name,
                "pid": (pids or {}).get(name),
                "samples": len(values),
                "mean_percent": round(sum(values) / len(values), 1) if values else None,
                "max_percent": max(values) if values else None,
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
    (``slos[].trusted``) and list those figures in ``harness.untrustworthy``."""
    section = summary["harness"]
    prefixes = {p for s in section["saturations"] for p in AFFECTS[kind_of(s["component"])]}
    bad: list[str] = []
    for slo in summary.get("slos", []):
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
                f"event-loop lag p99 {s['peak'] * 1000:.0f} ms over {bounds['window_s']:g} s "
                f"windows (bound {bounds['lag_s'] * 1000:.0f} ms)"
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
