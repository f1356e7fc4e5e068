"""What every command shares: the Typer apps, the consoles, scenario arguments, the
progress bar over simulated time and the verdict printout.

``app`` here is the registry the command modules put their commands on; the command line
itself (``harness.cli.app``) lists placeholders and loads a command's module on use
(``harness.cli.lazy``), so this module stays cheap to import: no pydantic, no pandas.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.text import Text


def _no_type_on_flags() -> None:
    """``--help`` shows no ``<bool>`` beside a flag: a flag takes no value.

    Typer's option help prints every option's type, flags included; this keeps the type
    column for options that do take a value.
    """
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        if (self.is_flag or self.count) and self.metavar is None:
            return None
        return shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_type_on_flags()


def unwrap(text: str) -> str:
    """A help text's paragraphs each on one line, for the terminal to wrap.

    Typer's rich help (0.29) keeps a paragraph's own line breaks after its first and wraps
    each line again at the terminal's width: a docstring sentence broken at column 90
    printed as a line and a stub of one word. Paragraphs stay apart; one marked ``\\b``
    (Click's "keep as written") and lines starting a list item ("- ", "* ") keep theirs.
    """
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.lstrip().startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.split("\n"):
            line = line.strip()
            if lines and not line.startswith(("- ", "* ")):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _help_paragraphs() -> None:
    """Every command's and group's ``--help`` shows its help text ``unwrap``-ped."""
    for cls in (typer.core.TyperCommand, typer.core.TyperGroup):
        shown = cls.format_help

        def format_help(self: Any, ctx: Any, formatter: Any, _shown: Any = shown) -> None:
            if self.help:
                self.help = unwrap(self.help)
            _shown(self, ctx, formatter)

        cls.format_help = format_help  # type: ignore[method-assign]


_help_paragraphs()

# The real commands register here (``@app.command()``); ``harness.cli`` builds the command
# line of lazy placeholders in front of them. Never run directly.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
bench_app = typer.Typer(
    help="Benchmarks: print figures and ratios against a baseline.", no_args_is_help=True
)

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
# Seeds are 64-bit (harness.scenario.MAX_SEED); a longer number is a typo, not a seed.
SEED_LIMIT = 2**63 - 1
# The fastest --speed a command takes: a day of scenario in under nine seconds. Above it
# (inf above all) no clock is meaningful, and inf reached the report as non-JSON.
MAX_SPEED = 10_000.0


def check_seed(seed: int | None, option: str = "--seed") -> None:
    from harness.inputs import InputError

    if seed is not None and abs(seed) > SEED_LIMIT:
        raise InputError(f"{seed} is beyond a 64-bit seed (|seed| <= {SEED_LIMIT})", field=option)


def check_out(out: Path | None, option: str = "--out") -> None:
    """Fail before any work when ``out`` cannot become the output folder.

    It may exist as a folder (its files are replaced one by one, atomically) or not exist
    yet; a file there, or a file where one of its parents should be, is bad input.
    """
    from harness.inputs import InputError

    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise InputError("exists and is a file; give a folder", path=out, field=option)
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{parent} is a file, not a folder", path=out, field=option)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"cannot write in {parent}", path=out, field=option)
            break


@contextmanager
def fresh_folder(out: Path) -> Iterator[Path]:
    """Yield ``out``; if this run made it and then failed, remove it (no half report)."""
    made = not out.exists()
    try:
        yield out
    except BaseException:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise


NOT_MEASURED = "not measured"  # an SLO's status with no verdict (harness.agreement)


async def until_interrupted() -> None:
    """Wait for Ctrl-C or SIGTERM inside the running loop (a served stack or estate runs
    until then), then say so."""
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    console.print("stopping…")


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
        from rich.table import Table

        table = Table(title="SLOs")
        for column in ("SLO", "metric", "value", "threshold"):
            # fold, not ellipsis: an 80-column CI log must still show the whole metric path
            table.add_column(column, overflow="fold")
        table.add_column("verdict", no_wrap=True)  # "not measured live" on one line
        unmeasured = [slo for slo in summary["slos"] if slo.get("status") == NOT_MEASURED]
        for slo in summary["slos"]:
            verdict = Text("pass", "green") if slo["passed"] else Text("FAIL", "red")
            gone = slo.get("status") == NOT_MEASURED
            if gone:  # "not measured live": the reason's head
                verdict = Text(str(slo["reason"]).split(":")[0], "yellow")
            # Text, not str: a user's SLO name is shown as written, never read as markup.
            table.add_row(
                Text(str(slo["name"])),
                Text(str(slo["metric"])),
                # A measured figure that is None never happened (never recovered, never
                # reached its 95 %): say so rather than print Python's None.
                Text("—" if gone else "never" if slo["value"] is None else str(slo["value"])),
                Text(f"{slo['op']} {slo['threshold']}"),
                verdict,
            )
        console.print(table)
        _print_unmeasured(unmeasured, len(summary["slos"]))


def _print_unmeasured(unmeasured: list[dict[str, Any]], total: int) -> None:
    """Why each SLO not measured has no verdict; a warning when no SLO had one."""
    for slo in unmeasured:
        console.print(Text.assemble(f"{slo['name']}: ", (str(slo["reason"]), "yellow")))
    if unmeasured:
        console.print(
            f"{len(unmeasured)} of {total} SLOs not measured: left out of the verdict and "
            "the exit code (run the scenario in virtual time, `promoharness run`, to judge them)",
            highlight=False,
        )
    if unmeasured and len(unmeasured) == total:
        err.print(
            f"[yellow]warning:[/yellow] none of the {total} SLOs was measured in this run: "
            "nothing was judged (it passes as with no SLOs; junit.xml marks each skipped)",
            highlight=False,
        )


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
