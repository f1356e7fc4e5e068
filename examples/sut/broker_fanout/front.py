"""The HTTP front of the broker fan-out: takes the operator's create, publish, rollback and
replay, checks them, and publishes ONE event per change to the Redis stream; the consumer
processes do the delivering.

``main`` starts a private ``redis-server`` on a free 127.0.0.1 port (unless
``--redis-url`` names one), the consumer groups and ``--consumers`` consumer processes,
serves on 127.0.0.1, and on exit stops the consumers, writes ``stats.json`` to
``--state-dir`` and stops the redis-server it started.

Versions: a publish delivers the promotion's own version v; a rollback delivers a revoke
at v + 1, a tombstone no late apply of v can get past (the estate's version rule).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from examples.sut.broker_fanout import broker
from examples.sut.broker_fanout.scope import unknown_members

ROOT = Path(__file__).resolve().parents[3]  # the repository: children import from there


class ScopeIn(BaseModel):
    channels: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    stores: list[str] = Field(default_factory=list)


class PromotionIn(BaseModel):
    """The canonical promotion; only what the fan-out reads is checked, the rest travels."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)
    version: int = Field(default=1, ge=1)
    scope: ScopeIn


class RollbackIn(ScopeIn):
    deadline: float | None = Field(default=None, ge=0)


class ReplayIn(BaseModel):
    promo: str | None = None


def create_app(redis_url: str, estate: str) -> FastAPI:
    app = FastAPI(title="broker fan-out")
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    listing: list[dict[str, Any]] = []
    clock = broker.EstateClock(estate)
    http = httpx.AsyncClient(timeout=10.0)

    async def endpoints() -> list[dict[str, Any]]:
        if not listing:
            reply = await http.get(f"{estate}/estate/endpoints")
            reply.raise_for_status()
            listing.extend(reply.json()["endpoints"])
        return listing

    async def promotion(promo: str) -> dict[str, Any]:
        text = await r.get(broker.promo_key(promo))
        if text is None:
            raise HTTPException(404, f"unknown promotion {promo!r}")
        return dict(json.loads(text))

    async def checked(scope: ScopeIn) -> dict[str, list[str]]:
        bad = unknown_members(scope.model_dump(), await endpoints())
        if bad:
            detail = [
                {
                    "loc": ["body", field],
                    "msg": f"unknown {field.rstrip('s')} {name!r}",
                    "type": "unknown_scope_member",
                    "input": name,
                }
                for field, name in bad
            ]
            raise HTTPException(422, detail)
        return {"channels": scope.channels, "regions": scope.regions, "stores": scope.stores}

    async def publish_event(fields: dict[str, Any]) -> str:
        return str(await r.xadd(broker.STREAM, fields))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        await r.ping()
        return {"ok": True}

    @app.post("/promotions", status_code=201)
    async def create(body: PromotionIn) -> dict[str, Any]:
        await r.set(broker.promo_key(body.id), body.model_dump_json())
        return {"id": body.id, "version": body.version}

    @app.post("/promotions/{promo}/publish", status_code=202)
    async def publish(promo: str, body: ScopeIn | None = None) -> dict[str, Any]:
        p = await promotion(promo)
        sub = await checked(body or ScopeIn())
        event = await publish_event(
            {
                "kind": "publish",
                "op": "apply",
                "promo": promo,
                "version": p["version"],
                "own_scope": json.dumps(p["scope"]),
                "scope": json.dumps(sub),
                "payload": json.dumps(p),
            }
        )
        return {"id": promo, "event": event}

    @app.post("/promotions/{promo}/rollback", status_code=202)
    async def rollback(promo: str, body: RollbackIn | None = None) -> dict[str, Any]:
        p = await promotion(promo)
        sub = await checked(body or RollbackIn())
        event = await publish_event(
            {
                "kind": "rollback",
                "op": "revoke",
                "promo": promo,
                "version": p["version"] + 1,  # the tombstone: newer than the applied v
                "own_scope": json.dumps(p["scope"]),
                "scope": json.dumps(sub),
            }
        )
        return {"id": promo, "event": event}

    @app.get("/dead-letters")
    async def dead_letters(promo: str | None = None) -> dict[str, Any]:
        rows = [
            {"id": entry, **fields}
            for entry, fields in await r.xrange(broker.DEAD)
            if promo is None or fields["promo"] == promo
        ]
        return {"dead_letters": rows}

    @app.post("/dead-letters/replay", status_code=202)
    async def replay(body: ReplayIn | None = None) -> dict[str, Any]:
        """Re-publish the dead letters (of one promotion): per endpoint only its newest
        decision (a revoke v+1 beats an apply v), one replay event per (promo, op, version)
        naming its endpoints. The replayed dead letters leave the stream."""
        promo = (body.promo if body else None) or None  # "": every promotion
        newest: dict[tuple[str, str], tuple[int, str, str]] = {}
        replayed: list[str] = []
        for entry, f in await r.xrange(broker.DEAD):
            if promo is not None and f["promo"] != promo:
                continue
            replayed.append(entry)
            key, version = (f["promo"], f["endpoint"]), int(f["version"])
            if key not in newest or version > newest[key][0]:
                newest[key] = (version, f["op"], f["endpoint"])
        batches: dict[tuple[str, str, int], list[str]] = {}
        for (p_id, _), (version, op, endpoint) in newest.items():
            batches.setdefault((p_id, op, version), []).append(endpoint)
        events = []
        for (p_id, op, version), eps in sorted(batches.items()):
            p = await promotion(p_id)
            fields = {"kind": "replay", "op": op, "promo": p_id, "version": version}
            fields |= {"only": json.dumps(sorted(eps))}
            if op == "apply":
                fields["payload"] = json.dumps(p)
            events.append(await publish_event(fields))
        if replayed:
            await r.xdel(broker.DEAD, *replayed)
        return {"replayed": len(newest), "events": events}

    @app.post("/acks")
    async def acks(body: dict[str, Any]) -> dict[str, bool]:
        """The estate's webhook: an accepted delivery took effect."""
        endpoint, promo = body.get("endpoint"), body.get("promo")
        if isinstance(endpoint, str) and isinstance(promo, str):
            state = "revoked" if body.get("op") == "revoke" else "acked"
            await r.hset(broker.view_key(promo), endpoint, state)
            at = await clock.now(http) if state == "acked" else None
            if at is not None:
                await r.hsetnx(broker.acked_key(promo), endpoint, at)
        return {"ok": True}

    @app.get("/promotions/{promo}")
    async def view(promo: str) -> dict[str, Any]:
        """What this system believes, per endpoint: its state (acked, accepted — awaiting
        its webhook —, revoked after an acked apply, withdrawn — revoked, never acked —,
        dead) and ``at``, the scenario time the apply was acknowledged."""
        states = await r.hgetall(broker.view_key(promo))
        acked = await r.hgetall(broker.acked_key(promo))
        rows = []
        for endpoint, state in sorted(states.items()):
            at = float(acked[endpoint]) if endpoint in acked else None
            if state == "revoked" and at is None:
                state = "withdrawn"
            rows.append({"endpoint": endpoint, "state": state, "at": at})
        return {"id": promo, "endpoints": rows}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return await read_stats(r)

    @app.on_event("shutdown")
    async def close() -> None:
        await http.aclose()
        await r.aclose()

    return app


