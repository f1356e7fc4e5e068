"""One executor for sweeps and labs: independent cells mapped over Dask distributed futures.

``map_cells(fn, cells)`` calls ``fn(cell)`` for every cell and returns the results in
``cells`` order, so the output never depends on which worker ran what, or when (an
``Executor`` does the same for several maps on one cluster). Where:

- ``scheduler=None, jobs=1``: in this process, one cell after another (for debugging, and
  for a grid of one run, where starting workers would cost more than the run);
- ``scheduler=None`` otherwise: an embedded ``LocalCluster`` of ``jobs`` single-threaded
  worker processes on 127.0.0.1 (default: the CPUs this process may use), so a laptop
  user needs nothing but the command;
- ``scheduler="tcp://HOST:8786"``: an existing cluster (``dask scheduler`` on one machine,
  ``dask worker tcp://HOST:8786`` on each of the others, every one, the scheduler's
  included, with promoharness installed at the same version — checked before any cell
  is sent).

A cell that fails is tried once more (``attempts=2``): an exception in ``fn``, or its
worker dying under it (the embedded scheduler gives up on a task at the first worker
death, ``allowed-failures`` 0, and this module resubmits it). A cell that fails every
attempt is returned as a ``CellFailure`` naming it, never lost and never fatal to the
others. Exceptions listed in ``fatal`` (bad input, say) are not retried: the first one
stops the map and is raised here.

Dask is imported inside the functions: ``promoharness --help`` and ``run`` do not pay for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.inputs import InputError

__all__ = [
    "ATTEMPTS",
    "CONNECT_SECONDS",
    "CellFailure",
    "CellsFailed",
    "Executor",
    "Mapped",
    "available_cpus",
    "check_scheduler",
    "map_cells",
]

# Tries per cell: the first, and one retry.
ATTEMPTS = 2
# How long to wait for a remote scheduler to answer and for its first worker to join.
CONNECT_SECONDS = 30.0


class CellFailure(NamedTuple):
    """A cell that failed every attempt: its index in ``cells`` and the last error."""

    index: int
    error: str  # "ExceptionType: message"
    attempts: int


class Mapped(NamedTuple):
    """``results[i]`` is ``fn(cells[i])``, or None when cell i is in ``failures``."""

    results: list[Any]
    failures: list[CellFailure]


class CellsFailed(RuntimeError):
    """Cells that failed every attempt, for callers that need every cell (a lab's table).

    The CLI prints it on one line and exits 3; ``names`` says which cells, in the
    caller's words.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(f"{len(self.names)} cell(s) failed every attempt: " + "; ".join(names))


@dataclass(frozen=True, slots=True)
class _Fatal:
    """A ``fatal`` exception caught on the worker, carried back as a value (no retry)."""

    error: BaseException


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask where there is one (a container or
    taskset may allow fewer cores than ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_scheduler(address: str | None) -> str | None:
    """``tcp://HOST:PORT`` (or HOST:PORT, given tcp://) or an InputError on --scheduler."""
    if address is None:
        return None
    text = address.strip()
    if "://" not in text:
        text = "tcp://" + text
    protocol, _, rest = text.partition("://")
    host, _, port = rest.rpartition(":")
    if protocol not in ("tcp", "tls") or not host or not port.isdigit():
        raise InputError(f"expects tcp://HOST:PORT, got {address!r}", field="--scheduler")
    if not 0 < int(port) < 65536:
        raise InputError(f"port out of range in {address!r}", field="--scheduler")
    return text


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _call(fn: Callable[[Any], Any], cell: Any, fatal: tuple[type[BaseException], ...]) -> Any:
    """Worker side of one attempt: a fatal exception comes back as a value, unretried."""
    try:
        return fn(cell)
    except fatal as exc:
        return _Fatal(exc)


def map_cells(
    fn: Callable[[Any], Any],
    cells: Sequence[Any],
    *,
    scheduler: str | None = None,
    jobs: int | None = None,
    on_done: Callable[[int, Any], None] | None = None,
    fatal: tuple[type[BaseException], ...] = (),
    attempts: int = ATTEMPTS,
) -> Mapped:
    """``fn(cell)`` for every cell; results in ``cells`` order whatever ran them.

    ``fn`` must be a top-level function (or a ``functools.partial`` of one) and every cell
    plain picklable data: both travel to the workers. ``on_done(index, result)`` is called
    in this process as each cell finishes (result None for a failed one), in completion
    order — for progress. ``jobs`` sizes the embedded cluster (ignored with ``scheduler``);
    it never gets more workers than cells.
    """
    cells = list(cells)
    workers = available_cpus() if jobs is None else jobs
    with Executor(scheduler, max(1, min(workers, len(cells)))) as executor:
        return executor.map(fn, cells, on_done=on_done, fatal=fatal, attempts=attempts)


class Executor:
    """One cluster for several maps (a lab's calibration, then its grid): the embedded
    cluster starts at the first map that needs it and stops when the ``with`` ends.

    ``Executor(scheduler, jobs)``: ``jobs`` workers of an embedded cluster (default: the
    CPUs this process may use), or the cluster at ``scheduler``. ``map`` is ``map_cells``.
    """

    def __init__(self, scheduler: str | None = None, jobs: int | None = None) -> None:
        self.address = check_scheduler(scheduler)
        self.workers = available_cpus() if jobs is None else jobs
        if self.workers < 1:
            raise ValueError(f"jobs: must be >= 1, got {jobs}")
        self.connection: _Connection | None = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def map(
        self,
        fn: Callable[[Any], Any],
        cells: Sequence[Any],
        *,
        on_done: Callable[[int, Any], None] | None = None,
        fatal: tuple[type[BaseException], ...] = (),
        attempts: int = ATTEMPTS,
    ) -> Mapped:
        """``map_cells`` on this executor's workers."""
        cells = list(cells)
        if attempts < 1:
            raise ValueError(f"attempts: must be >= 1, got {attempts}")
        if not cells:
            return Mapped([], [])
        if self.address is None and min(self.workers, len(cells)) <= 1:
            return _map_here(fn, cells, on_done, fatal, attempts)
        if self.connection is None:
            connection = _Connection(self.address, self.workers)
            connection.__enter__()
            self.connection = connection
        return _map_dask(fn, cells, self.connection.client, on_done, fatal, attempts)


def _map_here(
    fn: Callable[[Any], Any],
    cells: list[Any],
    on_done: Callable[[int, Any], None] | None,
    fatal: tuple[type[BaseException], ...],
    attempts: int,
) -> Mapped:
    results: list[Any] = [None] * len(cells)
    failures: list[CellFailure] = []
    for index, cell in enumerate(cells):
        for attempt in range(1, attempts + 1):
            try:
                results[index] = fn(cell)
                break
            except fatal:
                raise
            except Exception as exc:  # every failure is reported, not lost
                if attempt == attempts:
                    failures.append(CellFailure(index, _describe(exc), attempts))
        if on_done is not None:
            on_done(index, results[index])
    return Mapped(results, failures)


def _map_dask(
    fn: Callable[[Any], Any],
    cells: list[Any],
    client: Any,
    on_done: Callable[[int, Any], None] | None,
    fatal: tuple[type[BaseException], ...],
    attempts: int,
) -> Mapped:
    from distributed import as_completed

    results: list[Any] = [None] * len(cells)
    failures: list[CellFailure] = []
    # pure=False: a retry must be a new task, not the failed one looked up by key.
    futures = {
        client.submit(_call, fn, cell, fatal, pure=False): (index, 1)
        for index, cell in enumerate(cells)
    }
    pending = as_completed(futures)
    try:
        for future in pending:
            index, attempt = futures.pop(future)
            if future.status == "finished":
                value = future.result()
                if isinstance(value, _Fatal):
                    raise value.error
                results[index] = value
            else:
                error = future.exception()
                if attempt < attempts:
                    retry = client.submit(_call, fn, cells[index], fatal, pure=False)
                    futures[retry] = (index, attempt + 1)
                    pending.add(retry)
                    continue
                failures.append(CellFailure(index, _describe(error), attempt))
            future.release()  # a finished cell's result need not stay on its worker
            if on_done is not None:
                on_done(index, results[index])
    except BaseException:
        client.cancel(list(futures))
        raise
    failures.sort()
    return Mapped(results, failures)


class _Connection:
    """A dask Client on ``address``, or on an embedded LocalCluster of ``workers``."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address = address
        self.workers = workers
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        import logging

        import dask
        from distributed import Client, LocalCluster

        if self.address is None:
            # allowed-failures 0: the scheduler hands a dead worker's task straight back to
            # map_cells, whose own retry then counts it; one rule for both kinds of failure.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",  # every server binds loopback only
                    dashboard_address=None,
                    memory_limit=0,  # a run may need its memory; nothing to spill
                    silence_logs=logging.CRITICAL,  # failures are reported per cell instead
                )
                self.client = Client(self.cluster)
            return self.client
        try:
            self.client = Client(self.address, timeout=f"{CONNECT_SECONDS}s")
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"no Dask scheduler answered at {self.address}: {_describe(exc)}",
                field="--scheduler",
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except TimeoutError:
            self.close()
            raise InputError(
                f"no worker joined {self.address} within {CONNECT_SECONDS:.0f} s "
                "(start one with: dask worker " + self.address + ")",
                field="--scheduler",
            ) from None
        self._check_workers()
        return self.client

    def _check_workers(self) -> None:
        # Cells name harness functions and classes; a worker without promoharness, or with
        # another version, would fail every cell (or, worse, compute other figures). The
        # scheduler unpickles every task too (Dask >= 2023.4), so it needs promoharness.
        here = _version()
        there = self.client.run(_version_or_missing, on_error="return")
        try:
            there["the scheduler"] = self.client.run_on_scheduler(_version_or_missing)
        except Exception as exc:  # raised on the scheduler: its reason is the answer
            there["the scheduler"] = exc
        wrong = {
            worker: v if isinstance(v, str) else f"no promoharness ({_describe(v)})"
            for worker, v in there.items()
            if v != here
        }
        if wrong:
            self.close()
            listed = ", ".join(f"{w} has {v}" for w, v in sorted(wrong.items()))
            raise InputError(
                f"the scheduler and workers need promoharness {here} (pip install the same "
                f"version): {listed}",
                field="--scheduler",
            )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def _version() -> str:
    from importlib.metadata import version

    return version("promoharness")


# A lambda, so cloudpickle sends it by value: a worker without harness can still answer.
_version_or_missing = lambda: __import__("harness.distributed", fromlist=["_version"])._version()  # noqa: E731
