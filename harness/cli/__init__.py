"""The ``promoharness`` command line (Typer + rich): one entry point per user job.

Errors in user input never show a traceback: they print one line naming the file, line
and field, and exit with code 2 (DESIGN: 0 all SLOs passed, 1 an SLO failed, 2 bad input).
Each module registers its commands on the shared app when imported.
"""

from __future__ import annotations

import sys

from harness.certify.cli import certify_app

from harness.cli.common import app, bench_app, err  # isort: skip
from harness.cli import runs, live, pricing, bench  # noqa: F401, I001  (register, in --help order)
from harness.inputs import InputError
from harness.load.cli import bench_load_command, load_command

# `promoharness contract CHANNEL` and `promoharness certify URL`, at the top level.
app.registered_commands.extend(certify_app.registered_commands)
app.command("load")(load_command)
bench_app.command("load")(bench_load_command)


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
