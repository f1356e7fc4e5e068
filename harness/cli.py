"""The ``promoharness`` command line (Typer + rich): one entry point per user job.

Errors in user input never show a traceback: they print one line naming the file, line
and field, and exit with code 2 (DESIGN: 0 all SLOs passed, 1 an SLO failed, 2 bad input).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.inputs import InputError, load_model
from harness.lab import app as lab_app

app = typer.Typer(
    name="promoharness",
    help="Channel simulation and load testing for omnichannel retail promotions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks: print figures and ratios against a baseline.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
app.add_typer(lab_app, name="lab")

console = Console()
err = Console(stderr=True)


class SchemaName(StrEnum):
    promotion = "promotion"
    basket = "basket"


def example_path(name: str) -> Path:
    """A file shipped with the package under harness/examples (works from a wheel too)."""
    return Path(str(resources.files("harness") / "examples" / name))


def parse_instant(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"not an ISO 8601 date-time: {text!r}", field="--at") from None
    if value.tzinfo is None:
        raise InputError(f"give an offset or Z, e.g. {text}Z or {text}+01:00", field="--at")
    return value


@app.command()
def schema(name: Annotated[SchemaName, typer.Argument(help="Which document.")]) -> None:
    """Print the JSON Schema of a canonical promotion or of a basket."""
    if name is SchemaName.promotion:
        from harness.domain.promotion import promotion_json_schema

        document: dict[str, Any] = promotion_json_schema()
    else:
        from harness.domain.basket import Basket

        document = Basket.model_json_schema()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _load_promotions(path: Path) -> list[Any]:
    from pydantic import TypeAdapter

    from harness.domain.promotion import Promotion
    from harness.inputs import read_document, validate_data

    data, lines = read_document(path)
    if isinstance(data, dict):
        data, lines = [data], {(0, *k): v for k, v in lines.items()} | {(): 1}
    return validate_data(TypeAdapter(list[Promotion]), data, path, lines)


@app.command()
def price(
    basket: Annotated[Path | None, typer.Argument(help="Basket file (JSON/YAML).")] = None,
    promotions: Annotated[
        Path | None, typer.Argument(help="Promotions file: one promotion or a list.")
    ] = None,
    channel: Annotated[str, typer.Option(help="pos, ecommerce, loyalty or marketplace.")] = "pos",
    store: Annotated[
        str | None, typer.Option(help="Store id, for store-scoped promotions.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="The store's region.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="The store's IANA time zone.")] = "Europe/Paris",
    at: Annotated[
        str | None, typer.Option(help="Instant to price at, ISO 8601 with offset. Default: now.")
    ] = None,
    dialect: Annotated[
        str, typer.Option(help="Comma-separated channel dialects (see `dialects`).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """Price a basket under a set of promotions and print the receipt.

    Without files it prices the shipped example basket and promotions.
    """
    from harness.domain.basket import Basket
    from harness.domain.dialects import parse_dialects
    from harness.domain.pricing import StoreContext, price_basket
    from harness.domain.promotion import CHANNELS

    if channel not in CHANNELS:
        raise InputError(
            f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}", field="--channel"
        )
    basket_path = basket or example_path("basket.json")
    promo_path = promotions or example_path("promotions.json")
    parsed_basket = load_model(Basket, basket_path)
    promos = _load_promotions(promo_path)
    try:
        chosen = parse_dialects(dialect)
    except ValueError as exc:
        raise InputError(str(exc), field="--dialect") from None
    try:
        context = StoreContext(id=store, region=region, timezone=tz)
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:
        raise InputError(f"unknown IANA time zone {tz!r}", field="--tz") from None
    receipt = price_basket(
        parsed_basket, promos, channel=channel, at=parse_instant(at), store=context, dialect=chosen
    )
    if as_json:
        sys.stdout.write(receipt.model_dump_json(indent=2) + "\n")
        return
    _print_receipt(receipt)


def _print_receipt(receipt: Any) -> None:
    table = Table(
        title=f"Receipt — channel {receipt.channel}"
        + (f", store {receipt.store}" if receipt.store else "")
        + f" ({receipt.tax_mode} prices)"
    )
    for column in ("SKU", "Qty", "Unit", "List", "Discounts", "Amount", "Tax"):
        table.add_column(column, justify="left" if column in ("SKU", "Discounts") else "right")
    for line in receipt.lines:
        discounts = ", ".join(f"{d.promo}@{d.version} -{d.amount}" for d in line.discounts)
        table.add_row(
            line.sku,
            str(line.quantity),
            str(line.unit_price),
            str(line.list_amount),
            discounts or "—",
            str(line.amount),
            str(line.tax),
        )
    console.print(table)
    console.print(
        f"Subtotal {receipt.subtotal}   Discount -{receipt.discount_total}   "
        f"Tax {receipt.tax_total}   [bold]Total {receipt.total}[/bold]"
        + (f"   Points {receipt.points}" if receipt.points else "")
    )
    if receipt.applied:
        console.print("Applied: " + ", ".join(receipt.applied))
    if receipt.dialects:
        console.print("Dialects: " + ", ".join(receipt.dialects))


@app.command()
def dialects() -> None:
    """List the named pricing dialects channels can show."""
    from harness.domain.dialects import DIALECT_DESCRIPTIONS

    table = Table(title="Pricing dialects")
    table.add_column("name")
    table.add_column("what the channel does")
    for name, text in DIALECT_DESCRIPTIONS.items():
        table.add_row(name, text)
    console.print(table)


ScenarioArg = Annotated[
    str | None,
    typer.Argument(help="A scenario file, or a library name (default: weekend-private-label)."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a scenario value: path.to.key=value (repeatable)."),
]


@app.command()
def run(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default reports/<scenario>-<UTC time>).")
    ] = None,
    overrides: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a flash-sale scenario in virtual time and write its report.

    Exit code 0 when every SLO passed, 1 when one failed, 2 for bad input.
    """
    from harness.runner import run_scenario
    from harness.scenario import load_scenario

    chosen = load_scenario(scenario, overrides or [])
    with _progress(quiet, f"simulating {chosen.name}") as tick:
        result = run_scenario(chosen, seed=seed, out=out, progress=tick)
    _print_verdicts(result.summary)
    console.print(f"report: {result.out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.summary["passed"] else 1)


def _print_verdicts(summary: dict[str, Any]) -> None:
    prop = summary["propagation"]["overall"]
    storm = summary["retry_storm"]
    fmt = _fmt_seconds
    console.print(
        f"propagation T50 {fmt(prop.get('t50'))}  T95 {fmt(prop.get('t95'))}  "
        f"T99 {fmt(prop.get('t99'))}  T100 {fmt(prop.get('t100'))}   "
        f"retry amplification {storm.get('amplification')}  "
        f"dead-lettered {storm.get('dead_lettered')}",
        highlight=False,
    )
    if summary["slos"]:
        table = Table(title="SLOs")
        for column in ("SLO", "metric", "value", "threshold", "verdict"):
            table.add_column(column)
        for slo in summary["slos"]:
            verdict = "[green]pass[/green]" if slo["passed"] else "[red]FAIL[/red]"
            table.add_row(
                slo["name"],
                slo["metric"],
                str(slo["value"]),
                f"{slo['op']} {slo['threshold']}",
                verdict,
            )
        console.print(table)


def _fmt_seconds(value: Any) -> str:
    if value is None:
        return "never"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.2f} s"


