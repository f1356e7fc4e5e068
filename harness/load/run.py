"""One load run: stack, Locust, figures, gates, report (``promoharness load``).

1. resolve the campaign's scenario and write it to ``out/scenario.yaml``;
2. unless ``host`` is given, start ``promoharness serve`` on loopback, its state primed so
   scenario t=0 is the moment Locust starts (the stack's start-up costs no scenario time);
3. write ``out/locust-config.json`` and run Locust headless (``out/locust*``), bounded by
   the campaign duration (``--run-time``) and a timeout;
4. pull the orchestrator's records (``GET /v1/audit``, paged) and the simulators' ground
   truth (``/truth/inventory``, ``/truth``), summarise them like any live run, add the
   ``load`` figures, evaluate the scenario's SLOs and the load gates, and write the report
   (summary.json, junit.xml, report.html with the load plots and tables).

With ``--sut DRIVER`` (``harness/load/sut.py``) steps 2-4 differ: the estate serves in
this process, the user's system delivers the timeline the driver gives it, and ``report``
gets the estate's truth instead of an orchestrator's records.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.agreement import judge_measured
from harness.domain.eventlog import Record
from harness.headroom_report import with_headroom
from harness.live_run import delivery_timeouts
from harness.load import attribution, figures
from harness.load.campaign import (
    Campaign,
    dump_scenario,
    expectations,
    gates_of,
    locust_config,
    resolve_scenario,
)
from harness.load.plots import CAPTIONS, plot_latency, plot_propagation, plot_rps
from harness.load.procs import (
    StackProcess,
    http_json,
    prime_state,
    run_locust,
    shard_map,
    start_stack_process,
)
from harness.metrics import summarise, to_frame
from harness.metrics.slo import evaluate_slos
from harness.report import write_report
from harness.report.html import render_html
from harness.runner import validity_starts
from harness.runtime.world import build_world
from harness.saturation import bounds_for, mark_untrustworthy
from harness.selfwatch import CpuWatch, Watched, fetch_lags
from harness.sut.truth import mark_not_measured

if TYPE_CHECKING:
    from harness.load.sut import SutLoad

ORACLE_BASIS = "steps the system under test accepted (driver), as the expected targets"

READER_KEY = "operator-demo-key"
STACK_START = 4.0  # wall seconds ``promoharness serve`` takes to answer
SHARD_START = 2.0  # and more for each estate shard process it starts (a 2-core machine)
LOCUST_START = 2.5  # wall seconds from launching Locust to its first request
# A wrong price's attribution allows this much wall time for a hop between processes.
ATTRIBUTION_WALL_S = 0.05


@dataclass
class LoadOptions:
    users: int | None = None
    rate: float | None = None
    duration: float | None = None
    workers: int = 0
    host: str | None = None
    sim_host: str | None = None
    overrides: tuple[str, ...] = ()
    estate_shards: int = 0
    sim_token: str | None = None  # --host's simulators' admin token (serve --admin-token)


def fetch_records(
    api_url: str, sim_url: str, page: int = 10_000, token: str | None = None
) -> list[Record]:
    out: list[Record] = []
    inventory = http_json(f"{sim_url}/truth/inventory", bearer=token)
    out.extend(Record(**r) for r in inventory["records"])
    for url, key in ((f"{sim_url}/truth", None), (f"{api_url}/v1/audit", READER_KEY)):
        # ``next`` is opaque: an offset, or from a sharded estate's front one per shard
        # ("a.b"), which reads each record once even if a shard records more meanwhile.
        since: int | str = 0
        for _ in range(10_000):  # bounded: 10k pages
            bearer = token if key is None else None  # the estate's truth, not the API's
            data = http_json(
                f"{url}?since={since}&limit={page}", key=key, timeout=60, bearer=bearer
            )
            out.extend(Record(**r) for r in data["records"])
            if not data["records"] or data["next"] == since:
                break
            since = data["next"]
    return out


def run_load(campaign: Campaign, out: Path, options: LoadOptions) -> dict[str, Any]:
    """Run the campaign into ``out``; returns the summary (``passed`` decides the exit)."""
    out.mkdir(parents=True, exist_ok=True)
    scenario = resolve_scenario(campaign, list(options.overrides))
    world = build_world(scenario, None)
    scenario_file = dump_scenario(scenario, out / "scenario.yaml")
    stack: StackProcess | None = None
    if options.host:
        api_url = options.host.rstrip("/")
        sim_url = (options.sim_host or "").rstrip("/") or _sibling(api_url)
    else:
        starting = STACK_START + SHARD_START * options.estate_shards
        epoch = time.time() + starting + LOCUST_START
        state = out / "orchestrator.db"
        state.unlink(missing_ok=True)
        prime_state(state, scenario.name, world.seed, campaign.speed, epoch)
        stack = start_stack_process(
            scenario_file, state, campaign.speed, out / "stack.log", options.estate_shards
        )
        api_url, sim_url = stack.api_url, stack.sim_url
    try:
        epoch = _epoch(sim_url, campaign.speed, world) if options.host else epoch
        config = locust_config(
            campaign,
            scenario,
            world,
            api_url=api_url,
            sim_url=sim_url,
            epoch=epoch,
            workers=max(1, options.workers),
            rate=options.rate,
            users=options.users,
            duration=options.duration,
        )
        shards = shard_map(sim_url)  # shoppers go straight to their store's shard
        if shards:
            config["shards"] = shards
        config_path = out / "locust-config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        time.sleep(max(0.0, epoch - LOCUST_START - time.time()))
        cpu = CpuWatch()
        if stack is not None:  # shown beside Locust; judged by its loops' lag
            cpu.add("stack (serve)", stack.proc.pid)
            cpu.add_children("stack child process", stack.proc.pid)  # estate shards
        cpu.start()
        try:
            code = run_locust(
                config_path,
                out / "locust",
                run_time=config["duration"],
                workers=options.workers,
                watch=cpu,
            )
        finally:
            cpu.stop()
        end = time.time()
        estate = sorted(set(shards.values())) or [sim_url]
        watched = Watched(
            fetch_lags(estate, api_url),
            cpu.series,
            cpu.pids,
            bounds_for(delivery_timeouts(world), campaign.speed),
            origin=epoch,
            since=epoch,
            end=end,
        )
        records = fetch_records(api_url, sim_url, token=options.sim_token)
    finally:
        if stack is not None:
            stack.stop()
    return report(
        campaign, scenario, world, config, records, out, locust_code=code, watched=watched
    )


def _sibling(api_url: str) -> str:
    """``promoharness serve``'s default layout: simulators on the API port + 1."""
    base, _, port = api_url.rpartition(":")
    return f"{base}:{int(port) + 1}"


