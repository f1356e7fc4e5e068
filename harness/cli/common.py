"""What every command shares: the Typer apps, the consoles, scenario arguments, the
progress bar over simulated time and the verdict printout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

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


ScenarioArg = Annotated[
    str | None,
    typer.Argument(help="A scenario file, or a library name (default: weekend-private-label)."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a scenario value: path.to.key=value (repeatable)."),
]


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


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if not value.is_integer() else f"{value:.0f}"
    return str(value)


def _run_dir(name: str) -> Path:
    from harness.runner import default_out_dir

    return default_out_dir(name)
