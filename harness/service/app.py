"""``create_app``: the orchestrator's HTTP API around a running ``LiveRuntime``.

HTTP <-> events: each governed command becomes one orchestrator event handed to
``runtime.submit``; reads go to the orchestrator's read-only views and the runtime's
records. The app does not start or stop the runtime: whoever runs the server does
(``await runtime.start()`` on the server's loop before serving, ``close()`` after).

Status codes: 401 missing/unknown key (``WWW-Authenticate: ApiKey``), 403 wrong role,
429 over the key's rate (``Retry-After``), 413 body over ``max_body``, 422 invalid body
or parameter (``loc`` names the field; NaN, ±Infinity and integers beyond 64 bits
included, see ``bodycheck``), 404 unknown promotion, 409 a command the promotion's state
does not allow, or an acknowledgement of no delivery sent and awaiting it (journalled as
stale). A refused request changes nothing. Every error body is JSON, a 500 included.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from harness import selfwatch
from harness.domain.lifecycle import IllegalTransition
from harness.domain.scope import UnknownScopeMember
from harness.orchestrator.core import UnknownPromotion
from harness.runtime.live import Unjournalable
from harness.runtime.store import NotDurable
from harness.service import metrics as metrics_routes
from harness.service import routes, routes_ops
from harness.service.auth import KeyRing, RateLimiter
from harness.service.dashboard import router as dashboard_router
from harness.service.deps import ServiceState
from harness.service.metrics import ServiceMetrics
from harness.service.middleware import Guard
from harness.service.models import Health
from harness.service.views import Runtime

__all__ = ["create_app"]

DESCRIPTION = """Governed promotion services of the promoharness reference orchestrator.

Every route but `/healthz` needs an `X-API-Key` header; the key's role decides what it
may do: merchandiser (create, submit, validate), approver (validate, approve, reject),
operator (schedule, publish, pause, resume, rollback, end, replay dead letters), finance
(settle, reconcile), viewer (read), channel (acknowledge its own channel's deliveries).
Any key may read. Times are scenario seconds.
"""


def create_app(
    runtime: Runtime,
    keys: KeyRing,
    *,
    rate: float = 50.0,
    burst: int = 100,
    max_body: int = 256 * 1024,
) -> FastAPI:
    """The API for ``runtime``: ``rate``/``burst`` per key (token bucket), bodies up to
    ``max_body`` bytes."""
    app = FastAPI(
        title="promoharness orchestrator",
        version="1",
        description=DESCRIPTION,
    )
    app.state.service = ServiceState(runtime, keys, RateLimiter(rate, burst))
    app.state.metrics = ServiceMetrics(runtime.stats)
    app.add_middleware(Guard, max_body=max_body, metrics=app.state.metrics)

    @app.exception_handler(IllegalTransition)
    async def illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "state": exc.state, "event": exc.event}, status_code=409
        )

    @app.exception_handler(UnknownScopeMember)
    async def unknown_scope(_: Request, exc: UnknownScopeMember) -> JSONResponse:
        # Shaped like pydantic's 422 so clients read every validation error one way.
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body", exc.field],
                        "msg": str(exc),
                        "type": "unknown_scope_member",
                        "input": exc.value,
                    }
                ]
            },
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, made sure to be JSON: an error echoes its input, and an
        # input Python's parser allowed (a non-finite float in a query, say) is not JSON.
        return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(NotDurable)
    async def not_durable(_: Request, exc: NotDurable) -> JSONResponse:
        # The journal refused the event, so nothing changed: the client may try again
        # (503), unless the event itself can never be stored (422, e.g. a 2**64 version).
        if isinstance(exc, Unjournalable):
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": str(exc), "type": "unjournalable"}]},
                status_code=422,
            )
        return JSONResponse(
            {"detail": f"not stored, nothing changed: {exc}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(UnknownPromotion)
    async def unknown(_: Request, exc: UnknownPromotion) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow names only the first route matching the path; a path with
            # a GET route and a POST route (/v1/promotions) must list both.
            exc = HTTPException(405, exc.detail, {"Allow": _allowed(request)})
        return await http_exception_handler(request, exc)

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "now": runtime.now()}

    app.include_router(routes.router)
    app.include_router(routes_ops.router)
    app.include_router(metrics_routes.router)
    app.include_router(dashboard_router)
    selfwatch.install(app, "orchestrator")  # GET /_harness/lag: the service's own loop lag
    return app


_ROUTERS = (routes.router, routes_ops.router, metrics_routes.router)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its text ("nan", "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _allowed(request: Request) -> str:
    """Every method some route of the request's path takes."""
    methods: set[str] = set()
    # The routers' own routes rather than the app's: how FastAPI nests included routers
    # has changed across versions, the routers' lists of APIRoutes have not.
    candidates = [*request.app.routes, *(r for router in _ROUTERS for r in router.routes)]
    for route in candidates:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
