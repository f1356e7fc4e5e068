"""FastAPI apps serving every endpoint model of an estate over HTTP, on the wall clock.

``create_sim_app(world)`` (any ``simulators.served.ServedEstate``, a scenario's ``World``
for one) is the asyncio twin of the server side of
``harness/runtime/sim.py``: one app hosts the ERP, every POS store, the web shop, loyalty
and the marketplace; latencies are real sleeps (virtual seconds / ``speed``), capacity is
a semaphore per endpoint, and every decision comes from the same pure models
(``simulators/endpoint.py``; the asyncio runtime is ``app_runtime.py``, fault switching
``app_admin.py``, the delivery path served ahead of FastAPI ``app_delivery.py``).
``run_sim_server(app)`` serves it in-process on 127.0.0.1: it binds the socket itself (a
port in use is an ``OSError`` for the caller, not uvicorn's ``sys.exit`` inside a task)
and returns once the server accepts connections.

Routes (bodies and answers are JSON):

* deliveries — ``POST /stores/{store_id}/promotions``, ``/erp/pricebook``,
  ``/web/promotions``, ``/loyalty/promotions``, ``/marketplace/offers`` and the uniform
  ``/endpoints/{endpoint_id}/deliveries``; body ``DeliveryBody``. Answers: 200
  ``{"outcome":"ok"}``, 202 ``{"outcome":"accepted"}``, 429 ``{"outcome":"throttled",
  "retry_after": s}`` + ``Retry-After``, 503 ``{"outcome":"unavailable","detail"}``, 500
  ``{"outcome":"error"}``, 422 ``{"outcome":"rejected","detail": reason}``; a hang or a
  lost reply never answers (the client times out). Unknown store/endpoint: 404.
* ``POST /erp/validate`` (a canonical promotion) -> ``{"ok", "reasons"}``, through the
  ERP's front door (429 / 503 like a delivery).
* ``GET /marketplace/offers/{promo}`` -> ``{"promo","state","version","pending_op",
  "pending_version"}`` (a poll; it meets the marketplace's rate limit and outages).
* ground truth — ``GET /truth?since=N[&limit=L]`` -> ``{"next", "records"}``,
  ``GET /truth/active`` -> ``{endpoint: {promo: version}}``, ``GET /truth/inventory`` ->
  ``{"records"}`` (inventory and scheduled outages, as the SimPy run writes at t=0).
* admin — ``POST /admin/faults`` (``FaultSwitchBody``) -> ``{"kind","on","targets"}``;
  ``GET /admin/endpoints``; ``GET /healthz`` -> ``{"ok": true}``.

Times on the wire (record ``t``, ``Retry-After``, ``retry_after``) are scenario seconds,
like everything the models decide; at ``speed`` != 1 a client honouring Retry-After must
scale it as the orchestrator's own clock does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from harness.domain.basket import Basket
from harness.domain.promotion import Promotion
from simulators import app_loop_lag
from simulators.app_admin import FaultSwitch, FaultSwitchBody
from simulators.app_contract import ROUTE_RESPONSES, estate_openapi
from simulators.app_delivery import (
    DeliveryBody,
    EstateApp,
    Resolver,
    deliveries_first,
    delivery_handler,
)
from simulators.app_runtime import SimState, record_dict
from simulators.endpoint import EndpointModel
from simulators.served import ServedEstate

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["HOST", "DeliveryBody", "SimServer", "create_sim_app", "run_sim_server"]

HOST = "127.0.0.1"  # loopback by default: these apps are test doubles, not services
ANY_HOSTS = frozenset({"0.0.0.0", "::"})  # every interface: only when a user asks (--bind)


def reachable_host(bind: str) -> str:
    """The host name others reach a server bound to ``bind`` by: the address itself, or
    this machine's name (``socket.getfqdn()``) when bound to every interface."""
    return socket.getfqdn() if bind in ANY_HOSTS else bind


