"""The live runtime's dispatch window paces a fan-out but never holds a hung delivery:
200 stores that never answer all receive their first attempt long before its timeout.

Without the window's hold, 64 hung requests would fill it for a whole timeout each and the
last of 200 would be POSTed three timeouts after the publish (issue 19)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from harness.live_calibrate import quiet_twin
from harness.runtime.live import IN_FLIGHT
from harness.scenario import load_scenario
from harness.service.auth import DEMO_KEY_FOR_ACTION, DEMO_OPERATOR_KEY
from harness.stack import fetch_truth, start_stack

STORES = 200


def test_hung_stores_do_not_queue_the_fan_out(tmp_path: Path) -> None:
    assert STORES > 3 * IN_FLIGHT
    base = quiet_twin(load_scenario("weekend-private-label", [f"estate.stores={STORES}"]))
    hang = "latency: {kind: fixed, mean: 0.001}, error_rate: 0, timeout_rate: 1, lost_ack_rate: 0"
    twin = load_scenario(
        "weekend-private-label",
        [
            f"estate.stores={STORES}",
            "traffic.kind=none",
            "faults=[]",
            "slos=[]",
            f"endpoints.pos={{{hang}, random_outages: null}}",
            "estate.regions=[{name: east, timezone: America/New_York, batch_share: 0,"
            " link: healthy-pos}]",
        ],
    )
    wide = base.promotions[-1].model_copy(
        update={"scope": base.promotions[-1].scope.model_copy(update={"channels": ["pos"]})}
    )
    twin = twin.model_copy(update={"promotions": [wide], "timeline": [], "series": {}})
    timeout = twin.policies["pos"].timeout

    async def main() -> list[float]:
        stack = await start_stack(twin, state=tmp_path / "o.db", speed=1.0)
        try:
            async with aiohttp.ClientSession(base_url=stack.api_url) as http:

                async def call(path: str, key: str, body: object = None) -> None:
                    async with http.post(path, json=body, headers={"X-API-Key": key}) as r:
                        assert r.status < 400, await r.text()

                pid = wide.id
                await call(
                    "/v1/promotions",
                    DEMO_KEY_FOR_ACTION["create"],
                    wide.model_dump(mode="json", by_alias=True),
                )
                await call(f"/v1/promotions/{pid}/submit", DEMO_KEY_FOR_ACTION["submit"])
                await call(f"/v1/promotions/{pid}/validate", DEMO_KEY_FOR_ACTION["validate"])
                for _ in range(3000):  # a hang guard only
                    if stack.runtime.orchestrator.status(pid) == "validated":
                        break
                    await asyncio.sleep(0.01)
                await call(f"/v1/promotions/{pid}/approve", DEMO_KEY_FOR_ACTION["approve"])
                published = stack.clock.now()
                await call(f"/v1/promotions/{pid}/publish", DEMO_OPERATOR_KEY, {})
                await asyncio.sleep(timeout * 0.8)  # wall = scenario seconds at speed 1
                async with aiohttp.ClientSession() as plain:
                    truth = await fetch_truth(plain, stack.sim_url)
        finally:
            await stack.stop()
        return [
            r.t - published
            for r in truth
            if r.kind == "received" and r.channel == "pos" and r.attempt == 1
        ]

    arrivals = asyncio.run(main())
    # Every store got its first attempt while the first ones were still hanging.
    assert len(arrivals) == STORES
    assert max(arrivals) < timeout * 0.8
