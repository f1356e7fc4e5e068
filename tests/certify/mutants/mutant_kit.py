"""What the mutant adapters are made of: the reference adapters over a model with one
habit changed (a dialect, a fault flag, a model override), or wrapped by :class:`Intercept`,
an ASGI layer that plays an adapter's own HTTP bug (rewrites a request or an answer,
answers itself, waits)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from certify_support import TOKEN, load_adapter

from harness.domain.dialects import Dialect

Scope = dict[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]
# (method, path, headers, body) -> (status, json) to answer without the adapter, or None
Answer = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, Any] | None]]
# (method, path, request body, status, answer json) -> the json to send instead
Rewrite = Callable[[str, str, bytes, int, Any], Any]


@dataclass(frozen=True)
class Mutant:
    """One realistic bug: the check that must catch it at the default level, and a text
    its failure must contain (so a kill for another reason does not count)."""

    name: str
    bug: str
    channel: str
    check: str
    expect: str
    app: Callable[[], App]


def kit() -> Any:
    return load_adapter("adapter_kit")


def pos(dialect: Dialect | None = None, model_cls: Any = None, **faults: Any) -> Any:
    """A POS adapter (Europe/Paris, synchronous) over ``model_cls`` (PosStore)."""
    from simulators.pos import PosStore

    ak = kit()
    cls = model_cls or PosStore
    store = cls(
        "store-0001",
        region="FR-IDF",
        timezone="Europe/Paris",
        link=ak.adapter_profile(**faults),
        dialect=dialect,
    )
    return ak.create_adapter_app(store, token=TOKEN), store


def web(**faults: Any) -> Any:
    """An asynchronous ecommerce adapter (202, then an ack webhook after 0.2 s)."""
    from simulators.ecommerce import EcommerceSite

    ak = kit()
    site = EcommerceSite("web", link=ak.adapter_profile(ack_delay=0.2, **faults))
    return ak.create_adapter_app(site, token=TOKEN)


class Intercept:
    """Wrap an ASGI app: ``scope_hook`` edits the scope (path, query, headers) first,
    ``answer`` may answer a request itself, ``rewrite`` edits JSON answers."""

    def __init__(
        self,
        app: App,
        *,
        answer: Answer | None = None,
        rewrite: Rewrite | None = None,
        scope_hook: Callable[[Scope], Scope] | None = None,
    ) -> None:
        self.app, self.answer, self.rewrite, self.scope_hook = app, answer, rewrite, scope_hook

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.scope_hook is not None:
            scope = self.scope_hook(dict(scope))
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.answer is not None:
            own = await self.answer(method, path, headers, body)
            if own is not None:
                await _send_json(send, *own)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        if self.rewrite is None:
            await self.app(scope, replay, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                parts.append(message.get("body", b""))

        await self.app(scope, replay, capture)
        raw = b"".join(parts)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if payload is not None:
            payload = self.rewrite(method, path, body, start["status"], payload)
            await _send_json(send, start["status"], payload)
            return
        await send(start)
        await send({"type": "http.response.body", "body": raw})


async def _send_json(send: Any, status: int, payload: Any) -> None:
    raw = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def without_headers(*names: str) -> Callable[[Scope], Scope]:
    """A scope hook dropping request headers (the adapter never sees them)."""
    drop = {n.lower().encode() for n in names}

    def hook(scope: Scope) -> Scope:
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]
        return scope

    return hook