def _epoch(sim_url: str, speed: float, world: Any) -> float:
    """Wall time of scenario t=0 on a running stack, from one price check's ``at``."""
    basket = world.estate.catalog[0].to_line(1).model_dump(mode="json")
    answer = http_json(f"{sim_url}/web/price", {"lines": [basket]})
    return time.time() - float(answer["at"]) / speed


def _expected_result(slo: dict[str, Any]) -> str:
    """An ``expect: fail`` gate's outcome: as documented, or not (or not measured)."""
    if slo.get("status") == "not measured":
        return "not measured under load"
    return "fails, as expected" if not slo["passed"] else "PASSES"


def report(
    campaign: Campaign,
    scenario: Any,
    world: Any,
    config: dict[str, Any],
    records: list[Record],
    out: Path,
    *,
    locust_code: int,
    sut: SutLoad | None = None,
    watched: Watched | None = None,
) -> dict[str, Any]:
    """Summarise, add the load figures, judge the gates, write the report. With ``sut``
    (``load --sut``) the records are the estate's truth and what the driver played: the
    figures that need the system's own view are marked not measured, never zero. With
    ``watched`` (the harness's own lag and CPU) the report carries its headroom, and a
    saturated harness marks the gates it touched untrustworthy (``harness``)."""
    events = to_frame(records).sort_values("t", kind="stable", ignore_index=True)
    events = events[events["t"] >= 0].reset_index(drop=True)  # before t=0: start-up only
    summary = summarise(
        events,
        scenario=scenario.name,
        seed=world.seed,
        mode="load",
        budgets=world.budgets(),
        starts=validity_starts(world),
    )
    if sut is not None:
        summary["sut"] = sut.name
        mark_not_measured(summary, view=sut.view, timed=sut.timed, slos=[])
    prefix = out / "locust"
    summary["load"] = {
        "campaign": campaign.name,
        "speed": campaign.speed,
        "locust_exit": locust_code,
        **figures.load_figures(prefix, config),
    }
    if sut is not None:  # the timeline went through the driver, webhooks from the estate
        summary["load"] |= {
            "operator": "driver",
            "operator_steps": sut.steps,
            "operator_refused": len(sut.refused),
            "refused": sut.refused,
            "callbacks": sut.webhooks_sent,
            "callback_failures": sut.webhooks_failed,
            "oracle": ORACLE_BASIS,
        }
    if sut is None:  # the estate's truth beside the orchestrator's deliveries
        summary["load"]["stale_attribution"] = attribution.stale_attribution(
            figures.stale_samples(prefix),
            events,
            tolerance=ATTRIBUTION_WALL_S * campaign.speed,
            retry_gap=attribution.retry_gaps(world.policies, world.default_policy),
        )
    summary["slos"] = evaluate_slos(summary, gates_of(campaign, scenario))
    for slo, (expect, because) in zip(
        summary["slos"], expectations(campaign, scenario), strict=True
    ):
        if expect == "fail":  # documented, not excused: the exit code stays the verdict's
            slo |= {"expect": "fail", "because": because}
    judge_measured(summary)  # a gate on sampled shelf prices: load samples none
    if watched is not None:
        summary["harness"] = watched.section(campaign.speed)
        mark_untrustworthy(summary)
    requests = figures.request_table(prefix)
    reasons = pd.DataFrame(
        sorted(summary["load"]["failures_by_reason"].items()), columns=["reason", "failures"]
    )
    tables = [("Load: requests", requests), ("Load: failures by reason", reasons)]
    expected = [s for s in summary["slos"] if s.get("expect") == "fail"]
    if expected:
        tables.append(
            (
                "Load: gates expected to fail (the campaign's documented outcome)",
                pd.DataFrame(
                    [
                        {
                            "gate": s["name"],
                            "result": _expected_result(s),
                            "expected: fails because": s["because"],
                        }
                        for s in expected
                    ]
                ),
            )
        )
    if "stale_attribution" in summary["load"]:
        tables += attribution.tables(summary["load"]["stale_attribution"])
    if watched is not None:
        tables += figures.headroom_tables(summary["harness"])
    title = f"{campaign.name} — load on {scenario.name} at {campaign.speed:g}x"
    if sut is not None:
        title = f"{campaign.name} — {sut.name} under load on {scenario.name} at {campaign.speed:g}x"
    paths = write_report(
        out, summary, events, title=title, description=campaign.description, extra_tables=tables
    )
    entries = figures.read_json(prefix)
    images = {k[:-4]: v for k, v in paths.items() if k.endswith(".png")}
    mine = {
        "load — requests per second": plot_rps(
            figures.per_second(entries),
            figures.per_second(entries, "num_fail_per_sec"),
            config,
            out / "load_rps.png",
        ),
        "load — latency percentiles": plot_latency(
            figures.history(prefix), out / "load_latency.png"
        ),
        "load — propagation over time": plot_propagation(events, out / "load_propagation.png"),
    }
    images.update({k: v for k, v in mine.items() if v is not None})
    if watched is not None:
        images = with_headroom(
            images, out, summary["harness"], watched.lag, watched.cpu, watched.origin
        )
    page = render_html(
        summary, images, title=title, description=campaign.description, extra_tables=tables
    )
    for name, caption in CAPTIONS.items():  # captions: the page falls back to the name
        page = page.replace(
            f"<figcaption>{name}</figcaption>", f"<figcaption>{caption}</figcaption>"
        )
    (out / "report.html").write_text(page, encoding="utf-8")
    return summary
