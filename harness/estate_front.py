"""The front of a sharded estate: one URL that speaks for N shard processes.

``create_front_app(shards)`` serves, on one 127.0.0.1 port, what is about the estate as a
whole; the endpoints themselves are served by their shards (``harness/shards.py``):

* ``GET /estate/endpoints`` — every endpoint once, in the estate's order, its
  ``delivery_url`` on its own shard; ``GET /estate/shards`` — each shard's URL, pid and
  endpoints (the load's shoppers and tests read it); ``GET /clock``, ``GET /healthz``,
  ``GET /openapi.json`` — as a shard answers them (all shards share the clock).
* ground truth — ``/truth``, ``/truth/inventory``, ``/truth/active``: every shard's,
  merged (``merge_truth``), behind the same admin token. ``/truth`` without ``limit`` is
  the whole merged log, ordered by t. Paged (``limit``), ``next`` is a cursor of one
  offset per shard (``"3.5"``; pass it back as ``since``, ``0`` starts): a page takes a
  prefix of each shard's unread log, so a record that arrives between pages with a t
  before the last page's is still read exactly once (on a later page, out of t order).
* admin — ``POST /admin/faults`` goes to the shards holding the fault's targets (a
  named endpoint only to its shard; an unknown one is a 422 naming only the unknown
  ones) and answers with all targets (a shard holding none of a region's or channel's
  endpoints answers 4xx, which is no error when another shard holds some); ``PUT
  /admin/callbacks/{channel}`` to every shard; ``GET /admin/endpoints`` concatenated.
* anything else about one endpoint (``/stores/{id}/…``, ``/endpoints/{id}/…``, ``/erp/…``,
  ``/web/…``, ``/loyalty/…``, ``/marketplace/…``) is a 307 redirect to its shard, so a
  client that knows only the front still arrives (a fast one asks the listing once).

A shard that does not answer (it died) makes the front answer 502 with a JSON body naming
the shard, never a bare 500.
"""

from __future__ import annotations

import contextlib
import heapq
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


class ShardUnreachable(Exception):
    """A shard that did not answer the front (connection refused, reset or timed out)."""

    def __init__(self, shards: ShardSet, url: str, exc: BaseException) -> None:
        index = shards.urls().index(url) if url in shards.urls() else -1
        text = " ".join(f"{type(exc).__name__}: {exc}".split()) or type(exc).__name__
        super().__init__(
            f"estate shard {index + 1} of {len(shards.shards)} ({url}) did not answer: {text}"
        )


def _unreachable(_: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=502)


def parse_cursor(since: str, count: int) -> list[int]:
    """``since`` as one offset per shard: ``0``, or ``count`` non-negative integers joined
    by dots (a ``next`` this front gave); ``ValueError`` otherwise."""
    parts = [int(p) for p in since.split(".")]
    if parts == [0]:
        return [0] * count
    if len(parts) != count or min(parts) < 0:
        raise ValueError(since)
    return parts


def page_of(
    parts: list[list[Record]], limit: int, order: list[str]
) -> tuple[list[Record], list[int]]:
    """At most ``limit`` records from the shards' unread logs, and how many of each shard's
    it took. It takes a prefix of each (by t at the heads, ``heapq.merge``), so the
    offsets stay exact whatever order a shard recorded in; the page is ordered by t."""
    rank = {mid: i for i, mid in enumerate(order)}
    heads = [
        [(r.t, rank.get(r.endpoint, len(rank)), s, i) for i, r in enumerate(part)]
        for s, part in enumerate(parts)
    ]
    taken = [0] * len(parts)
    for _, _, s, _ in heapq.merge(*heads):
        if sum(taken) == limit:
            break
        taken[s] += 1
    return merge_truth([part[:n] for part, n in zip(parts, taken, strict=True)], order), taken


