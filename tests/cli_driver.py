"""Drive the real ``promoharness`` entry point in this process and capture what a user sees."""

from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from harness.cli import main


@dataclass(frozen=True)
class Outcome:
    code: int | None
    stdout: str
    stderr: str


def run_cli(*args: str) -> Outcome:
    """``promoharness ARGS`` via ``harness.cli.main``: its exit code, stdout and stderr.

    An exception escaping ``main`` is what a user would see as a traceback: it is put in
    stderr as one, with code None, so a test can assert there is none.
    """
    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # a traceback is the very failure being tested for
            err.write(traceback.format_exc())
            code = None
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_line_error(outcome: Outcome, *needles: str) -> str:
    """Exit 2, no traceback, exactly one line on stderr (``error: ...``) holding ``needles``."""
    assert "Traceback" not in outcome.stderr + outcome.stdout, outcome.stderr
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    lines = outcome.stderr.strip("\n").split("\n")
    assert len(lines) == 1, outcome.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line
