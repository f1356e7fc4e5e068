"""``promoharness live``: play a scenario's operator timeline against the live stack.

The timeline goes through the orchestrator's HTTP API with each role's key, in wall-clock
time compressed ``speed`` times; at the end the event log is the orchestrator's records
(the audit trail in SQLite) plus the simulators' ground truth, and it is summarised by the
same metrics as a virtual-time run. A sim-vs-live table sets every headline figure of the
SimPy run of the same scenario and seed beside the live one, and summary.json's
``harness`` section says whether the harness itself kept up (``harness/selfwatch.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

from harness import selfwatch
from harness.agreement import NOT_MEASURED_LIVE, OUT, TOLERANCE, WITHIN, agreement, judge_measured
from harness.agreement import within as within  # re-exported: the live tests' judge
from harness.faithful import FRACTION, Faithful, Overhead, limits_of
from harness.metrics import summarise, to_frame
from harness.runner import validity_starts
from harness.runtime.live import WINDOW_HOLD
from harness.saturation import bounds_for, headroom, mark_untrustworthy
from harness.scenario import Scenario, StepSpec
from harness.service.auth import DEMO_KEY_FOR_ACTION, DEMO_OPERATOR_KEY
from harness.stack import Stack, fetch_truth, start_stack

ROLE_OF = DEMO_KEY_FOR_ACTION
OPERATOR_KEY = DEMO_OPERATOR_KEY


def request_of(step: StepSpec, promotions: dict[str, Any]) -> tuple[str, str, Any]:
    """(method path, key, JSON body) for a timeline step."""
    promo = step.promo or ""
    scope = step.scope.model_dump()
    action = step.action
    if action == "create":
        body = promotions[promo].model_dump(mode="json", by_alias=True)
        return "/v1/promotions", ROLE_OF[action], body
    if action == "replay":
        return "/v1/dead-letters/replay", OPERATOR_KEY, {"promo": step.promo}
    path = f"/v1/promotions/{promo}/{action}"
    key = ROLE_OF.get(action, OPERATOR_KEY)
    body: Any = None
    if action == "publish":
        body = scope
    elif action == "rollback":
        body = {**scope, "deadline": step.deadline}
    elif action == "schedule":
        body = {**scope, "publish_at": step.publish_at}
    elif action in ("pause", "resume"):
        body = {"channel": step.channel}
    elif action == "reject":
        body = {"reason": step.reason}
    return path, key, body


@dataclass
class LiveResult:
    summary: dict[str, Any]
    events: pd.DataFrame
    refused: list[str]
    lag: list[dict[str, Any]] = field(default_factory=list)  # /_harness/lag of each part
    origin: float = 0.0  # wall time of scenario t=0


STEP_TRIES = 10  # an operator step answered 429/503 is asked again, as a real client would


async def post_step(http: aiohttp.ClientSession, path: str, body: Any, key: str) -> tuple[int, str]:
    """POST one operator step, honouring ``Retry-After`` on 429 (over the key's rate) and
    503 (the journal could not take the write yet): a step the orchestrator only deferred
    is not a refusal, and the virtual run never sees either answer."""
    for attempt in range(STEP_TRIES):
        async with http.post(path, json=body, headers={"X-API-Key": key}) as resp:
            text = await resp.text()
            if resp.status not in (429, 503) or attempt == STEP_TRIES - 1:
                return resp.status, text
            wait = resp.headers.get("Retry-After", "1")
        await asyncio.sleep(float(wait) if wait.replace(".", "", 1).isdigit() else 1.0)
    raise AssertionError("unreachable")  # the last try returns


async def play(
    stack: Stack, scenario: Scenario, progress: Callable[[float, float], None] | None = None
) -> list[str]:
    """Walk the timeline on the scenario clock, then let the run finish its duration."""
    clock = stack.clock
    promotions = {p.id: p for p in scenario.promotions}
    refused: list[str] = []
    async with aiohttp.ClientSession(base_url=stack.api_url) as http:
        # A step after the scenario's end is not played (the virtual run never reaches it).
        steps = [s for s in scenario.timeline if s.at <= scenario.duration]

        async def one(step: StepSpec) -> None:
            path, key, body = request_of(step, promotions)
            status, text = await post_step(http, path, body, key)
            if status >= 400:
                refused.append(f"t={step.at:g} {step.action} {step.promo}: HTTP {status} {text}")

        for at, chains in instants(steps):
            wait = clock.wall(at - clock.now())
            if wait > 0:
                await asyncio.sleep(wait)
            for chain_set in chains:
                await asyncio.gather(*(_in_order(one, chain) for chain in chain_set))
            if progress:
                progress(clock.now(), scenario.duration)
        while clock.now() < scenario.duration:
            await asyncio.sleep(min(1.0, clock.wall(scenario.duration - clock.now())))
            if progress:
                progress(min(clock.now(), scenario.duration), scenario.duration)
    return refused


def instants(
    steps: list[StepSpec],
) -> list[tuple[float, list[list[list[StepSpec]]]]]:
    """The timeline by instant, each instant as the order its steps may be played in:
    groups played one after the other, each group a set of chains played at once, each
    chain one promotion's steps in timeline order. A step naming no promotion (replay
    every dead letter) is a group of its own: it waits for what came before it.

    In virtual time the steps of one instant all happen at that instant; played one
    after the other over HTTP, each waiting for the previous answer, 150 publishes at
    t=600 spread over 23 scenario seconds at 25x (6 ms wall each on 2 busy cores), and
    a quota-limited ERP refilled while the "simultaneous" wave was still arriving (the
    retry storm measured 2.4 attempts per delivery live against 8.3 in virtual time).
    At once, what is left is the CPU of each step (``harness.faithful``: the spread)."""
    out: list[tuple[float, list[list[list[StepSpec]]]]] = []
    chains: dict[str, list[StepSpec]] = {}  # the open group's chain of each promotion
    for step in sorted(steps, key=lambda s: s.at):  # stable: timeline order within one at
        if not out or out[-1][0] != step.at:
            out.append((step.at, [[]]))
            chains = {}
        groups = out[-1][1]
        if step.promo is None:
            groups += [[[step]], []]
            chains = {}
        elif step.promo in chains:
            chains[step.promo].append(step)
        else:
            chains[step.promo] = [step]
            groups[-1].append(chains[step.promo])
    return [(at, [g for g in groups if g]) for at, groups in out]


async def _in_order(play_one: Callable[[StepSpec], Any], chain: list[StepSpec]) -> None:
    for step in chain:
        await play_one(step)


async def run_live(
    scenario: Scenario,
    *,
    state: Path,
    speed: float,
    seed: int | None = None,
    progress: Callable[[float, float], None] | None = None,
    estate_shards: int = 0,
    window_hold: float = WINDOW_HOLD,
) -> LiveResult:
    """``window_hold``: as the calibration says (``window_hold_for``), so a delivery in its
    modelled service time does not keep others out of the runtime's window."""
    stack = await start_stack(
        scenario,
        state=state,
        seed=seed,
        speed=speed,
        estate_shards=estate_shards,
        window_hold=window_hold,
    )
    since = time.time()  # the stack serves: what its loops do from here on is the run's
    try:
        refused = await play(stack, scenario, progress)
        end = time.time()
        async with aiohttp.ClientSession() as http:
            truth = await fetch_truth(http, stack.sim_url, stack.sim_token)
            lag = await fetch_lags(stack)
        records = stack.runtime.records()
    finally:
        await stack.stop()
    events = to_frame(truth + records).sort_values("t", kind="stable", ignore_index=True)
    summary = summarise(
        events,
        scenario=scenario.name,
        seed=stack.world.seed,
        mode="live",
        slos=[s.model_dump(exclude={"expect"}) for s in scenario.slos],
        budgets=stack.world.budgets(),
        starts=validity_starts(stack.world),
    )
    judge_measured(summary)  # an SLO on a shopper figure: nobody bought, so no verdict
    # In-process the estate and the orchestrator share this one event loop: their lags
    # are the same loop's, each seen by its own sampler.
    summary["harness"] = headroom(
        lag,
        {},
        bounds_for(delivery_timeouts(stack.world), speed),
        origin=stack.clock.epoch,
        end=end,
        since=since,
        speed=speed,
    )
    mark_untrustworthy(summary)
    return LiveResult(summary, events, refused, lag, stack.clock.epoch)


