"""Finding a driver: a YAML file, or a Python class (``path/to/file.py:Class`` or
``package.module:Class``) implementing ``driver.SystemUnderTest``."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from harness.inputs import InputError
from harness.sut.driver import SystemUnderTest
from harness.sut.yaml_driver import load_yaml_driver

__all__ = ["load_driver"]


def load_driver(spec: str) -> SystemUnderTest:
    """The driver ``spec`` names; an ``InputError`` (exit 2) naming it when it is not one."""
    if spec.endswith((".yaml", ".yml", ".json")):
        return load_yaml_driver(spec)
    target, _, cls_name = spec.rpartition(":")
    if not target or not cls_name:
        raise InputError(
            "a driver is a .yaml file or 'file.py:Class' / 'module:Class'", field="--sut"
        )
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise InputError("no such file", path=path, field="--sut")
            module_spec = importlib.util.spec_from_file_location(f"_sut_{path.stem}", path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except InputError:
        raise
    except Exception as exc:  # the user's module: any error is theirs, shown in one line
        raise InputError(f"cannot import {target}: {exc}", field="--sut") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise InputError(f"{target} has no {cls_name}", field="--sut")
    try:
        driver = cls()
    except Exception as exc:
        raise InputError(f"{cls_name}() failed: {exc}", field="--sut") from None
    if not isinstance(driver, SystemUnderTest):
        missing = [
            m
            for m in ("name", "base_url", "callbacks", "start", "supports", "act", "view", "close")
            if not hasattr(driver, m)
        ]
        raise InputError(
            f"{cls_name} is not a driver: it lacks {', '.join(missing)} "
            "(see harness/sut/driver.py)",
            field="--sut",
        )
    return driver
