"""Serve the test estate's simulators in a process of their own (for the load test).

``python -m tests.service.sim_process CALLBACK_URL SPEED T0 [a.b=v]...``
prints the simulators' base URL on one line, then serves until stdin closes. Apart from
the orchestrator, the 600-store estate would otherwise share its event loop (and GIL).
"""

from __future__ import annotations

import asyncio
import sys

from harness.runtime.world import build_world
from harness.scenario import load_scenario
from simulators.apps import create_sim_app, run_sim_server
from tests.service.live_stack import CHANNEL_KEYS, ESTATE


async def main(argv: list[str]) -> None:
    callback_url, speed, t0, *overrides = argv
    world = build_world(load_scenario(ESTATE, overrides))
    app = create_sim_app(
        world,
        callback_url=callback_url,
        callback_key=CHANNEL_KEYS,
        speed=float(speed),
        t0=float(t0),
    )
    server = await run_sim_server(app)
    print(server.url, flush=True)
    # Serve until the parent closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
