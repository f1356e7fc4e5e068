"""A bare uvicorn endpoint for ``bench load``: the simulators' price routes answering one
canned receipt, no work behind them — the ceiling of the load generator, not the stack.

``python -m harness.load.bare --port N`` serves it on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HOST = "127.0.0.1"
CANNED = json.dumps(
    {
        "channel": "ecommerce",
        "store": None,
        "tax_mode": "net",
        "lines": [],
        "subtotal": "0.00",
        "discount_total": "0.00",
        "tax_total": "0.00",
        "total": "0.00",
        "applied": [],
        "at": 0.0,
        "endpoint": "bare",
        "active": [],
    }
).encode()


async def price(request: Request) -> Response:
    await request.body()
    return Response(CANNED, media_type="application/json")


async def healthz(_: Request) -> Response:
    return Response(b'{"ok": true}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/stores/{store_id}/price", price, methods=["POST"]),
        Route("/web/price", price, methods=["POST"]),
        Route("/marketplace/price", price, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # As simulators.apps.run_sim_server: a socket that says TCP, so asyncio sets
    # TCP_NODELAY (otherwise a two-part response waits out the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    config = uvicorn.Config(app, host=HOST, port=args.port, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