def create_sim_app(
    world: ServedEstate,
    *,
    callback_url: str | None = None,
    callback_key: str | Mapping[str, str] = "",
    speed: float = 1.0,
    t0: float | None = None,
    admin_token: str | None = None,
    component: str = "estate",
) -> FastAPI:
    """One app serving every endpoint model of ``world``.

    ``speed``: virtual seconds per wall second (10 runs a scenario ten times faster).
    ``t0``: the ``time.monotonic()`` instant that is scenario t=0 (share it with the
    orchestrator so both clocks agree); by default the moment the server starts.
    ``callback_url`` / ``callback_key``: where asynchronous endpoints push their webhook
    acks (header ``X-API-Key``); without a URL nothing is pushed until a system under test
    declares its own (``PUT /admin/callbacks/{channel}``).
    ``admin_token``: when set, ground truth and the admin API answer only a request
    carrying ``Authorization: Bearer <token>`` (401 otherwise).
    ``component``: the name its event-loop lag is reported under (``app_loop_lag``,
    ``GET /_harness/lag``), e.g. ``estate-shard-1``.
    """
    state = SimState(
        world, callback_url=callback_url, callback_key=callback_key, speed=speed, t0=t0
    )
    faults = FaultSwitch(state)
    models = state.models
    estate = world.estate

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = EstateApp(
        title="promoharness endpoint simulators",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.sim = state
    app.state.faults = faults
    app_loop_lag.install(app, component)  # the harness watches its own estate's loop
    # /openapi.json is the estate's published contract (simulators/app_contract.py).
    app.openapi = lambda: estate_openapi(app)  # type: ignore[method-assign]

    # --- deliveries ------------------------------------------------------------------------
    # Plain Starlette routes, not FastAPI ones: the fan-out hot path skips FastAPI's
    # dependency machinery (about a third of the server's CPU per request) and validates
    # the raw bytes in one pydantic call; errors keep FastAPI's 422 shape.

    def by_path(param: str, channel: str | None) -> Resolver:
        def resolve(request: StarletteRequest) -> EndpointModel | None:
            model = models.get(request.path_params[param])
            return model if channel is None or (model and model.channel == channel) else None

        return resolve

    def fixed(model: EndpointModel) -> Resolver:
        # A shard (simulators.served.EstateSlice) may not hold this central endpoint.
        served = model if model.id in models else None
        return lambda _: served

    routes: list[tuple[str, Resolver]] = [
        ("/stores/{store_id}/promotions", by_path("store_id", "pos")),
        ("/erp/pricebook", fixed(estate.erp)),
        ("/web/promotions", fixed(estate.web)),
        ("/loyalty/promotions", fixed(estate.loyalty)),
        ("/marketplace/offers", fixed(estate.marketplace)),
        ("/endpoints/{endpoint_id}/deliveries", by_path("endpoint_id", None)),
    ]
    for path, resolve in routes:
        app.add_route(path, delivery_handler(state, resolve), methods=["POST"])
    deliveries_first(app, [(path, delivery_handler(state, resolve)) for path, resolve in routes])

    # --- shelf prices and checkouts ---------------------------------------------------------

    pricers = {m.id: m for m in models.values() if hasattr(m, "price")}

    async def price_at(model: EndpointModel | None, basket: Basket, checkout: bool) -> Any:
        if model is None or model.id not in pricers:
            raise HTTPException(404, "no such pricing endpoint (a store, web or the marketplace)")
        now = state.clock.now()
        at = world.start + dt.timedelta(seconds=now)
        receipt = model.price(basket, at)  # type: ignore[attr-defined]
        if checkout:
            state.sale(model, receipt, now)
        body = receipt.model_dump(mode="json")
        body["at"] = now
        body["endpoint"] = model.id
        body["active"] = [f"{p}@{v}" for p, v in sorted(model.active().items())]
        return body

    @app.post("/stores/{store_id}/price", **doc("price", "price_store"))
    async def store_price(store_id: str, basket: Basket, checkout: bool = False) -> Any:
        model = models.get(store_id)
        return await price_at(model if model and model.channel == "pos" else None, basket, checkout)

    @app.post("/web/price", **doc("price", "price_web"))
    async def web_price(basket: Basket, checkout: bool = False) -> Any:
        return await price_at(estate.web, basket, checkout)

    @app.post("/marketplace/price", **doc("price", "price_marketplace"))
    async def marketplace_price(basket: Basket, checkout: bool = False) -> Any:
        return await price_at(estate.marketplace, basket, checkout)

    @app.post("/endpoints/{endpoint_id}/price", **doc("price", "price"))
    async def endpoint_price(endpoint_id: str, basket: Basket, checkout: bool = False) -> Any:
        return await price_at(models.get(endpoint_id), basket, checkout)

    @app.post("/erp/validate", **doc("validate", "erp_validate"))
    async def erp_validate(promotion: Promotion) -> Response | dict[str, Any]:
        if estate.erp.id not in models:
            raise HTTPException(404, "the ERP is served by another estate shard")
        result = await state.validate(promotion)
        if isinstance(result, Response):
            return result
        ok, reasons = result
        return {"ok": ok, "reasons": list(reasons)}

    @app.get("/marketplace/offers/{promo}", **doc("poll", "marketplace_poll"))
    async def marketplace_poll(promo: str) -> Response | dict[str, Any]:
        if estate.marketplace.id not in models:
            raise HTTPException(404, "the marketplace is served by another estate shard")
        return await state.poll(promo)

    # --- the estate's own description --------------------------------------------------------

    @app.get("/clock", **doc("clock", "clock"))
    async def clock() -> dict[str, Any]:
        now = state.clock.now()
        at = world.start + dt.timedelta(seconds=now)
        return {"t": now, "at": at.isoformat(), "speed": state.clock.speed}

    @app.get("/estate/endpoints", **doc("listing", "endpoints"))
    async def estate_endpoints(request: StarletteRequest) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"endpoints": [listing(m, base) for m in world.delivery_models]}

    # --- ground truth (admin token) --------------------------------------------------------

    admin = [Depends(admin_guard(admin_token))]

    @app.get("/truth", dependencies=admin, **doc("truth", "truth"))
    async def truth(
        since: int = Query(0, ge=0), limit: int | None = Query(None, ge=1)
    ) -> dict[str, Any]:
        records = state.records
        end = len(records) if limit is None else min(len(records), since + limit)
        chunk = records[since:end]
        return {"next": since + len(chunk), "records": [record_dict(r) for r in chunk]}

    @app.get("/truth/active", dependencies=admin, **doc("truth_active", "truth_active"))
    async def truth_active() -> dict[str, dict[str, int]]:
        return {m.id: m.active() for m in world.delivery_models}

    @app.get("/truth/inventory", dependencies=admin, **doc("truth_inventory", "truth_inventory"))
    async def truth_inventory() -> dict[str, Any]:
        return {"records": [record_dict(r) for r in state.inventory]}

    # --- admin -----------------------------------------------------------------------------

    @app.post("/admin/faults", dependencies=admin, **doc("faults", "switch_fault"))
    async def admin_faults(body: FaultSwitchBody) -> dict[str, Any]:
        try:
            spec = body.spec()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            targets = faults.switch(spec, body.on)
        except LookupError as exc:
            raise HTTPException(422, str(exc.args[0])) from None
        return {"kind": body.kind, "on": body.on, "targets": [m.id for m in targets]}

    @app.put(
        "/admin/callbacks/{channel}", dependencies=admin, **doc("callbacks", "declare_callback")
    )
    async def admin_callback(channel: str, body: CallbackBody) -> dict[str, Any]:
        channels = {m.channel for m in world.delivery_models if m.ack_via == "push"}
        if channel not in channels:
            raise HTTPException(
                422, f"channel {channel!r} sends no webhooks; those that do: {sorted(channels)}"
            )
        state.set_callback(channel, body.url, body.headers)
        return {"channel": channel, "url": body.url}

    @app.get("/admin/endpoints", dependencies=admin, **doc("admin_endpoints", "admin_endpoints"))
    async def admin_endpoints() -> list[dict[str, Any]]:
        return faults.endpoints()

    @app.get("/healthz", **doc("healthz", "healthz"))
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


