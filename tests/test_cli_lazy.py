"""Commands registered lazily (harness/cli/lazy.py): listed with their own help, loaded on use."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from contextlib import redirect_stdout

import typer

from harness.cli import app
from harness.cli.lazy import LAZY, _real_command, placeholder_help
from tests.cli_driver import run_cli

TOP_LEVEL = [
    *("run", "sweep", "serve", "live", "estate", "schema", "price", "dialects", "compare"),
    *("contract", "certify", "load", "bench", "lab"),
]


def test_placeholders_carry_the_real_commands_help() -> None:
    group = typer.main.get_command(app)
    assert list(group.commands) == TOP_LEVEL == list(LAZY)
    for name in LAZY:
        placeholder = group.commands[name]
        listed = placeholder_help(group, name)
        real = _real_command(name)
        assert real is not placeholder and real.name == name
        assert listed == real.help, name
        assert listed  # the docstring was found


def _help(group: typer.core.TyperGroup, *args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        group.main([*args, "--help"], prog_name="promoharness", standalone_mode=False)
    return out.getvalue()


def test_help_is_what_the_loaded_commands_print() -> None:
    """``--help`` from placeholders is character for character the help of the eager CLI:
    every real command in place, ``bench`` and ``lab`` mounted with ``add_typer``."""
    lazy = typer.main.get_command(app)
    reference = typer.Typer(help=app.info.help, no_args_is_help=True, add_completion=False)
    for name in ("bench", "lab"):
        _real_command(name)  # every bench command registered on bench_app
        modules, attr, _ = LAZY[name]
        reference.add_typer(getattr(importlib.import_module(modules[0]), attr), name=name)
    eager = typer.main.get_command(reference)
    mounted = dict(eager.commands)
    eager.commands = {n: mounted.get(n) or _real_command(n) for n in TOP_LEVEL}
    assert _help(lazy) == _help(eager)
    assert "Commands" in _help(lazy) and all(name in _help(lazy) for name in TOP_LEVEL)
    for name in ("bench", "lab", "run", "bench sim"):
        assert _help(lazy, *name.split()) == _help(eager, *name.split()), name


def test_top_level_help_loads_no_certification_module() -> None:
    probe = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('harness.certify.')))\n"
        "print('matplotlib' in sys.modules, 'pandas' in sys.modules, 'fastapi' in sys.modules)\n"
        "print('pydantic' in sys.modules, 'harness.cli.runs' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    ).stdout.splitlines()
    assert out[-3] == "[]"
    assert out[-2] == "False False False"
    assert out[-1] == "False False"  # no command module, nor pydantic (harness.inputs)
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
