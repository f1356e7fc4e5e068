"""One consumer process: a reader in every channel's consumer group, delivering each event
to the channel's endpoints in scope.

Per event: the targets (scope rules, or a replay's endpoint list), minus the event's
processed-set; each target gets the event with a stable idempotency key (event id +
endpoint) until it answers 2xx, with exponential backoff and full jitter between attempts
(never sooner than a Retry-After), and goes to the dead-letter stream after
``--max-attempts`` or at once on a permanent 4xx. The event is acknowledged (XACK) when
every target is done. While it works, the consumer renews its lease on the event (XCLAIM
to itself); an event left idle longer than ``--lease`` seconds (its consumer died) is
claimed by another consumer (XAUTOCLAIM), which skips the endpoints already processed.

Times are scenario seconds divided by ``--speed`` (the estate's), except the lease, which
is wall-clock: it measures whether a process is alive, not the scenario.

Test hook: ``--crash-after pos:3`` SIGKILLs the first consumer (of all) that has delivered
to 3 endpoints of pos, right after recording them processed, leaving ``crash.json`` (the
event and its processed-set then) in ``--state-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from examples.sut.broker_fanout import broker
from examples.sut.broker_fanout.scope import targets

BASE_S = 0.5  # first backoff ceiling, scenario seconds
CAP_S = 30.0  # largest backoff ceiling
PERMANENT = frozenset({400, 404, 409, 410, 413, 415, 422})
# "accepted" unless the webhook got there first (the estate can apply and call back before
# this process, on a busy machine, records the 202): its outcome is not overwritten.
ACCEPTED = (
    "if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then "
    "redis.call('HSET', KEYS[1], ARGV[1], 'accepted') end return 0"
)


class Consumer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name
        self.estate: str = args.estate.rstrip("/")
        self.speed: float = args.speed
        self.max_attempts: int = args.max_attempts
        self.lease_ms = int(args.lease * 1000)
        self.r = aioredis.Redis.from_url(args.redis_url, decode_responses=True)
        self.http = httpx.AsyncClient(
            timeout=args.timeout / args.speed, limits=httpx.Limits(max_connections=args.in_flight)
        )
        self.rng = random.Random(f"{args.seed}:{args.name}")
        self.in_flight = asyncio.Semaphore(args.in_flight)
        self.endpoints: list[dict[str, Any]] = []
        self.clock = broker.EstateClock(self.estate)
        self.working: set[tuple[str, str]] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.state_dir = Path(args.state_dir)
        channel, _, count = (args.crash_after or "").partition(":")
        self.crash = (channel, int(count)) if count else None
        self.delivered: dict[str, int] = {}

    # --- setup ------------------------------------------------------------------------------

    async def load_endpoints(self) -> None:
        """The estate's listing, retried until it answers (the estate may start later)."""
        for _ in range(600):
            try:
                r = await self.http.get(f"{self.estate}/estate/endpoints", timeout=5.0)
                if r.status_code == 200:
                    self.endpoints = list(r.json()["endpoints"])
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit(f"{self.name}: the estate at {self.estate} never listed its endpoints")

    async def run(self) -> None:
        await self.load_endpoints()
        readers = [self.read(channel) for channel in broker.CHANNELS]
        await asyncio.gather(*readers)

    # --- reading: new events and abandoned ones ---------------------------------------------

    async def read(self, channel: str) -> None:
        group = broker.group(channel)
        while True:
            # Events another consumer took and stopped renewing: it died. Ours are renewed.
            _, claimed, *_ = await self.r.xautoclaim(
                broker.STREAM, group, self.name, self.lease_ms, "0-0", count=10
            )
            for event, fields in claimed:
                if fields and (channel, event) not in self.working:
                    await self.r.hincrby(broker.STATS, f"{self.name}:claimed", 1)
                    self.spawn(channel, event, fields)
            got = await self.r.xreadgroup(
                group, self.name, {broker.STREAM: ">"}, count=5, block=max(100, self.lease_ms // 4)
            )
            for _, entries in got or []:
                for event, fields in entries:
                    self.spawn(channel, event, fields)

    def spawn(self, channel: str, event: str, fields: Mapping[str, str]) -> None:
        self.working.add((channel, event))
        task = asyncio.create_task(self.handle(channel, event, fields))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self.working.discard((channel, event)))

    # --- one event --------------------------------------------------------------------------

    def targets_of(self, channel: str, fields: Mapping[str, str]) -> list[Mapping[str, Any]]:
        mine = [ep for ep in self.endpoints if ep["channel"] == channel]
        only = json.loads(fields.get("only") or "null")
        if only is not None:  # a replay: exactly the endpoints it names
            return [ep for ep in mine if ep["id"] in set(only)]
        own = json.loads(fields["own_scope"])
        sub = json.loads(fields["scope"])
        return targets(mine, own, sub, op=fields["op"])

    async def handle(self, channel: str, event: str, fields: Mapping[str, str]) -> None:
        group = broker.group(channel)
        done = await self.r.smembers(broker.done_key(event))
        everyone = self.targets_of(channel, fields)
        todo = [ep for ep in everyone if ep["id"] not in done]
        skipped = len(everyone) - len(todo)
        if skipped:
            await self.r.hincrby(broker.STATS, f"{self.name}:skipped_done", skipped)
        work = asyncio.gather(*(self.deliver(channel, event, fields, ep) for ep in todo))
        lease = asyncio.create_task(self.renew(group, event, work))
        try:
            await work
        except asyncio.CancelledError:
            return  # the lease went to another consumer: it carries on from the processed-set
        finally:
            lease.cancel()
        await self.r.xack(broker.STREAM, group, event)

    async def renew(self, group: str, event: str, work: asyncio.Future[Any]) -> None:
        """Keep the event ours while we work on it; stop if another consumer claimed it."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            rows = await self.r.xpending_range(broker.STREAM, group, event, event, 1)
            if not rows or rows[0]["consumer"] != self.name:
                work.cancel()
                return
            await self.r.xclaim(broker.STREAM, group, self.name, 0, [event], justid=True)

    # --- one delivery -----------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Full jitter (scenario s): uniform over [0, min(cap, base * 2^(attempt-1))]."""
        return self.rng.uniform(0.0, min(CAP_S, BASE_S * 2 ** (attempt - 1)))

    async def deliver(
        self, channel: str, event: str, fields: Mapping[str, str], ep: Mapping[str, Any]
    ) -> None:
        key = f"{event}:{ep['id']}"  # the same on every attempt and every redelivery
        payload = json.loads(fields.get("payload") or "null")
        body = {
            "delivery_id": key,
            "idempotency_key": key,
            "op": fields["op"],
            "promo": fields["promo"],
            "version": int(fields["version"]),
            "attempt": 1,
            "payload": payload,
        }
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1 and await self.r.sismember(broker.done_key(event), ep["id"]):
                return  # another consumer finished it meanwhile
            body["attempt"] = attempt
            wait = self.backoff(attempt)
            try:
                async with self.in_flight:
                    reply = await self.http.post(ep["delivery_url"], json=body)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                status = reply.status_code
                if status in (200, 202):
                    await self.processed(channel, event, fields, ep["id"], status)
                    return
                last = f"HTTP {status}: {reply.text[:200]}"
                if status in PERMANENT:
                    break  # the endpoint refuses this for good: retrying cannot help
                after = reply.headers.get("retry-after", "")
                if after.isdigit():
                    wait = max(wait, float(after))  # never sooner than the endpoint asks
            if attempt < self.max_attempts:
                await asyncio.sleep(wait / self.speed)
        await self.dead_letter(channel, event, fields, ep["id"], attempt, last)

    async def processed(
        self, channel: str, event: str, fields: Mapping[str, str], endpoint: str, status: int
    ) -> None:
        state = "accepted" if status == 202 else ("acked" if fields["op"] == "apply" else "revoked")
        at = await self.clock.now(self.http) if state == "acked" else None
        async with self.r.pipeline(transaction=True) as p:
            if at is not None:
                p.hsetnx(broker.acked_key(fields["promo"]), endpoint, at)
            p.sadd(broker.done_key(event), endpoint)
            p.expire(broker.done_key(event), 7 * 86400)
            if state == "accepted":
                outcome = "acked" if fields["op"] == "apply" else "revoked"
                p.eval(ACCEPTED, 1, broker.view_key(fields["promo"]), endpoint, outcome)
            else:
                p.hset(broker.view_key(fields["promo"]), endpoint, state)
            p.hincrby(broker.STATS, f"{self.name}:delivered", 1)
            await p.execute()
        self.delivered[channel] = self.delivered.get(channel, 0) + 1
        await self.maybe_crash(channel, event)

    async def dead_letter(
        self,
        channel: str,
        event: str,
        fields: Mapping[str, str],
        endpoint: str,
        attempts: int,
        why: str,
    ) -> None:
        entry = {
            "event": event,
            "channel": channel,
            "endpoint": endpoint,
            "op": fields["op"],
            "promo": fields["promo"],
            "version": fields["version"],
            "attempts": attempts,
            "reason": why[:300],
        }
        async with self.r.pipeline(transaction=True) as p:
            p.xadd(broker.DEAD, entry)
            p.sadd(broker.done_key(event), endpoint)  # handled: the dead-letter holds it now
            p.hset(broker.view_key(fields["promo"]), endpoint, "dead")
            p.hincrby(broker.STATS, "dead", 1)
            await p.execute()

    async def maybe_crash(self, channel: str, event: str) -> None:
        if self.crash is None or self.crash != (channel, self.delivered[channel]):
            return
        if not await self.r.set("bf:test:crashed", self.name, nx=True):
            return  # one crash per run, whoever gets there first
        done = sorted(await self.r.smembers(broker.done_key(event)))
        record = {"consumer": self.name, "channel": channel, "event": event, "done": done}
        (self.state_dir / "crash.json").write_text(json.dumps(record), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--estate", required=True)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--max-attempts", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0, help="per attempt, scenario s")
    parser.add_argument("--lease", type=float, default=3.0, help="wall s")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--state-dir", default=".")
    parser.add_argument("--crash-after", default="")
    args = parser.parse_args()
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.state_dir) / f"consumer-{args.name}.pid").write_text(str(os.getpid()))
    asyncio.run(Consumer(args).run())


if __name__ == "__main__":
    main()
