"""Sending deliveries: the gates between "this endpoint should get it" and a SendDelivery.

The core (``core.py``) decides *what* each endpoint should carry; this module decides
*when* it goes out and what happens to each attempt:

* per channel and promotion: a pause holds deliveries in place, so a resume releases them
  in their original order;
* per channel: a batch distribution holds deliveries until their window opens (one timer
  per window, not one per endpoint), a concurrency limit queues them FIFO, a token bucket
  spaces them (one timer at the next free token), and a retry budget stops retry storms;
* per endpoint: a circuit breaker holds them while open (one timer at its retry time);
* per attempt: results, asynchronous acks, ack timeouts, backoff timers, dead letters.

Contract with the driver: every SendDelivery gets exactly one DeliveryResult (the driver
enforces ``timeout`` and reports "timeout"). A send stays counted against its channel's
concurrency until then, even when a rollback has made it stale, because the request is
still occupying the endpoint. An accepted delivery waiting for its acknowledgement no
longer holds a slot: the request is over, the endpoint works on it asynchronously.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from harness.domain.promotion import Promotion
from harness.orchestrator.commands import CancelTimer, DeadLetter, SendDelivery, StartTimer
from harness.orchestrator.delivery import (
    FAILURE_OUTCOMES_FOR_BREAKER,
    CircuitBreaker,
    DeadLetterEntry,
    DeadLetterQueue,
    DeliveryPolicy,
    RetryBudget,
    TokenBucket,
)
from harness.orchestrator.events import DeliveryResult
from harness.orchestrator.state import Delivery, EndpointInfo, Out

__all__ = ["Dispatcher"]

_QUEUED = ("pending", "held")


@dataclass(slots=True, eq=False)
class _Channel:
    policy: DeliveryPolicy
    bucket: TokenBucket | None
    budget: RetryBudget | None
    queue: list[Delivery] = field(default_factory=list)  # FIFO; paused ones keep their place
    in_flight: dict[tuple[str, int], Delivery] = field(default_factory=dict)  # by (id, attempt)
    windows: dict[float, list[Delivery]] = field(default_factory=dict)  # batch window -> held
    rate_timer: str | None = None
    hold: str | None = None  # current throttle reason: one "throttle" record per hold


@dataclass(slots=True, eq=False)
class _Gate:
    breaker: CircuitBreaker
    waiting: list[Delivery] = field(default_factory=list)
    timer: str | None = None


class Dispatcher:
    """Queues, limits and retries for every channel and endpoint of one estate."""

    def __init__(
        self,
        endpoints: Iterable[EndpointInfo],
        policies: Mapping[str, DeliveryPolicy],
        default_policy: DeliveryPolicy,
        rng: random.Random,
        payload: Callable[[str, int], Promotion | None],
    ) -> None:
        self._rng = rng
        self._payload = payload
        self._channels: dict[str, _Channel] = {}
        self._gates: dict[str, _Gate] = {}
        for ep in endpoints:
            policy = policies.get(ep.channel, default_policy)
            if ep.channel not in self._channels:
                rl = policy.rate_limit
                self._channels[ep.channel] = _Channel(
                    policy,
                    TokenBucket(rl.rate, rl.burst) if rl else None,
                    RetryBudget(policy.retry_budget) if policy.retry_budget else None,
                )
            if policy.breaker is not None:
                self._gates[ep.id] = _Gate(CircuitBreaker(policy.breaker))
        self._paused: set[tuple[str, str]] = set()  # (promo, channel); membership only
        self._sent: set[tuple[str, str]] = set()  # (promo, endpoint) ever sent; membership only
        self._timers: dict[str, tuple] = {}  # timer id -> what to do when it fires
        self.dlq = DeadLetterQueue()

    # --- queries ---------------------------------------------------------------------------

    def policy(self, channel: str) -> DeliveryPolicy:
        return self._channels[channel].policy

    def is_batch(self, ep: EndpointInfo) -> bool:
        return self._channels[ep.channel].policy.distribution.is_batch_for(ep.realtime)

    def ever_sent(self, promo: str, endpoint: str) -> bool:
        return (promo, endpoint) in self._sent

    def in_flight(self, channel: str) -> int:
        ch = self._channels.get(channel)
        return len(ch.in_flight) if ch else 0

    def breaker_state(self, endpoint: str) -> str | None:
        gate = self._gates.get(endpoint)
        return gate.breaker.state if gate else None

    # --- entering and leaving the pipeline -------------------------------------------------

    def enqueue(self, d: Delivery, out: Out) -> None:
        """Make ``d`` ready to send (callers pump its channel afterwards)."""
        ch = self._channels[d.channel]
        distribution = ch.policy.distribution
        if distribution.kind != "push" and distribution.is_batch_for(d.endpoint.realtime):
            window = distribution.next_window(out.now, d.endpoint.batch_offset)
            if window > out.now:
                d.state = "held"
                if window not in ch.windows:
                    ch.windows[window] = []
                    timer_id = f"window:{d.channel}:{window}"
                    self._timers[timer_id] = ("window", d.channel, window)
                    out.emit(StartTimer(timer_id, window, ("window", d.channel)))
                ch.windows[window].append(d)
                return
        # _to_queue(d), inlined (once per delivery); see there for the state's slot.
        d._state = "held" if (d.promo, d.channel) in self._paused else "pending"
        ch.queue.append(d)

    def withdraw(self, d: Delivery, out: Out) -> None:
        """Supersede ``d``: nothing of it is sent again, its late results become stale.

        Queues drop it lazily (they skip deliveries no longer pending/held); timers are
        cancelled now so that a driver need not fire them at all.
        """
        self._cancel_timer(d, out)
        d.state = "superseded"

    def pump(self, channel: str, out: Out) -> None:
        """Send what the gates let through, in queue order."""
        ch = self._channels[channel]
        queue = ch.queue
        if not queue:  # the common case after a result
            ch.hold = None
            return
        now, limit, bucket, in_flight = out.now, ch.policy.concurrency, ch.bucket, ch.in_flight
        paused, gates = self._paused, self._gates
        kept: list[Delivery] = []  # paused deliveries keep their place in the queue
        blocked: str | None = None
        # One pass and one rebuild of the queue at the end, rather than a delete per send.
        i, n = 0, len(queue)
        while i < n:
            d = queue[i]
            if d._state not in _QUEUED:  # the slot behind ``state``: read per queued send
                i += 1  # superseded or sent by another way since: dropped
                continue
            if paused and (d.promo, channel) in paused:
                kept.append(d)
                i += 1
                continue
            if limit is not None and len(in_flight) >= limit:
                blocked = "concurrency"
                break
            if bucket is not None and bucket.next_free(now) > now:
                blocked = "rate"
                self._arm_rate_timer(channel, ch, out)
                break
            i += 1
            gate = gates.get(d.endpoint.id)
            # Asked last: while half-open, a True reserves the probe, so the send must follow.
            # A closed breaker lets everything through and records nothing: not asked.
            if (
                gate is not None
                and gate.breaker.state != "closed"
                and not self._breaker_allows(d.endpoint, gate, out)
            ):
                d.state = "held"
                gate.waiting.append(d)
                self._arm_breaker_timer(d.endpoint.id, gate, out)
                continue
            if bucket is not None:
                bucket.try_acquire(now)
            self._send(d, ch, out)
        if blocked is None:
            ch.hold = None
        elif ch.hold != blocked:
            ch.hold = blocked
            out.delivery_record("throttle", queue[i], outcome=blocked)
        # The loop never re-enters the queue (a send only emits a command), so the rest of
        # it is exactly queue[i:]; nothing taken from the front means nothing to rebuild.
        if i or kept:
            kept.extend(queue[i:])
            ch.queue = kept

    # --- pause ------------------------------------------------------------------------------

    def pause(self, promo: str, channel: str) -> None:
        self._paused.add((promo, channel))
        ch = self._channels.get(channel)
        for d in self._queued(ch, promo):
            d.state = "held"

    def resume(self, promo: str, channel: str, out: Out) -> None:
        self._paused.discard((promo, channel))
        ch = self._channels.get(channel)
        if ch is None:
            return
        for d in self._queued(ch, promo):
            d.state = "pending"
        self.pump(channel, out)

    # --- what comes back --------------------------------------------------------------------

    def on_result(self, ev: DeliveryResult, ep: EndpointInfo, out: Out) -> None:
        ch = self._channels[ep.channel]
        key = (ev.delivery_id, ev.attempt)
        d = ch.in_flight.get(key)
        if d is None or d.promo != ev.promo or d.version != ev.version or d.op != ev.op:
            out.stale_result(ev, ep)
            return
        del ch.in_flight[key]
        current = d._state == "in_flight" and d.attempt == ev.attempt
        if current:
            out.delivery_record("result", d, ev.outcome, out.now - d.sent_at)
        else:
            out.delivery_record("stale", d, attempt=ev.attempt, outcome=ev.outcome)
        gate = self._gates.get(ep.id)
        # A stale answer still tells the truth about the endpoint's health, and while
        # half-open it may be the probe the breaker is waiting for. A success at a breaker
        # at rest changes nothing: not fed.
        if gate is not None and (
            not gate.breaker.at_rest or (ev.outcome != "ok" and ev.outcome != "accepted")
        ):
            self._feed_breaker(ep, gate, ev.outcome, out)
        if current:
            out.touched[d.promo] = None
            self._settle(d, ch, ev, out)
        if gate is not None and gate.waiting:
            self._wake(ep, gate, out)
        if ch.queue:
            self.pump(ep.channel, out)
        else:
            ch.hold = None  # what pump does with an empty queue

    def on_ack(self, d: Delivery, out: Out) -> None:
        """An async acknowledgement the core matched to ``d``, the current delivery."""
        self._cancel_timer(d, out)
        d.state = d.done_state
        out.delivery_record("ack", d, outcome=d.op)
        out.touch(d.promo)

    def on_timer(self, timer_id: str, out: Out) -> None:
        action = self._timers.pop(timer_id, None)
        if action is None:
            return
        kind = action[0]
        if kind in ("retry", "ack"):
            d: Delivery = action[1]
            if d.timer != timer_id:
                return
            d.timer = None
            out.touch(d.promo)
            if kind == "retry":
                # A retry belongs to the window its first attempt went out in: it follows
                # its backoff rather than waiting for the next batch window (a nightly
                # batch job retries its failures that night, not the next one).
                self._to_queue(d)
                self.pump(d.channel, out)
            else:
                # The endpoint answered, so its breaker is not fed; the retry budget is.
                self._fail(d, self._channels[d.channel], "timeout", None, out, reason="ack_timeout")
        elif kind == "window":
            _, channel, window = action
            ch = self._channels[channel]
            for d in ch.windows.pop(window, []):
                if d.state == "held":
                    self._to_queue(d)
            self.pump(channel, out)
        elif kind == "rate":
            ch = self._channels[action[1]]
            ch.rate_timer = None
            self.pump(action[1], out)
        elif kind == "breaker":
            gate = self._gates[action[1]]
            gate.timer = None
            self._release(gate, out)

    # --- internals --------------------------------------------------------------------------

    def _to_queue(self, d: Delivery) -> None:
        # Through the slot, not the tally-keeping ``state`` setter: every delivery queued
        # is new (pending) or waiting (held, retry_wait), all of the tally's "open" bucket
        # as pending and held are, so the setter would find nothing to count.
        d._state = "held" if (d.promo, d.channel) in self._paused else "pending"
        self._channels[d.channel].queue.append(d)

    @staticmethod
    def _queued(ch: _Channel | None, promo: str) -> list[Delivery]:
        if ch is None:
            return []
        return [d for d in ch.queue if d.promo == promo and d.state in _QUEUED]

    def _send(self, d: Delivery, ch: _Channel, out: Out) -> None:
        d.attempt += 1
        d._state = "in_flight"  # from pending or held: the same "open" tally bucket
        d.sent_at = out.now
        ch.in_flight[(d.delivery_id, d.attempt)] = d
        self._sent.add((d.promo, d.endpoint.id))
        # Positional, in field order (the idempotency key is the delivery id): hot path.
        out.commands.append(
            SendDelivery(
                d.delivery_id,
                d.endpoint.id,
                d.channel,
                d.op,
                d.promo,
                d.version,
                d.attempt,
                d.delivery_id,
                ch.policy.timeout,
                self._payload(d.promo, d.version) if d.op == "apply" else None,
            )
        )
        out.delivery_record("send", d, d.op)
        out.touched[d.promo] = None

    def _settle(self, d: Delivery, ch: _Channel, ev: DeliveryResult, out: Out) -> None:
        """What the current attempt's outcome does to its delivery."""
        outcome = ev.outcome
        if outcome in ("ok", "accepted"):
            if ch.budget is not None:
                ch.budget.record_success()
            if outcome == "ok":
                d.state = "acked" if d.op == "apply" else "revoked"  # d.done_state, inlined
                out.delivery_record("ack", d, d.op)
            else:
                d.state = "awaiting_ack"
                timer_id = f"ack:{d.delivery_id}:{d.attempt}"
                d.timer = timer_id
                self._timers[timer_id] = ("ack", d)
                out.emit(StartTimer(timer_id, out.now + ch.policy.ack_timeout, (d.delivery_id,)))
        elif ch.policy.is_retryable(outcome):
            self._fail(d, ch, outcome, ev.retry_after, out, reason="max_attempts")
        else:
            self._dead_letter(d, outcome, out)

    def _fail(
        self,
        d: Delivery,
        ch: _Channel,
        outcome: str,
        retry_after: float | None,
        out: Out,
        *,
        reason: str,
    ) -> None:
        """A retryable failure of the current attempt: retry later or give up."""
        policy = ch.policy
        if ch.budget is not None:
            ch.budget.record_failure()
        if d.attempt >= policy.max_attempts:
            self._dead_letter(d, reason, out)
            return
        if ch.budget is not None and not ch.budget.can_retry():
            out.delivery_record("budget", d, outcome="exhausted", value=ch.budget.tokens)
            self._dead_letter(d, "retry_budget", out)
            return
        delay = policy.retry_delay(d.attempt, d.previous_delay, outcome, retry_after, self._rng)
        d.previous_delay = delay
        d.state = "retry_wait"
        timer_id = f"retry:{d.delivery_id}:{d.attempt + 1}"
        d.timer = timer_id
        self._timers[timer_id] = ("retry", d)
        out.emit(StartTimer(timer_id, out.now + delay, (d.delivery_id, d.attempt + 1)))

    def _dead_letter(self, d: Delivery, reason: str, out: Out) -> None:
        d.state = "dead_lettered"
        ep = d.endpoint
        self.dlq.add(
            DeadLetterEntry(
                d.delivery_id,
                ep.id,
                ep.channel,
                d.promo,
                d.version,
                d.op,
                d.attempt,
                reason,
                out.now,
            )
        )
        out.delivery_record("dlq", d, outcome=reason)
        out.emit(DeadLetter(d.delivery_id, ep.id, d.promo, d.version, d.op, d.attempt, reason))

    def _feed_breaker(self, ep: EndpointInfo, gate: _Gate, outcome: str, out: Out) -> None:
        breaker = gate.breaker
        if outcome in FAILURE_OUTCOMES_FOR_BREAKER:
            change = breaker.record_failure(out.now)
        elif outcome in ("ok", "accepted") or breaker.state == "half_open":
            # A 429 or a 4xx neither trips nor resets a closed breaker, but it does prove
            # the endpoint answers: it must end a half-open probe, or the breaker would
            # wait for that probe forever.
            change = breaker.record_success(out.now)
        else:
            change = None
        if change is not None:
            out.record(
                "breaker", endpoint=ep.id, channel=ep.channel, region=ep.region, outcome=change
            )

    def _wake(self, ep: EndpointInfo, gate: _Gate, out: Out) -> None:
        """After a result, give the deliveries its breaker holds a way out."""
        if gate.breaker.state == "open":
            self._arm_breaker_timer(ep.id, gate, out)
        else:
            # Closed, or still half-open with a probe slot freed (success_threshold > 1):
            # either way no timer will come, so the held deliveries must ask again now.
            self._release(gate, out)

    @staticmethod
    def _breaker_allows(ep: EndpointInfo, gate: _Gate, out: Out) -> bool:
        before = gate.breaker.state
        allowed = gate.breaker.allow(out.now)
        if gate.breaker.state != before:  # open -> half_open happens inside allow()
            out.record(
                "breaker",
                endpoint=ep.id,
                channel=ep.channel,
                region=ep.region,
                outcome=gate.breaker.state,
            )
        return allowed

    def _release(self, gate: _Gate, out: Out) -> None:
        """Give deliveries held by a breaker another go, in the order they were held."""
        waiting, gate.waiting = gate.waiting, []
        channels: dict[str, None] = {}
        for d in waiting:
            if d.state == "held":
                self._to_queue(d)
                channels[d.channel] = None
        for channel in channels:
            self.pump(channel, out)

    def _arm_breaker_timer(self, endpoint: str, gate: _Gate, out: Out) -> None:
        at = gate.breaker.retry_at()
        # None while half-open: the probe's result releases the waiters instead.
        if gate.timer is not None or at is None:
            return
        timer_id = f"breaker:{endpoint}:{at}"
        gate.timer = timer_id
        self._timers[timer_id] = ("breaker", endpoint)
        out.emit(StartTimer(timer_id, at, ("breaker", endpoint)))

    def _arm_rate_timer(self, channel: str, ch: _Channel, out: Out) -> None:
        if ch.rate_timer is not None or ch.bucket is None:
            return
        at = ch.bucket.next_free(out.now)
        timer_id = f"rate:{channel}:{at}"
        ch.rate_timer = timer_id
        self._timers[timer_id] = ("rate", channel)
        out.emit(StartTimer(timer_id, at, ("rate", channel)))

    def _cancel_timer(self, d: Delivery, out: Out) -> None:
        if d.timer is not None:
            self._timers.pop(d.timer, None)
            out.emit(CancelTimer(d.timer))
            d.timer = None
