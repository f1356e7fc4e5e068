"""The live runtime's lean HTTP/1.1 client (harness/runtime/http1.py) against real servers
on 127.0.0.1: answers, kept-alive connections, deadlines and broken peers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from harness.runtime.http1 import Client, HttpError
from harness.runtime.live import run
from simulators.apps import run_sim_server


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the request back: method, path, a header and the body; ``/slow`` waits."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(5)
    headers = dict(scope["headers"])
    answer = b"%s %s %s %s" % (
        scope["method"].encode(),
        scope["path"].encode(),
        headers.get(b"idempotency-key", b"-"),
        body,
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"Retry-After", b"7"), (b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def test_requests_answers_and_reuses_one_connection() -> None:
    async def main() -> None:
        server = await run_sim_server(echo_app, 0)
        client = Client()
        try:
            for i in range(3):
                resp = await client.request(
                    "POST", f"{server.url}/d/{i}", b"x" * i, {"Idempotency-Key": f"k{i}"}, 5.0
                )
                assert resp.status == 429
                assert resp.headers.get("retry-after") == resp.headers.get("Retry-After") == "7"
                assert resp.body == b"POST /d/%d k%d %s" % (i, i, b"x" * i)
                assert resp.content_length is None  # chunked: no length announced
            get = await client.request("GET", f"{server.url}/g?a=1", timeout=5.0)
            assert get.body == b"GET /g - "
            (origin,) = client._origins.values()
            assert len(origin.open) == 1  # one request at a time: one connection served all
        finally:
            await client.close()
            await server.stop()

    run(main())


def test_a_deadline_raises_timeout_and_drops_that_connection() -> None:
    async def main() -> None:
        server = await run_sim_server(echo_app, 0)
        client = Client()
        try:
            with pytest.raises(TimeoutError):
                await client.request("POST", f"{server.url}/slow", b"", timeout=0.05)
            (origin,) = client._origins.values()
            assert not origin.open and not origin.idle  # its late answer is never read
            resp = await client.request("POST", f"{server.url}/after", b"", timeout=5.0)
            assert resp.body == b"POST /after - "
        finally:
            await client.close()
            await server.stop()

    run(main())


def test_no_server_and_a_peer_that_hangs_up_are_http_errors() -> None:
    async def main() -> None:
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = Client()
        with pytest.raises(HttpError):
            await client.request("POST", f"http://127.0.0.1:{port}/x", b"", timeout=5.0)

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(HttpError):
                await client.request("POST", f"http://127.0.0.1:{port}/x", b"", timeout=5.0)
            with pytest.raises(HttpError):
                await client.request("POST", "https://127.0.0.1/x", b"", timeout=5.0)
        finally:
            server.close()
            await client.close()

    run(main())


async def _raw_server(answer: bytes, *, close: bool = False) -> tuple[asyncio.Server, str]:
    """A server that reads each request's head and writes ``answer`` bytes as they are
    (``%(path)s`` filled with the request's path), then closes if ``close``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                path = head.split(b" ")[1]
                writer.write(answer.replace(b"%(path)s", path))
                await writer.drain()
                if close:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_an_interim_100_continue_is_not_the_answer() -> None:
    async def main() -> None:
        server, url = await _raw_server(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\nok"
        )
        client = Client()
        try:
            resp = await client.request("POST", f"{url}/x", b"{}", timeout=5.0)
            assert (resp.status, resp.body) == (201, b"ok")
            # Header names ignore case however they are looked up.
            assert resp.headers["Retry-After"] == resp.headers.get("retry-after") == "3"
            assert "RETRY-AFTER" in resp.headers and "x-missing" not in resp.headers
        finally:
            server.close()
            await client.close()

    run(main())


def test_a_body_without_length_ends_at_the_close() -> None:
    async def main() -> None:
        server, url = await _raw_server(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", close=True
        )
        client = Client()
        try:
            for _ in range(2):  # and the closed connection is not reused
                resp = await client.request("POST", f"{url}/x", b"", timeout=5.0)
                assert (resp.status, resp.body, resp.content_length) == (200, b"all of it", None)
        finally:
            server.close()
            await client.close()

    run(main())


def test_an_answer_nobody_asked_for_is_never_taken_for_the_next_request() -> None:
    """The server answers each request twice: the second, unsolicited, answer arrives on a
    connection with no request waiting, so that connection is dropped rather than kept;
    each request gets its own answer (its path) on a fresh connection."""

    async def main() -> None:
        server, url = await _raw_server(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%%(path)s" % len(b"/n0")
            + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"
        )
        client = Client()
        try:
            first = await client.request("POST", f"{url}/n0", b"", timeout=5.0)
            assert first.body == b"/n0"
            # Two at once: had that connection gone back to the pool (twice, once per
            # answer), both would be written on it and one would read the other's answer.
            both = await asyncio.gather(
                *(client.request("POST", f"{url}/n{i}", b"", timeout=5.0) for i in (1, 2))
            )
            assert [r.body for r in both] == [b"/n1", b"/n2"]
        finally:
            server.close()
            await client.close()

    run(main())
