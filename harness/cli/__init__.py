"""The ``promoharness`` command line (Typer + rich): one entry point per user job.

Errors in user input never show a traceback: they print one line naming the file, line
and field, and exit with code 2. Exit codes: 0 every SLO or gate passed, 1 one failed,
2 bad input (nothing run), 3 a sweep or lab cell failed twice, 4 the harness itself
saturated during a live or load run (its figures are no verdict).
Each command module registers its commands on ``common.app`` when imported; ``app`` here
lists them as placeholders and loads a module when its command is used (``cli.lazy``).
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from harness.cli.common import bench_app, err
from harness.cli.lazy import LazyGroup, group_help, lazy_command, lazy_group

__all__ = ["app", "main"]

app = typer.Typer(
    name="promoharness",
    help="Channel simulation and load testing for omnichannel retail promotions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # every command's module loads when it runs, not for --help
)

# In --help order. A command's module loads only when that command runs (or shows its
# own help): ``--help`` imports none of them, and ``run`` not the live stack's,
# certification's (aiohttp, httpx, jsonschema) or Locust's campaign modules.
lazy_command(app, "run", "harness.cli.runs", "app")
lazy_command(app, "sweep", "harness.cli.runs", "app")
lazy_command(app, "serve", "harness.cli.serve", "app")
lazy_command(app, "live", "harness.cli.live", "app")
lazy_command(app, "estate", "harness.cli.estate", "app")
lazy_command(app, "schema", "harness.cli.pricing", "app")
lazy_command(app, "price", "harness.cli.pricing", "app")
lazy_command(app, "dialects", "harness.cli.pricing", "app")
lazy_command(app, "compare", "harness.cli.compare", "app")
lazy_command(app, "contract", "harness.certify.cli", "certify_app")
lazy_command(app, "certify", "harness.certify.cli", "certify_app")
lazy_command(app, "load", "harness.load.cli", "load_app")
lazy_group(app, "bench", "harness.cli.bench_group", "bench_app", str(bench_app.info.help))
lazy_group(app, "lab", "harness.lab", "app", group_help("harness.lab", "app"))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the Typer app, turning bad input into exit code 2.

    ``argv`` (default ``sys.argv[1:]``) lets tests drive the real entry point in-process.
    """
    try:
        # Not standalone: Click's own usage errors come here too, to print on one line.
        code = app(args=argv, prog_name="promoharness", standalone_mode=False)
    except typer.TyperException as exc:  # Click's: a bad option, a missing argument...
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # the command's help, as Click shows it
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        print_error(where + exc.format_message())
        sys.exit(getattr(exc, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if not _input_error(exc):
            raise
        print_error(str(exc))
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _input_error(exc: BaseException) -> bool:
    """Is ``exc`` a ``harness.inputs.InputError``? Without importing that module (pydantic)
    when no command has: then nothing can have raised one."""
    inputs = sys.modules.get("harness.inputs")
    return inputs is not None and isinstance(exc, inputs.InputError)


def print_error(message: str) -> None:
    """``error: <message>`` on one line of stderr, the message as plain text.

    Never through rich markup: a file name or value holding "[x]" must print as it is, and
    "[/x]" must not crash the printer.
    """
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
