"""The declarative driver: a YAML file saying, per operator action, which HTTP request to
send to the system under test (``docs/sut-drivers.md`` has the full format).

Templates: in a URL, header or body string, ``{promo}``, ``{channel}``, ``{publish_at}``,
``{publish_at_iso}``, ``{deadline}``, ``{reason}``, ``{at}``, ``{action}``, ``{base_url}``
and ``{estate_url}`` are replaced by the step's values; a body value that is exactly
``{{promotion}}``, ``{{scope}}``, ``{{channels}}``, ``{{regions}}``, ``{{stores}}``,
``{{publish_at}}`` or ``{{deadline}}`` becomes that JSON value (an object, a list, a
number); a start command may also use ``{scenario}``, ``{seed}``, ``{speed}``,
``{estate_port}`` and ``{work_dir}``. ``${NAME}`` anywhere is the environment variable
NAME (``${NAME:-default}`` with a fallback), read when the file is loaded (a missing one
is an error naming file, line and field) and never written to a report.
Every problem is an ``InputError`` naming file, line and field (exit 2).
"""

from __future__ import annotations

import asyncio
import os
import re
import string
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.inputs import InputError, Location, nearest_line, read_document, validate_data
from harness.sut.driver import ACTIONS, ActionResult, Believed, Step, Unreachable

__all__ = ["DriverFile", "YamlDriver", "load_yaml_driver"]

