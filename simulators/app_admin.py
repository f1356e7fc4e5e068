"""Switching faults on and off while a simulator app runs (``POST /admin/faults``).

Rate faults (error rate, lost acks, quota) go through ``ServedEstate.set_fault`` (a
scenario's ``World`` switches them exactly as the SimPy driver switches a scheduled
fault). Outages (a region or some endpoints offline) are opened "from now until switched
off": an extra ``Outage(now, 1e9)`` window in the target's profile, removed again at
switch-off. Only that window is removed, so an outage and a
rate fault on the same endpoint can be switched independently.

Each switched fault becomes one event-log record — ``outage`` or ``fault`` with ``t`` = its
start and ``value`` = its duration, the shape the vocabulary (``harness/domain/eventlog.py``)
and the retry-storm metric expect. A scenario's scheduled fault (``play``) is recorded when
it is switched on, with its planned end, as the SimPy runtime records it: a run that stops
before the window closes still has it. A fault switched by hand through the API has no
planned end, so it is recorded when it is switched off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.domain.eventlog import Record
from simulators.endpoint import EndpointModel
from simulators.profiles import Outage
from simulators.served import OUTAGE_FAULTS, Fault

if TYPE_CHECKING:
    from simulators.app_runtime import SimState

# "Until switched off": later than any scenario (30 days at most) can run.
OPEN_END = 1e9


class FaultSwitchBody(BaseModel):
    """The body of ``POST /admin/faults``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["region_offline", "endpoint_offline", "error_rate", "lost_acks", "quota"]
    on: bool
    region: str | None = None
    channel: Literal["erp", "pos", "ecommerce", "loyalty", "marketplace"] | None = None
    endpoints: list[str] = Field(default_factory=list)
    rate: float | None = Field(default=None, ge=0)
    mode: Literal["refuse", "hang"] = "refuse"

    def spec(self) -> Fault:
        """The fault to switch; ``ValueError`` names a missing region, target or rate."""
        fault = Fault(
            kind=self.kind,
            region=self.region,
            channel=self.channel,
            endpoints=tuple(self.endpoints),
            rate=self.rate,
            mode=self.mode,
        )
        problem = fault.problem()
        if problem is not None:
            raise ValueError(problem)
        return fault


class FaultSwitch:
    """The faults switched through the admin API, and their records."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._outages: dict[str, Outage] = {}  # endpoint id -> its open admin window
        self._faults: dict[tuple[str, str], tuple[float, float | None]] = {}
        # Open faults recorded at switch-on: where their record is, and its planned end.
        self._recorded: dict[tuple[str, str], tuple[int, float]] = {}

    def targets(self, spec: Fault) -> list[EndpointModel]:
        """The models ``spec`` hits; ``LookupError`` names unknown ids or an empty match."""
        world = self.state.world
        missing = sorted(set(spec.endpoints) - set(world.models))
        if missing:
            raise LookupError(f"unknown endpoints {missing}")
        targets = world.fault_targets(spec)
        if not targets:
            raise LookupError(f"no endpoint matches fault {spec.kind!r}")
        return targets

    def switch(self, spec: Fault, on: bool, until: float | None = None) -> list[EndpointModel]:
        """Switch ``spec`` on or off now; ``until`` (scenario seconds) is a rate fault's
        planned end, which lets its record be written at once."""
        targets = self.targets(spec)
        now = self.state.clock.now()
        if spec.kind in OUTAGE_FAULTS:
            for model in targets:
                if on:
                    self._open_outage(model, now, spec.mode)
                else:
                    self._close_outage(model, now)
            return targets
        self.state.world.set_fault(spec, on)
        for model in targets:
            # set_fault rebuilt the profile from the base one: keep an open outage open.
            window = self._outages.get(model.id)
            if window is not None and window not in model.profile.outages:
                self._reconfigure(model, (*model.profile.outages, window))
            key = (spec.kind, model.id)
            if key in self._faults:
                self._close_fault(model, key, now)
            if on:
                self._faults[key] = (now, spec.rate)
                if until is not None:
                    # A loop late past the window's end still switches it on: for no time.
                    duration = max(0.0, until - now)
                    self._recorded[key] = (len(self.state.records), now + duration)
                    self._record_fault(model, f"{spec.kind}:{spec.rate}", now, duration)
        return targets

    async def play(self, schedule: Sequence[tuple[float, float | None, Fault]]) -> None:
        """Switch each ``(start, end, fault)`` on at ``start`` and off at ``end`` (scenario
        seconds; ``None``: stays on), as the SimPy driver plays a scenario's rate faults.
        Run it as a task of the serving loop (``SimState.spawn``)."""
        clock = self.state.clock
        moves = sorted(
            [(start, True, i) for i, (start, _, _) in enumerate(schedule)]
            + [(end, False, i) for i, (_, end, _) in enumerate(schedule) if end is not None]
        )
        for at, on, i in moves:
            await clock.sleep_until(at)
            self.switch(schedule[i][2], on, until=schedule[i][1] if on else None)

    def endpoints(self) -> list[dict[str, Any]]:
        slots = self.state.slots
        return [
            {
                "id": m.id,
                "channel": m.channel,
                "region": m.region,
                "capacity": m.profile.capacity,
                "profile": m.profile.name,
                "in_flight": slots[m.id].in_flight,
                "queued": slots[m.id].waiting,
                "offline": m.id in self._outages,
                "faults": sorted(kind for kind, mid in self._faults if mid == m.id),
            }
            for m in self.state.models.values()
        ]

    # --- internals ------------------------------------------------------------------------

    def _open_outage(self, model: EndpointModel, now: float, mode: str) -> None:
        if model.id in self._outages:
            return  # already offline: the first switch-on's start stands
        window = Outage(now, OPEN_END, mode)  # type: ignore[arg-type]
        self._outages[model.id] = window
        self._reconfigure(model, (*model.profile.outages, window))

    def _close_outage(self, model: EndpointModel, now: float) -> None:
        window = self._outages.pop(model.id, None)
        if window is None:
            return
        self._reconfigure(model, tuple(o for o in model.profile.outages if o is not window))
        self.state.records.append(
            Record(
                window.start,
                "outage",
                endpoint=model.id,
                channel=model.channel,
                region=model.region,
                value=now - window.start,
                detail=window.mode,
            )
        )

    def _close_fault(self, model: EndpointModel, key: tuple[str, str], now: float) -> None:
        start, rate = self._faults.pop(key)
        recorded = self._recorded.pop(key, None)
        if recorded is None:
            self._record_fault(model, f"{key[0]}:{rate}", start, now - start)
            return
        index, planned_end = recorded
        if now < planned_end:
            # Switched off by hand before its planned end: the record says how long it
            # was on. (A truth reader that paged past it already keeps the planned end.)
            records = self.state.records
            records[index] = records[index]._replace(value=now - start)

    def _record_fault(
        self, model: EndpointModel, detail: str, start: float, duration: float
    ) -> None:
        self.state.records.append(
            Record(
                start,
                "fault",
                endpoint=model.id,
                channel=model.channel,
                region=model.region,
                value=duration,
                detail=detail,
            )
        )

    def _reconfigure(self, model: EndpointModel, outages: tuple[Any, ...]) -> None:
        served = self.state.world
        profile = dataclasses.replace(model.profile, outages=outages)
        model.reconfigure(profile, seed=served.seed, horizon=served.horizon)
