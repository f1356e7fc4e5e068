"""``promoharness bench sim``'s in-process figures: the virtual-time runtime against bare SimPy.

* a library scenario's simulation and figures in this process (``scenario_wall``), shown
  beside the whole-process figures of ``harness.bench.process`` (what a user waits for);
* simulated deliveries per second through the whole runtime (orchestrator decisions,
  endpoint models, records) against a bare SimPy loop of the same shape — arrival,
  resource request, service timeout, release — measured now, on this machine (target
  ratio >= 0.50, issue 16).
"""

from __future__ import annotations

import gc
import resource
import time
from typing import Any

import simpy

from harness.runner import simulate
from harness.runtime.gcscope import quiet_collector
from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world
from harness.scenario import Scenario, StepSpec, load_scenario

DELIVERY_PROMOTIONS = 20  # x 600 stores + ERP = ~12k deliveries


def bare_simpy(waves: int, servers: int, service: float, gap: float) -> float:
    """Wall seconds for ``waves`` bursts of one request per server (``gap`` s apart), each
    request a process that takes its server (a ``simpy.Resource``), holds it ``service``
    seconds and releases it: the shape of a fan-out in bare SimPy, with nothing else."""
    env = simpy.Environment()
    pool = [simpy.Resource(env, capacity=1) for _ in range(servers)]

    def request(res: simpy.Resource):  # type: ignore[no-untyped-def]
        with res.request() as slot:
            yield slot
            yield env.timeout(service)

    def arrivals():  # type: ignore[no-untyped-def]
        for _ in range(waves):
            for res in pool:
                env.process(request(res))
            yield env.timeout(gap)

    env.process(arrivals())
    began = time.perf_counter()
    with quiet_collector():  # the collector setting a run gets: like for like
        env.run()
    return time.perf_counter() - began


def fan_out_scenario(waves: int = DELIVERY_PROMOTIONS, gap: float = 60.0) -> Scenario:
    """The default estate with ``waves`` promotions published ``gap`` s apart, no shoppers,
    no faults, fixed 0.1 s store service: every wave is a 600-store fan-out."""
    base = load_scenario(
        "weekend-private-label",
        [
            "traffic.kind=none",
            "faults=[]",
            "endpoints.pos={latency: {kind: fixed, mean: 0.1}, error_rate: 0,"
            " timeout_rate: 0, lost_ack_rate: 0, random_outages: null}",
            "estate.regions=[{name: east, timezone: America/New_York, batch_share: 0,"
            " link: healthy-pos}]",
        ],
    )
    template = base.promotions[0]
    promotions = [template.model_copy(update={"id": f"WAVE-{i:02d}"}) for i in range(waves)]
    steps = []
    for i, p in enumerate(promotions):
        for at, action in ((0, "create"), (1, "submit"), (2, "validate"), (60, "approve")):
            steps.append(StepSpec(at=at, action=action, promo=p.id))
        steps.append(StepSpec(at=120 + gap * i, action="publish", promo=p.id))
    return base.model_copy(
        update={
            "promotions": promotions,
            "timeline": steps,
            "slos": [],
            "budgets": {},
            "duration": 120 + gap * waves + 60,
        }
    )


def delivery_throughput(waves: int = DELIVERY_PROMOTIONS, repeats: int = 7) -> dict[str, Any]:
    """Deliveries per wall second through the runtime against the bare SimPy fan-out.

    The two are run alternately ``repeats`` times and each keeps its best time, so a
    burst of load from elsewhere on the machine does not land on one side only. Each
    starts from a collected heap with nothing of the other alive, so neither pays for
    a collection of the other's objects.
    """
    gap = 60.0
    scenario = fan_out_scenario(waves, gap)
    ours_best = bare_best = float("inf")
    sends = endpoints = 0
    for _ in range(repeats):
        world = build_world(scenario)
        runtime = SimRuntime(world)
        gc.collect()
        began = time.perf_counter()
        records = runtime.run()
        ours_best = min(ours_best, time.perf_counter() - began)
        sent = [r.endpoint for r in records if r.kind == "send"]
        sends = len(sent)
        endpoints = len(set(sent))  # those the promotions cover: the bare loop's servers
        del world, runtime, records
        gc.collect()
        bare_best = min(bare_best, bare_simpy(waves, endpoints, 0.1, gap))
    ours = sends / ours_best
    baseline = waves * endpoints / bare_best
    return {
        "deliveries": sends,
        "endpoints": endpoints,
        "runtime_per_s": ours,
        "bare_simpy_per_s": baseline,
        "ratio": ours / baseline,
        "target_ratio": 0.50,
    }


def scenario_wall(name: str, repeats: int = 1) -> dict[str, Any]:
    """One library scenario end to end (simulation and figures): the best wall time of
    ``repeats`` runs, so that a burst of load from elsewhere on the machine is not
    counted as ours; peak memory is the process's."""
    scenario = load_scenario(name)
    walls = []
    for _ in range(repeats):
        gc.collect()
        began = time.perf_counter()
        result = simulate(scenario)
        walls.append(time.perf_counter() - began)
    kinds = result.events["kind"]
    return {
        "scenario": name,
        "wall_s": min(walls),
        "first_wall_s": walls[0],  # with this process's one-off costs (lazy imports, caches)
        "runs": repeats,
        "events": len(result.events),
        "sales": int((kinds == "sale").sum()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
