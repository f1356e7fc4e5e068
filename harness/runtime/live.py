"""The wall-clock runtime: the same orchestrator core driven by asyncio over real HTTP.

Sends are HTTP POSTs on kept-alive connections (``harness.runtime.http1``), timers are
``loop.call_later``, results and acknowledgements come back as events. Each event the core
accepts is journalled with the records it produced in one SQLite transaction
(``store.Store``) *before* any of its commands is carried out, so a crash at any moment
loses nothing committed: ``start()`` replays the journal through a fresh core, re-arms
the timers that had not fired and re-sends what was in flight with the same idempotency
keys (endpoints drop duplicates).

Durable first: an event the journal refuses (disk full, a read-only file, a value SQLite
cannot hold) changes nothing. The core has already decided by then, so the runtime puts it
back as the journal says it was (``_replay``: the core is deterministic) and raises
``NotDurable``; an event the runtime produced itself (a result, a timer, a poll) is handed
in again a moment later instead, as if it had arrived late. An event with a field the
journal could never hold (an integer beyond 64 bits, NaN) is refused before the core sees
it, with ``Unjournalable``.

After a restart every pending thing resumes: timers (backoff, ack timeouts, breakers, rate
tokens, batch windows, scheduled publishes) are re-armed from the journal, sends in flight
are re-sent, validations re-asked and marketplace offers awaiting activation polled again.

Time is scenario seconds: ``(wall - epoch) * speed``, the epoch kept in the store so a
restarted service continues the same clock; every delay and timeout is divided by
``speed`` to become wall seconds.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.domain.eventlog import Record
from harness.domain.lifecycle import IllegalTransition
from harness.domain.promotion import Promotion
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
from harness.runtime.http1 import Client, HttpError
from harness.runtime.live_loop import (
    FULL_COLLECTION_EVERY,
    LiveClock,
    _freeze_heap,
    _thaw_heap,
    full_collections_deferred,
    run,
)
from harness.runtime.live_wire import (
    EndpointDirectory,
    _Slot,
    json_of,
    outcome_of,
    retry_after_of,
)
from harness.runtime.sim import NETWORK_DELAY
from harness.runtime.store import BadState, NotDurable, Store
from harness.runtime.timing import POLL_SECONDS, VALIDATION_PATIENCE

# Deliveries on the wire at once. The estate and this runtime share one CPU-bound event
# loop that serves every open request a little at a time: with no window a fan-out of
# 1,208 takes about a second on the wire *each* (measured on 2 busy cores), so at 10x
# every one of them passes its 10 s timeout and is retried into the same lockstep — a
# retry storm of the harness's own making. The window keeps each request's time on the
# wire short; the wait for a slot is before the timeout starts and is measured by the
# calibration (harness/live_calibrate.py) as the burst's delay. 16, not 64: with 64 a
# request spent 0.15-0.3 s on the wire in a 604-delivery burst (above WINDOW_HOLD, so
# slow requests left the window and let more in, and the p95 ran away to a second on a
# busy machine); with 16 it spends ~25 ms and the burst as a whole takes a third longer.
IN_FLIGHT = 16
WINDOW_HOLD = 0.1  # wall seconds a delivery may hold its place in the window, at most
# A calibrated run holds a place only for the harness's own time on the wire (twice the
# calibration's p95, at least HOLD_FLOOR): a delivery still unanswered after that is in
# its *modelled* service time, and holding its place through it made the window a
# client-side limit of 16 concurrent deliveries in scenario time, which the virtual
# runtime does not have. Measured: a 150-copy storm's first wave at 2.5x queued behind
# the web shop's deliveries (0.2 s of modelled service, 80 ms of wall each): its ERP
# attempts took 1.28 s from send to result on average instead of 0.02, the
# (150 x 0.12 + 5 x 0.25) / 16 = 1.2 s of modelled service queued 16 at a time.
HOLD_FLOOR = 0.005
TIMER_SLACK = 0.002  # wall seconds of timer lateness a link leg may learn to aim ahead by

POLL_TIMEOUT = 300.0  # wall seconds a marketplace poll may take (aiohttp's default, kept)

# The virtual runtime's link model, so both runtimes draw from one (harness/runtime/sim.py).
DEFAULT_NETWORK_DELAY = 0.01

_INT64 = (-(2**63), 2**63 - 1)


def window_hold_for(wire_p95: float) -> float:
    """The hold of a run calibrated with ``wire_p95`` wall seconds on the wire (the
    calibration's ``Overhead.at_concurrency``, instant endpoints: all the harness's own):
    twice that, within [HOLD_FLOOR, WINDOW_HOLD]."""
    return min(WINDOW_HOLD, max(HOLD_FLOOR, 2 * wire_p95))


class Unjournalable(NotDurable, ValueError):
    """An event with a value the journal cannot hold; refused before anything changed."""


def check_event(event: Any) -> None:
    """Refuse integers beyond SQLite's 64 bits and non-finite numbers (they would reach
    the records' columns) before the core sees the event."""
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, Promotion):
            value, name = value.version, f"{f.name}.version"
        else:
            name = f.name
        if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
            raise Unjournalable(f"{name}: integer {value} does not fit in 64 bits")
        if type(value) is float and not math.isfinite(value):
            raise Unjournalable(f"{name}: {value} is not a finite number")


