"""``promoharness compare RUN_DIR RUN_DIR ...``: runs of one scenario on one page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import app, check_out, console, err


@app.command()
def compare(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Two or more run folders (written by run, live or load).",
            metavar="RUN_DIR",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default reports/compare-<UTC time>).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Another summary.json dotted path to compare (repeatable)."),
    ] = None,
) -> None:
    """Set runs of one scenario side by side: compare.html (self-contained) and compare.json.

    Headline figures with the best value per row marked, coverage and latency curves
    overlaid, retry storms on one scale, rollback verdicts. Runs of different scenarios,
    seeds or modes are flagged at the top. Exit code 0, or 2 for bad input.
    """
    from harness.compare import write_compare

    check_out(out)
    folder, body = write_compare(runs or [], out, metric or [])
    for m in body["mismatches"]:
        values = ", ".join(f"{k}={v}" for k, v in m["values"].items())
        err.print(
            f"warning: runs of different {m['field']}: {values}", markup=False, highlight=False
        )
    console.print(f"compare: {folder}/compare.html", highlight=False, soft_wrap=True)
