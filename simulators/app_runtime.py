"""The asyncio twin of the SimPy server side: clock, capacity, service, settle, webhooks.

``SimState`` holds everything one simulator app needs at run time and serves requests the
way ``harness/runtime/sim.py`` does in virtual time: the model decides on arrival
(``plan``), the request waits for a capacity slot (an ``asyncio.Semaphore`` instead of a
``simpy.Resource``), sleeps its service time for real, completes, and an accepted request
settles later in a task of its own. Every decision stays in the pure models; this module
only keeps time and turns plans into HTTP answers (``apps.py`` owns the routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from harness.domain.eventlog import COLUMNS, Record
from simulators.endpoint import EndpointModel, Plan, Request, TruthChange

if TYPE_CHECKING:
    import aiohttp

    from simulators.served import ServedEstate

log = logging.getLogger(__name__)

# A hung request sleeps this long (virtual s): far beyond any client timeout, so the
# client always gives up first. Shutdown wakes it early (``SimState.release``).
HANG_SECONDS = 3600.0
# Webhook client: a short timeout, and two retries when the orchestrator is unreachable.
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_RETRIES = 2
WEBHOOK_RETRY_PAUSE_S = 0.2

JSON = "application/json"
# Pre-encoded bodies for the hot path: a 600-store fan-out is mostly these two.
_OK = b'{"outcome":"ok"}'
# What an "ok" did: the estate's contract tells "applied" from "ignored as stale".
_OK_EFFECT = {
    "applied": b'{"outcome":"ok","effect":"applied"}',
    "removed": b'{"outcome":"ok","effect":"removed"}',
    "": b'{"outcome":"ok","effect":"ignored"}',
}
_ACCEPTED = b'{"outcome":"accepted"}'
_ERROR = b'{"outcome":"error"}'


class SimClock:
    """Scenario seconds on the wall clock: ``now = (monotonic() - t0) * speed``."""

    __slots__ = ("pinned", "speed", "t0")

    def __init__(self, speed: float = 1.0, t0: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.pinned = t0 is not None  # a caller's t0 (shared with an orchestrator) stays
        self.t0 = time.monotonic() if t0 is None else t0

    def now(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self.speed)

    async def sleep_until(self, t: float) -> None:
        # Absolute deadlines keep chained waits (service, then activation) from drifting.
        await self.sleep(t - self.now())


class Slot:
    """One endpoint's capacity: a semaphore plus the counts ``plan`` and admin read."""

    __slots__ = ("in_flight", "sem", "waiting")

    def __init__(self, capacity: int) -> None:
        self.sem = asyncio.Semaphore(capacity)
        self.waiting = 0
        self.in_flight = 0

    async def __aenter__(self) -> Slot:
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self.sem.release()


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def record_dict(record: Record) -> dict[str, Any]:
    return dict(zip(COLUMNS, record, strict=True))


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds; never 0, or a polite client would hammer at once."""
    return str(max(1, math.ceil(seconds)))


class SimState:
    """The running simulator: models, clock, slots, ground-truth log, background tasks."""

    def __init__(
        self,
        world: ServedEstate,
        *,
        callback_url: str | None = None,
        callback_key: str | Mapping[str, str] = "",
        speed: float = 1.0,
        t0: float | None = None,
    ) -> None:
        self.world = world
        self.models: dict[str, EndpointModel] = world.models
        self.clock = SimClock(speed, t0)
        # channel -> (webhook URL, headers); "" is every channel without its own entry.
        self.callbacks: dict[str, tuple[str, dict[str, str]]] = {}
        if callback_url:
            if isinstance(callback_key, str):
                self.callbacks[""] = (callback_url, {"X-API-Key": callback_key})
            else:
                self.callbacks[""] = (callback_url, {"X-API-Key": ""})
                for channel, key in callback_key.items():
                    self.callbacks[channel] = (callback_url, {"X-API-Key": key})
        seed = world.seed
        # Same seeding as sim.py, so each endpoint draws from its own stream.
        self.rngs = {mid: random.Random(f"{seed}:{mid}:traffic") for mid in self.models}
        self.slots = {mid: Slot(m.profile.capacity) for mid, m in self.models.items()}
        self.records: list[Record] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.webhooks_quiet = False  # the stack is stopping: a failed webhook is no news
        self.session: aiohttp.ClientSession | None = None
        self.webhooks_sent = 0
        self.webhooks_failed = 0
        self.inventory: list[Record] = []
        for model in world.delivery_models:
            self.inventory.append(model.inventory_record())
            self.inventory.extend(model.outage_records())

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.stopping.clear()  # an app may be served again after a shutdown
        self.webhooks_quiet = False
        if not self.clock.pinned:
            self.clock.t0 = time.monotonic()
        if self.callbacks and self.session is None:
            self.session = _new_session()

    def release(self) -> None:
        """Wake every hung request (they answer 503) so a server can shut down now."""
        self.stopping.set()

    async def stop(self) -> None:
        self.release()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None

    # --- deliveries ------------------------------------------------------------------------

    async def deliver(self, model: EndpointModel, req: Request) -> Response:
        """One delivery attempt at ``model``: plan, queue, serve, complete, answer."""
        clock = self.clock
        slot = self.slots[model.id]
        arrived = clock.now()
        plan = model.plan(req, arrived, self.rngs[model.id], queued=slot.waiting)
        self.received(model, req, plan, arrived)
        if plan.hang:
            return await self.hang()
        if plan.needs_capacity:
            async with slot:
                # Service starts when a slot frees up, not at arrival.
                await clock.sleep(plan.service_time)
                changes = model.complete(req, plan, clock.now())
        else:
            await clock.sleep(plan.service_time)
            changes = model.complete(req, plan, clock.now())
        self.completed(model, req, plan, changes)
        if plan.reply_lost:
            # The change happened; the client never hears so: applied but never acked.
            return await self.hang()
        if plan.outcome == "ok":
            return json_response(200, _OK_EFFECT[changes[-1].kind if changes else ""])
        return plan_response(plan)

    def received(self, model: EndpointModel, req: Request, plan: Plan, now: float) -> None:
        """Ground truth about the traffic: one "received" record per delivery attempt that
        reached the endpoint (outcome = the answer it will give, "hang" or "lost"; value =
        its modelled service time), so a retry storm is measured as the endpoints saw it,
        whoever sent it, and a late change can be told from a modelled slow one."""
        outcome = "hang" if plan.hang else ("lost" if plan.reply_lost else plan.outcome)
        self.records.append(
            tuple.__new__(
                Record,
                (
                    now,
                    "received",
                    req.promo,
                    req.version,
                    model.id,
                    model.channel,
                    model.region,
                    req.attempt,
                    outcome,
                    plan.service_time,
                    f"{req.op}:{req.idempotency_key}",
                ),
            )
        )

    def set_callback(self, channel: str, url: str, headers: Mapping[str, str]) -> None:
        """Where ``channel``'s webhook acks go from now on (the system under test says)."""
        self.callbacks[channel] = (url, dict(headers))

    def completed(
        self, model: EndpointModel, req: Request, plan: Plan, changes: list[TruthChange]
    ) -> None:
        self.truth(model, changes)
        if plan.ack_delay is not None and plan.effective:
            due = self.clock.now() + plan.ack_delay
            self.spawn(self._settle(model, req, plan, due))

    def sale(self, model: EndpointModel, receipt: Any, now: float) -> None:
        """A checkout: a ``sale`` record and one ``discount`` record per promotion that gave
        money (the same rows the virtual-time shoppers write), for leakage and funding."""
        key = f"live{len(self.records)}"
        self.records.append(
            Record(
                now,
                "sale",
                endpoint=model.id,
                channel=model.channel,
                region=model.region,
                value=float(receipt.total),
                detail=key,
            )
        )
        given: dict[tuple[str, int], float] = {}
        for line in receipt.lines:
            for d in line.discounts:
                given[(d.promo, d.version)] = given.get((d.promo, d.version), 0.0) + float(d.amount)
        for (promo, version), amount in given.items():
            self.records.append(
                Record(
                    now,
                    "discount",
                    promo,
                    version,
                    model.id,
                    model.channel,
                    model.region,
                    value=amount,
                    detail=key,
                )
            )

    def truth(self, model: EndpointModel, changes: list[TruthChange]) -> None:
        if changes:
            now = self.clock.now()
            self.records.extend(model.truth_record(c, now) for c in changes)

    async def hang(self) -> Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), HANG_SECONDS / self.clock.speed)
        return json_response(503, b'{"outcome":"unavailable","detail":"shutting down"}')

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, model: EndpointModel, req: Request, plan: Plan, due: float) -> None:
        await self.clock.sleep_until(due)
        self.truth(model, model.settle(req, self.clock.now()))
        # Like sim.py, the webhook goes out whether or not the settle changed anything
        # (a replayed apply is still acknowledged); "poll" endpoints push nothing.
        if model.ack_via == "push" and not plan.ack_lost and self.callbacks:
            body = {
                "endpoint": model.id,
                "promo": req.promo,
                "version": req.version,
                "op": req.op,
                "detail": "webhook",
            }
            await self.push(body, model.channel)

    async def push(self, body: dict[str, Any], channel: str = "") -> bool:
        """POST one webhook to the channel's callback; retried on connection errors and
        5xx answers; never raises. Each channel may have its own URL and headers (its
        adapter's own key)."""
        import aiohttp  # lazily: an app without a callback URL never needs it

        target = self.callbacks.get(channel) or self.callbacks.get("")
        if target is None:
            return False
        url, headers = target
        if self.session is None:
            self.session = _new_session()
        for attempt in range(WEBHOOK_RETRIES + 1):
            try:
                async with self.session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status >= 500 and attempt < WEBHOOK_RETRIES:
                        # The receiver could not take it now (a refused journal write is a
                        # 503 that changed nothing): an adapter tries again, as it would
                        # after a dropped connection, honouring a short Retry-After.
                        await asyncio.sleep(_pause(resp.headers.get("Retry-After")))
                        continue
                    # 409: the receiver already had it (a repeat, or an ack of a delivery
                    # it has moved on from) — delivered, nothing to warn about.
                    ok = resp.status < 400 or resp.status == 409
                    self._count_webhook(ok, f"status {resp.status}")
                    return ok
            except aiohttp.ClientConnectionError as exc:
                if attempt < WEBHOOK_RETRIES:
                    await asyncio.sleep(WEBHOOK_RETRY_PAUSE_S)
                    continue
                self._count_webhook(False, repr(exc))
            except Exception as exc:  # the app must outlive any webhook failure
                self._count_webhook(False, repr(exc))
                return False
        return False

    def _count_webhook(self, ok: bool, why: str) -> None:
        if ok:
            self.webhooks_sent += 1
            return
        self.webhooks_failed += 1
        # Once: a dead orchestrator must not flood the log; and not at all once the stack
        # stops (the orchestrator's API stops first, so a late webhook finds it gone).
        if self.webhooks_failed == 1 and not (self.webhooks_quiet or self.stopping.is_set()):
            log.warning("webhook failed: %s", why)

    # --- ERP validation and marketplace polls (through the endpoint's front door) ---------

    async def validate(self, promotion: Any) -> Response | tuple[bool, tuple[str, ...]]:
        erp = self.world.estate.erp
        gated = erp.gate(self.clock.now())
        if gated is not None:
            return await self.hang() if gated.hang else plan_response(gated)
        await self.clock.sleep(erp.profile.latency.sample(self.rngs[erp.id]))
        return erp.validate(promotion)

    async def poll(self, promo: str) -> Response | dict[str, Any]:
        mkt = self.world.estate.marketplace
        now = self.clock.now()
        gated = mkt.gate(now)
        if gated is not None:
            return await self.hang() if gated.hang else plan_response(gated)
        # The activation tasks settle on time; this covers a poll that beats its task by
        # a scheduling hair, so a poll never contradicts the virtual clock.
        self.truth(mkt, mkt.activate_due(now))
        s = mkt.poll(promo)
        return {
            "promo": s.promo,
            "state": s.state,
            "version": s.version,
            "pending_op": s.pending_op,
            "pending_version": s.pending_version,
        }


