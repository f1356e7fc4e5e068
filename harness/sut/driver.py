"""The driver protocol: how the harness tells a system under test what the operator does.

A driver is any object with these members (``SystemUnderTest``); the YAML driver
(``yaml_driver.YamlDriver``) is one, and a Python class written for a system YAML cannot
express is another (``load.load_driver`` finds it from ``path.py:Class``).

``act`` carries out one timeline step. A step the system refuses is an ``ActionResult``
with ``ok=False`` (its status and a body excerpt go into the event log, and the run goes
on); a system that cannot be reached raises ``Unreachable``, which ends the run with one
line and exit 2. ``view`` is optional: what the system itself believes (which endpoints
acknowledged, and when), for acknowledged latency and ghost states; ``None`` means the
system does not say, and those figures are reported as not measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, get_args, runtime_checkable

from harness.scenario import Action

__all__ = [
    "ACTIONS",
    "ActionResult",
    "Believed",
    "Step",
    "SystemUnderTest",
    "Unreachable",
]

# The operator's vocabulary, as scenario timelines spell it.
ACTIONS: tuple[str, ...] = get_args(Action)


class Unreachable(Exception):
    """The system under test did not answer at ``url`` (connection refused, timed out)."""

    def __init__(self, url: str, why: str = "") -> None:
        self.url = url
        super().__init__(f"system under test unreachable at {url}" + (f" ({why})" if why else ""))


@dataclass(frozen=True, slots=True)
class Step:
    """One timeline step, as a driver renders it.

    ``promotion`` is the canonical promotion as JSON (``None`` for ``replay``);
    ``scope`` the operator's sub-scope (three lists); times are scenario seconds.
    """

    action: str
    at: float
    promo: str = ""
    promotion: Mapping[str, Any] | None = None
    scope: Mapping[str, list[str]] = field(
        default_factory=lambda: {"channels": [], "regions": [], "stores": []}
    )
    channel: str = ""
    publish_at: float | None = None
    publish_at_iso: str = ""
    deadline: float = 300.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the system answered: ``ok`` when the status was one the driver expects."""

    ok: bool
    status: int
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Believed:
    """The system's own view of one endpoint: acknowledged (``acked``), and when (scenario
    seconds, ``None`` when the system does not say)."""

    endpoint: str
    acked: bool
    at: float | None = None


@runtime_checkable
class SystemUnderTest(Protocol):
    """What the harness needs from a driver."""

    name: str
    base_url: str

    def callbacks(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Per channel: where the estate's asynchronous endpoints push acknowledgements
        (URL, headers). Channels left out push nothing."""
        ...

    async def start(self, estate_url: str, run: Mapping[str, str]) -> None:
        """Make sure the system is up (start it, or check it answers): ``Unreachable``.

        ``run`` tells what a start command may need: ``scenario`` (its file), ``seed``,
        ``speed``, ``estate_port`` and ``work_dir`` (a folder for the system's state)."""
        ...

    def supports(self, action: str) -> bool:
        """True when the driver can carry ``action`` out (or declares it a no-op)."""
        ...

    async def act(self, step: Step) -> ActionResult:
        """Carry one operator step out. Raises ``Unreachable`` only when down."""
        ...

    async def view(self, promo: str) -> list[Believed] | None:
        """The system's own belief about ``promo``'s endpoints, or None if it cannot say."""
        ...

    async def close(self) -> None:
        """Release clients; stop what ``start`` started."""
        ...
