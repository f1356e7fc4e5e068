"""``bench load``: what the harness's Locust shoppers reach against a bare uvicorn
endpoint (``harness/load/bare.py``) beside what they reach against the stack, one run.

Both targets get the same Locust users, closed loop (no pacing: as fast as they go),
the same baskets and the same client work (each answer priced by the reference engine,
verdict ignored: ``check: compute``), so the two rates differ by the server alone. The
bare rate is the load generator's ceiling on this machine: a stack rate close to it
means the generator, not the stack, was the limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from harness.load import figures
from harness.load.campaign import dump_scenario, load_campaign, locust_config, resolve_scenario
from harness.load.procs import ROOT, run_locust, start_stack_process, wait_healthy
from harness.runtime.world import build_world
from harness.stack import HOST, free_port

BENCH_CAMPAIGN = "ci-smoke"


def _measure(base: dict[str, Any], url: str, tmp: Path, name: str, **kw: Any) -> dict[str, Any]:
    config = {**base, "sim_url": url, "api_url": url, "mode": "bench", "check": "compute"}
    slug = name.replace(" ", "-")
    path = tmp / f"{slug}-config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    prefix = tmp / slug
    run_locust(path, prefix, classes=("Shopper",), **kw)
    load = figures.load_figures(prefix, config)
    return {
        "target": name,
        "requests": load["requests"],
        "req/s": load["rps_mean"],
        "p50 ms": load["p50_ms"],
        "p95 ms": load["p95_ms"],
        "failures": load["failures"],
    }


def bench_load(seconds: float = 10, users: int = 20, workers: int = 0) -> list[dict[str, Any]]:
    campaign = load_campaign(BENCH_CAMPAIGN)
    scenario = resolve_scenario(campaign)
    world = build_world(scenario, None)
    with TemporaryDirectory(prefix="bench-load-") as name:
        tmp = Path(name)
        base = locust_config(
            campaign, scenario, world, api_url="", sim_url="", epoch=time.time(), workers=1
        )
        kw = {"run_time": seconds, "workers": workers, "users": users, "spawn_rate": users}
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "harness.load.bare", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://{HOST}:{port}", timeout=30, proc=bare)
            rows = [_measure(base, f"http://{HOST}:{port}", tmp, "bare uvicorn", **kw)]
        finally:
            bare.terminate()
            bare.wait(10)
        scenario_file = tmp / "scenario.yaml"
        dump_scenario(scenario, scenario_file)
        stack = start_stack_process(scenario_file, tmp / "state.db", campaign.speed, tmp / "s.log")
        try:
            rows.append(_measure(base, stack.sim_url, tmp, "stack simulators", **kw))
        finally:
            stack.stop()
    return rows