class _progress:
    """A rich progress bar over simulated time, or nothing when quiet / not a terminal."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet = quiet
        self.label = label
        self.bar: Any = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.quiet:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[sim]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task(self.label, total=1.0, sim="")

        def tick(now: float, total: float) -> None:
            self.bar.update(
                task,
                completed=now / total if total else 1.0,
                sim=f"t={now / 3600:.2f} h of {total / 3600:.2f} h",
            )

        return tick

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@app.command()
def sweep(
    scenario: ScenarioArg = None,
    vary: Annotated[
        list[str] | None,
        typer.Option(help="A scenario path and its values: key=v1,v2,... (repeatable)."),
    ] = None,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs per cell, with seeds seed, seed+1, ...")
    ] = 1,
    jobs: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: CPU count).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="First seed (default: the scenario's).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default reports/sweep-<scenario>-<UTC time>)."),
    ] = None,
    overrides: SetOption = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Another summary.json dotted path to report (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario over a grid of values (cartesian product of --vary), repeated per seed.

    Writes sweep.csv, summary.csv, one PNG per figure and report.html. Exit code 0 when
    every run passed its SLOs, 1 when one failed, 2 for bad input.
    """
    import time

    from harness import sweep as sw
    from harness.report.sweep_report import write_sweep
    from harness.runner import default_out_dir

    if not vary:
        raise InputError("give at least one --vary key=v1,v2,...", field="--vary")
    varies = [sw.parse_vary(text) for text in vary]
    figures = sw.figures_of(metric or [])
    base = overrides or []
    path, chosen = sw.validate_grid(scenario, base, varies)
    first = chosen.seed if seed is None else seed
    specs = sw.expand_grid(varies, repeats, first)
    started = time.perf_counter()
    with sw.RunProgress(len(specs), err, quiet=quiet) as on_done:
        runs = sw.run_grid(path, base, specs, figures, jobs=jobs, on_done=on_done)
    wall = time.perf_counter() - started
    keys = [v.key for v in varies]
    cells = sw.cell_table(runs, keys, figures)
    out_dir = out or default_out_dir(f"sweep-{chosen.name}")
    seeds = list(range(first, first + repeats))
    write_sweep(
        out_dir,
        runs,
        cells,
        grid=[(v.key, v.values) for v in varies],
        figures=figures,
        seeds=seeds,
        title=f"sweep of {chosen.name}",
        description=chosen.description,
        notes=[f"{len(specs)} runs in {wall:.1f} s wall time"],
    )
    failed = sw.failed_cells(cells)
    console.print(
        f"{len(specs)} runs ({len(cells)} cells x {repeats} seeds) in {wall:.1f} s; "
        + (f"{failed} of {len(cells)} cells failed an SLO" if failed else "every run passed"),
        highlight=False,
    )
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


