"""The ``promoharness`` command line (Typer + rich): one entry point per user job.

Errors in user input never show a traceback: they print one line naming the file, line
and field, and exit with code 2 (DESIGN: 0 all SLOs passed, 1 an SLO failed, 2 bad input).
Each module registers its commands on the shared app when imported.
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from harness.cli.common import app, bench_app, err  # isort: skip
from harness.cli import runs, live, estate, pricing, bench, compare  # noqa: F401, I001  (register, in --help order)
from harness.cli.lazy import lazy_command
from harness.inputs import InputError
from harness.load.cli import bench_load_command, load_command

# `promoharness contract CHANNEL` and `promoharness certify URL`, at the top level; their
# module (aiohttp, httpx, jsonschema: a second of imports) loads only when one runs.
lazy_command(app, "contract", "harness.certify.cli", "certify_app")
lazy_command(app, "certify", "harness.certify.cli", "certify_app")
app.command("load")(load_command)
bench_app.command("load")(bench_load_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the Typer app, turning bad input into exit code 2.

    ``argv`` (default ``sys.argv[1:]``) lets tests drive the real entry point in-process.
    """
    try:
        # Not standalone: Click's own usage errors come here too, to print on one line.
        code = app(args=argv, prog_name="promoharness", standalone_mode=False)
    except InputError as exc:
        print_error(str(exc))
        sys.exit(2)
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
    sys.exit(code if isinstance(code, int) else 0)


def print_error(message: str) -> None:
    """``error: <message>`` on one line of stderr, the message as plain text.

    Never through rich markup: a file name or value holding "[x]" must print as it is, and
    "[/x]" must not crash the printer.
    """
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
