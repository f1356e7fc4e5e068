"""The virtual-time runtime: drives the pure orchestrator and endpoint models in SimPy.

Latency is ``env.timeout``, an endpoint's capacity is a ``simpy.Resource`` (requests
queue at a busy endpoint), the client timeout races the reply, and every command the
orchestrator returns is carried out here: sends become processes, timers become
timeouts, records go to the event log. Nothing in this module decides anything about
promotions; it only keeps time. Same scenario and seed, same event log.

This module holds the run (its event loop), the operator timeline, faults, timers and
validation; a delivery's hops to an endpoint and back are in ``sim_delivery.py``, whose
public names it re-exports.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

import simpy
from simpy.events import URGENT

from harness.domain.eventlog import Record
from harness.domain.lifecycle import IllegalTransition
from harness.domain.scope import UnknownScopeMember
from harness.orchestrator.commands import (
    CancelTimer,
    DeadLetter,
    RequestValidation,
    SendDelivery,
    StartTimer,
    WriteRecord,
)
from harness.orchestrator.core import Orchestrator, UnknownPromotion
from harness.orchestrator.events import (
    TimerFired,
    ValidationResult,
)
from harness.runtime.gcscope import quiet_collector
from harness.runtime.shoppers import ShopperTraffic
from harness.runtime.sim_delivery import (
    NETWORK_DELAY,
    DeliveryHops,
    _Attempt,
    _Link,
    serve_planned,
    serve_request,
)
from harness.runtime.timeline import operator_event
from harness.runtime.timing import VALIDATION_PATIENCE
from harness.runtime.world import OUTAGE_FAULTS, World
from simulators.endpoint import EndpointModel

__all__ = [
    "NETWORK_DELAY",
    "Progress",
    "SimRuntime",
    "resolve_trace",
    "serve_planned",
    "serve_request",
]

Progress = Callable[[float, float], None]


class SimRuntime(DeliveryHops):
    """One virtual-time run of a world: ``run()`` returns the event log (delivery side).

    The delivery hops (``_send`` .. ``_settle``) are inherited from ``DeliveryHops``.
    """

    def __init__(self, world: World, *, progress: Progress | None = None) -> None:
        self.world = world
        self.env = simpy.Environment()
        self.records: list[Record] = []
        self.dead_letters: list[DeadLetter] = []
        self.orchestrator: Orchestrator = world.orchestrator()
        # The reference orchestrator appends its records to the log itself (see feed); any
        # other driven through this runtime (a test's faulty wrapper) keeps the plain
        # handle(event, now) and returns its records as commands.
        self._direct = type(self.orchestrator) is Orchestrator
        self.progress = progress
        seed = world.seed
        self._models: dict[str, EndpointModel] = world.models
        self._rngs = {mid: random.Random(f"{seed}:{mid}:traffic") for mid in self._models}
        self._slots = {
            mid: simpy.Resource(self.env, capacity=m.profile.capacity)
            for mid, m in self._models.items()
        }
        # endpoint -> what an attempt there needs, found with one look-up per send.
        self._links = {
            mid: _Link(
                m,
                NETWORK_DELAY.get(m.channel, 0.01),
                self._slots[mid],
                self._rngs[mid],
                self._slots[mid].capacity,
            )
            for mid, m in self._models.items()
        }
        # Each hop's callback, as an attempt carries it (see _Attempt): tuples, because
        # ``Environment.step`` only iterates them and nothing can append to a shared one.
        self._hop_arrive = (self._arrive,)
        self._hop_served = (self._served,)
        self._hop_replied = (self._replied,)
        self._hop_timed_out = (self._timed_out,)
        # The arrival last put on the queue, its time and the event id of its last rider.
        self._lead: _Attempt | None = None
        self._lead_at = -1.0
        self._lead_eid = -1
        self._timers: dict[str, object] = {}
        self._polled: dict[tuple[str, str], tuple[int, str]] = {}
        self.shoppers: ShopperTraffic | None = None
        self.steps = list(world.scenario.timeline)
        traffic = world.scenario.traffic
        trace = None
        if traffic.kind == "replay":
            from harness.runtime.replay import load_trace

            path = resolve_trace(traffic.file or "")
            trace = load_trace(path, list(self._models))
            if trace.steps:
                self.steps = trace.steps  # the recorded operator timeline replaces the file's
        if traffic.kind != "none":
            self.shoppers = ShopperTraffic(
                traffic,
                list(world.models.values()),
                world.estate.catalog,
                world.scenario.promotions,
                world.scenario.start,
                world.scenario.duration,
                world.seed,
                trace,
                str(traffic.file or ""),
            )

    # --- the run --------------------------------------------------------------------------

    def run(self) -> list[Record]:
        world, env = self.world, self.env
        for model in world.delivery_models:
            self.records.append(model.inventory_record())
            self.records.extend(model.outage_records())
        for fault in world.scenario.faults:
            if fault.kind not in OUTAGE_FAULTS:
                env.process(self._switch_fault(fault))
        env.process(self._timeline())
        if self.shoppers is not None:
            env.process(self._shop(self.shoppers))
            env.process(self._quote(self.shoppers))
        duration = world.scenario.duration
        steps = 100 if self.progress else 1
        with quiet_collector():
            for i in range(1, steps + 1):
                self._run_until(duration * i / steps)
                if self.progress:
                    self.progress(env.now, duration)
        return self.records

    def _run_until(self, until: float) -> None:
        """``env.run(until=until)``, with SimPy's ``step`` inlined in one loop.

        The same events in the same order: the stop is scheduled as ``run`` schedules
        it (an URGENT event at ``now + (until - now)``, taking an event id), each event
        popped from the same queue has its callbacks run the same way, and an event
        that failed undefused stops the run with a copy of its exception, as ``step``
        raises it. What is saved is a method call and its attribute look-ups per event:
        three events per delivery.
        """
        env = self.env
        queue = env._queue
        at = until if isinstance(until, int) else float(until)
        if at <= env._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = simpy.Event(env)
        heappush(queue, (env._now + (at - env._now), URGENT, next(env._eid), stop))
        while queue:
            env._now, _, _, event = heappop(queue)
            if event is stop:
                return
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                # As Environment.step raises it: a copy with the failure as its cause.
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc

    def _shop(self, shoppers: ShopperTraffic):  # type: ignore[no-untyped-def]
        env = self.env
        # A sale changes nothing the rest of the simulation sees, so it need not be an
        # event of its own: every sale before the next due event is priced at once (stamped
        # with its time), the estate being the same until then. Only a sale with an event
        # due first waits for the clock — a million timeouts saved on a peak day.
        while (t := shoppers.sell_before(env.peek())) is not None:
            yield env.timeout(t - env.now)
            shoppers.sell_pending()

    def _quote(self, shoppers: ShopperTraffic):  # type: ignore[no-untyped-def]
        interval = shoppers.traffic.quote_interval
        while self.env.now + interval < self.world.scenario.duration:
            yield self.env.timeout(interval)
            shoppers.quote(self.env.now)

    def _timeline(self):  # type: ignore[no-untyped-def]
        promotions = {p.id: p for p in self.world.scenario.promotions}
        for step in sorted(self.steps, key=lambda s: s.at):
            if step.at > self.env.now:
                yield self.env.timeout(step.at - self.env.now)
            event = operator_event(step, promotions)
            self.feed(event)

    def _switch_fault(self, fault):  # type: ignore[no-untyped-def]
        if fault.start > 0:
            yield self.env.timeout(fault.start)
        targets = self.world.set_fault(fault, on=True)
        end = fault.end if fault.end is not None else self.world.scenario.duration
        for model in targets:
            self.records.append(
                Record(
                    self.env.now,
                    "fault",
                    endpoint=model.id,
                    channel=model.channel,
                    region=model.region,
                    value=end - fault.start,
                    detail=f"{fault.kind}:{fault.rate}",
                )
            )
        if fault.end is not None:
            yield self.env.timeout(fault.end - self.env.now)
            self.world.set_fault(fault, on=False)

    # --- the orchestrator's loop ------------------------------------------------------------

    def feed(self, event: Any) -> None:
        now = self.env._now
        records = self.records
        written = len(records)
        try:
            # The orchestrator appends its records to the log itself: execute() then only
            # carries out the other commands (nothing it does writes a record at once, so
            # the log's order is the commands').
            if self._direct:
                commands = self.orchestrator.handle(event, now, records)
            else:
                commands = self.orchestrator.handle(event, now)
        except (IllegalTransition, UnknownPromotion, UnknownScopeMember) as exc:
            # An operator step the lifecycle refuses is part of the story, not a crash.
            del records[written:]  # none, as refusals come first; kept out if ever not
            kind = type(event).__name__.lower()
            records.append(
                Record(
                    now, kind, getattr(event, "promo", "") or "", outcome="refused", detail=str(exc)
                )
            )
            return
        # Most events lead to one send or none: those run here, the rest through execute().
        if commands:
            if len(commands) == 1 and type(commands[0]) is SendDelivery:
                self._send(commands[0])
            else:
                self.execute(commands)

    def execute(self, commands: list[Any]) -> None:
        env = self.env
        for cmd in commands:
            kind = type(cmd)
            if kind is SendDelivery:
                self._send(cmd)
            elif kind is WriteRecord:  # from an orchestrator not handed the log
                self.records.append(cmd.record)
            elif kind is StartTimer:
                token = object()
                self._timers[cmd.timer_id] = token
                env.process(self._timer(cmd, token))
            elif kind is CancelTimer:
                self._timers.pop(cmd.timer_id, None)
            elif kind is DeadLetter:
                self.dead_letters.append(cmd)
            elif kind is RequestValidation:
                env.process(self._validate(cmd))
            else:  # pragma: no cover - a new command type must be handled here
                raise TypeError(f"unknown command {cmd!r}")

    def _timer(self, cmd: StartTimer, token: object):  # type: ignore[no-untyped-def]
        delay = cmd.at - self.env.now
        if delay > 0:
            yield self.env.timeout(delay)
        if self._timers.get(cmd.timer_id) is token:
            del self._timers[cmd.timer_id]
            self.feed(TimerFired(cmd.timer_id, cmd.data))

    def _validate(self, cmd: RequestValidation):  # type: ignore[no-untyped-def]
        """Ask the ERP to validate; a throttled or refused call is retried with jitter.

        The validation API shares the ERP's front door (quota, maintenance window); the
        orchestrator's client gives up after ``VALIDATION_PATIENCE`` seconds.
        """
        env = self.env
        erp = self.world.estate.erp
        rng = self._rngs[erp.id]
        began = env.now
        while True:
            yield env.timeout(NETWORK_DELAY["erp"])
            gated = erp.gate(env.now)
            if gated is None:
                yield env.timeout(erp.profile.latency.sample(rng))
                ok, reasons = erp.validate(cmd.promotion)
                break
            if env.now - began >= VALIDATION_PATIENCE:
                ok, reasons = False, (f"ERP {gated.outcome} for {env.now - began:.0f} s",)
                break
            yield env.timeout(max(gated.retry_after or 0.0, 1.0) + rng.uniform(0.0, 2.0))
        self.feed(ValidationResult(cmd.promo, cmd.version, ok, tuple(reasons)))


def resolve_trace(name: str) -> Path:
    """A replay trace path: as given (relative to the working directory), else beside the
    scenario library."""
    from harness.scenario import SCENARIO_DIR

    path = Path(name)
    if not path.exists() and not path.is_absolute() and (SCENARIO_DIR / path).exists():
        return SCENARIO_DIR / path
    return path
