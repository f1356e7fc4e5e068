"""Top-level commands whose modules load only when the command runs.

``promoharness --help`` must answer at once, and ``promoharness run`` should pay for the
simulation, not for importing the live stack, certification (aiohttp, httpx, jsonschema),
Locust's campaign code or the labs. Every top-level command is a placeholder here: its
name and help are read from the defining module's source (``ast``, no import) for the
command list; the real command replaces the placeholder as soon as Click resolves the name
to run it or show its own help. A group (``bench``, ``lab``) is loaded whole the same way.

The command modules register their commands on ``harness.cli.common.app`` (a registry,
never run itself); ``harness.cli.app`` is the command line of placeholders.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["LazyGroup", "lazy_command", "lazy_group"]

# command name -> (modules to import, attribute of the Typer app, whole group?); filled by
# lazy_command and lazy_group.
LAZY: dict[str, tuple[tuple[str, ...], str, bool]] = {}
# command name -> its help for the listing, read from source when first listed: a command
# that runs (``promoharness run``) parses no module's source.
HELP: dict[str, Any] = {}


class LazyGroup(TyperGroup):
    """A Typer group that swaps a lazy placeholder for its real command on first use.

    While it lists its commands for ``--help`` it hands out the placeholders (name and help
    only); any other look-up (running a command, its own ``--help``) imports the module.
    """

    _listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None or self._listing or cmd_name not in LAZY or not _is_placeholder(cmd):
            return cmd
        real = self.commands[cmd_name] = _real_command(cmd_name)
        return real

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for name, cmd in self.commands.items():  # read from the source only when listed
            if name in HELP and cmd.help is None and _is_placeholder(cmd):
                cmd.help = HELP[name]()
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_command(app: typer.Typer, name: str, module: str, typer_app: str, *also: str) -> None:
    """Register ``name`` on ``app`` as a placeholder for the command of that name in
    ``module``'s Typer app ``typer_app`` (after importing ``also`` too: modules that
    register more commands on the same app); its help is the function's docstring."""
    LAZY[name] = ((module, *also), typer_app, False)
    HELP[name] = functools.partial(_docstring, module, typer_app, name)
    _placeholder(app, name, None)


def lazy_group(app: typer.Typer, name: str, module: str, typer_app: str, help: str) -> None:
    """Register ``name`` on ``app`` as a placeholder for the whole Typer group ``typer_app``
    of ``module`` (imported when the group is used), listed with ``help``."""
    LAZY[name] = ((module,), typer_app, True)
    _placeholder(app, name, help)


def _placeholder(app: typer.Typer, name: str, help: str | None) -> None:
    def placeholder() -> None:  # pragma: no cover - replaced before it could run
        raise RuntimeError(f"lazy command {name} was not loaded")

    placeholder.__lazy__ = True  # type: ignore[attr-defined]
    app.command(name, help=help)(placeholder)


def _is_placeholder(cmd: Any) -> bool:
    callback = getattr(cmd, "callback", None)
    return bool(
        getattr(callback, "__lazy__", False)
        or getattr(getattr(callback, "__wrapped__", None), "__lazy__", False)
    )


def _real_command(name: str) -> Any:
    modules, attr, whole = LAZY[name]
    for module in modules:
        importlib.import_module(module)
    sub = getattr(importlib.import_module(modules[0]), attr)
    if whole:  # as ``add_typer`` would mount it: no completion options of its own
        group = typer.main.get_group(sub)
        group.name = name
        return group
    group = typer.main.get_command(sub)
    commands = getattr(group, "commands", None)
    if commands is None:  # a Typer app with one command is that command
        return group
    return commands[name]


def placeholder_help(group: Any, name: str) -> str | None:
    """The help ``name``'s placeholder in ``group`` lists (read from source if not yet)."""
    cmd = group.commands[name]
    if name in HELP and cmd.help is None:
        cmd.help = HELP[name]()
    return cmd.help


def group_help(module: str, typer_app: str) -> str:
    """The ``help=`` text of ``<typer_app> = typer.Typer(help=...)`` in ``module``'s source."""
    for node in _tree(module):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if not any(isinstance(t, ast.Name) and t.id == typer_app for t in node.targets):
            continue
        for keyword in node.value.keywords:
            if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
    return ""


@functools.cache  # one parse per module, however many of its commands are listed
def _tree(module: str) -> list[ast.stmt]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return []
    with open(spec.origin, encoding="utf-8") as f:
        return ast.parse(f.read()).body


def _docstring(module: str, typer_app: str, name: str) -> str:
    """The docstring of the function that ``module`` registers as ``@<typer_app>.command(name)``."""
    for node in _tree(module):
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
