"""What every lab command shares (harness/lab/command.py): progress lines in a pipe, a cell
that fails twice named with exit code 3 and nothing written, and the closing lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.lab import app

HANG_SECONDS = 600.0  # a lab of a few cells: only a hang takes this long


def test_a_piped_lab_prints_a_line_per_stage(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    command = [sys.executable, "-c", "from harness.cli import main; main()", "lab", "backoff"]
    args = ["--n-min", "5", "--n-max", "10", "--n-step", "5", "--runs", "3", "--jobs", "1"]
    proc = subprocess.run(
        [*command, *args, "--out", str(out)],
        capture_output=True,  # both pipes: what a CI log sees
        text=True,
        timeout=HANG_SECONDS,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    # 4 kinds x 2 N x 3 runs; each stage once, in order, with its wall time (not judged).
    assert [line.split(":")[0] for line in lines] == [
        "simulating 24 runs (24/24)",
        f"writing {out}",
    ]
    assert all(line.endswith(" s") for line in lines)
    assert "\x1b[" not in proc.stderr  # no bar, no colour codes in a log
    assert "8 cells x 3 runs in " in proc.stdout and "with 1 process(es)" in proc.stdout
    assert f"wrote {out / 'lab.md'}" in proc.stdout


def test_quiet_prints_no_progress(tmp_path: Path) -> None:
    args = ["backoff", "--n-min", "5", "--n-max", "5", "--runs", "1", "--jobs", "1", "-q"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_metastable_cell_failing_twice_is_named_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.lab import metastable_study

    real = metastable_study._row
    tries: list[float] = []  # the phase cell X=0.6, D=2 (at the published 75 us)

    def broken(exp):  # type: ignore[no-untyped-def]
        if exp.cut == 0.6 and exp.policy == "published":
            tries.append(exp.cut)
            raise RuntimeError("the primary fell over")
        return real(exp)

    monkeypatch.setattr(metastable_study, "_row", broken)  # --jobs 1: in this process
    out = tmp_path / "lab"
    args = ["metastable", "--capacity", "35500", "--cuts", "0.6", "--durations", "2"]
    args += ["--intervals", "120", "--policies", "published", "--jobs", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines()[-1] == (
        "error: 1 cell(s) failed every attempt: published X=0.6 D=2 s interval=75 us: "
        "RuntimeError: the primary fell over"
    )
    assert tries == [0.6, 0.6]  # the first attempt and one retry
    assert not out.exists()