@dataclass
class _Recovered:
    timers: dict[str, StartTimer] = field(default_factory=dict)
    in_flight: dict[str, SendDelivery] = field(default_factory=dict)
    validations: dict[str, RequestValidation] = field(default_factory=dict)
    polls: dict[str, SendDelivery] = field(default_factory=dict)  # accepted, awaiting poll


class LiveRuntime:
    """The orchestrator core on asyncio + HTTP/1.1 + SQLite."""

    def __init__(
        self,
        make_orchestrator: Callable[[], Orchestrator],
        store: Store,
        endpoints: EndpointDirectory,
        clock: LiveClock,
        *,
        connections: int = 0,
        in_flight: int = IN_FLIGHT,
        window_hold: float = WINDOW_HOLD,
        poll_seconds: float = POLL_SECONDS,
        defer_seconds: float = 1.0,
    ) -> None:
        """``defer_seconds``: wall seconds before an event the runtime produced itself and
        the journal refused (disk full...) is handed in again."""
        self._make = make_orchestrator
        self.orchestrator = make_orchestrator()
        self.store = store
        self.endpoints = endpoints
        self.clock = clock
        self._connections = connections
        # At most this many deliveries on the wire at once (0: no limit); see ``_send``.
        self._window = asyncio.Semaphore(in_flight) if in_flight > 0 else None
        self._hold = window_hold  # wall s a delivery may hold its place (``window_hold_for``)
        # Wall seconds each recent delivery spent on the wire (the calibration's p95).
        self.wire_times: collections.deque[float] = collections.deque(maxlen=4096)
        self._poll_seconds = poll_seconds
        self._http: Client | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._payloads: dict[tuple[str, int], Any] = {}
        self.counters: dict[str, float] = {
            "sends": 0,
            "results": 0,
            "acks": 0,
            "resent": 0,
            "not_durable": 0,
        }
        self._closing = False
        self._froze = False  # this runtime holds the heap frozen (``_freeze_heap``)
        self._broken: str | None = None  # why the journal can no longer be trusted
        self._deferred: set[asyncio.TimerHandle] = set()
        self._defer_seconds = defer_seconds
        self._early = 0.0  # wall s each link leg aims ahead of its timer (``_leg``)
        self._legs = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        """Open the HTTP pool and recover from the journal; returns the events replayed."""
        recovered, replayed = self._replay()  # BadState before anything is opened
        if not self._froze:
            _freeze_heap()
            self._froze = True
        # No limit by default (connections=0): the virtual runtime has no client-side
        # queue (the core's policy concurrency is the only modelled one), and a wait for
        # a connection would count into the request's timeout.
        self._http = Client(self._connections)
        for cmd in recovered.timers.values():
            self._arm(cmd)
        for cmd in recovered.in_flight.values():
            self.counters["resent"] += 1
            self._spawn(self._send(cmd, time.perf_counter()))
        for cmd in recovered.validations.values():
            self._spawn(self._validate(cmd))
        for cmd in recovered.polls.values():
            self._spawn(self._poll(cmd))
        return replayed

    async def close(self) -> None:
        # Results and timers arriving while the tasks are cancelled must not start new
        # sends on a closing session or write to a closing store.
        if self._froze:
            _thaw_heap()
            self._froze = False
        self._closing = True
        for handle in [*self._timers.values(), *self._deferred]:
            handle.cancel()
        self._timers.clear()
        self._deferred.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _replay(self) -> tuple[_Recovered, int]:
        """Rebuild the core from the journal; what was pending when the process died.

        A journal row that does not decode, or that the core refuses, is a ``BadState``
        naming the row: the file was tampered with or written by another version."""
        orch = self._make()
        state = _Recovered()
        polled = self.endpoints.polled
        count = 0
        for seq, t, text in self.store.journal():
            try:
                event = codec.decode(text)
                commands = orch.handle(event, t)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise BadState(
                    f"journal row {seq} cannot be replayed ({reason})", path=self.store.path
                ) from None
            count += 1
            if isinstance(event, TimerFired):
                state.timers.pop(event.timer_id, None)
            elif isinstance(event, DeliveryResult):
                sent = state.in_flight.get(event.delivery_id)
                if sent is not None and sent.attempt == event.attempt:
                    del state.in_flight[event.delivery_id]
                    if event.outcome == "accepted" and sent.endpoint in polled:
                        state.polls[event.delivery_id] = sent
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
                    state.polls.pop(cmd.delivery_id, None)
                elif kind is RequestValidation:
                    state.validations[cmd.promo] = cmd
        # Poll again only for offers the core still waits on (not acked, superseded...).
        for delivery_id, cmd in list(state.polls.items()):
            view = orch.delivery(cmd.promo, cmd.endpoint)
            if view is None or view.delivery_id != delivery_id or view.state != "awaiting_ack":
                del state.polls[delivery_id]
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
        are handled one at a time and nothing runs on a decision not yet durable.

        Raises what the core refuses with (nothing changed), ``Unjournalable`` for a value
        the journal cannot hold and ``NotDurable`` when the write fails (nothing changed:
        the core is rebuilt from the journal)."""
        if self._closing:
            return
        if self._broken is not None:
            raise NotDurable(self._broken)
        decided = time.perf_counter()  # where a send's modelled link delay starts
        check_event(event)
        text = codec.encode(event)
        now = self.clock.now()
        commands = self.orchestrator.handle(event, now)  # raises before anything is written
        records = [c.record for c in commands if type(c) is WriteRecord]
        try:
            self.store.append(now, text, records)
        except NotDurable as exc:
            self.counters["not_durable"] += 1
            self._undo(exc)
            raise
        for cmd in commands:
            kind = type(cmd)
            if kind is SendDelivery:
                self.counters["sends"] += 1
                self._spawn(self._send(cmd, decided))
            elif kind is StartTimer:
                self._arm(cmd)
            elif kind is CancelTimer:
                handle = self._timers.pop(cmd.timer_id, None)
                if handle is not None:
                    handle.cancel()
            elif kind is RequestValidation:
                self._spawn(self._validate(cmd))

    def _undo(self, exc: NotDurable) -> None:
        """Put the core back as the journal has it: a fresh core fed the journal again."""
        try:
            self._replay()
        except Exception as again:
            self._broken = f"the journal cannot be read back ({again}) after: {exc}"

    def _internal(self, event: Any) -> None:
        """Hand in an event the runtime produced; one the journal refused for now is handed
        in again a second later (it changed nothing, as if it had not arrived yet)."""
        try:
            self.handle(event)
        except Unjournalable:
            self.counters["refused"] = self.counters.get("refused", 0) + 1
        except NotDurable:
            if self._closing:
                return
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle | None = None

            def again() -> None:
                self._deferred.discard(handle)  # type: ignore[arg-type]
                self._internal(event)

            handle = loop.call_later(self._defer_seconds, again)
            self._deferred.add(handle)

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
            self._internal(TimerFired(cmd.timer_id, cmd.data))

    # --- HTTP ----------------------------------------------------------------------------------

    def _body(self, cmd: SendDelivery) -> bytes:
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
        return f'{head[:-1]},"payload":{payload or "null"}}}'.encode()

    async def _send(self, cmd: SendDelivery, decided: float) -> None:
        """One attempt over the modelled link: the request travels the channel's one-way
        network delay (``NETWORK_DELAY``, as the virtual runtime has it) before it is
        POSTed, the reply travels it back, and the client gives up ``cmd.timeout`` after
        the send whichever way it ends — so a reply is in time exactly when the virtual
        runtime's would be (loopback adds only its own, calibrated, fraction).

        ``decided``: the ``perf_counter`` instant the core decided the send; the request's
        leg runs from there, so the journal write and whatever else the loop did before
        this task started are spent inside the modelled delay, not added to it."""
        delay = NETWORK_DELAY.get(cmd.channel, DEFAULT_NETWORK_DELAY)
        leg = self.clock.wall(delay)
        # The loop's timers fire late: uvloop's have millisecond granularity, and a busy
        # machine adds its own wake-up delay. Each leg aims ahead by the usual lateness,
        # and the reply's leg is shortened by what this one still overran, so a result
        # lands when the model says instead of carrying two timers' lateness.
        late = await self._leg(leg - (time.perf_counter() - decided))
        if self._window is None:
            await self._post(cmd, delay, late)
            return
        # The window paces dispatch; it does not hold a hung request, nor one in its
        # modelled service: a delivery that has not answered within the hold (WINDOW_HOLD
        # wall seconds, less when calibrated) leaves it and runs on, so an outage that
        # hangs hundreds of stores does not queue the others behind them.
        # In this task, not one of its own waited on with a timeout: a task, a waiter and
        # their callbacks per delivery were a measurable share of its CPU.
        await self._window.acquire()
        slot = _Slot(self._window)
        hold = asyncio.get_running_loop().call_later(self._hold, slot.free)
        try:
            await self._post(cmd, delay, late)
        finally:
            hold.cancel()
            slot.free()

    async def _leg(self, seconds: float) -> float:
        """Sleep ``seconds`` of wall time on the modelled link (none if <= 0: it was
        spent already), aimed ahead by the timers' usual lateness; returns how far past
        ``seconds`` it woke (< 0: early)."""
        aim = max(0.0, seconds - self._early)
        began = time.perf_counter()
        await asyncio.sleep(aim)
        slept = time.perf_counter() - began
        # Learn the timer's own lateness, capped at TIMER_SLACK: beyond that it is the
        # loop's lag under a burst, which is the harness's cost and no timer's habit.
        if aim > 0:  # a zero sleep only yields: it tells nothing of the timers
            lateness = min(max(slept - aim, 0.0), TIMER_SLACK)
            # The mean of the first 20, then a moving average (the machine's load moves).
            self._legs += 1
            self._early += max(0.05, 1 / self._legs) * (lateness - self._early)
        return slept - seconds

    async def _post(self, cmd: SendDelivery, delay: float, late: float = 0.0) -> None:
        assert self._http is not None
        outcome, status, retry_after = "timeout", 0, None
        # What is left for the round trip on the wire once the reply's travel is counted.
        on_wire = max(cmd.timeout - 2 * delay, 0.0)
        began = time.perf_counter()
        try:
            resp = await self._http.request(
                "POST",
                self.endpoints.delivery_url(cmd.endpoint),
                self._body(cmd),
                {"Content-Type": "application/json", "Idempotency-Key": cmd.idempotency_key},
                timeout=max(self.clock.wall(on_wire), 1e-3),
            )
            status = resp.status
            body = json_of(resp.body) if resp.content_length != 0 else None
            outcome = outcome_of(status)
            retry_after = retry_after_of(resp.headers, body)
        except TimeoutError:
            outcome = "timeout"
        except (HttpError, ValueError):  # no answer, or one that is not JSON
            outcome = "unavailable"
        self.wire_times.append(time.perf_counter() - began)
        # The reply (or the give-up) travels back, less the outbound leg's overrun.
        await self._leg(max(0.0, self.clock.wall(delay) - late))
        self.counters["results"] += 1
        self._internal(DeliveryResult.answering(cmd, outcome, status, retry_after))
        if outcome == "accepted" and cmd.endpoint in self.endpoints.polled:
            self._spawn(self._poll(cmd))

    async def _poll(self, cmd: SendDelivery) -> None:
        """Learn an asynchronous activation by polling (marketplace offers)."""
        assert self._http is not None
        while True:
            await asyncio.sleep(self.clock.wall(self._poll_seconds))
            try:
                resp = await self._http.request(
                    "GET", self.endpoints.poll_url(cmd.promo), timeout=POLL_TIMEOUT
                )
                if resp.status != 200:
                    continue
                status = json_of(resp.body)
            except (HttpError, TimeoutError, ValueError):
                continue
            if not isinstance(status, dict):
                continue
            done = (
                status.get("state") == "active" and status.get("version") == cmd.version
                if cmd.op == "apply"
                else status.get("state") in ("inactive", "unknown")
            )
            if done:
                self.counters["acks"] += 1
                self._internal(Ack(cmd.endpoint, cmd.promo, cmd.version, cmd.op, detail="poll"))
                return
            if self.orchestrator.delivery_state(cmd.promo, cmd.endpoint) != "awaiting_ack":
                return  # superseded, re-sent or given up: stop polling

    async def _validate(self, cmd: RequestValidation) -> None:
        assert self._http is not None
        began = self.clock.now()
        body = cmd.promotion.model_dump_json(by_alias=True).encode()
        while True:
            try:
                resp = await self._http.request(
                    "POST",
                    self.endpoints.validate_url(),
                    body,
                    {"Content-Type": "application/json"},
                    timeout=self.clock.wall(30.0),
                )
                answer = json_of(resp.body)
                if resp.status == 200:
                    ok, reasons = bool(answer["ok"]), tuple(answer.get("reasons", ()))
                    break
                wait = retry_after_of(resp.headers, answer) or 1.0
            except (HttpError, TimeoutError, ValueError, KeyError, TypeError, AttributeError):
                wait = 1.0
            if self.clock.now() - began > VALIDATION_PATIENCE:
                ok, reasons = False, ("ERP unreachable for validation",)
                break
            await asyncio.sleep(self.clock.wall(max(wait, 1.0)))
        self._internal(ValidationResult(cmd.promo, cmd.version, ok, reasons))

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
    "FULL_COLLECTION_EVERY",
    "BadState",
    "EndpointDirectory",
    "IllegalTransition",
    "LiveClock",
    "LiveRuntime",
    "NotDurable",
    "Unjournalable",
    "UnknownPromotion",
    "full_collections_deferred",
    "json_of",
    "outcome_of",
    "retry_after_of",
    "run",
    "window_hold_for",
]
