"""Injecting faults into a virtual-time run, and reading back what the figures flag.

A fault is a function ``inject(world)`` called on the freshly built ``World`` before the
SimPy runtime starts: it may swap an endpoint model's methods (the endpoint misbehaves)
or wrap the orchestrator the runtime will drive (``Faulty``: the orchestrator
misbehaves). Production code has no fault switches; the run goes through the real
``harness.runner.simulate`` (same summarise arguments as ``promoharness run``).

``flags(summary)`` flattens every figure that can accuse something into one sorted list of
``Flag`` (summary.json key, property, where, when), so a test can say "the clean run flags
nothing, the faulty one flags exactly this".
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple
from unittest import mock

import harness.runtime.world
from harness.orchestrator.commands import SendDelivery, StartTimer
from harness.orchestrator.events import DeliveryResult, TimerFired
from harness.runner import RunResult, simulate
from harness.runtime.world import World, build_world
from harness.scenario import Scenario

Inject = Callable[[World], None]

T0 = "2026-11-28T14:00:00Z"  # 09:00 in New York
FIXED = {"kind": "fixed", "mean": 0.1}  # every endpoint serves in exactly 0.1 s
CLEAN = {"error_rate": 0, "timeout_rate": 0, "lost_ack_rate": 0}
CHANNELS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")
QUOTE_INTERVAL = 7.0
DURATION = 120.0


class Flag(NamedTuple):
    """One accusation a figure makes: its summary.json key, what, where, when (None when
    the figure does not say)."""

    key: str
    prop: str
    where: str
    when: float | None


def scenario(
    *,
    publish: dict[str, list[str]] | None = None,
    rollback: dict[str, list[str]] | None = None,
    channels: tuple[str, ...] = ("pos", "ecommerce"),
    skus: list[str] | None = None,
    sales: str | None = None,
    budget: float | None = None,
    pos: dict[str, Any] | None = None,
    pos_policy: dict[str, Any] | None = None,
) -> Scenario:
    """Two realtime stores in the east (S0001, S0002), the web shop, loyalty, the
    marketplace and the ERP, every one serving in a fixed 0.1 s with no faults.

    P1 (10 % off ``skus``, or everything) is valid from 09:00:30 New York (t = 30) on
    ``channels``; approved by t = 10, published (``publish`` sub-scope) at t = 20 and, when
    ``rollback`` is given, rolled back there at t = 40 with a 5 s deadline. ``sales``: a
    sales-export trace file (shoppers replayed, shelf prices sampled every 7 s);
    otherwise no shoppers at all.
    """
    profile = {"latency": FIXED, "capacity": 5, **CLEAN}
    endpoints = {ch: dict(profile) for ch in CHANNELS}
    # The web shop accepts (202) and applies 1 s later, acknowledging by webhook.
    endpoints["ecommerce"]["ack_delay"] = {"kind": "fixed", "mean": 1.0}
    endpoints["pos"].update(pos or {})
    timeline: list[dict[str, Any]] = [
        {"at": 0, "action": "create", "promo": "P1"},
        {"at": 1, "action": "submit", "promo": "P1"},
        {"at": 2, "action": "validate", "promo": "P1"},
        {"at": 10, "action": "approve", "promo": "P1"},
        {"at": 20, "action": "publish", "promo": "P1", "scope": publish or {}},
    ]
    if rollback is not None:
        timeline.append(
            {"at": 40, "action": "rollback", "promo": "P1", "scope": rollback, "deadline": 5}
        )
    traffic: dict[str, Any] = {"kind": "none"}
    if sales is not None:
        traffic = {
            "kind": "replay",
            "file": sales,
            "quote_interval": QUOTE_INTERVAL,
            "quote_skus": 1,
            "quote_stores": 2,
        }
    data: dict[str, Any] = {
        "name": "oracle-fault",
        "seed": 1,
        "start": T0,
        "duration": DURATION,
        "estate": {
            "stores": 2,
            "products": 20,
            "regions": [
                {
                    "name": "east",
                    "timezone": "America/New_York",
                    "batch_share": 0.0,
                    "link": "healthy-pos",
                }
            ],
        },
        "endpoints": endpoints,
        "promotions": [
            {
                "id": "P1",
                "name": "10% off",
                "validity": {
                    "start": "2026-11-28T09:00:30",
                    "end": "2026-11-30T00:00:00",
                    "timezone": "America/New_York",
                    "store_local": False,
                },
                "scope": {"channels": list(channels)},
                "conditions": {"skus": skus or []},
                "benefit": {"type": "percent_off", "percent": 10},
            }
        ],
        "timeline": timeline,
        "traffic": traffic,
    }
    if budget is not None:
        data["budgets"] = {"P1": budget}
    if pos_policy is not None:
        data["policies"] = {"pos": pos_policy}
    return Scenario.model_validate(data)


@contextlib.contextmanager
def injected(inject: Inject | None) -> Iterator[None]:
    """While open, every world ``simulate`` builds gets ``inject`` applied first."""
    if inject is None:
        yield
        return

    def build(scenario: Scenario, seed: int | None = None) -> World:
        world = build_world(scenario, seed)
        inject(world)
        return world

    # Where the runner looks it up when it runs (it imports it late, after forking its
    # plot workers): the module's attribute, not a name bound in harness.runner.
    with mock.patch.object(harness.runtime.world, "build_world", build):
        yield


def run(scenario: Scenario, inject: Inject | None = None) -> RunResult:
    with injected(inject):
        return simulate(scenario)


# --- a misbehaving orchestrator ------------------------------------------------------------


class Faulty:
    """The reference orchestrator with a fault between it and its driver.

    ``rewrite(command, now, faulty)`` may hand back other commands in place of each one
    the orchestrator emits (None keeps it): drop, alter, duplicate, or ``faulty.hold`` it
    until later. ``drop_result(event)`` may swallow a delivery result before the
    orchestrator hears of it. ``at``: (t, commands) the orchestrator never decided (a
    relay, a late retry), issued at t. Held and scheduled commands ride on timers of the
    fault's own, which the orchestrator never sees.
    """

    def __init__(
        self,
        inner: Any,
        *,
        rewrite: Callable[[Any, float, Faulty], list[Any] | None] | None = None,
        drop_result: Callable[[DeliveryResult], bool] | None = None,
        at: Sequence[tuple[float, list[Any]]] = (),
    ) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.drop_result = drop_result
        self._held: dict[str, list[Any]] = {}
        self._scheduled = list(at)

    def hold(self, commands: list[Any], until: float) -> list[Any]:
        """What to emit instead of ``commands`` so that they go out at ``until``."""
        timer = f"fault:{len(self._held)}"
        self._held[timer] = list(commands)
        return [StartTimer(timer, until)]

    def handle(self, event: Any, now: float) -> list[Any]:
        out: list[Any] = []
        for t, commands in self._scheduled:  # on the first event: the t = 0 create
            out.extend(self.hold(commands, t))
        self._scheduled = []
        if isinstance(event, TimerFired) and event.timer_id in self._held:
            return out + self._held.pop(event.timer_id)
        if isinstance(event, DeliveryResult) and self.drop_result and self.drop_result(event):
            return out
        for cmd in self.inner.handle(event, now):
            replaced = self.rewrite(cmd, now, self) if self.rewrite else None
            out.extend([cmd] if replaced is None else replaced)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def faulty_orchestrator(**kwargs: Any) -> Inject:
    """An ``inject`` that makes the run drive ``Faulty(reference, **kwargs)``."""

    def inject(world: World) -> None:
        make = world.orchestrator
        world.orchestrator = lambda rng=None: Faulty(make(rng), **kwargs)  # type: ignore[method-assign]

    return inject


def endpoint_fault(endpoint: str, **methods: Callable[..., Any]) -> Inject:
    """An ``inject`` replacing methods of one endpoint model: each replacement gets the
    original bound method first, then the call's arguments."""

    def inject(world: World) -> None:
        model = world.models[endpoint]
        for name, fake in methods.items():
            original = getattr(model, name)
            setattr(model, name, functools.partial(fake, original))

    return inject


