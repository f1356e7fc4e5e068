"""One virtual-time run end to end: scenario -> world -> SimPy -> event log -> figures -> report.

Used by ``promoharness run``, by ``sweep`` (one call per grid cell, in worker processes)
and by the tests. The output folder defaults to ``reports/<scenario>-<UTC timestamp>``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from harness.metrics import summarise, to_frame
from harness.runtime.sim import SimRuntime
from harness.runtime.world import World, build_world
from harness.scenario import Scenario

REPORTS_DIR = Path("reports")
EVENT_COLUMNS = (
    "t",
    "kind",
    "promo",
    "version",
    "endpoint",
    "channel",
    "region",
    "attempt",
    "outcome",
    "value",
    "detail",
)


@dataclass
class RunResult:
    summary: dict[str, Any]
    events: pd.DataFrame
    world: World
    out_dir: Path | None = None
    files: dict[str, Path] | None = None


def default_out_dir(scenario: str, base: Path = REPORTS_DIR) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = base / f"{scenario}-{stamp}"
    n = 1
    while out.exists():  # two runs in the same second must not share a folder
        n += 1
        out = base / f"{scenario}-{stamp}-{n}"
    return out


def validity_starts(world: World) -> dict[str, float]:
    """Each promotion's earliest opening over its in-scope endpoints, in scenario seconds."""
    t0 = world.scenario.start.timestamp()
    zones = {getattr(m, "timezone", None) for m in world.models.values() if m.channel == "pos"}
    out: dict[str, float] = {}
    for p in world.scenario.promotions:
        candidates = {p.validity.timezone}
        if p.validity.store_local and "pos" in p.scope.channels:
            candidates |= {z for z in zones if z}
        out[p.id] = min(
            p.validity.start.replace(tzinfo=ZoneInfo(z)).timestamp() - t0 for z in candidates
        )
    return out


def event_frame(records: list[Any], shopper_columns: Any | None) -> pd.DataFrame:
    """Delivery records and shopper columns -> one event log, in time order."""
    frames = [to_frame(records)]
    if shopper_columns is not None and len(shopper_columns):
        c = shopper_columns
        n = len(c)
        frames.append(
            to_frame(
                pd.DataFrame(
                    {
                        "t": c.t,
                        "kind": c.kind,
                        "promo": c.promo,
                        "version": c.version,
                        "endpoint": c.endpoint,
                        "channel": c.channel,
                        "region": c.region,
                        "attempt": [0] * n,
                        "outcome": [""] * n,
                        "value": c.value,
                        "detail": c.detail,
                    }
                )
            )
        )
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df.sort_values("t", kind="stable", ignore_index=True)
    return to_frame(df)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> RunResult:
    """Run the scenario in virtual time and compute its figures (no files written)."""
    world = build_world(scenario, seed)
    runtime = SimRuntime(world, progress=progress)
    records = runtime.run()
    shoppers = runtime.shoppers.columns if runtime.shoppers is not None else None
    events = event_frame(records, shoppers)
    summary = summarise(
        events,
        scenario=scenario.name,
        seed=world.seed,
        mode="sim",
        slos=[s.model_dump(exclude={"expect"}) for s in scenario.slos],
        budgets=world.budgets(),
        starts=validity_starts(world),
    )
    return RunResult(summary, events, world)


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    out: Path | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> RunResult:
    """Simulate and write the report folder (DESIGN "What a run writes")."""
    from harness.report import write_report

    result = simulate(scenario, seed=seed, progress=progress)
    out_dir = out or default_out_dir(scenario.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.files = write_report(
        out_dir,
        result.summary,
        result.events,
        title=f"{scenario.name} — virtual-time run (seed {result.world.seed})",
        description=scenario.description,
    )
    result.out_dir = out_dir
    return result
