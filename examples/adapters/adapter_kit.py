"""A thin FastAPI layer serving one simulator model as a channel adapter (contract 1.0.0).

Every example adapter in this folder is ``create_adapter_app(model, token=...)`` over one
of the simulator models (``PosStore``, ``EcommerceSite``, ``LoyaltyService``,
``Marketplace``); the faulty ones only change the model's profile or dialect. Decisions
(version rule, idempotency, stale versions) stay in ``simulators/endpoint.py``; this layer
adds the contract's HTTP surface: bearer auth, ``POST /promotions`` (200, or 202 and an
ack webhook to ``X-Callback-URL`` after the model's ``ack_delay``), ``POST /price?at=``,
``GET /health``. ``serve(app, port)`` runs it on 127.0.0.1 (``main()`` parses
``--port P --token T``).

A non-idempotent model (``idempotent=False``) stores a promotion twice when it is applied
twice; this layer prices such a double copy as two promotions, as a broken channel would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from harness.certify.wire import CONTRACT_VERSION, DeliveryBody
from harness.domain.basket import Basket
from harness.domain.pricing import price_basket
from simulators.endpoint import EndpointModel
from simulators.endpoint import Request as Delivery
from simulators.profiles import Latency, Profile

HOST = "127.0.0.1"


def adapter_profile(*, ack_delay: float | None = None, **faults: Any) -> Profile:
    """A fault-free profile (fast, no random errors) with the given fault flags."""
    delay = None if ack_delay is None else Latency.fixed(ack_delay)
    return Profile("adapter", latency=Latency.fixed(0.002), capacity=64, ack_delay=delay, **faults)


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _price(model: EndpointModel, basket: Basket, at: dt.datetime) -> dict[str, Any]:
    promos = list(model.promotions())
    for p in list(promos):  # a non-idempotent channel holds (and applies) copies
        for n in range(2, model.copies(p.id) + 1):
            promos.append(p.model_copy(update={"id": f"{p.id}~{n}"}))
    store = model.store_context() if hasattr(model, "store_context") else None
    receipt = price_basket(
        basket,
        promos,
        channel=model.channel,
        at=at,
        store=store,  # type: ignore[arg-type]
        dialect=getattr(model, "dialect", None),
    )
    body = receipt.model_dump(mode="json")
    body["active"] = [f"{p}@{v}" for p, v in sorted(model.active().items())]
    return body


def create_adapter_app(
    model: EndpointModel, *, token: str, callback_key: str = "", seed: int = 0
) -> FastAPI:
    """The contract's routes over ``model``; every route requires ``Bearer token``."""
    app = FastAPI(title=f"{model.channel} adapter ({model.id})", docs_url=None, redoc_url=None)
    rng = random.Random(seed)
    t0 = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    clients: list[httpx.AsyncClient] = []  # one, made lazily in the serving loop

    def now() -> float:
        return time.monotonic() - t0

    @app.middleware("http")
    async def auth(request: Request, call_next: Callable[..., Any]) -> Any:
        if request.headers.get("authorization") != f"Bearer {token}":
            return _error(401, "missing or wrong bearer token")
        return await call_next(request)

    async def settle(url: str | None, key: str, d: Delivery, due: float) -> None:
        await asyncio.sleep(max(0.0, due - now()))
        changes = model.settle(d, now())
        if not url:
            return
        detail = "applied" if changes else "no change (stale or duplicate)"
        body = {"endpoint": model.id, "promo": d.promo, "version": d.version, "op": d.op}
        if not clients:
            clients.append(httpx.AsyncClient(timeout=30.0))
        for _ in range(3):
            try:
                await clients[0].post(
                    url, json={**body, "detail": detail}, headers={"X-API-Key": key}
                )
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)

    @app.post("/promotions")
    async def deliver(request: Request) -> JSONResponse:
        try:
            body = DeliveryBody.model_validate_json(await request.body())
        except ValidationError as exc:
            return _error(
                422, exc.errors(include_url=False, include_context=False, include_input=False)
            )
        if request.headers.get("idempotency-key") != body.idempotency_key:
            return _error(422, "header Idempotency-Key must equal the body's idempotency_key")
        d = Delivery(
            body.delivery_id,
            body.idempotency_key,
            body.op,
            body.promo,
            body.version,
            body.attempt,
            body.payload,
        )
        plan = model.plan(d, now(), rng)
        if plan.status in (429, 503):
            headers = {"Retry-After": f"{plan.retry_after or 1:g}"}
            return _error(plan.status, plan.detail or plan.outcome, headers)
        if plan.status == 422:
            return _error(422, plan.detail)
        if plan.status not in (200, 202):
            return _error(503, plan.detail or "unavailable")
        await asyncio.sleep(plan.service_time)
        newest_before = model._newest.get(body.promo, 0)
        changes = model.complete(d, plan, now())
        if plan.detail == "duplicate":
            outcome = "duplicate"
        elif plan.ack_delay is not None:
            outcome = "accepted"
            url = request.headers.get("x-callback-url")
            key = request.headers.get("x-callback-key", callback_key)
            task = asyncio.create_task(settle(url, key, d, now() + plan.ack_delay))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif not changes and body.op == "apply" and body.version <= newest_before:
            outcome = "stale"
        else:
            outcome = "ok"
        return JSONResponse({"outcome": outcome, "detail": plan.detail}, status_code=plan.status)

    @app.post("/price")
    async def price(request: Request, at: str | None = None) -> JSONResponse:
        try:
            basket = Basket.model_validate_json(await request.body())
            when = dt.datetime.now(dt.UTC) if at is None else dt.datetime.fromisoformat(at)
        except ValidationError as exc:
            return _error(
                422, exc.errors(include_url=False, include_context=False, include_input=False)
            )
        except ValueError as exc:
            return _error(422, f"at: {exc}")
        if when.tzinfo is None:
            return _error(422, "at: give an offset (e.g. 2026-06-01T09:00:00+00:00)")
        return JSONResponse(_price(model, basket, when))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        store = None
        if model.channel == "pos":
            tz = model.timezone  # type: ignore[attr-defined]
            store = {"id": model.id, "region": model.region, "timezone": tz}
        return {"ok": True, "channel": model.channel, "contract": CONTRACT_VERSION, "store": store}

    return app


def serve(app: FastAPI, port: int) -> None:
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


def main(factory: Callable[[str], FastAPI], argv: list[str] | None = None) -> None:
    """``python <adapter>.py --port P --token T``: serve ``factory(token)`` on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=factory.__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default="secret")
    args = parser.parse_args(argv)
    serve(factory(args.token), args.port)