class Component(StrEnum):
    all = "all"
    api = "api"
    sim = "sim"


@app.command()
def serve(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    overrides: SetOption = None,
    api_port: Annotated[int, typer.Option(help="Orchestrator API port on 127.0.0.1.")] = 8700,
    sim_port: Annotated[int, typer.Option(help="Simulators port on 127.0.0.1.")] = 8701,
    speed: Annotated[float, typer.Option(min=0.001, help="Scenario seconds per second.")] = 1.0,
    state: Annotated[
        Path | None, typer.Option(help="SQLite state file (resumed if it exists).")
    ] = None,
    component: Annotated[
        Component, typer.Option(help="Run everything, or only the API or the simulators.")
    ] = Component.all,
) -> None:
    """Start the live stack on loopback: endpoint simulators and the orchestrator API.

    Prints the URLs and the demo API keys; Ctrl-C stops it cleanly. Operator actions go
    through the API (the scenario's timeline is not played: that is `live`). With
    --component api|sim the two halves run as separate processes (the API finds the
    simulators on --sim-port, the simulators send webhooks to --api-port).
    """
    import asyncio
    import signal

    from harness.runtime.live import LiveClock
    from harness.runtime.world import build_world
    from harness.scenario import load_scenario
    from harness.service.auth import DEMO_KEYS
    from harness.stack import HOST, open_state, start_service, start_simulators

    chosen = load_scenario(scenario, overrides or [])
    if component is not Component.sim:
        state = state or _run_dir(f"serve-{chosen.name}") / "orchestrator.db"
        state.parent.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        world = build_world(chosen, seed)
        servers = []
        try:
            if component is Component.sim:
                clock = LiveClock(speed=speed)
            else:
                assert state is not None
                store, clock = open_state(state, chosen, world.seed, speed)
            if component is not Component.api:
                sim = await start_simulators(
                    world, api_url=f"http://{HOST}:{api_port}", clock=clock, port=sim_port
                )
                servers.append(sim)
                console.print(
                    f"  simulators        {sim.url}   (truth: /truth, faults: /admin/faults)"
                )
            if component is not Component.sim:
                runtime, api = await start_service(
                    world, store, clock, sim_url=f"http://{HOST}:{sim_port}", port=api_port
                )
                servers.append(api)
                console.print(
                    f"  orchestrator API  {api.url}/v1   (OpenAPI: {api.url}"
                    "/openapi.json, metrics: /metrics)"
                )
                console.print(f"  dashboard         {api.url}/dashboard (when installed)")
                console.print(f"  state             {state}")
        except OSError as exc:
            raise InputError(f"cannot bind a port on {HOST}: {exc}") from None
        console.print(
            f"[bold]promoharness stack[/bold] for scenario {chosen.name} "
            f"(seed {world.seed}, speed {clock.speed:g}x)"
        )
        if component is not Component.sim:
            table = Table(title="demo API keys (header X-API-Key)")
            table.add_column("key")
            table.add_column("role")
            for key, who in DEMO_KEYS.items():
                table.add_row(key, who.role + (f" ({who.channel})" if who.channel else ""))
            console.print(table)
        console.print("Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        console.print("stopping…")
        for server in reversed(servers):
            await server.stop()
        if component is not Component.sim:
            await runtime.close()
            store.close()

    asyncio.run(main())


@app.command()
def live(
    scenario: ScenarioArg = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Compress the scenario K times (wall clock).")
    ] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    overrides: SetOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Play the scenario's operator timeline against the live stack (real HTTP) and write
    the same report as `run`, plus a sim-vs-live table of the headline figures."""
    import asyncio

    from harness.live_run import run_live, sim_vs_live
    from harness.report import write_report
    from harness.runner import simulate
    from harness.scenario import load_scenario

    chosen = load_scenario(scenario, overrides or [])
    out_dir = out or _run_dir(f"{chosen.name}-live")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _progress(quiet, f"live {chosen.name} at {speed:g}x") as tick:
        result = asyncio.run(
            run_live(
                chosen, state=out_dir / "orchestrator.db", speed=speed, seed=seed, progress=tick
            )
        )
    sim = simulate(chosen, seed=seed).summary
    comparison = sim_vs_live(sim, result.summary)
    write_report(
        out_dir,
        result.summary,
        result.events,
        title=f"{chosen.name} — live run at {speed:g}x (seed {result.summary['seed']})",
        description=chosen.description,
        extra_tables=[("Simulated vs live (same scenario and seed)", comparison)],
    )
    for line in result.refused:
        err.print(f"[yellow]refused:[/yellow] {line}", highlight=False)
    table = Table(title="sim vs live")
    for column in comparison.columns:
        table.add_column(str(column))
    for row in comparison.itertuples(index=False):
        table.add_row(
            *("—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row)
        )
    console.print(table)
    _print_verdicts(result.summary)
    console.print(f"report: {out_dir}/report.html", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.summary["passed"] else 1)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if not value.is_integer() else f"{value:.0f}"
    return str(value)


def _run_dir(name: str) -> Path:
    from harness.runner import default_out_dir

    return default_out_dir(name)


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
) -> None:
    """Virtual-time speed: default scenario wall time, deliveries/s against bare SimPy,
    and the million-sale Black Friday day (time and memory)."""
    from harness.bench.sim import delivery_throughput, scenario_wall

    def verdict(ok: bool) -> str:
        return "[green]OK[/green]" if ok else "[red]MISSED[/red]"

    wk = scenario_wall("weekend-private-label")
    console.print(
        f"weekend-private-label: {wk['wall_s']:.2f} s wall for {wk['events']:,} events "
        f"({wk['sales']:,} sales)   target < 3 s   {verdict(wk['wall_s'] < 3)}"
    )
    fan = delivery_throughput()
    console.print(
        f"deliveries: {fan['runtime_per_s']:,.0f}/s through the runtime vs "
        f"{fan['bare_simpy_per_s']:,.0f}/s bare SimPy (same fan-out shape, best of 3) = "
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
    """Live stack: publish-to-acknowledged-activation of 604 endpoints vs a bare
    aiohttp-to-uvicorn fan-out (target <= 2x); status reads/s during the publish (>= 500)."""
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


def main() -> None:
    """Console-script entry point: run the Typer app, turning bad input into exit code 2."""
    try:
        app()  # standalone: Click prints usage errors itself and exits 2
    except InputError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
