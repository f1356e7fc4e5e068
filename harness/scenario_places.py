"""A scenario's operator steps may name only places its estate has (checked at load time).

The estate is not built to check this: its region names come from the estate section (or
the default US regions) and its store ids are ``S0001`` .. ``S{stores:04d}``
(``simulators.estate``). An unknown region, store or channel in a timeline step's scope
is an ``InputError`` naming file, line and field (exit 2), before any simulation, since
the orchestrator would refuse the step anyway (``harness.domain.scope``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.domain.scope import unknown_members
from harness.inputs import InputError, Location, nearest_line
from harness.scenario import Scenario
from simulators.estate import DEFAULT_REGIONS

__all__ = ["check_places", "estate_places"]

ESTATE_CHANNELS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")


def estate_places(scenario: Scenario) -> dict[str, set[str]]:
    """The channels, regions and store ids the scenario's estate will have."""
    specs = scenario.estate.regions
    regions = {r.name for r in specs} if specs is not None else {r.name for r in DEFAULT_REGIONS}
    stores = {f"S{n:04d}" for n in range(1, scenario.estate.stores + 1)}
    return {"channels": set(ESTATE_CHANNELS), "regions": regions, "stores": stores}


def check_places(
    scenario: Scenario, path: str | Path, data: Any, lines: dict[Location, int]
) -> None:
    """Raise ``InputError`` at the first timeline scope naming an unknown place."""
    places = estate_places(scenario)
    raw_steps = data.get("timeline") if isinstance(data, dict) else None
    for i, step in enumerate(scenario.timeline):
        unknown = unknown_members(step.scope, **places)
        if not unknown:
            continue
        first = unknown[0]
        names = list(getattr(step.scope, first.field))
        loc: Location = ("timeline", i, "scope", first.field, names.index(first.value))
        if not (isinstance(raw_steps, list) and i < len(raw_steps)):
            loc = ("timeline",)
        raise InputError(
            str(first), path=path, line=nearest_line(lines, loc), field=".".join(map(str, loc))
        )
