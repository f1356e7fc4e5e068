"""``load CAMPAIGN --sut DRIVER``: Locust shoppers on the estate while the user's system,
told what to do through its driver, delivers the campaign's timeline to it.

1. the estate serves in this process (``harness.sut.run.serve_estate``: an admin token of
   its own, the driver's webhook targets installed) and the driver makes sure the system
   is up — a bad driver or a system that is down is exit 2 before Locust starts;
2. scenario t=0 is set to the moment Locust's first shoppers arrive, and Locust runs
   (shoppers only: no operator users, no channel-callback users — the estate's endpoints
   push their own webhooks to the system) while the timeline, cut at the campaign's end,
   is played through the driver on the estate's clock (``harness.sut.play``);
3. each step as the system took it (when it went, refused or not) is appended to
   ``out/sut-steps.jsonl``, which the Locust processes follow: the price oracle judges
   what should be live from the steps the system accepted, the same steps that write the
   expected targets of the truth-only figures — never from an orchestrator's records;
4. the figures come from the estate's ground truth alone (``harness.sut.truth``), the
   ``load`` figures from Locust as for the built-in stack, and the same gates decide.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.domain.eventlog import Record
from harness.live_run import delivery_timeouts
from harness.load.campaign import Campaign, dump_scenario, locust_config, resolve_scenario
from harness.load.procs import run_locust
from harness.load.run import LOCUST_START, report
from harness.saturation import bounds_for
from harness.scenario import Scenario
from harness.selfwatch import CpuWatch, Watched, fetch_lags
from harness.sut.driver import ActionResult, Believed, Step, SystemUnderTest
from harness.sut.play import play_through
from harness.sut.run import missing_actions, read_views, run_info, serve_estate, sut_records

__all__ = ["StepLog", "SutLoad", "horizon_of", "run_sut_load"]

STEPS_FILE = "sut-steps.jsonl"


@dataclass
class SutLoad:
    """What a load run through a driver adds to the usual report."""

    name: str
    records: list[Record]
    view: bool
    timed: bool
    steps: int
    refused: list[str] = field(default_factory=list)
    webhooks_sent: int = 0
    webhooks_failed: int = 0


class StepLog:
    """Wraps a driver: each step it carries out is appended to a JSON-lines file, first as
    going (``{"i", "action", "promo", "sent"}``: ``i`` its index in the time-sorted
    timeline, ``sent`` the scenario time, as ``play_through`` stamps the step), then with
    the system's answer (``{"i", "ok"}``). The Locust processes follow the file
    (``loadtests.common.StepsFeed``)."""

    def __init__(self, driver: SystemUnderTest, path: Path, now: Any) -> None:
        self.driver = driver
        self.name = driver.name
        self.base_url = driver.base_url
        self.path = path
        self.now = now
        self.sent = 0

    def callbacks(self) -> dict[str, tuple[str, dict[str, str]]]:
        return self.driver.callbacks()

    async def start(self, estate_url: str, run: Mapping[str, str]) -> None:
        await self.driver.start(estate_url, run)

    def supports(self, action: str) -> bool:
        return self.driver.supports(action)

    async def act(self, step: Step) -> ActionResult:
        # "Going" is on disk before the system hears of the step, so no price the step
        # changes can reach a shopper before the oracle knows the step was sent.
        i, self.sent = self.sent, self.sent + 1
        self._write({"i": i, "action": step.action, "promo": step.promo, "sent": self.now()})
        result = await self.driver.act(step)
        self._write({"i": i, "ok": result.ok})
        return result

    def _write(self, line: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:  # one short line, flushed on close
            fh.write(json.dumps(line) + "\n")

    async def view(self, promo: str) -> list[Believed] | None:
        return await self.driver.view(promo)

    async def close(self) -> None:
        await self.driver.close()


def horizon_of(scenario: Scenario, campaign: Campaign, duration: float | None) -> Scenario:
    """The scenario as far as the load goes: the built-in stack's operator stops with
    Locust, so steps after the campaign's end are not played here either."""
    end = min(scenario.duration, (duration or campaign.duration) * campaign.speed)
    timeline = [s for s in scenario.timeline if s.at < end]
    return scenario.model_copy(update={"duration": end, "timeline": timeline})


