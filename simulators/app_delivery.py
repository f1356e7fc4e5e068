"""The estate's delivery path: delivery POSTs served ahead of FastAPI, bodies validated once.

A fan-out sends one promotion version to hundreds of endpoints, and the estate's CPU per
delivery was FastAPI's (dependency machinery, the middleware stack, a regex per route)
and pydantic's (the same payload validated for every store). ``deliveries_first`` serves
the delivery routes of ``simulators.apps.create_sim_app`` ahead of FastAPI's routing;
``parse_delivery`` validates a body as ``DeliveryBody.model_validate_json`` would, with the
payload's validation cached by its exact text (``PayloadCache``). Answers keep FastAPI's
shapes: 404 for an unknown endpoint, 422 ``{"detail": [{"loc": ["body", ...]}]}``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from harness.domain.promotion import Promotion
from simulators.app_runtime import SimState, json_response
from simulators.endpoint import EndpointModel, Request

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "DeliveryBody",
    "DeliveryHead",
    "EstateApp",
    "PayloadCache",
    "Resolver",
    "deliveries_first",
    "delivery_handler",
    "parse_delivery",
    "validation_response",
]

Resolver = Callable[[StarletteRequest], EndpointModel | None]


class DeliveryHead(BaseModel):
    """A delivery's fields but its payload (``parse_delivery``)."""

    delivery_id: str
    idempotency_key: str
    op: Literal["apply", "revoke"]
    promo: str
    version: int
    attempt: int = 1


class DeliveryBody(DeliveryHead):
    """One delivery attempt on the wire. Unknown extra fields are ignored on purpose:
    an orchestrator may send more (its own endpoint id, a trace id) than a channel reads."""

    payload: Promotion | None = None

    def request(self) -> Request:
        return Request(
            self.delivery_id,
            self.idempotency_key,
            self.op,
            self.promo,
            self.version,
            self.attempt,
            self.payload,
        )


def delivery_handler(
    state: SimState, resolve: Resolver
) -> Callable[[StarletteRequest], Awaitable[Response]]:
    """A Starlette endpoint: find the model (404), validate the body (422), deliver."""
    payloads = PayloadCache()

    async def handle(request: StarletteRequest) -> Response:
        model = resolve(request)
        if model is None:
            return json_response(404, b'{"detail":"unknown endpoint"}')
        try:
            body = parse_delivery(await request.body(), payloads)
        except ValidationError as exc:
            return validation_response(exc)
        return await state.deliver(model, body.request())

    return handle


_PAYLOAD_KEY = b',"payload":'
_PAYLOAD_ALONE = TypeAdapter(Promotion | None)


class PayloadCache(dict[bytes, Promotion | None]):
    """Validated payloads by their exact JSON text: a fan-out sends one promotion version
    to hundreds of stores, and validating it was most of the estate's CPU per delivery."""

    LIMIT = 256

    def keep(self, text: bytes, payload: Promotion | None) -> None:
        if len(self) >= self.LIMIT:
            self.clear()
        self[text] = payload


def parse_delivery(raw: bytes, cache: PayloadCache) -> DeliveryBody:
    """``DeliveryBody.model_validate_json(raw)``, with the payload's validation cached.

    A body written ``{...,"payload":P}`` (as the live runtime writes it) is split there:
    the quote of ``"payload"`` cannot be inside a JSON string (a string's quotes are
    escaped), so when ``{...}`` validates as the head and ``P`` is a text validated
    before, the body is that head with that payload — exactly what the whole body
    would validate to (a duplicate "payload" key earlier in the head loses to the last
    one, as in the full parse). Anything else is validated whole, as before, with the
    same answers (422 naming the field)."""
    cut = raw.find(_PAYLOAD_KEY)
    text = raw[cut + len(_PAYLOAD_KEY) : -1] if cut > 0 and raw.endswith(b"}") else None
    if text is not None and text in cache:
        try:
            head = DeliveryHead.model_validate_json(raw[:cut] + b"}")
        except ValidationError:
            pass  # the whole body says why, below
        else:
            return DeliveryBody.model_construct(**dict(head), payload=cache[text])
    body = DeliveryBody.model_validate_json(raw)
    if text is not None:
        # The split is only kept if its payload part is a payload by itself.
        with contextlib.suppress(ValidationError):
            cache.keep(text, _PAYLOAD_ALONE.validate_json(text))
    return body


class EstateApp(FastAPI):
    """The estate's FastAPI app, with its delivery POSTs served first (``deliveries_first``)."""

    deliveries: Callable[[Scope, Receive, Send], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.deliveries is None or not await self.deliveries(scope, receive, send):
            await super().__call__(scope, receive, send)


def deliveries_first(app: EstateApp, handlers: list[tuple[str, Any]]) -> None:
    """Serve delivery POSTs ahead of FastAPI's telemetry check, middleware stack and route
    table.

    Every delivery of a fan-out went through the telemetry providers' lookup, the error,
    exception and exit-stack middlewares and a regex match against each route before
    reaching its Starlette endpoint; this looks the path up by its shape
    (``/erp/pricebook`` as written, ``/stores/{store_id}/promotions`` by its first and
    last segment, a parameter being one non-empty segment as Starlette's ``{name}`` is)
    and calls the endpoint at once. An unexpected error answers 500 with a JSON body
    (then propagates, for the server's log) where the error middleware answered plain
    text."""
    fixed: dict[str, Any] = {}
    shaped: dict[tuple[str, str], tuple[str, Any]] = {}
    for path, handler in handlers:
        parts = path.split("/")
        param = [p[1:-1] for p in parts if p.startswith("{")]
        if not param:
            fixed[path] = handler
        else:
            assert len(parts) == 4 and parts[2] == f"{{{param[0]}}}", path
            shaped[(parts[1], parts[3])] = (param[0], handler)

    async def first(scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return False
        path = scope["path"]
        handler = fixed.get(path)
        if handler is not None:
            scope["path_params"] = {}
        else:
            parts = path.split("/")
            found = shaped.get((parts[1], parts[3])) if len(parts) == 4 and parts[2] else None
            if found is None:
                return False
            scope["path_params"] = {found[0]: parts[2]}
            handler = found[1]
        scope["app"] = app
        await _answer(handler, scope, receive, send)
        return True

    app.deliveries = first


async def _answer(handler: Any, scope: Scope, receive: Receive, send: Send) -> None:
    started = False

    async def sending(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        response = await handler(StarletteRequest(scope, receive))
        await response(scope, receive, sending)
    except Exception:
        if not started:
            await json_response(500, b'{"detail":"Internal Server Error"}')(scope, receive, send)
        raise


def validation_response(exc: ValidationError) -> Response:
    """FastAPI's 422 shape: ``{"detail": [{"loc": ["body", field...], "msg", ...}]}``."""
    errors = exc.errors(include_url=False)
    for error in errors:
        error["loc"] = ("body", *error["loc"])
    # default=str: a validator's ValueError sits in "ctx" and is not JSON by itself.
    return json_response(422, json.dumps({"detail": errors}, default=str).encode())
