"""The virtual-time runtime: drives the pure orchestrator and endpoint models in SimPy.

Latency is ``env.timeout``, an endpoint's capacity is a ``simpy.Resource`` (requests
queue at a busy endpoint), the client timeout races the reply, and every command the
orchestrator returns is carried out here: sends become processes, timers become
timeouts, records go to the event log. Nothing in this module decides anything about
promotions; it only keeps time. Same scenario and seed, same event log.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from pathlib import Path
from typing import Any, NamedTuple

import simpy
from simpy.events import NORMAL, URGENT

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
    Ack,
    DeliveryResult,
    TimerFired,
    ValidationResult,
)
from harness.runtime.gcscope import quiet_collector
from harness.runtime.shoppers import ShopperTraffic
from harness.runtime.timeline import operator_event
from harness.runtime.timing import POLL_SECONDS, VALIDATION_PATIENCE
from harness.runtime.world import OUTAGE_FAULTS, World
from simulators.endpoint import EndpointModel, Plan, Request

Progress = Callable[[float, float], None]

# One-way network delay between the orchestrator and an endpoint, per channel (s).
NETWORK_DELAY = {
    "pos": 0.02,
    "ecommerce": 0.005,
    "loyalty": 0.005,
    "marketplace": 0.03,
    "erp": 0.01,
}


class _Link(NamedTuple):
    """An endpoint as the runtime reaches it: model, one-way delay, capacity, random draws."""

    model: EndpointModel
    delay: float
    slots: simpy.Resource
    rng: random.Random
    capacity: int  # the Resource's, read without its property on every arrival


class _Attempt:
    """One delivery attempt in flight through the callback chain of ``SimRuntime._send``.

    The attempt is its own SimPy event: each hop of the chain (travel, service, travel
    back) puts the attempt itself on the environment's queue, exactly where a ``Timeout``
    of that delay would go (same time, priority and sequence number, so the same order),
    with the runtime's step for that hop as its one callback. That saves a ``Timeout``, a
    callbacks list and a bound method per hop. An attempt is on the queue at most once at
    a time (each hop follows the last), so one object serves all of them.
    """

    __slots__ = ("callbacks", "cmd", "followers", "holds_slot", "link", "plan", "sent")

    # What ``Environment.step`` reads of a processed event besides its callbacks: it
    # succeeded (a Timeout always does), so there is no failure to raise.
    _ok = True

    def __init__(self, cmd: SendDelivery, link: _Link, sent: float) -> None:
        self.cmd = cmd
        self.link = link
        self.sent = sent
        self.plan: Plan | None = None
        self.callbacks: tuple[Callable[[_Attempt], None], ...] | None = None
        # Whether it sits in its endpoint Resource's user list. A flag, not a reference to
        # itself: a self-reference would make every attempt cyclic garbage.
        self.holds_slot = False
        # Attempts arriving at the same instant right after it, riding on its queue entry
        # (see SimRuntime._send): (event id, attempt), in order; None when there are none.
        self.followers: list[tuple[int, _Attempt]] | None = None


class SimRuntime:
    """One virtual-time run of a world: ``run()`` returns the event log (delivery side)."""

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

    # --- deliveries -----------------------------------------------------------------------

    def _send(self, cmd: SendDelivery) -> None:
        """One attempt, seen from both ends: the request travels, the endpoint decides on
        arrival, and the client gets the reply or gives up at its timeout.

        Most attempts meet an idle endpoint and answer in time; they run as a chain of
        event callbacks (travel, service, travel back) — no process, no race. The others
        (a queue to wait in, a hang, a lost or late reply) hand the server side to its own
        process and race its reply against the client's timeout, because the server
        finishes what it started even after the client has gone.
        """
        link = self._links[cmd.endpoint]
        env = self.env
        now = env._now
        a = _Attempt(cmd, link, now)
        # Each hop: what ``env.timeout(delay).callbacks.append(step)`` schedules, with the
        # attempt as the event (``Environment.schedule``, inlined). Every delay is a
        # latency or a max(0, ...), never negative, as ``Timeout`` requires.
        a.callbacks = self._hop_arrive
        at = now + link.delay
        eid = next(env._eid)
        if eid == self._lead_eid + 1 and at == self._lead_at and at > now:
            # A fan-out: this arrival is due at the instant of the last one put on the
            # queue, and nothing took an event id in between, so it would be popped right
            # after it. It rides on that entry instead of a heap push and pop of its own;
            # _arrive takes the riders in order, as the queue would have.
            lead = self._lead
            assert lead is not None
            if lead.followers is None:
                lead.followers = [(eid, a)]
            else:
                lead.followers.append((eid, a))
            self._lead_eid = eid
            return
        heappush(env._queue, (at, NORMAL, eid, a))
        self._lead, self._lead_at, self._lead_eid = a, at, eid

    def _arrive(self, a: _Attempt) -> None:
        followers = a.followers
        if followers is None:
            self._arrive_one(a)
            return
        a.followers = None
        self._arrive_one(a)
        # The riders, each where the queue would have popped it: next, unless something
        # scheduled meanwhile sorts first (an URGENT event at this instant, a run's stop).
        # Then the rest go back on the queue behind the first of them, under its id.
        env = self.env
        queue = env._queue
        now = env._now
        for i, (eid, b) in enumerate(followers):
            if queue and queue[0] < (now, NORMAL, eid):
                rest = followers[i + 1 :]
                b.followers = rest or None
                heappush(queue, (now, NORMAL, eid, b))
                return
            b.callbacks = None  # as the run loop leaves a processed event
            self._arrive_one(b)

    def _arrive_one(self, a: _Attempt) -> None:
        env = self.env
        now = env._now
        cmd = a.cmd
        model, delay, slots, rng, capacity = a.link
        queue = slots.queue
        plan = a.plan = model.plan(cmd, now, rng, queued=len(queue))
        deadline = a.sent + cmd.timeout
        if plan.hang:
            a.callbacks = self._hop_timed_out
            heappush(env._queue, (now + max(0.0, deadline - now), NORMAL, next(env._eid), a))
            return
        service = plan.service_time
        if (
            now + service + delay <= deadline
            and not plan.reply_lost
            and ((len(slots.users) < capacity and not queue) or not plan.needs_capacity)
        ):
            if plan.needs_capacity:
                # The endpoint is idle: take a slot directly in the Resource's user list
                # (what a granted request does) without the request and release events.
                a.holds_slot = True
                slots.users.append(a)
            a.callbacks = self._hop_served
            heappush(env._queue, (now + service, NORMAL, next(env._eid), a))
            return
        env.process(self._race(a, slots, deadline))

    def _served(self, a: _Attempt) -> None:
        plan = a.plan
        assert plan is not None
        model, delay, slots, _rng, _capacity = a.link
        env = self.env
        now = env._now
        cmd = a.cmd
        changes = model.complete(cmd, plan, now)
        if a.holds_slot:
            slots.users.remove(a)
            if slots.put_queue:
                slots._trigger_put(None)  # grant the next waiting request, as a release does
        # What _completed does, inlined: this runs once per delivery.
        records = self.records
        for change in changes:
            records.append(model.truth_record(change, now))
        if plan.ack_delay is not None and plan.effective:
            env.process(self._settle(model, cmd, plan))
        a.callbacks = self._hop_replied
        heappush(env._queue, (now + delay, NORMAL, next(env._eid), a))

    def _replied(self, a: _Attempt) -> None:
        plan = a.plan
        assert plan is not None
        cmd = a.cmd
        # DeliveryResult.answering(cmd, ...), built here without the extra call: per delivery.
        result = DeliveryResult(
            cmd.delivery_id,
            cmd.endpoint,
            cmd.promo,
            cmd.version,
            cmd.op,
            cmd.attempt,
            plan.outcome,
            plan.status,
            plan.retry_after,
        )
        if not self._direct:
            self.feed(result)
            return
        # feed(result), inlined: the orchestrator refuses only operator steps, so there is
        # no refusal to record here, and most results lead to no command or one send.
        commands = self.orchestrator.handle(result, self.env._now, self.records)
        if commands:
            if len(commands) == 1 and type(commands[0]) is SendDelivery:
                self._send(commands[0])
            else:
                self.execute(commands)

    def _timed_out(self, a: _Attempt) -> None:
        self.feed(DeliveryResult.answering(a.cmd, "timeout", 0, None))

    def _result(self, a: _Attempt, outcome: str, status: int, retry_after: float | None) -> None:
        self.feed(DeliveryResult.answering(a.cmd, outcome, status, retry_after))

    def _race(self, a: _Attempt, slots: simpy.Resource, deadline: float):  # type: ignore[no-untyped-def]
        env = self.env
        plan = a.plan
        assert plan is not None
        reply = env.event()
        env.process(self._serve(a.link.model, slots, a.cmd, plan, a.link.delay, reply))
        yield reply | env.timeout(max(0.0, deadline - env.now))
        if reply.triggered:
            self._result(a, plan.outcome, plan.status, plan.retry_after)
        else:
            self._result(a, "timeout", 0, None)

    def _completed(
        self, model: EndpointModel, req: Request, plan: Plan, changes: list[Any]
    ) -> None:
        for change in changes:
            self.records.append(model.truth_record(change, self.env.now))
        if plan.ack_delay is not None and plan.effective:
            self.env.process(self._settle(model, req, plan))

    def _serve(
        self,
        model: EndpointModel,
        slots: simpy.Resource,
        req: Request,
        plan: Plan,
        delay: float,
        reply: simpy.Event,
    ):  # type: ignore[no-untyped-def]
        yield from serve_planned(
            self.env,
            model,
            slots,
            req,
            plan,
            delay,
            reply,
            lambda p, changes: self._completed(model, req, p, changes),
        )

    def _settle(self, model: EndpointModel, req: Request, plan: Plan):  # type: ignore[no-untyped-def]
        env = self.env
        yield env.timeout(plan.ack_delay)
        changes = model.settle(req, env.now)
        for change in changes:
            self.records.append(model.truth_record(change, env.now))
        if model.ack_via == "push":
            if not plan.ack_lost:
                yield env.timeout(NETWORK_DELAY.get(model.channel, 0.01))
                self.feed(Ack(model.id, req.promo, req.version, req.op, detail="webhook"))
        elif model.ack_via == "poll":
            # The orchestrator learns of the activation at its next status poll.
            wait = POLL_SECONDS - (env.now % POLL_SECONDS)
            yield env.timeout(wait)
            self.feed(Ack(model.id, req.promo, req.version, req.op, detail="poll"))

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


def serve_request(
    env: simpy.Environment,
    model: EndpointModel,
    slots: simpy.Resource,
    req: Request,
    rng: random.Random,
    network_delay: float,
    reply: simpy.Event | None,
    on_complete: Callable[[Plan, list[Any]], None],
):  # type: ignore[no-untyped-def]
    """One request's life at an endpoint: travel, front door, queue, service, reply.

    The front door (outage, rate limit) answers without queueing; admitted requests wait
    for a capacity slot (``slots``, a ``simpy.Resource``), are served for the plan's
    service time, and the reply travels back unless it is lost. Returns the plan.
    """
    yield env.timeout(network_delay)
    plan = model.plan(req, env.now, rng, queued=len(slots.queue))
    yield from serve_planned(env, model, slots, req, plan, network_delay, reply, on_complete)
    return plan


def serve_planned(
    env: simpy.Environment,
    model: EndpointModel,
    slots: simpy.Resource,
    req: Request,
    plan: Plan,
    network_delay: float,
    reply: simpy.Event | None,
    on_complete: Callable[[Plan, list[Any]], None],
):  # type: ignore[no-untyped-def]
    """The server side once the request has arrived and the endpoint has decided."""
    if plan.hang:
        return  # no reply ever: the client's timeout decides
    if plan.needs_capacity:
        with slots.request() as slot:
            yield slot
            yield env.timeout(plan.service_time)
            changes = model.complete(req, plan, env.now)
    else:
        if plan.service_time:
            yield env.timeout(plan.service_time)
        changes = model.complete(req, plan, env.now)
    on_complete(plan, changes)
    if not plan.reply_lost:
        yield env.timeout(network_delay)
        if reply is not None and not reply.triggered:
            reply.succeed(plan)
