"""Top-level commands whose modules load only when the command runs.

``promoharness --help`` must answer at once, but certification's commands pull in aiohttp,
httpx and jsonschema (over a second of imports). Their names and help are read from the
defining module's source (``ast``, no import) for the command list; the real command
replaces the placeholder as soon as Click resolves the name to run it or show its help.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["LazyGroup", "lazy_command"]

# command name -> (module, attribute of its Typer app); filled by lazy_command.
LAZY: dict[str, tuple[str, str]] = {}


class LazyGroup(TyperGroup):
    """A Typer group that swaps a lazy placeholder for its real command on first use.

    While it lists its commands for ``--help`` it hands out the placeholders (name and help
    only); any other look-up (running a command, its own ``--help``) imports the module.
    """

    _listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None or self._listing or cmd_name not in LAZY:
            return cmd
        real = self.commands[cmd_name] = _real_command(cmd_name)
        return real

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_command(app: typer.Typer, name: str, module: str, typer_app: str) -> None:
    """Register ``name`` on ``app`` as a placeholder for the command of that name in
    ``module``'s Typer app ``typer_app``; its help is the command function's docstring."""
    LAZY[name] = (module, typer_app)

    def placeholder() -> None:  # pragma: no cover - replaced before it could run
        raise RuntimeError(f"lazy command {name} was not loaded")

    app.command(name, help=_docstring(module, typer_app, name))(placeholder)


def _real_command(name: str) -> Any:
    module, attr = LAZY[name]
    sub = getattr(importlib.import_module(module), attr)
    group = typer.main.get_command(sub)
    commands = getattr(group, "commands", None)
    if commands is None:  # a Typer app with one command is that command
        return group
    return commands[name]


def _docstring(module: str, typer_app: str, name: str) -> str:
    """The docstring of the function that ``module`` registers as ``@<typer_app>.command(name)``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if _registers(deco, typer_app, name, node.name):
                return ast.get_docstring(node) or ""
    return ""


def _registers(deco: ast.expr, typer_app: str, name: str, function: str) -> bool:
    """Is ``deco`` ``@<typer_app>.command(name)`` (or ``.command()`` on a function ``name``)?"""
    if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
        return False
    target = deco.func
    if target.attr != "command" or not (
        isinstance(target.value, ast.Name) and target.value.id == typer_app
    ):
        return False
    if deco.args and isinstance(deco.args[0], ast.Constant):
        return deco.args[0].value == name
    return function.replace("_", "-") == name or function == name
