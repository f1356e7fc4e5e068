"""Deliveries in virtual time: an attempt's trip to an endpoint and back, in SimPy.

The link model (``NETWORK_DELAY``, ``_Link``), an attempt as its own SimPy event
(``_Attempt``), and the hops ``SimRuntime`` runs per delivery (``DeliveryHops``: send,
arrival with the riders of a fan-out, service, reply; the queue-and-race slow path; the
endpoint's later settle and ack). ``serve_request`` / ``serve_planned`` are one request's
life at an endpoint as a SimPy process, shared with the queueing oracles. The run loop, the
operator timeline, timers and validation stay in ``sim.py``, which re-exports these names.
These hops are the hot path: each reads what it needs into locals once, per delivery.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappush
from typing import Any, NamedTuple

import simpy
from simpy.events import NORMAL

from harness.domain.eventlog import Record
from harness.orchestrator.commands import SendDelivery
from harness.orchestrator.core import Orchestrator
from harness.orchestrator.events import Ack, DeliveryResult
from harness.runtime.timing import POLL_SECONDS
from simulators.endpoint import EndpointModel, Plan, Request

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


class DeliveryHops:
    """The delivery side of ``SimRuntime`` (a base class of it), one hop per method.

    Its state (annotated below) is set up in ``SimRuntime.__init__`` (sim.py), and each
    result goes back through the runtime's ``feed`` / ``execute``. A base class rather than
    a helper object, so a hop reaches that state as before: one attribute of ``self``.
    """

    env: simpy.Environment
    records: list[Record]
    orchestrator: Orchestrator
    _direct: bool
    _links: dict[str, _Link]
    _hop_arrive: tuple[Callable[[_Attempt], None], ...]
    _hop_served: tuple[Callable[[_Attempt], None], ...]
    _hop_replied: tuple[Callable[[_Attempt], None], ...]
    _hop_timed_out: tuple[Callable[[_Attempt], None], ...]
    _lead: _Attempt | None
    _lead_at: float
    _lead_eid: int
    feed: Callable[[Any], None]
    execute: Callable[[list[Any]], None]

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