RUN_PLACEHOLDERS = frozenset({"scenario", "seed", "speed", "estate_port", "work_dir"})
PLACEHOLDERS = RUN_PLACEHOLDERS | frozenset(
    {
        "promo",
        "channel",
        "publish_at",
        "publish_at_iso",
        "deadline",
        "reason",
        "at",
        "action",
        "base_url",
        "estate_url",
    }
)
VALUES = frozenset(
    {"promotion", "scope", "channels", "regions", "stores", "publish_at", "deadline"}
)
_VALUE = re.compile(r"^\{\{\s*(\w+)\s*\}\}$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
EXCERPT = 300


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Until(_Strict):
    """Poll after the request until a JSON field of the answer holds one of ``values``."""

    method: Literal["GET", "POST"] = "GET"
    url: str
    path: str = Field(description="Dotted path into the JSON answer, e.g. 'state'.")
    values: list[Any] = Field(min_length=1)
    every: float = Field(default=0.5, gt=0, le=60)
    timeout: float = Field(default=60.0, gt=0, le=3600)


class Request(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    expect: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    until: Until | None = None

    @field_validator("expect")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not an HTTP status: {bad}")
        return value


class Start(_Strict):
    """A command that starts the system (``{estate_url}``, ``{base_url}`` substituted)."""

    command: list[str] = Field(min_length=1)
    ready_timeout: float = Field(default=30.0, gt=0, le=600)


class Callback(_Strict):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class View(_Strict):
    """Where the system says which endpoints acknowledged a promotion."""

    method: Literal["GET", "POST"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    rows: str = Field(description="Dotted path to the list of endpoint rows.")
    endpoint: str = Field(default="endpoint", description="Field naming the endpoint.")
    acked: str = Field(default="state", description="Field telling whether it acked.")
    acked_values: list[Any] = Field(default_factory=lambda: ["acked"], min_length=1)
    at: str | None = Field(default=None, description="Field with the ack time (scenario s).")


class DriverFile(_Strict):
    name: str = Field(min_length=1, max_length=80)
    base_url: str
    health: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=600)
    start: Start | None = None
    callbacks: dict[str, Callback] = Field(default_factory=dict)
    actions: dict[str, Request | Literal["skip"]]
    view: View | None = None

    @field_validator("actions")
    @classmethod
    def _known(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r}; actions are {list(ACTIONS)}")
        return value

    @field_validator("callbacks")
    @classmethod
    def _channels(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = {"ecommerce", "loyalty", "marketplace", "pos", "erp"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; channels are {sorted(allowed)}")
        return value


def _resolve_env(node: Any, loc: Location, path: Path, lines: dict[Location, int]) -> Any:
    """Replace ``${NAME}`` from the environment, everywhere; a missing one is an error."""
    if isinstance(node, dict):
        return {k: _resolve_env(v, (*loc, k), path, lines) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, (*loc, i), path, lines) for i, v in enumerate(node)]
    if isinstance(node, str):

        def value(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name not in os.environ and default is not None:
                return default
            if name not in os.environ:
                raise InputError(
                    f"environment variable {name} is not set (the driver reads its secret there)",
                    path=path,
                    line=nearest_line(lines, loc),
                    field=".".join(map(str, loc)),
                )
            return os.environ[name]

        return _ENV.sub(value, node)
    return node


def _check_templates(node: Any, loc: Location, path: Path, lines: dict[Location, int]) -> None:
    """Every placeholder must be one the driver fills: a typo is an error now, not at 09:00."""
    if isinstance(node, dict):
        for k, v in node.items():
            _check_templates(v, (*loc, k), path, lines)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_templates(v, (*loc, i), path, lines)
    elif isinstance(node, str):
        where = {"path": path, "line": nearest_line(lines, loc), "field": ".".join(map(str, loc))}
        whole = _VALUE.match(node)
        if whole:
            if whole.group(1) not in VALUES:
                raise InputError(
                    f"unknown value {{{{{whole.group(1)}}}}}; values are {sorted(VALUES)}",
                    **where,
                )
            return
        try:
            text = _ENV.sub("", node)  # ${SECRET}s are the environment's, not placeholders
            names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise InputError(f"bad template {node!r}: {exc}", **where) from None
        for name in names:
            if name not in PLACEHOLDERS:
                raise InputError(
                    f"unknown placeholder {{{name}}}; placeholders are {sorted(PLACEHOLDERS)}",
                    **where,
                )


def load_yaml_driver(path: str | Path) -> YamlDriver:
    """Read and check a driver file; every problem names file, line and field."""
    path = Path(path)
    data, lines = read_document(path)
    if isinstance(data, dict):
        actions = data.get("actions")
        for name in actions if isinstance(actions, dict) else ():
            if name not in ACTIONS:
                raise InputError(
                    f"unknown action {name!r}; actions are {', '.join(ACTIONS)}",
                    path=path,
                    line=nearest_line(lines, ("actions", name)),
                    field=f"actions.{name}",
                )
        for key in ("actions", "view", "callbacks", "start", "base_url", "health"):
            if key in data:
                _check_templates(data[key], (key,), path, lines)
        data = _resolve_env(data, (), path, lines)
    spec: DriverFile = validate_data(DriverFile, data, path, lines)
    return YamlDriver(spec, path)


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else []:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class YamlDriver:
    """A ``SystemUnderTest`` from a ``DriverFile``: one httpx client, requests rendered
    from the step."""

    def __init__(self, spec: DriverFile, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self.base_url = spec.base_url.rstrip("/")
        self.estate_url = ""
        self.run: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- set-up -----------------------------------------------------------------------------

    def _context(self, step: Step | None = None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            **dict.fromkeys(RUN_PLACEHOLDERS, ""),
            **self.run,
            "base_url": self.base_url,
            "estate_url": self.estate_url,
        }
        if step is not None:
            ctx |= {
                "promo": step.promo,
                "channel": step.channel,
                "publish_at": "" if step.publish_at is None else f"{step.publish_at:g}",
                "publish_at_iso": step.publish_at_iso,
                "deadline": f"{step.deadline:g}",
                "reason": step.reason,
                "at": f"{step.at:g}",
                "action": step.action,
            }
        return ctx

    def callbacks(self) -> dict[str, tuple[str, dict[str, str]]]:
        ctx = self._context()
        return {
            channel: (c.url.format(**ctx), {k: v.format(**ctx) for k, v in c.headers.items()})
            for channel, c in self.spec.callbacks.items()
        }

    def supports(self, action: str) -> bool:
        return action in self.spec.actions

    async def start(self, estate_url: str, run: Mapping[str, str]) -> None:
        self.estate_url = estate_url
        self.run = dict(run)
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.spec.timeout)
        if self.spec.start is not None:
            ctx = self._context()
            argv = [
                sys.executable if a == "python" else a.format(**ctx)
                for a in self.spec.start.command
            ]
            log_dir = Path(self.run.get("work_dir") or ".")
            log_dir.mkdir(parents=True, exist_ok=True)
            # The system's own output goes beside the report, not over the progress bar.
            with open(log_dir / "sut.log", "ab") as log:
                self._process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            await self._wait_ready(self.spec.start.ready_timeout)
        else:
            await self._wait_ready(self.spec.timeout)

    async def _wait_ready(self, patience: float) -> None:
        """Until the health path answers (< 500), or ``Unreachable`` after ``patience`` s."""
        url = self.base_url + (self.spec.health or "/")
        give_up = time.monotonic() + patience
        why = ""
        assert self._client is not None
        while time.monotonic() < give_up:
            if self._process is not None and self._process.poll() is not None:
                raise Unreachable(url, f"its start command exited with {self._process.returncode}")
            try:
                r = await self._client.get(url, timeout=min(2.0, patience))
                if r.status_code < 500:
                    return
                why = f"status {r.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            await asyncio.sleep(0.1)
        raise Unreachable(url, f"{why or 'no answer'} for {patience:g} s")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    # --- acting -----------------------------------------------------------------------------

    def _render(self, node: Any, step: Step, ctx: Mapping[str, Any]) -> Any:
        if isinstance(node, dict):
            return {k: self._render(v, step, ctx) for k, v in node.items()}
        if isinstance(node, list):
            return [self._render(v, step, ctx) for v in node]
        if isinstance(node, str):
            whole = _VALUE.match(node)
            if whole:
                name = whole.group(1)
                if name == "promotion":
                    return step.promotion
                if name == "scope":
                    return dict(step.scope)
                if name in ("channels", "regions", "stores"):
                    return list(step.scope.get(name, []))
                return step.publish_at if name == "publish_at" else step.deadline
            return node.format(**ctx)
        return node

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: Any
    ) -> httpx.Response:
        assert self._client is not None, "start() first"
        try:
            return await self._client.request(
                method, url, headers=headers, json=body if method != "GET" else None
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(self.base_url + url, type(exc).__name__) from None

    async def act(self, step: Step) -> ActionResult:
        request = self.spec.actions.get(step.action)
        if request is None or request == "skip":
            return ActionResult(True, 0, "skipped: the driver declares no such step")
        ctx = self._context(step)
        url = request.url.format(**ctx)
        headers = {k: v.format(**ctx) for k, v in request.headers.items()}
        body = self._render(request.body, step, ctx)
        try:
            r = await self._send(request.method, url, headers, body)
        except httpx.TimeoutException:
            return ActionResult(False, 0, f"no answer within {self.spec.timeout:g} s")
        excerpt = r.text[:EXCERPT]
        if r.status_code not in request.expect:
            return ActionResult(False, r.status_code, excerpt)
        if request.until is not None:
            return await self._until(request.until, headers, step, ctx, r.status_code)
        return ActionResult(True, r.status_code, excerpt)

    async def _until(
        self, until: Until, headers: dict[str, str], step: Step, ctx: Mapping[str, Any], status: int
    ) -> ActionResult:
        url = until.url.format(**ctx)
        give_up = time.monotonic() + until.timeout
        seen: Any = None
        while time.monotonic() < give_up:
            try:
                r = await self._send(until.method, url, headers, None)
                seen = _dig(r.json(), until.path) if r.status_code < 400 else None
            except (httpx.TimeoutException, ValueError):
                seen = None
            if seen in until.values:
                return ActionResult(True, status, f"{until.path} = {seen!r}")
            await asyncio.sleep(until.every)
        return ActionResult(
            False, status, f"{until.path} never became one of {until.values} (last {seen!r})"
        )

    async def view(self, promo: str) -> list[Believed] | None:
        view = self.spec.view
        if view is None:
            return None
        ctx = {**self._context(), "promo": promo}
        try:
            r = await self._send(
                view.method,
                view.url.format(**ctx),
                {k: v.format(**ctx) for k, v in view.headers.items()},
                None,
            )
        except httpx.TimeoutException:
            return None
        if r.status_code >= 400:
            return None
        rows = _dig(r.json(), view.rows)
        if not isinstance(rows, list):
            return None
        out = []
        for row in rows:
            endpoint = _dig(row, view.endpoint)
            if endpoint is None:
                continue
            at = _dig(row, view.at) if view.at else None
            out.append(
                Believed(
                    str(endpoint),
                    _dig(row, view.acked) in view.acked_values,
                    float(at) if isinstance(at, int | float) else None,
                )
            )
        return out
