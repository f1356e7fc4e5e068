"""The harness watches itself: event-loop lag of each served component and CPU of each
Locust process, sampled through a live or load run (``harness/saturation.py`` judges them).

* ``LagSampler`` (``simulators/app_loop_lag.py``): an asyncio task sleeping ``INTERVAL``
  (50 ms) wall at a time and recording how late it woke. A loop busy with other work
  wakes it late by as long as that work held the loop, which is exactly the delay every
  request served by the loop gets.
  Memory is bounded: the last ``KEEP`` samples (an hour at 50 ms) and, of the older
  ones, only those later than ``LATE_KEPT`` (all the saturation rule can count).
* ``install(app, component=...)``: starts a sampler in a FastAPI app's lifespan and serves
  its samples, read-only and without a key, at ``GET /_harness/lag`` (``LAG_PATH``),
  outside the app's OpenAPI.
* ``CpuWatch``: a thread in the parent sampling the CPU of processes (Locust's) each
  second with psutil (100 % = one core).
* ``fetch_lags`` and ``Watched``: what a run collected about itself, turned into
  summary.json's ``harness`` section by ``saturation.headroom``.

The sampler lives beside the estate's apps (they may depend on the domain only) and is
re-exported here with its test hook (``BLOCK_ENV``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.saturation import Bounds, headroom
from simulators.app_loop_lag import BLOCK_ENV, LAG_PATH, LagSampler, install

__all__ = [
    "BLOCK_ENV",
    "LAG_PATH",
    "CpuWatch",
    "LagSampler",
    "Watched",
    "fetch_lag",
    "fetch_lags",
    "install",
]

CPU_INTERVAL = 1.0  # wall seconds between CPU samples


def fetch_lag(base_url: str, timeout: float = 30.0) -> dict[str, Any] | None:
    """A component's samples over HTTP; None when it does not answer (it is reported as
    not watched rather than failing the run)."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}{LAG_PATH}", timeout=timeout) as r:
            data = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fetch_lags(estate: Sequence[str], orchestrator: str | None) -> list[dict[str, Any]]:
    """``fetch_lag`` of each estate process (shards named ``estate-shard-i`` when there
    are several) and of the orchestrator; those that do not answer are left out."""
    out = []
    for i, url in enumerate(estate):
        snap = fetch_lag(url)
        if snap is not None:
            if len(estate) > 1 and snap["component"] == "estate":
                snap["component"] = f"estate-shard-{i}"
            out.append(snap)
    out.sort(key=lambda snap: (len(snap["component"]), snap["component"]))  # shard 0, 1, ..
    snap = fetch_lag(orchestrator) if orchestrator else None
    return [*out, snap] if snap is not None else out


@dataclass
class Watched:
    """What a load run collected about itself, for ``headroom`` and the plot."""

    lag: list[dict[str, Any]]
    cpu: dict[str, list[tuple[float, float]]]
    pids: dict[str, int]
    bounds: Bounds
    origin: float  # wall time of scenario t=0
    since: float  # start of the judged span (wall)
    end: float

    def section(self, speed: float) -> dict[str, Any]:
        return headroom(
            self.lag,
            self.cpu,
            self.bounds,
            origin=self.origin,
            end=self.end,
            since=self.since,
            speed=speed,
            pids=self.pids,
        )


MACHINE = "machine (all processes)"


class CpuWatch:
    """CPU % of processes (by pid and name), sampled each ``interval`` s in a thread, from
    ``start()`` to ``stop()``. ``series``: name -> [(wall time, percent)], 100 = one core.
    With ``machine``, the whole machine's too (``MACHINE``, up to 100 x cores): a process
    below 100 % while the machine is full was starved by its neighbours."""

    def __init__(self, interval: float = CPU_INTERVAL, *, machine: bool = True) -> None:
        self.interval = interval
        self.machine = machine
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

    def add_children(self, name: str, pid: int) -> None:
        """Each child process of ``pid`` (the stack's estate shards) as ``name <i>``."""
        import psutil

        try:
            children = psutil.Process(pid).children()
        except psutil.Error:
            return
        for i, child in enumerate(sorted(children, key=lambda c: c.pid)):
            self.add(f"{name} {i}", child.pid)

    def start(self) -> CpuWatch:
        import psutil

        if self.machine:
            psutil.cpu_percent(None)  # the baseline, as for a process
            self.series.setdefault(MACHINE, [])
        self._thread = threading.Thread(target=self._loop, name="cpu-watch", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        import psutil

        cores = psutil.cpu_count() or 1
        while not self._stop.wait(self.interval):
            if self.machine:
                self.series[MACHINE].append((time.time(), psutil.cpu_percent(None) * cores))
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
