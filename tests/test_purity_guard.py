"""Guard: the pure layers stay free of I/O, clocks, logging and the runtimes.

``harness/domain``, ``harness/orchestrator`` and the simulators' behaviour models are
driven by both clocks (SimPy and asyncio, see docs/architecture.md), so they must not
import a runtime, a clock, a logger or a network library, nor open files, print, read the
wall clock or draw from the global random generator. Each module is parsed (never
imported), so a violation is reported even in a module nothing imports yet.

To guard another directory, add it to ``PURE_DIRS`` (with the files it may exclude); a
single pure module outside them (a formula its caller feeds with measurements) goes in
``PURE_FILES``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# directory (relative to the repository root) -> file names in it that are not pure
PURE_DIRS: dict[str, frozenset[str]] = {
    "harness/domain": frozenset(),
    "harness/orchestrator": frozenset(),
    # The FastAPI apps serving the models (the asyncio twin of the SimPy server side) and
    # the contract they publish.
    "simulators": frozenset(
        {
            *("apps.py", "app_delivery.py", "app_runtime.py", "app_admin.py"),
            *("app_contract.py", "app_loop_lag.py"),
        }
    ),
}
# Formulas whose callers measure: the faithful live speed, the harness-saturation rule,
# sim-vs-live agreement.
PURE_FILES: tuple[str, ...] = (
    "harness/faithful.py",
    "harness/saturation.py",
    "harness/agreement.py",
)
FORBIDDEN_MODULES = frozenset(
    {
        "asyncio",
        "simpy",
        "fastapi",
        "aiohttp",
        "pandas",
        "time",
        "logging",
        "socket",
        "requests",
        "httpx",
    }
)
FORBIDDEN_CALLS = frozenset({"open", "print", "input"})
CLOCK_READS = frozenset({"now", "utcnow", "today"})
CLOCK_TYPES = frozenset({"datetime", "date", "dt"})


def pure_modules() -> list[Path]:
    found: list[Path] = []
    for directory, excluded in PURE_DIRS.items():
        base = ROOT / directory
        if base.is_dir():
            found += sorted(p for p in base.rglob("*.py") if p.name not in excluded)
    found += [ROOT / name for name in PURE_FILES]
    return found


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def violations(source: str) -> list[str]:
    """What in ``source`` breaks purity, one message per offence (with its line)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            modules = []
        for module in modules:
            if module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"line {line}: imports {module}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"line {line}: calls {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = _name(func.value)
            if func.attr in CLOCK_READS and owner in CLOCK_TYPES:
                found.append(f"line {line}: reads the clock ({owner}.{func.attr}())")
            if owner == "random" and func.attr != "Random":
                found.append(f"line {line}: global random generator (random.{func.attr}())")
    return found


MODULES = pure_modules()


def test_the_guard_finds_the_pure_packages() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in MODULES}
    assert "harness/orchestrator/events.py" in names
    assert "harness/domain/promotion.py" in names
    assert not any(n.endswith("simulators/apps.py") for n in names)


@pytest.mark.parametrize("path", MODULES, ids=[p.relative_to(ROOT).as_posix() for p in MODULES])
def test_pure_module_has_no_io_clock_or_runtime(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import asyncio", "imports asyncio"),
        ("import time as t", "imports time"),
        ("from logging import getLogger", "imports logging"),
        ("from aiohttp.web import Application", "imports aiohttp.web"),
        ("import simpy.resources", "imports simpy.resources"),
        ("open('x')", "calls open()"),
        ("print(1)", "calls print()"),
        ("import datetime\ndatetime.datetime.now()", "reads the clock (datetime.now())"),
        ("import datetime as dt\ndt.date.today()", "reads the clock (date.today())"),
        ("import random\nrandom.random()", "global random generator (random.random())"),
    ],
)
def test_the_guard_catches(source: str, expected: str) -> None:
    assert any(v.endswith(expected) for v in violations(source)), violations(source)


def test_the_guard_lets_pure_code_through() -> None:
    source = "import datetime\nimport random\nrng = random.Random(1)\nout.now\nx.now\n"
    assert violations(source) == []


# --- the estate is a component of its own ------------------------------------------------
# Everything under simulators/ (its HTTP face included) may reach into harness/ only for
# the domain: a scenario's World provides simulators.served.ServedEstate, never the reverse.
ESTATE_MAY_IMPORT = ("harness.domain",)


def upward_imports(source: str) -> list[str]:
    """Imports of ``harness`` outside the domain, one message per offence (with its line)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            allowed = any(module == p or module.startswith(p + ".") for p in ESTATE_MAY_IMPORT)
            if module.split(".")[0] == "harness" and not allowed:
                found.append(f"line {node.lineno}: imports {module}")
    return found


ESTATE_MODULES = sorted((ROOT / "simulators").rglob("*.py"))


@pytest.mark.parametrize(
    "path", ESTATE_MODULES, ids=[p.relative_to(ROOT).as_posix() for p in ESTATE_MODULES]
)
def test_the_estate_depends_on_the_domain_only(path: Path) -> None:
    assert upward_imports(path.read_text(encoding="utf-8")) == []


def test_the_estate_guard_covers_its_http_face_and_catches() -> None:
    names = {p.name for p in ESTATE_MODULES}
    assert {"apps.py", "app_admin.py", "app_runtime.py", "served.py"} <= names
    assert upward_imports("from harness.runtime.world import World") == [
        "line 1: imports harness.runtime.world"
    ]
    assert upward_imports("import harness.scenario") == ["line 1: imports harness.scenario"]
    # Inside a function or under TYPE_CHECKING counts too: the dependency is the same.
    assert upward_imports("def f():\n    from harness.scenario import FaultSpec\n") == [
        "line 2: imports harness.scenario"
    ]
    assert upward_imports("from harness.domain.promotion import Promotion") == []
    assert upward_imports("from harness.domainx import y") == ["line 1: imports harness.domainx"]
