"""``promoharness bench sut``: is the estate ever what limits a measurement of YOUR system?

The estate (``promoharness estate``, the default scenario with its faults) runs in a
process of its own, as it does for a system under test, with a periodic asyncio timer
measuring its event-loop lag; an external client in this process (aiohttp, the shape of
an orchestrator's fan-out: every endpoint at once through a connection pool, retrying
429/503/500/no answer up to four attempts, honouring Retry-After) delivers to it. The
baseline, in the same run: a bare Starlette app on the same uvicorn settings answering
200 to the same requests, with the same timer.

* absorb: back-to-back publishes (a new version each) for ``seconds`` at ``absorb_speed``
  (scenario latencies nearly vanish, so the estate's own CPU is what is measured):
  delivery attempts answered per second, and the ratio to the bare app;
* publish: one publish to every endpoint at speed 1 (real latencies, outages, quotas):
  the estate's event-loop lag p99 while it runs, against the bare app's.

``python -m harness.bench.sut serve estate|bare ...`` is the serving process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LAG_TICK_S = 0.01  # the timer's period: its overshoot is the loop's lag
CLIENT_TIMEOUT_S = 5.0  # a hung request (outage in hang mode) counts as no answer
MAX_ATTEMPTS = 4
POOL = 200  # concurrent connections, like an orchestrator's fan-out pool
# The lag p99 the estate may add over a bare app: well under any delivery timeout or
# Retry-After a system honours, and under the 0.1-1 s scenario latencies it serves.
LAG_TARGET_MS = 50.0


# --- the serving process ------------------------------------------------------------------


class LagProbe:
    """Samples the event loop's lag: how late a ``LAG_TICK_S`` sleep wakes up."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_TICK_S)
            self.samples.append(max(0.0, loop.time() - t - LAG_TICK_S))


def bare_app() -> Any:
    """A Starlette app answering what the estate answers to a delivery, doing nothing."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    async def deliver(request: Request) -> Response:
        await request.body()
        return Response(b'{"outcome":"ok","effect":"applied"}', media_type="application/json")

    app = Starlette()
    app.add_route("/endpoints/{endpoint_id}/deliveries", deliver, methods=["POST"])
    return app


async def serve(kind: str, speed: float, stores: int) -> None:
    """Serve the estate (or the bare app) on a free port; print it; run until stdin ends."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from simulators.apps import run_sim_server

    probe = LagProbe()
    if kind == "estate":
        from harness.runtime.world import build_world
        from harness.scenario import load_scenario
        from simulators.apps import create_sim_app

        world = build_world(load_scenario(None, [f"estate.stores={stores}"]))
        app = create_sim_app(world, speed=speed, admin_token="bench")
        ids = [m.id for m in world.delivery_models]
    else:
        app = bare_app()
        ids = []

    async def lag(request: Request) -> JSONResponse:
        samples = probe.samples
        if request.query_params.get("reset"):
            probe.samples = []
        return JSONResponse({"samples": samples})

    app.add_route("/_bench/lag", lag, methods=["GET"])
    server = await run_sim_server(app, 0)
    probe.task = asyncio.get_running_loop().create_task(probe.run())
    sys.stdout.write(json.dumps({"url": server.url, "endpoints": ids}) + "\n")
    sys.stdout.flush()
    # The parent closes our stdin to stop us (no signals: portable and never orphaned).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    probe.task.cancel()
    await server.stop()


# --- the external system ------------------------------------------------------------------


@dataclass
class Tally:
    answers: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    no_answer: int = 0
    cutoff: float = math.inf  # perf_counter() after which answers are not "in the window"
    in_window: int = 0

    @property
    def answered(self) -> int:
        return sum(self.answers.values())


