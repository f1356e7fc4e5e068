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

from harness.agreement import judge_measured
from harness.domain.eventlog import Record
from harness.faithful import limits_of
from harness.metrics import summarise
from harness.runner import validity_starts
from harness.runtime.world import World, build_world
from harness.saturation import bounds_for, headroom, mark_untrustworthy
from harness.scenario import Scenario
from harness.sut.driver import ACTIONS, Believed, SystemUnderTest
from harness.sut.play import play_through
from harness.sut.truth import ack_records, endpoint_sends, frame_of, mark_not_measured
from simulators.app_runtime import SimState
from simulators.apps import SimServer, create_sim_app, run_sim_server

__all__ = [
    "Estate",
    "SutResult",
    "missing_actions",
    "read_views",
    "run_info",
    "run_sut",
    "serve_estate",
    "sut_records",
]


@dataclass
class SutResult:
    summary: dict[str, Any]
    events: pd.DataFrame
    refused: list[str] = field(default_factory=list)
    estate_url: str = ""
    lag: list[dict[str, Any]] = field(default_factory=list)  # the estate's loop lag
    origin: float = 0.0  # wall time of scenario t=0


def missing_actions(driver: SystemUnderTest, scenario: Scenario) -> list[str]:
    """Timeline actions the driver neither carries out nor declares a no-op ("skip")."""
    used = {s.action for s in scenario.timeline}
    return [a for a in ACTIONS if a in used and not driver.supports(a)]


@dataclass
class Estate:
    """The estate served in this process for a system under test."""

    world: World
    state: SimState
    server: SimServer

    @property
    def url(self) -> str:
        return self.server.url


async def serve_estate(
    scenario: Scenario,
    driver: SystemUnderTest,
    *,
    speed: float,
    seed: int | None = None,
    port: int = 8701,
) -> Estate:
    """Serve ``scenario``'s estate on 127.0.0.1:``port`` with an admin token of its own
    (nobody else reads the truth or switches faults), the driver's webhooks installed."""
    world = build_world(scenario, seed)
    app = create_sim_app(world, speed=speed, admin_token=secrets.token_urlsafe(16))
    state = app.state.sim
    for channel, (url, headers) in driver.callbacks().items():
        state.set_callback(channel, url, headers)
    return Estate(world, state, await run_sim_server(app, port))


def run_info(
    estate: Estate, scenario: Scenario, *, speed: float, scenario_file: str, work_dir: str
) -> dict[str, str]:
    """What ``driver.start`` is told about the run."""
    return {
        "scenario": scenario_file or scenario.name,
        "seed": str(estate.world.seed),
        "speed": f"{speed:g}",
        "estate_port": str(estate.server.port),
        "work_dir": work_dir or ".",
    }


async def read_views(driver: SystemUnderTest, scenario: Scenario) -> dict[str, list[Believed]]:
    """The system's own view of each promotion, where the driver can read it."""
    believed = {}
    for p in scenario.promotions:
        rows = await driver.view(p.id)
        if rows is not None:
            believed[p.id] = rows
    return believed


def sut_records(
    scenario: Scenario,
    estate: Estate,
    played: list[Record],
    believed: dict[str, list[Believed]],
) -> tuple[list[Record], bool]:
    """The run's records: the estate's truth, what was played, the endpoints' view of the
    sends and the system's acknowledgements; and whether every acknowledgement had a time."""
    truth = [*estate.state.inventory, *estate.state.records]
    versions = {p.id: p.version for p in scenario.promotions}
    acks, timed = ack_records(believed, versions, scenario.duration)
    return [*truth, *played, *endpoint_sends(truth), *acks], timed


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
    estate = await serve_estate(scenario, driver, speed=speed, seed=seed, port=estate_port)
    world, state, server = estate.world, estate.state, estate.server
    records: list[Record] = []
    try:
        run = run_info(
            estate, scenario, speed=speed, scenario_file=scenario_file, work_dir=work_dir
        )
        await driver.start(server.url, run)
        state.clock.t0 = time.monotonic()  # scenario t=0: the system is up
        origin = time.time()
        refused = await play_through(
            driver, scenario, state.inventory, state.clock.now, speed, records, progress
        )
        end = time.time()
        believed = await read_views(driver, scenario)
        sampler = getattr(server.config.app.state, "selfwatch", None)  # harness/selfwatch.py
        lag = [sampler.snapshot()] if sampler is not None else []
    finally:
        await driver.close()
        await server.stop()
    everything, timed = sut_records(scenario, estate, records, believed)
    events = frame_of(everything)
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
    judge_measured(summary)  # a shopper figure: no shopper buys in `live --sut`
    # The harness's own part here is the estate: its loop's lag says whether it kept up.
    timeouts = [limit.seconds for limit in limits_of(world) if limit.kind == "timeout"]
    summary["harness"] = headroom(
        lag, {}, bounds_for(timeouts, speed), origin=origin, end=end, speed=speed
    )
    mark_untrustworthy(summary)
    return SutResult(summary, events, refused, server.url, lag, origin)
