"""The front of a sharded estate: one URL that speaks for N shard processes.

``create_front_app(shards)`` serves, on one 127.0.0.1 port, what is about the estate as a
whole; the endpoints themselves are served by their shards (``harness/shards.py``):

* ``GET /estate/endpoints`` — every endpoint once, in the estate's order, its
  ``delivery_url`` on its own shard; ``GET /estate/shards`` — each shard's URL, pid and
  endpoints (the load's shoppers and tests read it); ``GET /clock``, ``GET /healthz``,
  ``GET /openapi.json`` — as a shard answers them (all shards share the clock).
* ground truth — ``/truth`` (``since``/``limit`` over the merged log: page once the run
  has ended, the merge is by t), ``/truth/inventory``, ``/truth/active``: every shard's,
  merged (``merge_truth``), behind the same admin token.
* admin — ``POST /admin/faults`` goes to the shards holding the fault's targets (a
  named endpoint only to its shard) and answers with all targets; ``PUT
  /admin/callbacks/{channel}`` to every shard; ``GET /admin/endpoints`` concatenated.
* anything else about one endpoint (``/stores/{id}/…``, ``/endpoints/{id}/…``, ``/erp/…``,
  ``/web/…``, ``/loyalty/…``, ``/marketplace/…``) is a 307 redirect to its shard, so a
  client that knows only the front still arrives (a fast one asks the listing once).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from harness.domain.eventlog import Record
from harness.shards import ShardSet, merge_truth
from simulators.app_runtime import record_dict

CENTRAL = {"erp": "erp", "web": "ecommerce", "loyalty": "loyalty", "marketplace": "marketplace"}
TIMEOUT = aiohttp.ClientTimeout(total=120)


def create_front_app(shards: ShardSet) -> Starlette:
    """The front of ``shards``. It holds no token: the caller's ``Authorization`` goes on
    to the shards, which guard truth and admin as an in-process estate does."""
    holder: dict[str, aiohttp.ClientSession] = {}
    headers: dict[str, str] = {}
    central = {ch: mid for mid, ch in shards.channel_of.items() if ch != "pos"}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        holder["http"] = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            yield
        finally:
            await holder["http"].close()

    async def each(
        method: str, path: str, request: Request | None = None, *, urls: list[str] | None = None
    ) -> list[tuple[int, Any]]:
        """``method path`` at every shard (or ``urls``), the caller's auth passed on."""
        sent = dict(headers)
        if request is not None and "authorization" in request.headers:
            sent["Authorization"] = request.headers["authorization"]
        body = await request.body() if request is not None and method != "GET" else None
        out = []
        for url in urls if urls is not None else shards.urls():
            async with holder["http"].request(
                method, url + path, data=body, headers={**sent, "Content-Type": "application/json"}
            ) as resp:
                out.append((resp.status, await resp.json(content_type=None)))
        return out

    def first_failure(answers: list[tuple[int, Any]]) -> Response | None:
        for status, body in answers:
            if status != 200:
                return JSONResponse(body, status_code=status)
        return None

    async def truth_parts(path: str, request: Request) -> list[list[Record]] | Response:
        answers = await each("GET", path, request)
        failed = first_failure(answers)
        if failed is not None:
            return failed
        return [[Record(**r) for r in body["records"]] for _, body in answers]

    async def truth(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", 0))
            limit = request.query_params.get("limit")
            end_limit = int(limit) if limit is not None else None
            if since < 0 or (end_limit is not None and end_limit < 1):
                raise ValueError
        except ValueError:
            return JSONResponse({"detail": "since >= 0 and limit >= 1 (integers)"}, 422)
        parts = await truth_parts("/truth", request)
        if isinstance(parts, Response):
            return parts
        merged = merge_truth(parts, shards.order)
        end = len(merged) if end_limit is None else min(len(merged), since + end_limit)
        chunk = merged[since:end]
        return JSONResponse(
            {"next": since + len(chunk), "records": [record_dict(r) for r in chunk]}
        )

    async def inventory(request: Request) -> Response:
        parts = await truth_parts("/truth/inventory", request)
        if isinstance(parts, Response):
            return parts
        return JSONResponse({"records": [record_dict(r) for r in merge_truth(parts, shards.order)]})

    async def active(request: Request) -> Response:
        answers = await each("GET", "/truth/active", request)
        failed = first_failure(answers)
        if failed is not None:
            return failed
        merged = {k: v for _, body in answers for k, v in body.items()}
        return JSONResponse({mid: merged[mid] for mid in shards.order if mid in merged})

    async def endpoints(_: Request) -> Response:
        answers = await each("GET", "/estate/endpoints")
        rows = {row["id"]: row for _, body in answers for row in body["endpoints"]}
        return JSONResponse({"endpoints": [rows[mid] for mid in shards.order if mid in rows]})

    async def listing(_: Request) -> Response:
        return JSONResponse({"shards": shards.describe()})

    async def from_first(request: Request) -> Response:
        status, body = (await each("GET", request.url.path, urls=shards.urls()[:1]))[0]
        return JSONResponse(body, status_code=status)

    async def faults(request: Request) -> Response:
        try:
            wanted = json.loads(await request.body() or b"null").get("endpoints") or []
        except (ValueError, AttributeError):
            wanted = []
        known = [mid for mid in wanted if mid in shards.owner]
        if known and len(known) == len(wanted):
            holding = sorted({shards.owner[mid] for mid in known})
            return await _faults_at(request, [shards.shards[i].url for i in holding], known)
        return await _faults_at(request, shards.urls(), None)

    async def _faults_at(request: Request, urls: list[str], named: list[str] | None) -> Response:
        raw = json.loads(await request.body() or b"{}")
        answers = []
        for url in urls:
            body = dict(raw)
            if named is not None:  # a shard knows only its own endpoints
                body["endpoints"] = [m for m in named if shards.url_of(m) == url]
            sent = {**headers, "Content-Type": "application/json"}
            if "authorization" in request.headers:
                sent["Authorization"] = request.headers["authorization"]
            async with holder["http"].post(url + "/admin/faults", json=body, headers=sent) as r:
                answers.append((r.status, await r.json(content_type=None)))
        done = [body for status, body in answers if status == 200]
        if not done:
            status, body = answers[0]
            return JSONResponse(body, status_code=status)
        targets = {mid for body in done for mid in body["targets"]}
        return JSONResponse({**done[0], "targets": [mid for mid in shards.order if mid in targets]})

    async def callbacks(request: Request) -> Response:
        answers = await each("PUT", request.url.path, request)
        done = [body for status, body in answers if status == 200]
        if done:
            return JSONResponse(done[0])
        status, body = answers[0]
        return JSONResponse(body, status_code=status)

    async def admin_endpoints(request: Request) -> Response:
        answers = await each("GET", "/admin/endpoints", request)
        failed = first_failure(answers)
        if failed is not None:
            return failed
        rows = {row["id"]: row for _, body in answers for row in body}
        return JSONResponse([rows[mid] for mid in shards.order if mid in rows])

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True, "shards": len(shards.shards)})

    async def redirect(request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        endpoint = None
        if parts[0] in ("stores", "endpoints") and len(parts) > 1:
            endpoint = parts[1]
        elif parts[0] in CENTRAL:
            endpoint = central.get(CENTRAL[parts[0]])
        if endpoint not in shards.owner:
            return JSONResponse({"detail": "unknown endpoint"}, 404)
        target = shards.url_of(str(endpoint)) + request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(target, status_code=307)

    routes = [
        Route("/healthz", healthz),
        Route("/estate/endpoints", endpoints),
        Route("/estate/shards", listing),
        Route("/clock", from_first),
        Route("/openapi.json", from_first),
        Route("/truth", truth),
        Route("/truth/inventory", inventory),
        Route("/truth/active", active),
        Route("/admin/faults", faults, methods=["POST"]),
        Route("/admin/callbacks/{channel}", callbacks, methods=["PUT"]),
        Route("/admin/endpoints", admin_endpoints),
        Route("/{rest:path}", redirect, methods=["GET", "POST", "PUT"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
