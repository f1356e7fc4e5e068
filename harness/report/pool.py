"""Render a report's plots in worker processes, started before the simulation.

Matplotlib's import and first figure (font cache, text layout) cost about half a second
and each plot a few tenths more, all on one core while the other idles. A ``PlotPool``
forks its workers at the start of a command, while the process is still small and has
no threads of its own; they import matplotlib and draw a throw-away figure while the
simulation runs, then each takes plots from a shared queue once the event log exists.

The files are the same as ``write_report`` renders in-process (same functions, same
frame, pickled once per worker). A plot that fails in a worker, or a worker that dies,
is rendered again in the calling process, so an error surfaces there as it always did.
Where ``fork`` is unavailable, or with one worker asked for, the pool renders in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["PlotPool"]

# Rough CPU seconds of each plot for the default scenario: only the order matters.
_COST = {"attempts": 0.64, "sales": 0.62, "heatmap": 0.48, "recovery": 0.4}
DONE = "done"
FAILED = "failed"


def _warm() -> None:
    """What every plot pays once per process: imports, font cache, one text layout."""
    import io

    from harness.report import plots  # noqa: F401  (matplotlib and the plot modules)
    from harness.report.figures import figure

    fig = figure(1.0, 1.0)
    fig.add_subplot().set_title("warm")
    fig.savefig(io.BytesIO(), format="png")


def _worker(frames: Any, tasks: Any, results: Any, inherited: list[Any]) -> None:
    # Ctrl-C reaches the whole process group: the parent decides, and closes the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker holds copies of the write ends made before it (its own included):
    # while any is open it never sees end-of-file when the parent closes its frame pipe
    # without sending (a run that failed before its report), and would wait to be killed.
    for pipe in inherited:
        pipe.close()
    try:
        _warm()
        with os.fdopen(os.dup(frames.fileno()), "rb") as stream:
            frame = pickle.load(stream)
    except BaseException:  # no frame came (the run failed first) or warming failed
        return  # the caller renders whatever this worker did not
    from harness.metrics.frame import shared_results
    from harness.report.plots import PLOTS

    with shared_results():  # plots of one worker share its inventory and publish targets
        while (task := tasks.get()) is not None:
            name, png = task
            try:
                written = PLOTS[name](frame, Path(png))
            except BaseException:  # the caller renders it again and sees the error itself
                results.put((name, FAILED, None))
                continue
            results.put((name, DONE, None if written is None else str(written)))


def _send(frame: Any, pipe: Any) -> None:
    try:
        with os.fdopen(os.dup(pipe.fileno()), "wb") as stream:
            pickle.dump(frame, stream, protocol=5)
    except OSError:  # the worker is gone: its plots are rendered by the caller
        pass


class PlotPool:
    """Worker processes for ``write_report``'s plots: ``start()`` early, ``submit()`` the
    frame and folder once the event log exists, ``results()`` in ``PLOTS`` order, ``close()``.
    """

    def __init__(self, workers: int | None = None) -> None:
        wanted = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.workers = wanted if "fork" in mp.get_all_start_methods() else 0
        self._procs: list[Any] = []
        self._pipes: list[Any] = []
        self._pending: list[tuple[str, Path]] = []
        self._tasks: Any = None
        self._results: Any = None
        self.submitted = False
        self._senders: list[threading.Thread] = []

    def __enter__(self) -> PlotPool:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(force=exc_type is not None)  # a failed or interrupted run waits for nothing

    @property
    def parallel(self) -> bool:
        return self.workers > 1

    def start(self) -> PlotPool:
        if not self.parallel or self._procs:
            return self
        ctx = mp.get_context("fork")
        self._tasks, self._results = ctx.SimpleQueue(), ctx.Queue()
        for _ in range(self.workers):
            mine, theirs = ctx.Pipe(duplex=False)
            inherited = [*self._pipes, theirs]
            proc = ctx.Process(target=_worker, args=(mine, self._tasks, self._results, inherited))
            proc.daemon = True  # never outlives the command
            proc.start()
            mine.close()
            self._procs.append(proc)
            self._pipes.append(theirs)
        return self

    def submit(self, frame: Any, out_dir: Path, names: list[str]) -> None:
        """Hand the frame to every worker and queue one task per plot name."""
        self._pending = [(name, Path(out_dir) / f"{name}.png") for name in names]
        self.submitted = True
        if not self._procs:
            return
        # Streamed, not pickled whole first: a peak day's frame is hundreds of MB, and its
        # Arrow and numpy buffers go through pickle protocol 5 without a copy. A thread
        # per worker, so the caller computes the figures meanwhile.
        self._senders = [
            threading.Thread(target=_send, args=(frame, pipe), daemon=True) for pipe in self._pipes
        ]
        for sender in self._senders:
            sender.start()
        # Dearest first (measured on the library's scenarios), so that two workers finish
        # together rather than one waiting on the last big plot; the rest in given order.
        for name, png in sorted(self._pending, key=lambda p: _COST.get(p[0], 0), reverse=True):
            self._tasks.put((name, str(png)))
        for _ in self._procs:
            self._tasks.put(None)

    def results(
        self, frame: Any, plots: dict[str, Callable[[Any, Path], Path | None]]
    ) -> Iterator[tuple[str, Path | None]]:
        """(name, written PNG or None) for each submitted plot, as each finishes; a plot
        no worker rendered is rendered here (its exception, if any, raised here)."""
        left = dict(self._pending)
        self._pending, self.submitted = [], False
        while left and self._procs:
            try:
                name, status, written = self._results.get(timeout=0.5)
            except queue.Empty:
                if any(p.is_alive() for p in self._procs):
                    continue
                try:  # a worker's last result may land just after it exits
                    name, status, written = self._results.get(timeout=0.5)
                except queue.Empty:
                    break
            png = left.pop(name)
            if status == DONE:
                yield name, None if written is None else Path(written)
            else:
                yield name, plots[name](frame, png)
        for name, png in left.items():  # no worker (in-process), or a worker died
            yield name, plots[name](frame, png)

    def close(self, *, force: bool = False) -> None:
        """Let the workers finish and exit; ``force``: stop them now."""
        if force:
            for proc in self._procs:
                proc.kill()
        for sender in self._senders:
            sender.join(timeout=5)
        for pipe in self._pipes:
            pipe.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._procs, self._pipes = [], []
