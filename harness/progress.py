"""Progress over a command's stages (simulating, computing figures, plotting, writing).

A long command must never sit silent: in a terminal each stage gets a line of a rich
progress display (a bar when the stage has a measure — simulated time, runs, plots — a
spinner otherwise) that stays on screen with its elapsed time. In a pipe (a CI log) a
live bar is useless, so each stage prints one plain line when it ends, with its wall
time; a stage that runs long also prints a line per tenth of its measure, at most one
every ``PIPE_EVERY`` seconds, so a 90 s stage still shows signs of life in the log.

Code that does the work takes a ``Stages`` and asks it for stages; ``Stages.off()`` (the
default everywhere) draws nothing, so tests and library callers pay nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["PIPE_EVERY", "Stages", "Tick"]

# (done, total) in the stage's own unit; total None keeps the one given at the start.
Tick = Callable[[float, float | None], None]
# In a pipe, a long stage reports progress at most this often (seconds of wall time).
PIPE_EVERY = 10.0


def _fmt_wall(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Stages:
    """Stages of one command on ``console`` (a rich Console, normally stderr).

    ``live`` forces the terminal display (True) or the pipe lines (False); by default it
    follows ``console.is_terminal``. ``clock`` is for tests. Use as a context manager
    around the whole command, and ``with stages.stage(name, total, unit) as tick:`` around
    each stage; ``tick(done, total)`` reports progress (``unit`` names the measure and
    ``fmt`` formats ``done/total`` for display, e.g. simulated hours).
    """

    def __init__(
        self,
        console: Any = None,
        *,
        quiet: bool = False,
        live: bool | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.console = console
        self.enabled = console is not None and not quiet
        self.live = bool(console.is_terminal) if live is None and self.enabled else bool(live)
        self.clock = clock
        self.bar: Any = None
        self.lines: list[str] = []  # the pipe lines printed, for tests and callers

    @classmethod
    def off(cls) -> Stages:
        """Stages that draw nothing."""
        return cls(None)

    def __enter__(self) -> Stages:
        if self.enabled and self.live:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                SpinnerColumn(finished_text="✓"),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[measure]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
            self.bar = None

    def _say(self, text: str) -> None:
        self.lines.append(text)
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    @contextmanager
    def stage(
        self,
        name: str,
        total: float | None = None,
        *,
        fmt: Callable[[float, float], str] | None = None,
    ) -> Iterator[Tick]:
        """One stage; yields ``tick(done, total=None)``. Ends with the stage's wall time."""
        if not self.enabled:
            yield lambda _done, _total=None: None
            return
        show = fmt or (lambda d, t: f"{d:,.0f}/{t:,.0f}")
        state = {"done": 0.0, "total": total, "said": self.clock(), "tenth": 0}
        started = self.clock()
        task = None
        if self.bar is not None:
            task = self.bar.add_task(name, total=total, measure="")

        def tick(done: float, new_total: float | None = None) -> None:
            if new_total is not None:
                state["total"] = new_total
            state["done"] = done
            whole = state["total"]
            measure = show(done, whole) if whole else ""
            if task is not None:
                self.bar.update(task, completed=done, total=whole, measure=measure)
                return
            if not whole:
                return
            tenth = int(10 * done / whole)
            now = self.clock()
            if tenth > state["tenth"] and now - state["said"] >= PIPE_EVERY and done < whole:
                state["tenth"], state["said"] = tenth, now
                self._say(f"{name}: {measure} ({_fmt_wall(now - started)} so far)")

        failed = True
        try:
            yield tick
            failed = False
        finally:
            wall = self.clock() - started
            whole = state["total"]
            if task is not None:
                # A stage without a measure shows a full bar once done, not an empty one.
                done = whole if whole else 1.0
                self.bar.update(task, completed=done, total=whole or 1.0)
            else:
                measure = f" ({show(state['done'], whole)})" if whole else ""
                verb = "failed after " if failed else ""
                self._say(f"{name}{measure}: {verb}{_fmt_wall(wall)}")
