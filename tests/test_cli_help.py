"""Command help reads cleanly at 80 columns: a docstring's own line breaks do not reach the
terminal, which wrapped them again into a line and a one-word stub each time."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from harness.cli.common import unwrap


def test_unwrap_joins_a_paragraphs_lines_and_keeps_paragraphs_and_lists() -> None:
    text = "First line\ngoes on.\n\nSecond paragraph,\n  indented.\n- item one\n- item\n  two"
    assert unwrap(text) == (
        "First line goes on.\n\nSecond paragraph, indented.\n- item one\n- item two"
    )
    kept = "\b\nkeep\nthese lines"
    assert unwrap(f"Head.\n\n{kept}") == f"Head.\n\n{kept}"


def _description(*command: str) -> list[str]:
    """The help's prose lines at 80 columns: from the usage line to the first box."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # only against a hang
        check=True,
    ).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("╭", "+-")))
    return [line.rstrip() for line in lines[start:end]]


@pytest.mark.parametrize(
    "command", [("live",), ("serve",), ("sweep",), ("load",), ("compare",), ("bench", "live")]
)
def test_no_line_of_a_paragraph_is_a_stub(command: tuple[str, ...]) -> None:
    lines = _description(*command)
    assert any(lines), lines
    for line, after in itertools.pairwise(lines):
        if line.strip() and after.strip():  # not a paragraph's last line: wrapped full
            assert len(line) > 55, f"a stub in `{' '.join(command)} --help`: {line!r}"
