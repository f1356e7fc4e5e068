"""``live SCENARIO --sut DRIVER``: the estate serves, the system under test delivers to it,
the timeline goes to the system through the driver, and the figures come from the
estate's ground truth (``truth``).

The estate runs in this process on 127.0.0.1 (``--estate-port``, 8701 by default, so a
system configured once finds it), with an admin token of its own; the system's declared
webhook targets are installed before it starts. Scenario time 0 is the moment the system
answers its health check, so a slow start does not make the first steps late.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics import summarise
from harness.runner import validity_starts
from harness.runtime.world import build_world
from harness.scenario import Scenario
from harness.sut.driver import ACTIONS, SystemUnderTest
from harness.sut.play import play_through
from harness.sut.truth import ack_records, endpoint_sends, frame_of, mark_not_measured
from simulators.apps import create_sim_app, run_sim_server

__all__ = ["SutResult", "missing_actions", "run_sut"]


@dataclass
class SutResult:
    summary: dict[str, Any]
    events: pd.DataFrame
    refused: list[str] = field(default_factory=list)
    estate_url: str = ""


def missing_actions(driver: SystemUnderTest, scenario: Scenario) -> list[str]:
    """Timeline actions the driver neither carries out nor declares a no-op ("skip")."""
    used = {s.action for s in scenario.timeline}
    return [a for a in ACTIONS if a in used and not driver.supports(a)]


async def run_sut(
    scenario: Scenario,
    driver: SystemUnderTest,
    *,
    speed: float,
    seed: int | None = None,
    estate_port: int = 8701,
    scenario_file: str = "",
    work_dir: str = "",
    progress: Callable[[float, float], None] | None = None,
) -> SutResult:
    """Serve the estate, play the timeline through ``driver``, measure from the truth.

    Raises ``driver.Unreachable`` (before anything is played) when the system is down.
    """
    world = build_world(scenario, seed)
    app = create_sim_app(world, speed=speed, admin_token=secrets.token_urlsafe(16))
    state = app.state.sim
    for channel, (url, headers) in driver.callbacks().items():
        state.set_callback(channel, url, headers)
    server = await run_sim_server(app, estate_port)
    records: list[Record] = []
    try:
        run = {
            "scenario": scenario_file or scenario.name,
            "seed": str(world.seed),
            "speed": f"{speed:g}",
            "estate_port": str(server.port),
            "work_dir": work_dir or ".",
        }
        await driver.start(server.url, run)
        state.clock.t0 = time.monotonic()  # scenario t=0: the system is up
        refused = await play_through(
            driver, scenario, state.inventory, state.clock.now, speed, records, progress
        )
        believed = {}
        for p in scenario.promotions:
            rows = await driver.view(p.id)
            if rows is not None:
                believed[p.id] = rows
    finally:
        await driver.close()
        await server.stop()
    truth = [*state.inventory, *state.records]
    versions = {p.id: p.version for p in scenario.promotions}
    acks, timed = ack_records(believed, versions, scenario.duration)
    events = frame_of([*truth, *records, *endpoint_sends(truth), *acks])
    slos = [s.model_dump(exclude={"expect"}) for s in scenario.slos]
    summary = summarise(
        events,
        scenario=scenario.name,
        seed=world.seed,
        mode="live",
        slos=slos,
        budgets=world.budgets(),
        starts=validity_starts(world),
    )
    summary["sut"] = driver.name
    mark_not_measured(summary, view=bool(believed), timed=timed, slos=slos)
    return SutResult(summary, events, refused, server.url)
