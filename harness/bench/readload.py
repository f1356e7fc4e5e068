"""A status-read load generator for ``bench live``, run as a process of its own so it does
not share the server's interpreter: ``python readload.py URL KEY PROMO SECONDS CONCURRENCY``.

Plain HTTP/1.1 keep-alive over asyncio streams, one request at a time per connection (a
full client library would cost as much CPU per request as the server and measure the
client). Prints one JSON line: the wall-clock time of every completed read, the promotion
state each read saw, in order, and the errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def main(url: str, key: str, promo: str, seconds: float, concurrency: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /v1/promotions/{promo}?endpoints=false HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nX-API-Key: {key}\r\n\r\n"
    ).encode()
    done: list[float] = []
    states: list[str] = []
    errors = 0
    end = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < end:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if status == 200:
                    done.append(time.time())
                    states.append(str(json.loads(body).get("state", "")))
                else:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(json.dumps({"times": done, "states": states, "errors": errors}))


if __name__ == "__main__":
    url, key, promo, seconds, concurrency = sys.argv[1:6]
    asyncio.run(main(url, key, promo, float(seconds), int(concurrency)))