class CallbackBody(BaseModel):
    """Where a channel's asynchronous acknowledgements go, and with which headers."""

    url: str = Field(pattern=r"^https?://", max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict)


def doc(answers: str, operation_id: str) -> dict[str, Any]:
    """The contract of one FastAPI route: its answers documented, the code unchanged (no
    response model: the handlers build their answers, some as ready ``Response``s)."""
    return {
        "response_model": None,
        "responses": ROUTE_RESPONSES[answers],
        "operation_id": operation_id,
    }


def admin_guard(token: str | None) -> Callable[[StarletteRequest], None]:
    """A dependency refusing requests without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}" if token else None

    def check(request: StarletteRequest) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(
                401, "ground truth and the admin API need Authorization: Bearer <admin token>"
            )

    return check


def listing(model: EndpointModel, base: str) -> dict[str, Any]:
    """One endpoint as the contract lists it: where to deliver and how it acknowledges."""
    acks = {"reply": "in_reply", "push": "webhook", "poll": "polled"}[model.ack_via]
    row: dict[str, Any] = {
        "id": model.id,
        "channel": model.channel,
        "region": model.region or None,
        "store": model.store or None,
        "timezone": getattr(model, "timezone", None),
        "delivery_url": f"{base}/endpoints/{model.id}/deliveries",
        "acknowledges": acks,
        "mode": model.mode,
    }
    version = getattr(model, "version", None)
    if model.mode == "batch" and version is not None:
        # A batch store picks updates up every poll_interval s from its own phase.
        row["batch_window"] = {
            "every_seconds": version.poll_interval,
            "offset_seconds": getattr(model, "poll_offset", 0.0),
        }
    return row


# --- serving in-process ------------------------------------------------------------------


class SimServer(uvicorn.Server):
    """A uvicorn server embedded in a running event loop (``run_sim_server``).

    It leaves signal handling to the host program, wakes hung requests before shutting
    down (uvicorn would otherwise wait for them, an hour of virtual time), and knows its
    port and serving task.
    """

    def __init__(self, config: uvicorn.Config, state: SimState | None) -> None:
        super().__init__(config)
        self.sim = state
        self.port = 0
        self.host = HOST  # the host name in ``url`` (``reachable_host`` of the bind address)
        self.task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.sim is None:
            await super().shutdown(sockets)
            return
        self.sim.release()
        # Deliveries still queued for a store's capacity or in their modelled service when
        # the stack stops are of no interest (the run's records were taken): end them now.
        # Left to uvicorn, each one waited out the 10 s graceful timeout and was then
        # cancelled with a traceback logged per request (hundreds at the end of a live run).
        for task in list(self.server_state.tasks):
            task.cancel()
        errors = logging.getLogger("uvicorn.error")
        level = errors.level
        errors.setLevel(logging.CRITICAL)  # a cancelled request is no application error here
        try:
            await super().shutdown(sockets)
        finally:
            errors.setLevel(level)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Shut down and wait for it (idempotent)."""
        self.should_exit = True
        if self.task is not None:
            await self.task


async def run_sim_server(app: ASGIApp, port: int = 0, host: str = HOST) -> SimServer:
    """Serve ``app`` on ``host``:``port`` (0: a free port) in a task of the running loop;
    ``host`` is 127.0.0.1 unless a user asked for another (``--bind``).

    Returns once the server accepts connections; ``server.port`` / ``server.url`` tell
    where, ``await server.stop()`` ends it. The socket is bound here, so a port in use is
    an ``OSError`` for the caller rather than uvicorn's ``sys.exit``.
    """
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP; without it a response written in two parts waits out the client's delayed ACK
    # (about 40 ms a request on loopback).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        host=host,
        port=sock.getsockname()[1],
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_graceful_shutdown=10,
    )
    state = getattr(getattr(app, "state", None), "sim", None)
    server = SimServer(config, state)
    server.port = sock.getsockname()[1]
    server.host = reachable_host(host)
    server.task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if server.task.done():
            sock.close()
            server.task.result()  # raises what stopped it
            raise RuntimeError("the simulator server stopped during start-up")
        await asyncio.sleep(0.01)
    return server