async def _run(
    campaign: Campaign,
    scenario: Scenario,
    driver: SystemUnderTest,
    out: Path,
    options: Any,
    *,
    port: int,
    scenario_file: str,
) -> tuple[dict[str, Any], int, SutLoad, Any, Watched]:
    speed = campaign.speed
    estate = await serve_estate(scenario, driver, speed=speed, port=port)
    state = estate.state
    steps_path = out / STEPS_FILE
    steps_path.write_text("", encoding="utf-8")
    log = StepLog(driver, steps_path, state.clock.now)
    played: list[Record] = []
    try:
        info = run_info(
            estate, scenario, speed=speed, scenario_file=scenario_file, work_dir=str(out)
        )
        await driver.start(estate.url, info)
        # Scenario t=0 is when Locust's first shoppers arrive, not when it is launched.
        state.clock.t0 = time.monotonic() + LOCUST_START
        epoch = time.time() + LOCUST_START
        config = locust_config(
            campaign,
            scenario,
            estate.world,
            api_url=estate.url,  # no operator or callback user talks to it
            sim_url=estate.url,
            epoch=epoch,
            workers=max(1, options.workers),
            rate=options.rate,
            users=options.users,
            duration=options.duration,
        )
        config |= {"sut": driver.name, "steps_file": str(steps_path)}
        config_path = out / "locust-config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        cpu = CpuWatch().start()
        locust = asyncio.create_task(
            asyncio.to_thread(
                run_locust,
                config_path,
                out / "locust",
                run_time=config["duration"],
                workers=options.workers,
                classes=("Shopper",),
                watch=cpu,
            )
        )
        try:
            refused = await play_through(
                log, scenario, state.inventory, state.clock.now, speed, played
            )
        finally:
            code = await locust  # Locust is bounded by --run-time and a timeout
            cpu.stop()
        end = time.time()
        # The estate serves on this loop: a thread asks it, as any client would.
        lag = await asyncio.to_thread(fetch_lags, [estate.url], None)
        watched = Watched(
            lag,
            cpu.series,
            cpu.pids,
            bounds_for(delivery_timeouts(estate.world), speed),
            origin=epoch,
            since=epoch,
            end=end,
        )
        believed = await read_views(driver, scenario)
    finally:
        await driver.close()
        await estate.server.stop()
    records, timed = sut_records(scenario, estate, played, believed)
    sut = SutLoad(
        driver.name,
        records,
        view=bool(believed),
        timed=timed,
        steps=log.sent,
        refused=refused,
        webhooks_sent=state.webhooks_sent,
        webhooks_failed=state.webhooks_failed,
    )
    return config, code, sut, estate.world, watched


def run_sut_load(
    campaign: Campaign,
    out: Path,
    options: Any,
    driver: SystemUnderTest,
    *,
    estate_port: int = 8701,
) -> dict[str, Any]:
    """Run the campaign against the system behind ``driver``; returns the summary.

    Raises ``InputError`` (exit 2) for a driver that cannot play the timeline, and lets
    ``driver.Unreachable`` and ``OSError`` (the port) through for the CLI to name."""
    from harness.inputs import InputError

    out.mkdir(parents=True, exist_ok=True)
    full = resolve_scenario(campaign, list(options.overrides))
    scenario = horizon_of(full, campaign, options.duration)
    missing = missing_actions(driver, scenario)
    if missing:
        raise InputError(
            f"the timeline uses {', '.join(missing)}, which the driver neither carries out "
            "nor declares 'skip'",
            field="--sut",
        )
    scenario_file = dump_scenario(scenario, out / "scenario.yaml")
    config, code, sut, world, watched = asyncio.run(
        _run(
            campaign,
            scenario,
            driver,
            out,
            options,
            port=estate_port,
            scenario_file=str(scenario_file),
        )
    )
    return report(
        campaign, scenario, world, config, sut.records, out, locust_code=code, sut=sut,
        watched=watched,
    )  # fmt: skip
