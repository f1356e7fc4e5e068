"""Benchmarks: figures and ratios against baselines measured in the same run."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import bench_app, console


@bench_app.command("pricing")
def bench_pricing(
    repeats: Annotated[int, typer.Option(min=100, help="Baskets to price.")] = 5000,
) -> None:
    """Median time to price a 10-line basket against 20 active promotions (target < 200 µs)."""
    from harness.bench.pricing import bench_pricing as run_bench

    figures = run_bench(repeats=repeats)
    verdict = "OK" if figures["median_us"] < figures["target_us"] else "SLOWER THAN TARGET"
    console.print(
        f"pricing: {figures['lines']}-line basket, {figures['promotions']} promotions, "
        f"{repeats} runs"
    )
    console.print(
        f"  median {figures['median_us']:.1f} µs   p95 {figures['p95_us']:.1f} µs   "
        f"target < {figures['target_us']} µs   {verdict}"
    )


@bench_app.command("sim")
def bench_sim(
    black_friday: Annotated[
        bool, typer.Option("--black-friday/--no-black-friday", help="Also the 24 h peak day.")
    ] = True,
    repeats: Annotated[
        int, typer.Option(min=1, help="Deliveries/s: best of N alternating runs per side.")
    ] = 7,
) -> None:
    """Virtual-time speed against bare SimPy and the issue's targets.

    Default scenario wall time, deliveries/s against a bare SimPy loop of the same
    shape, and the million-sale Black Friday day (time and memory).
    """
    from harness.bench.sim import delivery_throughput, scenario_wall

    def verdict(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[red]MISSED[/red]"

    wk = scenario_wall("weekend-private-label", repeats=3)
    console.print(
        f"weekend-private-label: {wk['wall_s']:.2f} s wall (best of {wk['runs']}; first run "
        f"{wk['first_wall_s']:.2f} s) for {wk['events']:,} events ({wk['sales']:,} sales)   "
        f"target < 3 s   "
        f"{verdict(wk['wall_s'] < 3)}"
    )
    fan = delivery_throughput(repeats=repeats)
    console.print(
        f"deliveries: {fan['runtime_per_s']:,.0f}/s through the runtime vs "
        f"{fan['bare_simpy_per_s']:,.0f}/s bare SimPy (same fan-out shape, best of {repeats}) = "
        f"{fan['ratio']:.2f}x   target >= {fan['target_ratio']:.2f}x   "
        f"{verdict(fan['ratio'] >= fan['target_ratio'])}"
    )
    if black_friday:
        bf = scenario_wall("black-friday-flash-sale")
        console.print(
            f"black-friday-flash-sale: {bf['wall_s']:.1f} s wall, {bf['sales']:,} sales, "
            f"peak RSS {bf['peak_rss_mib']:,.0f} MiB   targets < 60 s, >= 1,000,000 sales, "
            f"< 2048 MiB   "
            f"{verdict(bf['wall_s'] < 60 and bf['sales'] >= 1e6 and bf['peak_rss_mib'] < 2048)}"
        )


@bench_app.command("live")
def bench_live_cmd(
    repeats: Annotated[int, typer.Option(min=1, help="Best of N for both sides.")] = 3,
) -> None:
    """Live-stack speed against a bare aiohttp-to-uvicorn fan-out.

    Publish to acknowledged activation of 604 endpoints (target <= 2x the bare fan-out)
    and status reads answered per second during the publish (target >= 500).
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
