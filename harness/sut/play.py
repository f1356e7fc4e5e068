"""Walk a scenario's operator timeline through a driver, on the estate's clock.

Each step waits for its scenario time, goes to the system under test, and leaves records
in the run's event log: the operator record (``publish``, ``rollback``... with its scope,
as the reference orchestrator would write it) when the system took it, or the same kind
with outcome ``refused`` and the status and a body excerpt when it did not; and, for a
publish, schedule or rollback the system took, the "target" records of what it should
reach (``truth.expected_targets``): the yardstick of every truth-only figure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence

from harness.domain.eventlog import Record
from harness.scenario import Scenario, StepSpec
from harness.sut.driver import Step, SystemUnderTest
from harness.sut.truth import expected_targets

__all__ = ["play_through", "step_of"]


def _scope(step: StepSpec) -> dict[str, list[str]]:
    return {
        "channels": list(step.scope.channels),
        "regions": list(step.scope.regions),
        "stores": list(step.scope.stores),
    }


def step_of(step: StepSpec, scenario: Scenario) -> Step:
    promotions = {p.id: p for p in scenario.promotions}
    promo = promotions.get(step.promo or "")
    at_iso = ""
    if step.publish_at is not None:
        at_iso = (scenario.start + dt.timedelta(seconds=step.publish_at)).isoformat()
    return Step(
        action=step.action,
        at=step.at,
        promo=step.promo or "",
        promotion=promo.model_dump(mode="json", by_alias=True) if promo else None,
        scope=_scope(step),
        channel=step.channel or "",
        publish_at=step.publish_at,
        publish_at_iso=at_iso,
        deadline=step.deadline,
        reason=step.reason,
    )


def _records(
    spec: StepSpec, step: Step, scenario: Scenario, inventory: Sequence[Record], t: float
) -> list[Record]:
    """What a step the system took leaves in the log (the reference's own vocabulary)."""
    promo = next((p for p in scenario.promotions if p.id == step.promo), None)
    version = promo.version if promo else 0
    scope = json.dumps(step.scope, separators=(",", ":"))
    action = step.action
    if action == "publish" and promo:
        return [
            Record(t, "publish", step.promo, version, detail=scope),
            *expected_targets(promo, step.scope, inventory, t=t, op="apply"),
        ]
    if action == "schedule" and promo and step.publish_at is not None:
        at = step.publish_at
        return [
            Record(t, "schedule", step.promo, version, value=at, detail=scope),
            Record(at, "publish", step.promo, version, detail=scope),
            *expected_targets(promo, step.scope, inventory, t=at, op="apply"),
        ]
    if action == "rollback" and promo:
        return [
            Record(t, "rollback", step.promo, version, value=step.deadline, detail=scope),
            *expected_targets(promo, step.scope, inventory, t=t, op="revoke"),
        ]
    return [Record(t, action, step.promo, version, channel=spec.channel or "")]


async def play_through(
    driver: SystemUnderTest,
    scenario: Scenario,
    inventory: Sequence[Record],
    now: Callable[[], float],
    speed: float,
    records: list[Record],
    progress: Callable[[float, float], None] | None = None,
) -> list[str]:
    """Play every step at its time, then wait out the scenario; returns the refusals."""
    refused: list[str] = []
    for spec in sorted(scenario.timeline, key=lambda s: s.at):
        wait = (spec.at - now()) / speed
        if wait > 0:
            await asyncio.sleep(wait)
        step = step_of(spec, scenario)
        t = now()
        result = await driver.act(step)
        if result.ok:
            records.extend(_records(spec, step, scenario, inventory, t))
        else:
            detail = f"HTTP {result.status}: {result.excerpt}" if result.status else result.excerpt
            records.append(
                Record(t, spec.action, step.promo, 0, outcome="refused", detail=detail[:500])
            )
            refused.append(f"t={spec.at:g} {spec.action} {step.promo}: {detail}")
        if progress:
            progress(min(now(), scenario.duration), scenario.duration)
    while now() < scenario.duration:
        await asyncio.sleep(min(1.0, (scenario.duration - now()) / speed))
        if progress:
            progress(min(now(), scenario.duration), scenario.duration)
    return refused
