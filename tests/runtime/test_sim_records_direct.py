"""The SimPy runtime's event log is the same whether the reference orchestrator appends
its records to it directly (``handle(event, now, records)``, the runtime's fast path) or
returns them as ``WriteRecord`` commands that the runtime carries out in order (what it
does for any other orchestrator, e.g. a test's wrapper)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness.domain.lifecycle import IllegalTransition
from harness.domain.promotion import Promotion
from harness.orchestrator.commands import WriteRecord
from harness.orchestrator.core import Orchestrator, UnknownPromotion
from harness.orchestrator.events import (
    Approve,
    CreateDraft,
    Publish,
    Submit,
    Validate,
    ValidationResult,
)
from harness.orchestrator.state import EndpointInfo
from harness.runtime.sim import SimRuntime
from harness.runtime.world import World, build_world
from harness.scenario import load_scenario


class _PassThrough:
    """The reference orchestrator behind the plain two-argument ``handle``."""

    def __init__(self, inner: Orchestrator) -> None:
        self.inner = inner

    def handle(self, event: Any, now: float) -> list[Any]:
        return self.inner.handle(event, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _run(world: World) -> SimRuntime:
    runtime = SimRuntime(world)
    runtime.run()
    return runtime


@pytest.mark.parametrize(
    ("name", "seed"),
    [("regional-outage-rollback", None), ("erp-quota-retry-storm", 3), ("batch-vs-event", 5)],
)
def test_direct_records_equal_the_commands_path(name: str, seed: int | None) -> None:
    overrides = [] if seed is None else [f"seed={seed}"]
    direct = _run(build_world(load_scenario(name, overrides)))
    assert direct._direct  # the fast path is the one under test

    world = build_world(load_scenario(name, overrides))
    make = world.orchestrator
    world.orchestrator = lambda rng=None: _PassThrough(make(rng))  # type: ignore[method-assign]
    wrapped = _run(world)
    assert not wrapped._direct

    assert {r.kind for r in direct.records} >= {"send", "result", "target"}
    assert direct.records == wrapped.records
    assert direct.dead_letters == wrapped.dead_letters


def _orchestrator() -> Orchestrator:
    endpoints = [EndpointInfo(i, "pos", region="north", store=i.upper()) for i in ("s1", "s2")]
    return Orchestrator(endpoints, rng=random.Random(1))


PROMOTION = Promotion.model_validate(
    {
        "id": "P1",
        "name": "Flash sale",
        "validity": {
            "start": "2026-11-27T09:00:00",
            "end": "2026-11-27T21:00:00",
            "timezone": "Europe/Paris",
        },
        "scope": {"channels": ["pos"]},
        "benefit": {"type": "percent_off", "percent": "30"},
    }
)


def test_handle_with_a_log_appends_what_it_would_return() -> None:
    plain, direct = _orchestrator(), _orchestrator()
    log: list[Any] = ["earlier"]  # what the log held before: kept, in front
    events = [
        CreateDraft(PROMOTION),
        Submit("P1"),
        Validate("P1"),
        ValidationResult("P1", 1, ok=True),
        Approve("P1"),
        Publish("P1"),
    ]
    for t, event in enumerate(events):
        commands = plain.handle(event, float(t))
        written = len(log)
        others = direct.handle(event, float(t), log)
        assert [c.record for c in commands if type(c) is WriteRecord] == log[written:]
        assert [c for c in commands if type(c) is not WriteRecord] == others
    assert log[0] == "earlier"
    assert [r.kind for r in log[1:]].count("send") == 2


def test_a_refused_event_appends_nothing() -> None:
    orch = _orchestrator()
    log: list[Any] = []
    orch.handle(CreateDraft(PROMOTION), 0.0, log)
    before = list(log)
    assert before
    with pytest.raises(IllegalTransition):  # a draft cannot be published
        orch.handle(Publish("P1"), 1.0, log)
    with pytest.raises(UnknownPromotion):
        orch.handle(Publish("NOPE"), 2.0, log)
    assert log == before
