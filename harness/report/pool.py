"""Render a report's plots in worker processes, started before the simulation.

Matplotlib's import and first figure (font cache, text layout) cost about half a second
and each plot a few tenths more, all on one core while the other idles. A ``PlotPool``
forks a lead worker at the start of a command, while the process is still small and has
no threads of its own; it imports matplotlib (and pandas) and draws a throw-away figure
while the simulation runs. Once the event log exists it is sent to the lead alone, and the
lead forks the other workers from itself, warm and with the frame already in memory
(copy-on-write: no second pickle, send or build of it); each then takes plots from a
shared queue.

The files are the same as ``write_report`` renders in-process (same functions, same
frame). A plot that fails in a worker, or a worker that dies, is rendered again in the
calling process, so an error surfaces there as it always did. Where ``fork`` is
unavailable, or with one worker asked for, the pool renders in-process.

``run`` forks the pool before it imports pandas, and may hand the lead the simulation's
raw output instead of the frame (``handoff.Handoff``) with a ``files`` task: the lead
builds the frame once, before it forks, and the worker that takes the task first computes
the summary and writes summary.json, events.parquet and junit.xml
(``handoff.summary_files``), so the command itself never imports pandas. That task fails
over to the caller like a plot.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from harness.report.handoff import EARLY_PLOTS, FILES, Handoff, ShopperLists, summary_files

__all__ = ["PlotPool"]

# Rough CPU seconds of each plot for the default scenario: only the order matters.
_COST = {"heatmap": 0.42, "attempts": 0.34, "sales": 0.34, "latency_cdf": 0.27}
_COST |= {"coverage": 0.24, "recovery": 0.21, "rollback": 0.02}
DONE = "done"
FAILED = "failed"


def _warm() -> None:
    """What every plot pays once per process: imports, font cache, one text layout; and
    what the files task imports (the summary, Parquet), so neither waits on it later."""
    import io

    import pyarrow.parquet  # noqa: F401  (events.parquet)

    import harness.metrics.summary
    import harness.report.write
    import harness.runner  # noqa: F401  (event_frame, for a handoff)
    from harness.report import plots  # noqa: F401  (matplotlib and the plot modules)
    from harness.report.figures import figure

    fig = figure(1.0, 1.0)
    ax = fig.add_subplot()
    ax.set_title("warm")
    # Mathtext (symlog and log tick labels: "10^2") builds its parser on first use:
    # ~0.15 CPU-s that the attempts plot paid on the report's critical path.
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, 1000)
    fig.savefig(io.BytesIO(), format="png")
    # The event log's first build pays pandas' and Arrow's lazy set-up (~0.08 CPU-s):
    # here, on a two-row log, it is paid before the simulation ends.
    from types import SimpleNamespace

    from harness.domain.eventlog import Record
    from harness.runner import event_frame

    one = {"t": [1.0], "kind": ["sale"], "promo": [""], "version": [0], "endpoint": ["S1"]}
    one |= {"channel": ["pos"], "region": ["r"], "value": [1.0], "detail": ["b0"]}
    shoppers = ShopperLists(SimpleNamespace(**one))
    frame = event_frame([Record(0.0, "endpoint", endpoint="S1", channel="pos")], shoppers)
    # So does its first Parquet write (~0.06 CPU-s; ``metrics.write_events``'s call), to memory.
    frame.to_parquet(io.BytesIO(), index=False, engine="pyarrow")


def _die_with(parent: int) -> None:
    """Be killed when ``parent`` (the process that forked this one) exits, however it
    exits: a worker must never outlive the command nor write into its folder afterwards.
    Linux's PR_SET_PDEATHSIG; elsewhere the pool's own close is all there is."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it exited before the request took effect
        os._exit(1)


