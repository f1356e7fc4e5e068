"""A naive point-to-point promotion relay: how first integrations are really written.

A system under test for promoharness (driver: ``naive-relay.yaml``), deliberately written
without the reference orchestrator. Every change goes to every endpoint the estate lists,
each in its own task, retried every second (fixed, no jitter, no budget, no breaker)
until it succeeds or 120 attempts have failed. It ignores versions (everything is
version 1) and treats any rollback, whatever its scope, as "take it off everywhere".

Run it against an estate (``promoharness estate SCENARIO``, or ``live --sut``):

    python examples/sut/naive_relay.py --port 9310 --estate http://127.0.0.1:8701 --speed 20

``--speed`` is the estate's: the relay's one-second retry pause and ten-second timeout
are scenario seconds, like every time the estate models.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

RETRY_PAUSE_S = 1.0
TIMEOUT_S = 10.0
MAX_ATTEMPTS = 120


def create_app(estate: str, speed: float) -> FastAPI:
    app = FastAPI(title="naive relay")
    promotions: dict[str, dict[str, Any]] = {}
    tasks: set[asyncio.Task[None]] = set()
    client = httpx.AsyncClient(timeout=TIMEOUT_S / speed)

    async def endpoints() -> list[dict[str, Any]]:
        r = await client.get(f"{estate}/estate/endpoints")
        r.raise_for_status()
        return list(r.json()["endpoints"])

    async def deliver(url: str, promo: str, op: str) -> None:
        body = {
            "delivery_id": f"{promo}-{op}",
            "idempotency_key": str(uuid.uuid4()),  # a new key every time: "it's a retry"
            "op": op,
            "promo": promo,
            "version": 1,
            "payload": promotions.get(promo) if op == "apply" else None,
        }
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body["attempt"] = attempt
            try:
                r = await client.post(url, json=body)
                if r.status_code < 300:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(RETRY_PAUSE_S / speed)

    async def fan_out(promo: str, op: str) -> None:
        for ep in await endpoints():
            task = asyncio.create_task(deliver(ep["delivery_url"], promo, op))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/promotions", status_code=201)
    async def create(request: Request) -> dict[str, str]:
        body = await request.json()
        promotions[body["id"]] = body
        return {"id": body["id"]}

    @app.post("/promotions/{promo}/publish", status_code=202)
    async def publish(promo: str) -> dict[str, str]:
        await fan_out(promo, "apply")  # the scope? every endpoint gets everything
        return {"id": promo}

    @app.post("/promotions/{promo}/rollback", status_code=202)
    async def rollback(promo: str) -> dict[str, str]:
        await fan_out(promo, "revoke")  # a region rollback? take it off everywhere
        return {"id": promo}

    @app.post("/acks")
    async def acks() -> dict[str, bool]:
        return {"ok": True}  # webhooks are received and ignored

    @app.on_event("shutdown")
    async def close() -> None:
        for task in list(tasks):
            task.cancel()
        await client.aclose()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9310)
    parser.add_argument("--estate", default="http://127.0.0.1:8701")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    app = create_app(args.estate.rstrip("/"), args.speed)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