def delivery_timeouts(world: Any) -> list[float]:
    """Every channel's delivery timeout (scenario seconds), the saturation bound's basis."""
    return [limit.seconds for limit in limits_of(world) if limit.kind == "timeout"]


async def fetch_lags(stack: Stack) -> list[dict[str, Any]]:
    """``/_harness/lag`` of each estate process (each shard, when sharded) and of the
    orchestrator; a part that does not answer is left out (not watched)."""
    shards = getattr(stack, "shards", None)
    estate = shards.urls() if shards is not None else [stack.sim_url]
    return await asyncio.to_thread(selfwatch.fetch_lags, estate, stack.api_url)


def sim_vs_live(
    sim: dict[str, Any], live: dict[str, Any], tolerance: float = TOLERANCE
) -> pd.DataFrame:
    """Each headline figure from the virtual-time run beside the live one, with the ratio
    and whether it is within ``tolerance``: "yes", "NO", "NO (reported only)" (a figure
    the faithful speed does not vouch for, such as a fan-out's T50: out, but not held
    against agreement, ``harness.agreement.claimed``), "not measured live" (a shopper
    figure: the live run has no shoppers) or "—" when a run lacks it. The rows of
    ``agreement(sim, live, tolerance)``, as the report's table."""
    column = f"within {tolerance:.0%}"
    marks = {WITHIN: "yes", OUT: "NO", NOT_MEASURED_LIVE: NOT_MEASURED_LIVE}
    rows = [
        {
            "figure": r["figure"],
            "sim": _shown(r["sim"]),
            "live": _shown(r["live"]),  # null when not measured live: the last column says
            "live/sim": _shown(r["live_over_sim"]),
            column: "NO (reported only)"
            if r["status"] == OUT and not r["claimed"]
            else marks.get(r["status"], "—"),
        }
        for r in agreement(sim, live, tolerance)["figures"]
    ]
    return pd.DataFrame(rows, dtype=object)  # as given: no None turned into NaN


def _shown(value: Any) -> Any:
    return "—" if value is None else value


def faithful_summary(
    faithful: Faithful, overhead: Overhead, speed: float, *, asked: bool = True
) -> dict[str, Any]:
    """``summary["live"]``: the speed run (``asked`` with --speed, else the faithful one
    chosen), the faithful speed, what limits it, the calibration it rests on, and whether
    the run was forced above it."""
    limit = faithful.limit
    return {
        "speed": speed,
        "speed_source": "--speed" if asked else "faithful",
        "faithful_speed": round(faithful.speed, 3) if limit else None,
        "forced": speed > faithful.speed,
        "limited_by": limit.name if limit else None,
        "limit_seconds": limit.seconds if limit else None,
        "fraction": FRACTION,
        "calibration": {
            "twin_speed": overhead.speed,
            "isolated_median_ms": round(overhead.isolated * 1000, 3),
            "burst_p95_ms": round(overhead.at_concurrency * 1000, 3),
            "burst": overhead.burst,
            "burst_wall_s": round(overhead.burst_wall, 3),
            "loop_lag_ms": round(overhead.loop_lag * 1000, 3),
            "burst_delay_p95_s": round(overhead.burst_delay, 3),
        },
    }
