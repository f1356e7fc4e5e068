"""A lean keep-alive HTTP/1.1 client for the live runtime's own requests to the estate.

The live runtime POSTs every delivery over loopback, and a faithful live run may add at
most a tenth of an endpoint's modelled round trip in wall time per delivery
(``harness/faithful.py``). aiohttp's per-request machinery (a request and a response
object, a timer context, header multidicts, a stream reader, a payload writer) was about
0.2 ms of CPU per request, measured on this machine (sequential POSTs to a bare ASGI app
in one process: aiohttp 277 us, this client 84 us, both sides included) — a fifth of
what a delivery cost the harness in all. This client does only what the runtime needs:
one request at a time per connection on asyncio's transports, httptools (uvicorn's own
parser) for the response, idle connections kept per origin, and nothing else (no
redirects, cookies, proxies, compression or TLS: every server is the harness's own,
plain HTTP on the loopback or a ``--bind`` address).

Errors: a connection refused, reset or closed before the whole response arrived, or a
response that does not parse, raises ``HttpError`` (a ``ConnectionError``); a deadline
passed raises ``TimeoutError`` and closes that connection (its late answer must not be
read as the next request's). POSTs are not retried: a delivery that failed on the wire
is the runtime's to judge, as it was with aiohttp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import httptools

# uvicorn closes a connection idle for 5 s (its ``timeout_keep_alive``); one idle longer
# than this is closed here instead of being reused while the server's FIN is on its way.
IDLE_SECONDS = 4.0


class HttpError(ConnectionError):
    """The request got no complete, well-formed response."""


class Headers(dict[str, str]):
    """Response headers, names lower-cased; lookups ignore case, as HTTP does."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class Response(NamedTuple):
    status: int
    headers: Headers
    body: bytes
    content_length: int | None  # None: no Content-Length header (chunked or until close)


class _Connection(asyncio.Protocol):
    """One TCP connection; one request on it at a time."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.headers = Headers()
        self.body: list[bytes] = []
        self.idle_since = 0.0
        self.closed = False
        self.headers_done = False  # the current response's head is in

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"malformed response: {exc}"))

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.origin.forget(self)
        if exc is None and self.headers_done and self._ends_at_close():
            self._answer(keep=False)  # its body was everything up to the close (RFC 9112 6.3)
            return
        self._fail(HttpError(f"connection lost: {exc}" if exc else "connection closed"))

    def _ends_at_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in (
            self.headers.get("transfer-encoding") or ""
        )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the final one follows.
            self.headers, self.body, self.headers_done = Headers(), [], False
            return
        self._answer(keep=self.parser.should_keep_alive())

    def _answer(self, *, keep: bool) -> None:
        """Hand the response in to its request; ``keep``: the connection may carry another
        request, so it goes back to the pool."""
        waiter, self.waiter = self.waiter, None
        length = self.headers.get("content-length")
        response = Response(
            self.parser.get_status_code(),
            self.headers,
            b"".join(self.body),
            int(length) if length is not None and length.isdigit() else None,
        )
        self.headers, self.body, self.headers_done = Headers(), [], False
        if waiter is None or waiter.done():
            # Nobody asked (an unsolicited or duplicate answer): the connection's framing
            # can no longer be trusted, and it must not be reused for the next request.
            self.close()
            return
        if keep and not self.closed:
            self.origin.release(self)
        else:
            self.close()
        waiter.set_result(response)

    # ours
    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.origin.forget(self)
        if self.transport is not None:
            self.transport.abort()


class _Origin:
    """Idle connections to one host and port."""

    def __init__(self, host: str, port: int, netloc: str) -> None:
        self.host, self.port = host, port
        self.host_header = netloc.encode("latin-1")
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()

    def release(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        if conn not in self.idle:
            self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        self.open.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    async def acquire(self) -> _Connection:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()  # the most recently used: its peer surely kept it
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.open.add(conn)
        return conn


class Client:
    """Requests to any number of plain-HTTP origins, connections kept alive per origin.

    ``limit`` > 0: at most that many requests under way at once (0: no limit, as the
    runtime has it: the core's policy concurrency is the only modelled queue)."""

    def __init__(self, limit: int = 0) -> None:
        self._origins: dict[str, _Origin] = {}  # by scheme and authority, as written
        self._limit = asyncio.Semaphore(limit) if limit > 0 else None

    def _target(self, url: str) -> tuple[_Origin, bytes]:
        """The origin and request target of ``url``: the scheme and authority are looked
        up as written (a fan-out's URLs differ only in their paths), parsed once each."""
        if not url.startswith("http://"):
            raise HttpError(f"not a plain http URL: {url}")
        cut = url.find("/", 7)
        base, path = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        origin = self._origins.get(base)
        if origin is None:
            parts = urlsplit(base)
            if parts.hostname is None:
                raise HttpError(f"no host in {url}")
            origin = self._origins[base] = _Origin(parts.hostname, parts.port or 80, parts.netloc)
        if not path.isascii():
            path = quote(path, safe="/?&=%:@!$'()*+,;~")
        return origin, path.encode("ascii")

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send one request and read its whole response within ``timeout`` wall seconds
        (None: no deadline). Raises ``HttpError`` or ``TimeoutError``."""
        if self._limit is None:
            return await self._timed(method, url, body, headers, timeout)
        async with self._limit:
            return await self._timed(method, url, body, headers, timeout)

    async def _timed(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> Response:
        if timeout is None:
            return await self._exchange(method, url, body, headers)
        async with asyncio.timeout(timeout):
            return await self._exchange(method, url, body, headers)

    async def _exchange(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str] | None
    ) -> Response:
        origin, path = self._target(url)
        conn = await origin.acquire()
        head = [
            b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
            % (method.encode("latin-1"), path, origin.host_header, len(body))
        ]
        if headers:
            head += [
                b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in headers.items()
            ]
        head.append(b"\r\n")
        waiter = conn.waiter = asyncio.get_running_loop().create_future()
        assert conn.transport is not None
        conn.transport.write(b"".join(head) + body)
        try:
            return await waiter
        except asyncio.CancelledError:
            conn.close()  # a late answer must not be taken for the next request's
            raise

    async def close(self) -> None:
        for origin in self._origins.values():
            for conn in list(origin.open):
                conn.close()
        self._origins.clear()