def _lead(reader: Any, queues: Any, results: Any, writer: Any, workers: int, command: int) -> None:
    """The first worker: warms up once while the simulation runs, reads the frame (or a
    ``Handoff``, built into the frame here, once), then forks the other ``workers - 1``
    from itself, so they start with matplotlib, pandas, the font cache and the frame
    loaded (one warm-up's and one build's CPU, not one each). It dies with the command
    and they die with it (``_die_with``); they stay in the command's process group, so a
    signal to the group (a CI job cancelled, ``timeout``) reaches them too. It waits for
    them before it exits.

    ``queues`` is (tasks, early). A handoff sent as ``_Early`` does not wait for the
    whole log: the others are forked with the delivery records' frame alone (the default
    run's 7k rows of 169k) and draw the ``EARLY_PLOTS`` from it while the lead
    builds the whole log, then does the tasks that need it and any early plot left.

    The lead forks after its warm-up has imported pyarrow, whose allocator runs a
    background thread: forking with it is safe because jemalloc and Arrow register
    at-fork handlers (locks taken around the fork, thread pools rebuilt in the child).
    It forks before its first result, so no queue feeder thread is running either."""
    _die_with(command)
    # Ctrl-C reaches the whole process group: the parent decides, and closes the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Our copy of the write end: while it is open the lead would never see end-of-file
    # when the parent closes the frame pipe without sending (a run that failed before
    # its report), and would wait to be killed.
    writer.close()
    tasks, early = queues
    try:
        _warm()
        # What the warm-up loaded (pandas, matplotlib: a million objects) lives as long as
        # the worker: out of the collector's sight, its full collections while the log is
        # built and plotted do not walk it again and again, and the forked workers do not
        # copy its pages by writing the collector's marks into them.
        gc.freeze()
        with os.fdopen(os.dup(reader.fileno()), "rb") as stream:
            payload = pickle.load(stream)
        reader.close()
        if isinstance(payload, _Early):
            handoff, first, theirs = payload.handoff, payload.handoff.records_frame(), [early]
        else:
            handoff, first, theirs = None, _frame(payload), [tasks]
        del payload  # a handoff's lists are garbage once its frame is built: not held
        gc.freeze()
    except BaseException:  # no frame came (the run failed first), or the warm-up failed:
        return  # the caller renders whatever no worker did
    children = []
    lead = os.getpid()
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:  # a worker of its own: serve, flush the results, leave at once
            code = 1
            try:
                _die_with(lead)
                _serve(first, theirs, results)
                code = 0
            finally:
                try:
                    results.close()
                    results.join_thread()
                finally:
                    os._exit(code)
        children.append(pid)
    try:
        if handoff is not None:
            first, handoff = handoff.frame(), None
            theirs = [tasks, early]  # the tasks that need the whole log, then what is left
        else:
            theirs = [tasks]
        _serve(first, theirs, results)
    except BaseException:  # the log did not build: the caller does what is left
        pass
    finally:
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _frame(payload: Any) -> Any:
    """The frame itself, or the one a ``Handoff`` (the simulation's raw output) builds."""
    return payload.frame() if isinstance(payload, Handoff) else payload


def _serve(frame: Any, queues: list[Any], results: Any) -> None:
    """Do tasks on ``frame`` from each of ``queues`` in turn until told to stop."""
    from harness.metrics.frame import shared_results
    from harness.report.plots import PLOTS

    with shared_results():  # plots of one worker share its inventory and publish targets
        for tasks in queues:
            while (task := tasks.get()) is not None:
                name, arg = task
                try:
                    if name == FILES:
                        out, summary_args = arg
                        value: Any = summary_files(frame, Path(out), summary_args)
                    else:
                        written = PLOTS[name](frame, Path(arg))
                        value = None if written is None else str(written)
                except BaseException:  # the caller does it again and sees the error itself
                    results.put((name, FAILED, None))
                    continue
                results.put((name, DONE, value))


class _Early(NamedTuple):
    """A handoff whose ``EARLY_PLOTS`` the other workers draw from the records alone."""

    handoff: Handoff


class _Pickled(bytes):
    """A payload already pickled, written as is."""


def _send(frame: Any, pipe: Any) -> None:
    try:
        with os.fdopen(os.dup(pipe.fileno()), "wb") as stream:
            if isinstance(frame, _Pickled):
                stream.write(frame)
            else:
                pickle.dump(frame, stream, protocol=5)
    except OSError:  # the lead is gone: its plots are rendered by the caller
        pass


