"""``promoharness bench sim``: the virtual-time runtime against bare SimPy, in one run.

Three figures, each against the issue's target:

* the default scenario (weekend-private-label: 600 stores, every channel, faults on,
  shoppers) end to end — wall seconds (target < 3 s);
* simulated deliveries per second through the whole runtime (orchestrator decisions,
  endpoint models, records) against a bare SimPy loop of the same shape — arrival,
  resource request, service timeout, release — measured now, on this machine (target
  ratio >= 0.40);
* the Black Friday scenario, 24 h with over a million sales — wall seconds and peak
  memory (targets < 60 s, < 2 GiB); optional, it takes a while.
"""

from __future__ import annotations

import random
import resource
import time
from typing import Any

import simpy

from harness.runner import simulate
from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world
from harness.scenario import load_scenario

DELIVERY_PROMOTIONS = 20  # x 600 stores + ERP = ~12k deliveries


def bare_simpy(requests: int, servers: int, service: float, seed: int = 0) -> float:
    """Wall seconds for ``requests`` arrivals, each requesting one of ``servers``
    resources, holding it for ``service`` and releasing it: SimPy with nothing else."""
    env = simpy.Environment()
    pool = [simpy.Resource(env, capacity=1) for _ in range(servers)]
    rng = random.Random(seed)

    def request(res: simpy.Resource):  # type: ignore[no-untyped-def]
        with res.request() as slot:
            yield slot
            yield env.timeout(service)

    def arrivals():  # type: ignore[no-untyped-def]
        for i in range(requests):
            yield env.timeout(rng.expovariate(1000.0))
            env.process(request(pool[i % servers]))

    env.process(arrivals())
    began = time.perf_counter()
    env.run()
    return time.perf_counter() - began


def delivery_throughput() -> dict[str, Any]:
    """Deliveries per wall second through the runtime, with no shoppers and no faults."""
    overrides = [
        "traffic.kind=none",
        "faults=[]",
        f"series={{PL-WEEKEND-20: {DELIVERY_PROMOTIONS}}}",
        "timeline=[{at: 0, action: create, promo: PL-WEEKEND-20},"
        " {at: 1, action: submit, promo: PL-WEEKEND-20},"
        " {at: 2, action: validate, promo: PL-WEEKEND-20},"
        " {at: 60, action: approve, promo: PL-WEEKEND-20},"
        " {at: 120, action: publish, promo: PL-WEEKEND-20}]",
        "duration=3600",
    ]
    scenario = load_scenario("weekend-private-label", overrides)
    world = build_world(scenario)
    runtime = SimRuntime(world)
    began = time.perf_counter()
    records = runtime.run()
    wall = time.perf_counter() - began
    sends = sum(1 for r in records if r.kind == "send")
    stores = sum(1 for m in world.models.values() if m.channel == "pos")
    bare = bare_simpy(sends, stores, 0.1)
    ours = sends / wall
    baseline = sends / bare
    return {
        "deliveries": sends,
        "runtime_per_s": ours,
        "bare_simpy_per_s": baseline,
        "ratio": ours / baseline,
        "target_ratio": 0.40,
    }


def scenario_wall(name: str) -> dict[str, Any]:
    scenario = load_scenario(name)
    began = time.perf_counter()
    result = simulate(scenario)
    wall = time.perf_counter() - began
    kinds = result.events["kind"]
    return {
        "scenario": name,
        "wall_s": wall,
        "events": len(result.events),
        "sales": int((kinds == "sale").sum()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
