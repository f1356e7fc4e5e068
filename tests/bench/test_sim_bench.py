"""``bench sim`` compares like with like: the same deliveries on both sides."""

from __future__ import annotations

from harness.bench.sim import delivery_throughput, fan_out_scenario
from harness.runtime.sim import SimRuntime
from harness.runtime.world import build_world


def test_fan_out_sends_one_delivery_per_endpoint_per_wave() -> None:
    scenario = fan_out_scenario(waves=2, gap=60.0)
    world = build_world(scenario)
    records = SimRuntime(world).run()
    sends = [r for r in records if r.kind == "send"]
    covered = {r.endpoint for r in records if r.kind == "target"}
    assert len(covered) == len(world.delivery_models) - 1  # the marketplace is not in scope
    assert len(sends) == 2 * len(covered)  # no faults, no retries: one attempt each
    assert {r.endpoint for r in sends} == covered
    assert {r.outcome for r in records if r.kind == "result"} <= {"ok", "accepted"}
    assert sorted(r.detail for r in records if r.kind == "ack") == sorted(r.detail for r in sends)


def test_throughput_counts_the_same_work_on_both_sides() -> None:
    figures = delivery_throughput(waves=2, repeats=1)
    world = build_world(fan_out_scenario(waves=2))
    covered = {m.id for m in world.delivery_models if m.channel != "marketplace"}
    assert figures["deliveries"] == 2 * len(covered)
    assert figures["endpoints"] == len(covered)  # the bare loop's servers
    assert figures["ratio"] == figures["runtime_per_s"] / figures["bare_simpy_per_s"]
    assert figures["target_ratio"] == 0.50