class PlotPool:
    """Worker processes for ``write_report``'s plots: ``start()`` early, ``submit()`` the
    frame and folder once the event log exists, ``results()`` in ``PLOTS`` order, ``close()``.
    """

    def __init__(self, workers: int | None = None) -> None:
        wanted = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.workers = wanted if "fork" in mp.get_all_start_methods() else 0
        self._procs: list[Any] = []
        self._pipe: Any = None  # the write end of the lead's frame pipe
        self._pending: list[tuple[str, Path]] = []
        self._files: tuple[Path, dict[str, Any]] | None = None
        self._tasks: Any = None
        self._early: Any = None  # plots drawn from the delivery records alone (_Early)
        self._results: Any = None
        self.submitted = False
        self._sender: threading.Thread | None = None

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
        self._tasks, self._early, self._results = ctx.SimpleQueue(), ctx.SimpleQueue(), ctx.Queue()
        reader, writer = ctx.Pipe(duplex=False)
        queues = (self._tasks, self._early)
        lead = ctx.Process(
            target=_lead, args=(reader, queues, self._results, writer, self.workers, os.getpid())
        )
        lead.daemon = True  # joined or killed at the command's exit; _die_with otherwise
        lead.start()
        reader.close()
        self._procs, self._pipe = [lead], writer
        return self

    def submit(
        self,
        frame: Any,
        out_dir: Path,
        names: list[str],
        files: dict[str, Any] | None = None,
    ) -> None:
        """Hand the frame (or a ``Handoff``) to the lead, which forks the other workers
        with it, and queue one task per plot name; with ``files`` (``summarise``'s keyword
        arguments) first a task that computes the summary and writes the gated files
        (``results`` yields it as ``FILES``). A handoff whose records alone draw the
        ``EARLY_PLOTS`` (``Handoff.records_suffice``) queues those apart, for the workers
        the lead forks before it builds the whole log."""
        self._pending = [(name, Path(out_dir) / f"{name}.png") for name in names]
        self._files = None if files is None else (Path(out_dir), files)
        self.submitted = True
        if not self._procs:
            return
        early = self.workers > 1 and isinstance(frame, Handoff) and frame.records_suffice()
        if isinstance(frame, Handoff):
            # Pickled whole, then written at once: lists of Python objects have no buffers
            # to stream, and streamed they cost the lead thousands of small reads.
            frame = _Pickled(pickle.dumps(_Early(frame) if early else frame, protocol=5))
        # A frame is streamed, not pickled whole first: a peak day's frame is hundreds of
        # MB, and its Arrow and numpy buffers go through pickle protocol 5 without a copy.
        # In a thread, so the caller computes the figures meanwhile.
        self._sender = threading.Thread(target=_send, args=(frame, self._pipe), daemon=True)
        self._sender.start()
        if self._files is not None:  # first: the summary is what the caller waits for
            out, args = self._files
            self._tasks.put((FILES, (str(out), args)))
        # Dearest first (measured on the library's scenarios), so that two workers finish
        # together rather than one waiting on the last big plot; the rest in given order.
        for name, png in sorted(self._pending, key=lambda p: _COST.get(p[0], 0), reverse=True):
            (self._early if early and name in EARLY_PLOTS else self._tasks).put((name, str(png)))
        if early:  # the lead alone does the tasks, then, like the others, the early plots
            self._tasks.put(None)
            for _ in range(self.workers):
                self._early.put(None)
        else:
            for _ in range(self.workers):  # one stop per worker, the lead's forks included
                self._tasks.put(None)

    def results(
        self, frame: Any, plots: dict[str, Callable[[Any, Path], Path | None]]
    ) -> Iterator[tuple[str, Any]]:
        """(name, written PNG or None) for each submitted plot, and (``FILES``, summary)
        for a files task, as each finishes; what no worker did is done here (its
        exception, if any, raised here). ``frame`` may be a function returning the frame:
        it is called once, only if something is done here."""
        left: dict[str, Any] = {}
        if self._files is not None:  # first, when done here too: see ``failed`` below
            left[FILES] = self._files
        left.update(self._pending)
        self._pending, self._files, self.submitted = [], None, False
        built: list[Any] = []
        # A plot that fails here is raised only once the gated files are written (they
        # must exist even if a plot fails, as ``write_report`` promises): the caller
        # would otherwise stop the pool while a worker still writes them.
        failed: list[BaseException] = []

        def here(name: str) -> Any:
            if not built:
                built.append(frame() if callable(frame) else frame)
            if name == FILES:
                out, args = left.pop(name)
                return summary_files(built[0], out, args)
            try:
                return plots[name](built[0], left.pop(name))
            except Exception as exc:
                if FILES not in left:
                    raise
                failed.append(exc)
                return None

        while left and self._procs:
            try:
                name, status, value = self._results.get(timeout=0.5)
            except queue.Empty:
                if any(p.is_alive() for p in self._procs):
                    continue
                try:  # a worker's last result may land just after it exits
                    name, status, value = self._results.get(timeout=0.5)
                except queue.Empty:
                    break
            if status != DONE:
                yield name, here(name)
            elif name == FILES:
                left.pop(name)
                yield name, value
            else:
                left.pop(name)
                yield name, None if value is None else Path(value)
        for name in list(left):  # no worker (in-process), or a worker died; files first
            yield name, here(name)
        if failed:
            raise failed[0]

    def close(self, *, force: bool = False) -> None:
        """Let the workers finish and exit; ``force``: stop them now."""
        if force:
            self._kill()
        if self._sender is not None:
            self._sender.join(timeout=5)
        if self._pipe is not None:
            self._pipe.close()
        for proc in self._procs:  # the lead exits once the workers it forked have
            proc.join(timeout=5)
        if any(proc.is_alive() for proc in self._procs):
            self._kill()
            for proc in self._procs:
                proc.join()
        self._procs, self._pipe, self._sender = [], None, None

    def _kill(self) -> None:
        for proc in self._procs:
            proc.kill()  # the workers it forked die with it (_die_with)