def next_cursor(offsets: list[int], taken: list[int]) -> str:
    """The ``next`` of a page that took ``taken`` records of each shard from ``offsets``."""
    return ".".join(str(o + n) for o, n in zip(offsets, taken, strict=True))


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
            out.append(await ask(method, url, path, body, sent))
        return out

    async def ask(
        method: str, url: str, path: str, body: bytes | None, sent: dict[str, str]
    ) -> tuple[int, Any]:
        """One shard's answer; a shard that does not answer is ``ShardUnreachable`` (502)."""
        try:
            async with holder["http"].request(
                method, url + path, data=body, headers={**sent, "Content-Type": "application/json"}
            ) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShardUnreachable(shards, url, exc) from None
        try:
            return resp.status, json.loads(text)
        except ValueError:  # a shard's own crash page: the front's body stays JSON
            index = shards.urls().index(url) + 1 if url in shards.urls() else 0
            detail = f"estate shard {index} answered {resp.status}: {' '.join(text.split())[:200]}"
            return resp.status, {"detail": detail}

    def first_failure(answers: list[tuple[int, Any]]) -> Response | None:
        for status, body in answers:
            if status != 200:
                return JSONResponse(body, status_code=status)
        return None

    async def truth_parts(
        path: str, request: Request, paths: list[str] | None = None
    ) -> list[list[Record]] | Response:
        if paths is None:
            answers = await each("GET", path, request)
        else:
            answers = [
                (await each("GET", p, request, urls=[url]))[0]
                for url, p in zip(shards.urls(), paths, strict=True)
            ]
        failed = first_failure(answers)
        if failed is not None:
            return failed
        return [[Record(**r) for r in body["records"]] for _, body in answers]

    async def truth(request: Request) -> Response:
        count = len(shards.shards)
        try:
            offsets = parse_cursor(request.query_params.get("since", "0"), count)
        except ValueError:
            detail = f"since: 0 or the cursor a page's next gave ({count} offsets >= 0, a.b...)"
            return JSONResponse({"detail": detail}, 422)
        try:
            limit = request.query_params.get("limit")
            end_limit = int(limit) if limit is not None else None
            if end_limit is not None and end_limit < 1:
                raise ValueError
        except ValueError:
            return JSONResponse({"detail": "limit: an integer >= 1"}, 422)
        # Each shard's unread log (at most ``limit`` of it: no page takes more of one shard).
        tail = "" if end_limit is None else f"&limit={end_limit}"
        paths = [f"/truth?since={o}{tail}" for o in offsets]
        parts = await truth_parts("/truth", request, paths)
        if isinstance(parts, Response):
            return parts
        if end_limit is None:
            chunk, taken = merge_truth(parts, shards.order), [len(p) for p in parts]
        else:
            chunk, taken = page_of(parts, end_limit, shards.order)
        cursor = next_cursor(offsets, taken)
        return JSONResponse({"next": cursor, "records": [record_dict(r) for r in chunk]})

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
        if not isinstance(wanted, list):
            wanted = []
        unknown = sorted(
            {str(m) for m in wanted if not isinstance(m, str) or m not in shards.owner}
        )
        if unknown:  # as a shard words it, but only the ids no shard holds
            # The token first, as a shard checks it before the body.
            guard = await each("GET", "/admin/endpoints", request, urls=shards.urls()[:1])
            failed = first_failure(guard)
            if failed is not None:
                return failed
            return JSONResponse({"detail": f"unknown endpoints {unknown}"}, 422)
        if wanted:
            holding = sorted({shards.owner[mid] for mid in wanted})
            return await _faults_at(request, [shards.shards[i].url for i in holding], wanted)
        return await _faults_at(request, shards.urls(), None)

    async def _faults_at(request: Request, urls: list[str], named: list[str] | None) -> Response:
        raw = json.loads(await request.body() or b"{}")
        answers = []
        for url in urls:
            body = dict(raw)
            if named is not None:  # a shard knows only its own endpoints
                body["endpoints"] = [m for m in named if shards.url_of(m) == url]
            sent = dict(headers)
            if "authorization" in request.headers:
                sent["Authorization"] = request.headers["authorization"]
            answers.append(await ask("POST", url, "/admin/faults", json.dumps(body).encode(), sent))
        done = [body for status, body in answers if status == 200]
        # A shard holding none of a region's or channel's endpoints answers 4xx ("no
        # endpoint matches"): no error while another shard switched some. Anything worse is.
        worse = [(status, body) for status, body in answers if status >= 500]
        if worse or not done:
            status, body = (worse or answers)[0]
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
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ShardUnreachable: _unreachable},
    )
