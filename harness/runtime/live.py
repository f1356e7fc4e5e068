"""The wall-clock runtime: the same orchestrator core driven by asyncio over real HTTP.

Sends are aiohttp POSTs on one pooled session, timers are ``loop.call_later``, results and
acknowledgements come back as events. Each event the core accepts is journalled with the
records it produced in one SQLite transaction (``store.Store``) *before* any of its
commands is carried out, so a crash at any moment loses nothing committed: ``start()``
replays the journal through a fresh core, re-arms the timers that had not fired and
re-sends what was in flight with the same idempotency keys (endpoints drop duplicates).

Time is scenario seconds: ``(wall - epoch) * speed``, the epoch kept in the store so a
restarted service continues the same clock; every delay and timeout is divided by
``speed`` to become wall seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.domain.eventlog import Record
from harness.domain.lifecycle import IllegalTransition
from harness.orchestrator.commands import (
    CancelTimer,
    RequestValidation,
    SendDelivery,
    StartTimer,
    WriteRecord,
)
from harness.orchestrator.core import Orchestrator, UnknownPromotion
from harness.orchestrator.events import Ack, DeliveryResult, TimerFired, ValidationResult
from harness.runtime import codec
from harness.runtime.store import Store
from harness.runtime.timing import POLL_SECONDS, VALIDATION_PATIENCE


class LiveClock:
    """Scenario seconds from a wall-clock epoch, ``speed`` times faster than real time."""

    def __init__(self, epoch: float | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.epoch = time.time() if epoch is None else epoch
        self.speed = speed

    def now(self) -> float:
        return (time.time() - self.epoch) * self.speed

    def wall(self, seconds: float) -> float:
        """Wall seconds for ``seconds`` of scenario time."""
        return max(0.0, seconds / self.speed)

    def monotonic_origin(self) -> float:
        """The ``time.monotonic()`` reading at which scenario time was 0 (for the apps)."""
        return time.monotonic() - (time.time() - self.epoch)


@dataclass
class EndpointDirectory:
    """Where each endpoint is served (simulators/apps.py routes)."""

    base_url: str
    polled: frozenset[str] = frozenset()  # endpoints learned by polling (marketplace)

    def delivery_url(self, endpoint: str) -> str:
        return f"{self.base_url}/endpoints/{endpoint}/deliveries"

    def poll_url(self, promo: str) -> str:
        return f"{self.base_url}/marketplace/offers/{promo}"

    def validate_url(self) -> str:
        return f"{self.base_url}/erp/validate"


def outcome_of(status: int) -> str:
    """HTTP status -> delivery outcome (events.DeliveryResult)."""
    if status == 200:
        return "ok"
    if status == 202:
        return "accepted"
    if status == 429:
        return "throttled"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "error"
    return "rejected"


def retry_after_of(headers: Any, body: Any) -> float | None:
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return float(body["retry_after"])
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Recovered:
    timers: dict[str, StartTimer] = field(default_factory=dict)
    in_flight: dict[str, SendDelivery] = field(default_factory=dict)
    validations: dict[str, RequestValidation] = field(default_factory=dict)


class LiveRuntime:
    """The orchestrator core on asyncio + aiohttp + SQLite."""

    def __init__(
        self,
        make_orchestrator: Callable[[], Orchestrator],
        store: Store,
        endpoints: EndpointDirectory,
        clock: LiveClock,
        *,
        connections: int = 1000,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._make = make_orchestrator
        self.orchestrator = make_orchestrator()
        self.store = store
        self.endpoints = endpoints
        self.clock = clock
        self._connections = connections
        self._poll_seconds = poll_seconds
        self._session: aiohttp.ClientSession | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._payloads: dict[tuple[str, int], Any] = {}
        self.counters: dict[str, float] = {"sends": 0, "results": 0, "acks": 0, "resent": 0}
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        """Open the HTTP pool and recover from the journal; returns the events replayed."""
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector)
        recovered, replayed = self._replay()
        for cmd in recovered.timers.values():
            self._arm(cmd)
        for cmd in recovered.in_flight.values():
            self.counters["resent"] += 1
            self._spawn(self._send(cmd))
        for cmd in recovered.validations.values():
            self._spawn(self._validate(cmd))
        return replayed

    async def close(self) -> None:
        # Results and timers arriving while the tasks are cancelled must not start new
        # sends on a closing session or write to a closing store.
        self._closing = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _replay(self) -> tuple[_Recovered, int]:
        """Rebuild the core from the journal; what was pending when the process died."""
        orch = self._make()
        state = _Recovered()
        count = 0
        for _, t, text in self.store.journal():
            event = codec.decode(text)
            count += 1
            commands = orch.handle(event, t)
            if isinstance(event, TimerFired):
                state.timers.pop(event.timer_id, None)
            elif isinstance(event, DeliveryResult):
                sent = state.in_flight.get(event.delivery_id)
                if sent is not None and sent.attempt == event.attempt:
                    del state.in_flight[event.delivery_id]
            elif isinstance(event, ValidationResult):
                state.validations.pop(event.promo, None)
            for cmd in commands:
                kind = type(cmd)
                if kind is StartTimer:
                    state.timers[cmd.timer_id] = cmd
                elif kind is CancelTimer:
                    state.timers.pop(cmd.timer_id, None)
                elif kind is SendDelivery:
                    state.in_flight[cmd.delivery_id] = cmd
                elif kind is RequestValidation:
                    state.validations[cmd.promo] = cmd
        self.orchestrator = orch
        return state, count

    # --- the loop ------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    async def submit(self, event: Any) -> None:
        """Hand an operator command or a channel callback to the core (raises on refusal)."""
        self.handle(event)

    def handle(self, event: Any) -> None:
        """Core decision, journal, then side effects — with no await in between, so events
        are handled one at a time and nothing runs on a decision not yet durable."""
        if self._closing:
            return
        now = self.clock.now()
        commands = self.orchestrator.handle(event, now)  # raises before anything is written
        records = [c.record for c in commands if type(c) is WriteRecord]
        self.store.append(now, codec.encode(event), records)
        for cmd in commands:
            kind = type(cmd)
            if kind is SendDelivery:
                self.counters["sends"] += 1
                self._spawn(self._send(cmd))
            elif kind is StartTimer:
                self._arm(cmd)
            elif kind is CancelTimer:
                handle = self._timers.pop(cmd.timer_id, None)
                if handle is not None:
                    handle.cancel()
            elif kind is RequestValidation:
                self._spawn(self._validate(cmd))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm(self, cmd: StartTimer) -> None:
        loop = asyncio.get_running_loop()
        delay = self.clock.wall(cmd.at - self.clock.now())
        self._timers[cmd.timer_id] = loop.call_later(delay, self._fire, cmd)

    def _fire(self, cmd: StartTimer) -> None:
        if self._timers.pop(cmd.timer_id, None) is not None:
            self.handle(TimerFired(cmd.timer_id, cmd.data))

    # --- HTTP ----------------------------------------------------------------------------------

    def _body(self, cmd: SendDelivery) -> str:
        payload = None
        if cmd.payload is not None:
            key = (cmd.promo, cmd.version)
            payload = self._payloads.get(key)
            if payload is None:
                payload = self._payloads[key] = cmd.payload.model_dump_json(by_alias=True)
        head = json.dumps(
            {
                "delivery_id": cmd.delivery_id,
                "idempotency_key": cmd.idempotency_key,
                "op": cmd.op,
                "promo": cmd.promo,
                "version": cmd.version,
                "attempt": cmd.attempt,
            },
            separators=(",", ":"),
        )
        return f'{head[:-1]},"payload":{payload or "null"}}}'

    async def _send(self, cmd: SendDelivery) -> None:
        assert self._session is not None
        outcome, status, retry_after = "timeout", 0, None
        try:
            async with self._session.post(
                self.endpoints.delivery_url(cmd.endpoint),
                data=self._body(cmd),
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": cmd.idempotency_key,
                },
                timeout=aiohttp.ClientTimeout(total=self.clock.wall(cmd.timeout)),
            ) as resp:
                status = resp.status
                body = await resp.json(content_type=None) if resp.content_length != 0 else None
                outcome = outcome_of(status)
                retry_after = retry_after_of(resp.headers, body)
        except TimeoutError:
            outcome = "timeout"
        except (aiohttp.ClientError, json.JSONDecodeError, ValueError):
            outcome = "unavailable"
        self.counters["results"] += 1
        self.handle(DeliveryResult.answering(cmd, outcome, status, retry_after))
        if outcome == "accepted" and cmd.endpoint in self.endpoints.polled:
            self._spawn(self._poll(cmd))

    async def _poll(self, cmd: SendDelivery) -> None:
        """Learn an asynchronous activation by polling (marketplace offers)."""
        assert self._session is not None
        while True:
            await asyncio.sleep(self.clock.wall(self._poll_seconds))
            try:
                async with self._session.get(self.endpoints.poll_url(cmd.promo)) as resp:
                    if resp.status != 200:
                        continue
                    status = await resp.json()
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                continue
            done = (
                status.get("state") == "active" and status.get("version") == cmd.version
                if cmd.op == "apply"
                else status.get("state") in ("inactive", "unknown")
            )
            if done:
                self.counters["acks"] += 1
                self.handle(Ack(cmd.endpoint, cmd.promo, cmd.version, cmd.op, detail="poll"))
                return
            if self.orchestrator.delivery_state(cmd.promo, cmd.endpoint) != "awaiting_ack":
                return  # superseded, re-sent or given up: stop polling

    async def _validate(self, cmd: RequestValidation) -> None:
        assert self._session is not None
        began = self.clock.now()
        body = cmd.promotion.model_dump_json(by_alias=True)
        while True:
            try:
                async with self._session.post(
                    self.endpoints.validate_url(),
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=self.clock.wall(30.0)),
                ) as resp:
                    answer = await resp.json(content_type=None)
                    if resp.status == 200:
                        ok, reasons = bool(answer["ok"]), tuple(answer.get("reasons", ()))
                        break
                    wait = retry_after_of(resp.headers, answer) or 1.0
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, KeyError):
                wait = 1.0
            if self.clock.now() - began > VALIDATION_PATIENCE:
                ok, reasons = False, ("ERP unreachable for validation",)
                break
            await asyncio.sleep(self.clock.wall(max(wait, 1.0)))
        self.handle(ValidationResult(cmd.promo, cmd.version, ok, reasons))

    # --- read side (the service) ------------------------------------------------------------

    def records(
        self, since: int = 0, limit: int | None = None, promo: str | None = None
    ) -> list[Record]:
        return [r for _, r in self.store.records(since, limit, promo)]

    def stats(self) -> dict[str, float]:
        return {
            **self.counters,
            "timers": float(len(self._timers)),
            "tasks": float(len(self._tasks)),
            "dead_letters": float(len(self.orchestrator.dead_letters())),
            "journal": float(self.store.journal_length()),
        }


__all__ = [
    "EndpointDirectory",
    "IllegalTransition",
    "LiveClock",
    "LiveRuntime",
    "UnknownPromotion",
    "outcome_of",
]
