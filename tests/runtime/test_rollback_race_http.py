"""The rollback race over real HTTP: a publish retry still in flight when the rollback
arrives must not leave the promotion active, and nothing of the publish is sent after it.

Timeline (scenario seconds, speed 1): apply #1 is sent at 0, times out at 1 (the store is
still working on it and applies at 2), the retry (apply #2) goes out at 1.5; the rollback
comes at 1.7 while #2 is in flight. The store applies v1 at 2, then takes the revoke (v2);
#2's late reply is stale.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from harness.scenario import load_scenario
from harness.stack import start_stack

SCENARIO = Path(__file__).with_name("race.yaml")
PROMO = {
    "id": "RACE-1",
    "name": "race: 10% off",
    "validity": {
        "start": "2026-11-28T00:00:00",
        "end": "2026-11-29T00:00:00",
        "timezone": "America/New_York",
    },
    "scope": {"channels": ["pos"]},
    "benefit": {"type": "percent_off", "percent": 10},
}


async def scenario_run(state: Path) -> tuple[list[dict], list[dict], dict]:
    stack = await start_stack(load_scenario(SCENARIO), state=state, speed=1.0)
    try:
        async with aiohttp.ClientSession(base_url=stack.api_url) as http:

            async def call(path: str, key: str, body: object = None) -> None:
                async with http.post(path, json=body, headers={"X-API-Key": key}) as r:
                    assert r.status < 400, await r.text()

            await call("/v1/promotions", "merch-demo-key", PROMO)
            await call("/v1/promotions/RACE-1/submit", "merch-demo-key")
            await call("/v1/promotions/RACE-1/validate", "merch-demo-key")
            for _ in range(100):
                async with http.get(
                    "/v1/promotions/RACE-1?endpoints=false",
                    headers={"X-API-Key": "viewer-demo-key"},
                ) as r:
                    if (await r.json())["state"] == "validated":
                        break
                await asyncio.sleep(0.05)
            await call("/v1/promotions/RACE-1/approve", "approver-demo-key")
            await call("/v1/promotions/RACE-1/publish", "operator-demo-key", {})
            await asyncio.sleep(1.7)
            await call("/v1/promotions/RACE-1/rollback", "operator-demo-key", {"deadline": 10})
            await asyncio.sleep(5.0)
            async with http.get(f"{stack.sim_url}/truth") as r:
                truth = (await r.json())["records"]
            async with http.get(f"{stack.sim_url}/truth/active") as r:
                active = await r.json()
        audit = [r._asdict() for r in stack.runtime.records(promo="RACE-1")]
    finally:
        await stack.stop()
    return truth, audit, active


def test_late_publish_retry_cannot_resurrect(tmp_path: Path) -> None:
    truth, audit, active = asyncio.run(scenario_run(tmp_path / "state.db"))
    store = next(ep for ep in active if ep.startswith("S"))
    # Nothing is active at the end, anywhere.
    assert all("RACE-1" not in promos for promos in active.values())
    # The race really happened: the apply landed (from the timed-out first attempt), then
    # the tombstone revoke removed it.
    kinds = [
        (r["kind"], r["version"])
        for r in truth
        if r["endpoint"] == store and r["promo"] == "RACE-1" and r["kind"] in ("applied", "removed")
    ]
    assert kinds == [("applied", 1), ("removed", 1)]
    rollback_t = next(r["t"] for r in audit if r["kind"] == "rollback")
    sends = [
        (r["t"], r["outcome"], r["version"], r["attempt"])
        for r in audit
        if r["kind"] == "send" and r["endpoint"] == store
    ]
    # Two attempts of the apply before the rollback; after it only the revoke (v2), retried
    # as it too outlasts the 1 s timeout; no apply after.
    assert [s[1:] for s in sends if s[0] < rollback_t] == [("apply", 1, 1), ("apply", 1, 2)]
    after = {s[1:3] for s in sends if s[0] >= rollback_t}
    assert after == {("revoke", 2)}
    # The retry's late reply was recognised as stale, not taken as an acknowledgement.
    assert any(r["kind"] == "stale" and r["endpoint"] == store for r in audit)
    assert not any(
        r["kind"] == "ack" and r["outcome"] == "apply" for r in audit if r["endpoint"] == store
    )