async def read_stats(r: aioredis.Redis) -> dict[str, Any]:
    groups = {}
    for channel in broker.CHANNELS:
        consumers = await r.xinfo_consumers(broker.STREAM, broker.group(channel))
        groups[channel] = {c["name"]: c["pending"] for c in consumers}
    counters = {k: int(v) for k, v in (await r.hgetall(broker.STATS)).items()}
    return {"counters": counters, "pending": groups, "dead": await r.xlen(broker.DEAD)}


def spawn_consumers(args: argparse.Namespace, redis_url: str) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    procs = []
    for i in range(1, args.consumers + 1):
        argv = [sys.executable, "-m", "examples.sut.broker_fanout.consumer", "--name", f"c{i}"]
        argv += ["--redis-url", redis_url, "--estate", args.estate, "--speed", str(args.speed)]
        argv += ["--seed", str(args.seed), "--max-attempts", str(args.max_attempts)]
        argv += ["--lease", str(args.lease), "--state-dir", str(args.state_dir)]
        argv += ["--crash-after", args.crash_after]
        with open(args.state_dir / f"consumer-c{i}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=broker.die_with_parent,
                )
            )
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9330)
    parser.add_argument("--estate", default="http://127.0.0.1:8701")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--redis-url", default="", help="an existing Redis; else one is started")
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--max-attempts", type=int, default=20)
    parser.add_argument("--lease", type=float, default=3.0, help="wall s before a claim")
    parser.add_argument("--state-dir", type=Path, default=Path("broker-fanout"))
    parser.add_argument("--crash-after", default="", help="test hook, e.g. pos:3")
    args = parser.parse_args()
    if args.speed <= 0 or args.consumers < 1 or args.max_attempts < 1:
        parser.error("--speed, --consumers and --max-attempts must be positive")
    args.estate = args.estate.rstrip("/")
    args.state_dir.mkdir(parents=True, exist_ok=True)
    server = None
    redis_url = args.redis_url
    if not redis_url:
        try:
            server, redis_url = broker.start_redis(args.state_dir)
        except (OSError, RuntimeError) as exc:
            sys.exit(f"broker fan-out: cannot start redis-server: {exc}")
    sync = redis.Redis.from_url(redis_url, decode_responses=True)
    consumers: list[subprocess.Popen[bytes]] = []
    try:
        broker.create_groups(sync)
        consumers = spawn_consumers(args, redis_url)
        app = create_app(redis_url, args.estate)
        # uvicorn re-raises the SIGTERM that stopped it: make that an exit through
        # ``finally`` (consumers, stats, redis-server), not an abrupt death.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        for proc in consumers:
            broker.stop(proc)
        try:
            stats = asyncio.run(_final_stats(redis_url))
            (args.state_dir / "stats.json").write_text(json.dumps(stats, indent=1))
        except redis.RedisError:
            pass
        sync.close()
        if server is not None:
            broker.stop(server)


async def _final_stats(url: str) -> dict[str, Any]:
    r = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await read_stats(r)
    finally:
        await r.aclose()


if __name__ == "__main__":
    main()
