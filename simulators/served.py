"""What the estate's HTTP face needs from whoever built the estate: ``ServedEstate``.

The simulator apps (``apps.py``, ``app_runtime.py``, ``app_admin.py``) serve an estate to
any system that delivers to it; they depend on the domain and the simulator models only.
A scenario's ``World`` (``harness/runtime/world.py``) provides this protocol, but so could
anything holding an ``Estate``: the models, the seed, scenario time 0 as an instant, the
horizon, and the switching of a fault at run time (the scenario's own profile rules stay
with the scenario).

``Fault`` is a fault switched through the admin API; a scenario's ``FaultSpec`` has the
same attributes, so ``ServedEstate.fault_targets`` / ``set_fault`` accept either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from simulators.endpoint import EndpointModel
from simulators.estate import Estate

__all__ = ["FAULT_KINDS", "OUTAGE_FAULTS", "EstateSlice", "Fault", "ServedEstate"]

# Faults that take endpoints offline (an outage window) rather than change their profile.
OUTAGE_FAULTS = ("region_offline", "endpoint_offline")
FAULT_KINDS = ("region_offline", "endpoint_offline", "error_rate", "lost_acks", "quota")


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault switched on or off while the estate serves (``POST /admin/faults``).

    ``region`` (region_offline), ``endpoints`` (any kind) or ``channel`` choose the
    targets; ``rate`` is the error or loss share, or the quota per second; ``mode`` is how
    an offline endpoint fails: "refuse" (503) or "hang" (no answer).
    """

    kind: str
    region: str | None = None
    channel: str | None = None
    endpoints: tuple[str, ...] = ()
    rate: float | None = None
    mode: str = "refuse"

    def problem(self) -> str | None:
        """Why this fault cannot be switched (a missing target or rate), or ``None``."""
        if self.kind not in FAULT_KINDS:
            return f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}"
        if self.kind == "region_offline" and not self.region:
            return "fault 'region_offline' needs 'region'"
        if self.kind in ("error_rate", "lost_acks", "quota") and self.rate is None:
            return f"fault '{self.kind}' needs 'rate'"
        if self.kind in ("error_rate", "lost_acks") and not (self.channel or self.endpoints):
            return f"fault '{self.kind}' needs 'channel' or 'endpoints'"
        if self.kind == "endpoint_offline" and not self.endpoints:
            return "fault 'endpoint_offline' needs 'endpoints'"
        return None


class ServedEstate(Protocol):
    """An estate ready to serve: what ``create_sim_app`` reads and switches."""

    seed: int  # every endpoint's random stream derives from it
    estate: Estate
    models: dict[str, EndpointModel]  # id -> model, every endpoint of the estate

    @property
    def delivery_models(self) -> list[EndpointModel]:
        """The endpoints a system delivers promotions to (listing, truth, inventory)."""
        ...

    @property
    def start(self) -> dt.datetime:
        """The instant scenario time 0 stands for (shelf prices depend on the hour)."""
        ...

    @property
    def horizon(self) -> float:
        """Scenario seconds the estate is built for (outage schedules are drawn to it)."""
        ...

    def fault_targets(self, fault: Fault) -> list[EndpointModel]:
        """The models ``fault`` hits (none when nothing matches)."""
        ...

    def set_fault(self, fault: Fault, on: bool) -> list[EndpointModel]:
        """Switch a rate fault (error rate, lost acks, quota) on or off at its targets."""
        ...


class EstateSlice:
    """The part of an estate one shard serves (``harness/shards.py``): the same models,
    built from the same scenario and seed as every other shard, restricted to ``ids``.

    ``create_sim_app(EstateSlice(world, ids))`` answers, lists, reports truth for and
    switches faults at those endpoints only; the others answer 404 there (their shard
    serves them). Each endpoint's random stream is seeded by its own id, so a store
    draws the same numbers whichever shard serves it.
    """

    def __init__(self, world: ServedEstate, ids: frozenset[str]) -> None:
        self.world = world
        self.seed = world.seed
        self.estate = world.estate
        self.models = {mid: m for mid, m in world.models.items() if mid in ids}

    @property
    def delivery_models(self) -> list[EndpointModel]:
        return [m for m in self.world.delivery_models if m.id in self.models]

    @property
    def start(self) -> dt.datetime:
        return self.world.start

    @property
    def horizon(self) -> float:
        return self.world.horizon

    def fault_targets(self, fault: Fault) -> list[EndpointModel]:
        return [m for m in self.world.fault_targets(fault) if m.id in self.models]

    def set_fault(self, fault: Fault, on: bool) -> list[EndpointModel]:
        # The whole world is switched (the other shards' copies are never served here).
        return [m for m in self.world.set_fault(fault, on) if m.id in self.models]