def plan_response(plan: Plan) -> Response:
    """The HTTP answer a (non-hanging) plan gives."""
    outcome = plan.outcome
    if outcome == "ok":
        return json_response(200, _OK)
    if outcome == "accepted":
        return json_response(202, _ACCEPTED)
    if outcome == "throttled":
        wait = plan.retry_after or 1.0
        body = f'{{"outcome":"throttled","retry_after":{wait!r}}}'.encode()
        return json_response(429, body, {"Retry-After": retry_after_header(wait)})
    if outcome == "unavailable":
        headers = None
        if plan.retry_after is not None:
            headers = {"Retry-After": retry_after_header(plan.retry_after)}
        body = json.dumps({"outcome": "unavailable", "detail": plan.detail}).encode()
        return json_response(503, body, headers)
    if outcome == "rejected":
        return json_response(
            422, json.dumps({"outcome": "rejected", "detail": plan.detail}).encode()
        )
    return json_response(500, _ERROR)


def _pause(retry_after: str | None) -> float:
    """Wall seconds before a webhook retry: the receiver's Retry-After, within [0.2, 5]."""
    try:
        wanted = float(retry_after) if retry_after else WEBHOOK_RETRY_PAUSE_S
    except ValueError:
        wanted = WEBHOOK_RETRY_PAUSE_S
    return min(max(wanted, WEBHOOK_RETRY_PAUSE_S), 5.0) if math.isfinite(wanted) else 5.0


def _new_session() -> aiohttp.ClientSession:
    import aiohttp

    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S))
