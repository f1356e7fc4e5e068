"""The outer guard of every HTTP request: the body size limit, numbers no body may carry,
the last word on errors, and request metrics.

A plain ASGI middleware rather than a FastAPI dependency because the size limit must act
before anything parses the body: a declared ``Content-Length`` over the limit is refused
unread, and a body without one (chunked) is read here, counting bytes, up to the limit;
the app then gets the buffered body replayed. Bodies are small (256 KiB by default), so
buffering costs less than the parser that follows.

A JSON body holding NaN, ±Infinity or an integer beyond 64 bits is refused here with 422
naming the field (``bodycheck``), before the key is looked at. An exception the app lets
escape before answering becomes a JSON 500 here, with the body already read in full: left
to the server, the answer is plain text and the keep-alive connection is dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from harness.service.bodycheck import bad_numbers, is_json
from harness.service.metrics import ServiceMetrics

__all__ = ["Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# Label values must come from a closed set: the server accepts any token as a method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


class _BadNumbers(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


class Guard:
    def __init__(self, app: ASGIApp, *, max_body: int, metrics: ServiceMetrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the server will answer if the app raises before responding
        started = False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            try:
                body_receive = await self._guarded(scope, receive)
            except _TooLarge:
                await _too_large(send_status, self.max_body)
                return
            except _BadNumbers as exc:
                await _json_answer(send_status, 422, {"detail": exc.errors})
                return
            try:
                await self.app(scope, body_receive, send_status)
            except Exception:
                if started:
                    raise  # half an answer sent: only dropping the connection can end it
                log.exception("%s %s failed", scope["method"], scope.get("path", ""))
                await _json_answer(send_status, 500, {"detail": "internal server error"})
        finally:
            route = scope.get("route")
            # Templates, not raw paths: one series per route, whatever ids clients send.
            label = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.observe(method, label, status, time.perf_counter() - began)

    async def _guarded(self, scope: Scope, receive: Receive) -> Receive:
        length: int | None = None
        chunked = False
        content_type: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None  # the server rejects a malformed length itself
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-type":
                content_type = value
        if length is not None and length > self.max_body:
            raise _TooLarge
        if not chunked and not length:
            return receive
        # Read it all here, counting: a chunked body declares nothing, and a declared
        # length is only a promise.
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([], message, receive)  # a disconnect: let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        if is_json(content_type):
            errors = bad_numbers(body)
            if errors:
                raise _BadNumbers(errors)
        return _replay([body], None, receive)


def _replay(parts: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A receive that hands out the buffered body once, then defers to the server's."""
    pending: list[Message] = [{"type": "http.request", "body": b"".join(parts)}]
    if last is not None:
        pending = [last]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over the limit of {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json_answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
