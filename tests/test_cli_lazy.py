"""Commands registered lazily (harness/cli/lazy.py): listed with their own help, loaded on use."""

from __future__ import annotations

import subprocess
import sys

import typer

from harness.cli import app
from harness.cli.lazy import LAZY
from tests.cli_driver import run_cli


def test_placeholders_carry_the_real_commands_help() -> None:
    group = typer.main.get_command(app)
    assert set(LAZY) == {"contract", "certify"}
    for name, (module, attr) in LAZY.items():
        placeholder = group.commands[name]
        real = typer.main.get_command(getattr(__import__(module, fromlist=[attr]), attr))
        assert placeholder.help == real.commands[name].help
        assert placeholder.help  # the docstring was found


def test_top_level_help_loads_no_certification_module() -> None:
    probe = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('harness.certify.')))\n"
        "print('matplotlib' in sys.modules, 'pandas' in sys.modules, 'fastapi' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    ).stdout.splitlines()
    assert out[-2] == "[]"
    assert out[-1] == "False False False"
    assert "contract" in out[0] or any("contract" in line for line in out)


def test_a_lazy_command_runs_and_shows_its_own_help() -> None:
    listed = run_cli("contract", "pos")
    assert listed.code == 0, listed.stderr
    assert '"openapi"' in listed.stdout
    helped = run_cli("certify", "--help")
    assert helped.code == 0
    assert "promoharness certify" in helped.stdout and "--level" in helped.stdout
    missing = run_cli("certify")
    assert missing.code == 2 and "Missing argument" in missing.stderr
