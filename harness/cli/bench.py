"""Benchmarks: figures and ratios against baselines measured in the same run."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import bench_app, console


@bench_app.command("pricing")
def bench_pricing(
    repeats: Annotated[int, typer.Option(min=100, help="Baskets to price.")] = 5000,
) -> None:
    """Median time to quote a 10-line basket against 20 active promotions (target <= 100 µs)."""
    from harness.bench.pricing import bench_pricing as run_bench

    figures = run_bench(repeats=repeats)
    verdict = "OK" if figures["median_us"] <= figures["target_us"] else "SLOWER THAN TARGET"
    console.print(
        f"pricing: {figures['lines']}-line basket, {figures['promotions']} promotions, "
        f"{repeats} runs"
    )
    console.print(
        f"  quote (the pure core, as simulated shoppers price): median "
        f"{figures['median_us']:.1f} µs   p95 {figures['p95_us']:.1f} µs   "
        f"target <= {figures['target_us']} µs   {verdict}   (the same basket with no "
        f"promotion, this run: {figures['baseline_us']:.1f} µs)"
    )
    console.print(
        f"  with the pydantic Receipt (what an HTTP price endpoint builds before serialising): "
        f"median {figures['receipt_median_us']:.1f} µs   p95 {figures['receipt_p95_us']:.1f} µs"
    )


@bench_app.command("sim")
def bench_sim(
    black_friday: Annotated[
        bool, typer.Option("--black-friday/--no-black-friday", help="Also the 24 h peak day.")
    ] = True,
    repeats: Annotated[
        int, typer.Option(min=1, help="Deliveries/s: best of N alternating runs per side.")
    ] = 7,
    runs: Annotated[
        int, typer.Option(min=1, help="Whole-process figures: runs per command (median).")
    ] = 3,
) -> None:
    """Virtual-time speed as a user waits for it, against the issue's targets.

    Whole processes (``promoharness --help``, ``promoharness run`` of the default scenario,
    of a 5,000-store estate and of the Black Friday day) beside a bare interpreter start,
    the default run's stages (import, build, simulate, figures, report), the in-process
    simulation, and deliveries/s against a bare SimPy loop of the same shape.
    """
    import tempfile

    from harness.bench.process import promoharness, stage_profile, whole_process
    from harness.bench.sim import delivery_throughput, scenario_wall

    def verdict(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[red]MISSED[/red]"

    def process(label: str, argv: list[str], target_s: float, target_mib: float = 0) -> None:
        f = whole_process(argv, repeats=runs)
        ok = f["median_s"] <= target_s and (not target_mib or f["peak_mib"] <= target_mib)
        mem = (
            f"   peak {f['peak_mib']:,.0f} MiB (target <= {target_mib:,.0f})" if target_mib else ""
        )
        console.print(
            f"{label}: {f['median_s']:.2f} s whole process (median of {f['runs']}, best "
            f"{f['best_s']:.2f} s; {f['cpu_s']:.2f} s CPU with its workers) vs bare python "
            f"start {f['python_start_s']:.2f} s   target <= {target_s:g} s{mem}   "
            f"exit {f['exit_codes']}   load {f['load']:.1f}   {verdict(ok)}"
        )

    with tempfile.TemporaryDirectory() as tmp:
        process("promoharness --help", promoharness("--help"), 0.3)
        out = f"{tmp}/run"
        process(
            "promoharness run (weekend-private-label)",
            promoharness("run", "--out", out, "-q"),
            3.0,
        )
        stages = stage_profile("weekend-private-label")
        console.print(
            "  stages, one process (wall / cpu s): "
            + "   ".join(
                f"{k} {stages[k]['wall_s']:.2f}/{stages[k]['cpu_s']:.2f}"
                for k in ("import", "build", "simulate", "figures", "report")
            )
        )
        rep, fig = stages["report"], stages["figures"]
        where = (
            "the workers built the log, summary, parquet and junit (figures stage)"
            if stages.get("handed_off")
            else "the command built the log and summary"
        )
        # Judged on everything after the simulation: handed off, parquet and junit are
        # written with the summary (the figures stage), so the report stage alone would
        # leave them out of "HTML + plots + parquet + junit"; this counts the summary too.
        after = fig["wall_s"] + rep["wall_s"]
        console.print(
            f"  report writing (HTML + plots + parquet + junit, and the summary, after the "
            f"simulation): {after:.2f} s wall   target <= 1 s   {verdict(after <= 1.0)}   "
            f"({where}; of it the page and plots after the summary {rep['wall_s']:.2f} s; "
            f"workers {stages.get('workers_cpu_s', 0):.2f} s CPU)"
        )
        wk = scenario_wall("weekend-private-label", repeats=3)
        console.print(
            f"  in process: simulation + figures {wk['wall_s']:.2f} s (best of {wk['runs']}; "
            f"first {wk['first_wall_s']:.2f} s) for {wk['events']:,} events "
            f"({wk['sales']:,} sales)"
        )
        process(
            "promoharness run, 5,000 stores",
            promoharness("run", "--set", "estate.stores=5000", "--out", f"{tmp}/big", "-q"),
            10.0,
        )
        fan = delivery_throughput(repeats=repeats)
        console.print(
            f"deliveries: {fan['runtime_per_s']:,.0f}/s through the runtime vs "
            f"{fan['bare_simpy_per_s']:,.0f}/s bare SimPy (same fan-out shape, best of "
            f"{repeats}) = {fan['ratio']:.2f}x   target >= {fan['target_ratio']:.2f}x   "
            f"{verdict(fan['ratio'] >= fan['target_ratio'])}"
        )
        if black_friday:
            process(
                "promoharness run black-friday-flash-sale",
                promoharness("run", "black-friday-flash-sale", "--out", f"{tmp}/bf", "-q"),
                20.0,
                1024.0,
            )


@bench_app.command("live")
def bench_live_cmd(
    repeats: Annotated[int, typer.Option(min=1, help="Best of N for both sides.")] = 3,
) -> None:
    """Live-stack speed against a bare aiohttp-to-uvicorn fan-out.

    Publish to acknowledged activation of 604 endpoints (target <= 2x the bare fan-out)
    and status reads answered per second during the publish (target >= 500); then the
    faithful speed of each library scenario on this machine (harness/faithful.py).
    """
    import asyncio

    from harness.bench.live import bench_live

    def verdict(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[red]MISSED[/red]"

    f = asyncio.run(bench_live(repeats=repeats))
    console.print(
        f"publish to {f['targets']} endpoints, acknowledged: {f['activation_s'] * 1000:.0f} ms"
        f" vs bare aiohttp->uvicorn fan-out {f['bare_fan_out_s'] * 1000:.0f} ms = "
        f"{f['ratio']:.2f}x   target <= {f['target_ratio']:.1f}x   "
        f"{verdict(f['ratio'] <= f['target_ratio'])}"
    )
    console.print(
        f"status reads during the publish: {f['reads_per_s']:,.0f}/s ({f['read_errors']} "
        f"errors)   target >= {f['target_reads_per_s']:.0f}/s   "
        f"{verdict(f['reads_per_s'] >= f['target_reads_per_s'])}"
    )
    from harness.bench.live import faithful_speeds
    from harness.runtime.live import run as live_loop  # the loop live runs use

    for row in live_loop(faithful_speeds()):
        console.print(
            f"faithful speed {row['scenario']}: {row['faithful_speed']:.3g}x, limited by "
            f"{row['limited_by']} ({row['timeouts_only_speed']:.3g}x by the timeouts alone); "
            f"{row['isolated_ms']:.2f} ms alone, "
            f"{row['burst_p95_ms']:.0f} ms p95 on the wire in a burst of {row['endpoints']} "
            f"(load {row['load_average']:.1f})",
            highlight=False,
            soft_wrap=True,
        )


@bench_app.command("sut")
def bench_sut_cmd(
    seconds: Annotated[
        float, typer.Option(min=0.1, help="Absorb phase: seconds of back-to-back publishes.")
    ] = 5.0,
    stores: Annotated[int, typer.Option(min=1, help="Stores in the estate.")] = 600,
    absorb_speed: Annotated[
        float, typer.Option(min=1.0, help="Absorb phase: scenario seconds per wall second.")
    ] = 1000.0,
) -> None:
    """Is the estate ever what limits a measurement of your system?

    Deliveries per second the estate (default scenario, its faults, a process of its own)
    absorbs from an external aiohttp fan-out, and its event-loop lag p99 during a
    600-store publish at speed 1, each against a bare Starlette app in the same run.
    """
    from harness.bench.sut import bench_sut

    def verdict(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[red]MISSED[/red]"

    f = bench_sut(seconds=seconds, absorb_speed=absorb_speed, stores=stores)
    a, b = f["absorb_estate"], f["absorb_bare"]
    console.print(
        f"absorb ({f['targets']} endpoints, speed {absorb_speed:g}x, {a['attempts']:,} "
        f"attempts in {seconds:g} s): estate {a['per_s']:,.0f} deliveries/s vs bare "
        f"Starlette {b['per_s']:,.0f}/s = {f['absorb_ratio']:.2f}x"
    )
    console.print(
        f"  estate answers {a['answers']}, {a['no_answer']} unanswered; loop lag p99 "
        f"{a['lag_p99_ms']:.1f} ms vs bare {b['lag_p99_ms']:.1f} ms (both saturated)",
        highlight=False,
    )
    e, r = f["publish_estate"], f["publish_bare"]
    console.print(
        f"publish to {f['targets']} endpoints at speed 1 ({e['attempts']} attempts with "
        f"retries, {e['wall_s']:.1f} s): estate loop lag p99 {e['lag_p99_ms']:.1f} ms (p50 "
        f"{e['lag_p50_ms']:.1f}, max {e['lag_max_ms']:.0f}) vs bare Starlette p99 "
        f"{r['lag_p99_ms']:.1f} ms over the same window: +{max(0.0, f['lag_excess_ms']):.1f} ms"
        f"   target < +{f['lag_target_ms']:.0f} ms   {verdict(f['lag_ok'])}"
    )
    asked = e["attempts"] / e["wall_s"] if e["wall_s"] else 0.0
    headroom = f"{a['per_s'] / asked:.0f}x" if asked else "n/a"
    console.print(
        f"  the publish asked {asked:,.0f} deliveries/s on average of an estate that absorbs "
        f"{a['per_s']:,.0f}/s: headroom {headroom}"
    )


@bench_app.command("estate")
def bench_estate_cmd(
    seconds: Annotated[float, typer.Option(min=2, max=120, help="Seconds per run.")] = 8.0,
    stores: Annotated[int, typer.Option(min=2, max=5000, help="Stores in the estate.")] = 600,
    generators: Annotated[int, typer.Option(min=1, max=16, help="Load-generator processes.")] = 2,
    connections: Annotated[
        int, typer.Option(min=2, max=1024, help="Deliveries in flight (all generators).")
    ] = 64,
    rounds: Annotated[
        int, typer.Option(min=1, max=10, help="Alternating 1-shard / 2-shard runs (best of).")
    ] = 2,
) -> None:
    """Deliveries/s the estate absorbs as 1 and as 2 shard processes (target >= 1.5x).

    The shards (--estate-shards) are driven by generator processes of their own; printed
    with the CPU that says who was the limit, and how it extrapolates to more cores."""
    import os

    from harness.bench.estate import bench_estate

    f = bench_estate(
        stores=stores,
        seconds=seconds,
        generators=generators,
        connections=connections,
        rounds=rounds,
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(
        f"bench estate: {stores} stores, {connections} deliveries in flight from "
        f"{generators} generator process(es), {seconds:g} s a run, best of {rounds} "
        f"(this machine: {f['cores']} cores, load average {load:.1f})",
        highlight=False,
    )
    for label, run in (("1 shard ", f["one"]), ("2 shards", f["two"])):
        shares = " + ".join(f"{c:.0%}" for c in run["shard_cpu_share"])
        console.print(
            f"  {label}: {run['per_second']:,.0f} deliveries/s   answers {run['answers']}   "
            f"shard CPU {shares} of a core   {run['shard_cpu_ms_per_delivery'] or 0:.3f} ms "
            "CPU per delivery",
            highlight=False,
        )
    ok = f["ratio"] >= 1.5
    mark = "[green]OK[/green]" if ok else "[red]MISSED[/red]"
    console.print(f"  ratio 2 shards / 1 shard: {f['ratio']:.2f}x   target >= 1.5x   {mark}")
    runs = [r for side in f["runs"].values() for r in side]
    gen_ms = max(r["generator_cpu_ms_per_delivery"] or 0.0 for r in runs)
    gen_share = max(c for r in runs for c in r["generator_cpu_share"])
    est_ms = min(r["shard_cpu_ms_per_delivery"] or 0.0 for r in runs)
    cheaper = f"{est_ms / gen_ms:.1f}x" if gen_ms else "far"
    console.print(
        f"  generator: at most {gen_ms:.3f} ms CPU per delivery ({cheaper} cheaper than the "
        f"estate's {est_ms:.3f}) and at most {gen_share:.0%} of a core per process: "
        + ("not the bottleneck" if gen_share < 0.9 else "[red]SATURATED[/red], add --generators"),
        highlight=False,
    )
    busy = max(c for r in runs for c in r["shard_cpu_share"])
    if busy < 0.9:
        console.print(
            f"  no shard had a whole core (at most {busy:.0%}): the machine is shared, and "
            "the deliveries/s are what the scheduler gave the shards",
            highlight=False,
        )
    if f["per_core"]:
        console.print(
            f"  extrapolation: a shard absorbs about {f['per_core']:,.0f} deliveries/s per "
            "core it gets (1 / its CPU per delivery); on a host with C cores free for the "
            f"estate, --estate-shards C absorbs about C x {f['per_core']:,.0f}/s, the "
            "orchestrator and the generator on other cores",
            highlight=False,
        )