def delivery_body(promo: dict[str, Any], version: int, endpoint: str, attempt: int) -> bytes:
    key = f"bench-{promo['id']}-{version}-{endpoint}"
    body = {
        "delivery_id": key,
        "idempotency_key": key,
        "op": "apply",
        "promo": promo["id"],
        "version": version,
        "attempt": attempt,
        "payload": {**promo, "version": version},
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def deliver_one(
    http: Any,
    url: str,
    endpoint: str,
    promo: dict[str, Any],
    version: int,
    speed: float,
    rng: random.Random,
    tally: Tally,
) -> None:
    import aiohttp

    target = f"{url}/endpoints/{endpoint}/deliveries"
    headers = {"Content-Type": "application/json"}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        tally.attempts += 1
        wait = 0.05 * 2**attempt * rng.random()  # full jitter, wall seconds
        try:
            body = delivery_body(promo, version, endpoint, attempt)
            async with http.post(target, data=body, headers=headers) as resp:
                await resp.read()
                tally.answers[str(resp.status)] += 1
                if time.perf_counter() <= tally.cutoff:
                    tally.in_window += 1
                if resp.status in (200, 202, 404, 422):
                    return
                if "Retry-After" in resp.headers:
                    wait = float(resp.headers["Retry-After"]) / speed
        except (TimeoutError, aiohttp.ClientError):
            tally.no_answer += 1
        if attempt < MAX_ATTEMPTS:
            await asyncio.sleep(min(wait, 2.0))


async def lag_of(http: Any, url: str, reset: bool = True) -> list[float]:
    async with http.get(f"{url}/_bench/lag", params={"reset": "1"} if reset else {}) as resp:
        return list((await resp.json())["samples"])


def p(samples: list[float], q: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def measure(
    url: str,
    endpoints: list[str],
    promo: dict[str, Any],
    *,
    seconds: float,
    speed: float,
    lag_window: float = 0.0,
) -> dict[str, Any]:
    """``seconds`` > 0: a stream of publishes (version after version, every endpoint) kept
    ``POOL`` deliveries deep for that long -- what the server absorbs; 0: one publish to
    every endpoint at once, to its end. Answers per second and the server's loop lag, sampled
    over at least ``lag_window`` seconds (so two servers are compared over equal windows)."""
    import aiohttp

    rng = random.Random("bench-sut")
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=POOL)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await lag_of(http, url)
        start = time.perf_counter()
        if seconds > 0:
            work = ((v, e) for v in itertools.count(1) for e in endpoints)
            deadline = tally.cutoff = start + seconds

            async def worker() -> None:
                for version, endpoint in work:
                    if time.perf_counter() >= deadline:
                        return
                    await deliver_one(http, url, endpoint, promo, version, speed, rng, tally)

            await asyncio.gather(*(worker() for _ in range(POOL)))
        else:
            await asyncio.gather(
                *(deliver_one(http, url, e, promo, 1, speed, rng, tally) for e in endpoints)
            )
        wall = time.perf_counter() - start
        await asyncio.sleep(max(0.0, start + lag_window - time.perf_counter()))
        lag = await lag_of(http, url)
    # The stream's rate is what was answered within its window (the stragglers after the
    # deadline -- retries, hangs -- would only dilute it); one publish runs to its end.
    per_s = tally.in_window / seconds if seconds > 0 else tally.answered / wall
    return {
        "wall_s": wall,
        "attempts": tally.attempts,
        "answered": tally.answered,
        "no_answer": tally.no_answer,
        "answers": dict(sorted(tally.answers.items())),
        "per_s": per_s,
        "lag_p50_ms": p(lag, 0.50) * 1000,
        "lag_p99_ms": p(lag, 0.99) * 1000,
        "lag_max_ms": max(lag, default=math.nan) * 1000,
        "lag_samples": len(lag),
    }


class Served:
    """A serving process (``serve``), started and stopped by the bench."""

    def __init__(self, kind: str, speed: float, stores: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.bench.sut",
                "serve",
                kind,
                "--speed",
                str(speed),
                "--stores",
                str(stores),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the {kind} process stopped during start-up")
        info = json.loads(line)
        self.url: str = info["url"]
        self.endpoints: list[str] = info["endpoints"]

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def canonical_promotion() -> dict[str, Any]:
    from harness.scenario import load_scenario

    promo = load_scenario(None).promotions[0]
    return dict(promo.model_dump(mode="json"))


def bench_sut(
    *, seconds: float = 5.0, absorb_speed: float = 1000.0, stores: int = 600
) -> dict[str, Any]:
    """Both figures, estate and bare app, each side in a fresh process (see the module)."""
    promo = canonical_promotion()
    out: dict[str, Any] = {"stores": stores, "seconds": seconds, "absorb_speed": absorb_speed}
    endpoints: list[str] = []
    for phase, speed, secs in (("absorb", absorb_speed, seconds), ("publish", 1.0, 0.0)):
        window = 0.0
        for kind in ("estate", "bare"):
            served = Served(kind, speed, stores)
            try:
                endpoints = served.endpoints or endpoints
                figures = asyncio.run(
                    measure(
                        served.url,
                        endpoints,
                        promo,
                        seconds=secs,
                        speed=speed,
                        lag_window=window,
                    )
                )
            finally:
                served.stop()
            out[f"{phase}_{kind}"] = figures
            window = figures["wall_s"]  # the bare app's lag over the estate's window
    out["targets"] = len(endpoints)
    bare = out["absorb_bare"]["per_s"]
    # A window too short to see one answer from the baseline has no ratio (nan, printed).
    out["absorb_ratio"] = out["absorb_estate"]["per_s"] / bare if bare else float("nan")
    out["lag_target_ms"] = LAG_TARGET_MS
    # The machine's own noise (other processes, this client) shows in the bare app's lag:
    # what the estate adds over it is its own.
    excess = out["publish_estate"]["lag_p99_ms"] - out["publish_bare"]["lag_p99_ms"]
    out["lag_excess_ms"] = excess
    out["lag_ok"] = excess < LAG_TARGET_MS
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.sut")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("kind", choices=("estate", "bare"))
    s.add_argument("--speed", type=float, default=1.0)
    s.add_argument("--stores", type=int, default=600)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.kind, args.speed, args.stores))


if __name__ == "__main__":
    main()
