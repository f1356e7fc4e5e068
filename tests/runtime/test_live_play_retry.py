"""A live timeline step the orchestrator deferred (429 or 503 with Retry-After) is asked
again, as an operator's client would; a step refused for good (4xx) is asked once. Served
by a tiny aiohttp app on 127.0.0.1 that answers from a script."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from harness.live_run import STEP_TRIES, post_step


async def answer_from(script: list[int]) -> tuple[int, str, int]:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.headers["X-API-Key"])
        status = script[min(len(calls), len(script)) - 1]
        headers = {"Retry-After": "0"} if status in (429, 503) else {}
        return web.json_response({"n": len(calls)}, status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/step", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            status, text = await post_step(http, "/step", {"x": 1}, "key-1")
    finally:
        await runner.cleanup()
    assert set(calls) == {"key-1"}
    return status, text, len(calls)


def test_a_deferred_step_is_asked_again_until_it_lands() -> None:
    status, text, calls = asyncio.run(answer_from([503, 429, 200]))
    assert (status, calls) == (200, 3)
    assert '"n": 3' in text


def test_a_refused_step_is_asked_once() -> None:
    assert asyncio.run(answer_from([409]))[::2] == (409, 1)


def test_a_step_deferred_for_ever_gives_up_with_the_last_answer() -> None:
    status, _, calls = asyncio.run(answer_from([503]))
    assert (status, calls) == (503, STEP_TRIES)