def both(*injects: Inject) -> Inject:
    def inject(world: World) -> None:
        for one in injects:
            one(world)

    return inject


def stray_send(
    endpoint: str, channel: str, op: str, version: int, payload: Any, delivery: str, key: str
) -> SendDelivery:
    """A delivery the orchestrator never decided (a relay, a late retry): its id (what the
    orchestrator hears back about) and its idempotency key (what the endpoint dedups on)."""
    return SendDelivery(delivery, endpoint, channel, op, "P1", version, 2, key, 10.0, payload)


# --- what the figures say -------------------------------------------------------------------


def flags(summary: dict[str, Any]) -> list[Flag]:
    """Every accusation in a summary: rollback violations, ghosts, endpoints late for the
    start, double applications, dead letters, mismatched price samples, leakage and
    funding overrun. Sorted; empty for a run the figures find nothing wrong with."""
    out: list[Flag] = []
    for r in summary["rollbacks"]:
        for v in r["violations"]:
            out.append(Flag("rollbacks[].violations", v["property"], v["endpoint"], v["t"]))
    prop = summary["propagation"]
    for g in prop["overall"]["ghosts"]["examples"]:
        out.append(Flag("propagation.overall.ghosts", g["kind"], g["endpoint"], g["t"]))
    for promo, entry in prop["by_promo"].items():
        late = entry["late_for_start"] or {"endpoints": []}
        for e in late["endpoints"]:
            out.append(Flag(f"propagation.by_promo.{promo}.late_for_start", "late", e, None))
    storm = summary["retry_storm"]
    for d in storm["double_applied"]["examples"]:
        out.append(Flag("retry_storm.double_applied", "double", d["endpoint"], d["t"]))
    if storm["dead_lettered"]:
        out.append(Flag("retry_storm.dead_lettered", "dlq", "", None))
    for ex in summary["price_consistency"]["examples"]:
        pair = "|".join(sorted(ex["by_channel"]))
        out.append(Flag("price_consistency.examples", ex["sample"], pair, None))
    for ex in summary["price_consistency"]["priced_without_truth"]["examples"]:
        out.append(Flag("price_consistency.priced_without_truth", "stale", ex["endpoint"], ex["t"]))
    if summary["leakage_value"]:
        out.append(Flag("leakage_value", "leakage", "", None))
    for promo, f in summary["funding"].items():
        if f["overrun"]:
            out.append(Flag(f"funding.{promo}.overrun", "overrun", promo, None))
    return ordered(out)


def ordered(found: list[Flag]) -> list[Flag]:
    """Flags in one canonical order (so two lists compare as lists)."""
    return sorted(found, key=lambda f: (f.key, f.prop, f.where, f.when or 0.0))
