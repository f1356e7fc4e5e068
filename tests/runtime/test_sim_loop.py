"""The SimPy runtime's own event loop (``SimRuntime._run_until``) is ``Environment.run``:
the same event log, however the run is cut into stretches, and the same crash. Arrivals
that ride on the queue entry of the one before them (a fan-out's) are taken exactly where
the queue would have popped them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world
from harness.scenario import load_scenario

TINY = Path(__file__).with_name("tiny.yaml")


class _SimPyLoop(SimRuntime):
    """The runtime with SimPy's own ``run`` in place of its loop."""

    def _run_until(self, until: float) -> None:
        self.env.run(until=until)


def _records(cls: type[SimRuntime], name: str, seed: int, watched: bool) -> list[tuple]:
    world = build_world(load_scenario(name, [f"seed={seed}"]))
    progress = (lambda now, total: None) if watched else None  # 100 stretches, not 1
    return [tuple(r) for r in cls(world, progress=progress).run()]


@pytest.mark.parametrize(("name", "seed"), [("regional-outage-rollback", 2)])
def test_the_runtime_loop_writes_the_log_simpy_run_writes(name: str, seed: int) -> None:
    # Outages, a breaker, retries, a rollback: every kind of event the runtime schedules.
    ours = _records(SimRuntime, name, seed, watched=True)
    assert ours == _records(_SimPyLoop, name, seed, watched=True)
    assert ours == _records(SimRuntime, name, seed, watched=False)


class _NoRiders(SimRuntime):
    """Every arrival on the queue with its own entry, as SimPy would schedule it."""

    def _send(self, cmd: Any) -> None:
        super()._send(cmd)
        self._lead_eid = -2  # no event id follows it: the next arrival gets its own entry


class _Counting(SimRuntime):
    """Counts the arrivals that rode on another's entry and the riders put back on the
    queue because something scheduled meanwhile sorted before them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rode: set[Any] = set()
        self.riders = self.put_back = 0

    def _arrive(self, a: Any) -> None:  # called for what the queue pops, riders aside
        self.put_back += a in self.rode
        if a.followers is not None:
            self.rode.update(b for _, b in a.followers)
            self.riders += len(a.followers)
        super()._arrive(a)


@pytest.mark.parametrize(
    ("name", "seed"), [("regional-outage-rollback", 2), ("weekend-private-label", 2)]
)
def test_riding_arrivals_keep_the_log_of_one_entry_each(name: str, seed: int) -> None:
    world = build_world(load_scenario(name, [f"seed={seed}"]))
    counting = _Counting(world)
    ours = [tuple(r) for r in counting.run()]
    assert counting.riders > 0 and counting.put_back > 0  # both paths taken
    assert ours == _records(_NoRiders, name, seed, watched=True)


def test_a_failed_process_ends_the_run_as_simpy_ends_it() -> None:
    def crash(runtime: SimRuntime):  # type: ignore[no-untyped-def]
        yield runtime.env.timeout(5)
        raise KeyError("boom")

    errors = []
    for cls in (SimRuntime, _SimPyLoop):
        runtime = cls(build_world(load_scenario(str(TINY))))
        runtime.env.process(crash(runtime))
        with pytest.raises(KeyError) as info:
            runtime.run()
        errors.append(info.value)
        assert runtime.env.now == 5  # nothing after the failure ran
    ours, simpy_s = errors
    assert ours.args == simpy_s.args == ("boom",)
    assert type(ours.__cause__) is KeyError and ours.__cause__.args == ("boom",)


def test_until_must_lie_ahead() -> None:
    runtime = SimRuntime(build_world(load_scenario(str(TINY))))
    runtime._run_until(10.0)
    assert runtime.env.now == 10.0
    with pytest.raises(ValueError, match="until"):
        runtime._run_until(10.0)
