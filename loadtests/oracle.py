"""The price oracle of the load tests: what a priced response should say, and why not.

Pure Python over ``harness.domain`` (no Locust, no I/O), so the harness's tests exercise
it directly. The locustfile knows the operator timeline it drives; from it the oracle
derives, per pricing endpoint and promotion, the states allowed at scenario time ``t``:

* the state after the last publish / rollback / end covering the endpoint at or before
  ``t`` (nothing covering it yet: not active);
* while ``t`` is inside a transition's **propagation grace** — ``grace`` scenario
  seconds after a publish (the campaign's setting), the step's own ``deadline`` after a
  rollback (the scenario's rollback SLO), plus the pick-up interval for a batch-only
  store — the state before it too: the change is "in flight" and either price is right;
* a paused channel is in flight from the pause until its resume plus grace.

A response carries ``at`` (scenario seconds), ``active`` (``promo@version`` the endpoint
held when it priced) and the receipt. ``check`` returns None when it is right, else a
``Verdict`` whose reason is one of:

* ``"stale after rollback"`` — a promotion still active after a rollback/end + grace;
* ``"not yet active"`` — a promotion missing after its publish + grace;
* ``"unexpected promotion"`` — active where no publish ever covered the endpoint;
* ``"dialect mismatch"`` — the right promotions, but a total that differs from the
  reference engine (``price_basket``) pricing the same promotions at the same instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.domain.basket import Basket
from harness.domain.pricing import StoreContext, price_basket
from harness.domain.promotion import Promotion

STALE = "stale after rollback"
NOT_YET = "not yet active"
UNEXPECTED = "unexpected promotion"
DIALECT = "dialect mismatch"
REASONS = (STALE, NOT_YET, UNEXPECTED, DIALECT)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pricing endpoint as the oracle sees it."""

    id: str
    channel: str  # pos, ecommerce, marketplace
    region: str | None = None
    timezone: str | None = None
    interval: float = 0.0  # batch pick-up interval (scenario s); 0 for push
    dialects: tuple[str, ...] = ()

    def context(self) -> StoreContext | None:
        if self.channel != "pos":
            return None
        return StoreContext(self.id, self.region, self.timezone)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Transition:
    t: float
    active: bool | None  # None: in flight until ``t + grace`` (a pause)
    grace: float
    kind: str  # publish, rollback, end, pause, resume


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: str
    promo: str = ""
    detail: str = ""

    def message(self) -> str:
        return f"{self.reason}: {self.promo}" if self.promo else self.reason


def _step_covers(scope: Mapping[str, Any], e: Endpoint) -> bool:
    channels, regions, stores = (scope.get(k) or [] for k in ("channels", "regions", "stores"))
    if channels and e.channel not in channels:
        return False
    if e.channel == "pos":
        if stores:
            return e.id in stores
        if regions:
            return e.region in regions
    return True


@dataclass
class Timeline:
    """The operator timeline as endpoint expectations; ``refused`` steps are ignored.

    With ``track_sends`` (the operator runs in this process), a step counts from the
    scenario time it was actually sent (``sent``), and a step not sent yet has not
    happened: an operator that starts late on a busy machine shifts its steps, and the
    grace runs from what it did, not from the plan."""

    promotions: dict[str, Promotion]
    steps: list[dict[str, Any]]
    grace: float | Mapping[str, float] = 300.0
    refused: set[int] = field(default_factory=set)
    sent: dict[int, float] = field(default_factory=dict)
    track_sends: bool = False

    def time_of(self, i: int) -> float | None:
        """When step ``i`` took place (scenario s), or None: not (yet) sent."""
        if not self.track_sends:
            return float(self.steps[i]["at"])
        return self.sent.get(i)

    def grace_of(self, channel: str) -> float:
        if isinstance(self.grace, Mapping):
            return float(self.grace.get(channel, self.grace.get("default", 300.0)))
        return float(self.grace)

    def transitions(self, promo: str, e: Endpoint) -> list[Transition]:
        p = self.promotions[promo]
        grace = self.grace_of(e.channel)
        if not p.scope.covers(e.channel, e.region, e.id if e.channel == "pos" else None):
            return []
        out: list[Transition] = []
        for i, step in enumerate(self.steps):
            sent = self.time_of(i)
            if i in self.refused or step.get("promo") != promo or sent is None:
                continue
            action, scope = step["action"], step.get("scope") or {}
            lag = e.interval
            if action in ("publish", "schedule") and _step_covers(scope, e):
                at = max(step["publish_at"], sent) if action == "schedule" else sent
                out.append(Transition(at, True, grace + lag, "publish"))
            elif action == "rollback" and _step_covers(scope, e):
                deadline = float(step.get("deadline") or grace)
                out.append(Transition(sent, False, deadline + lag, "rollback"))
            elif action == "end":
                out.append(Transition(sent, False, grace + lag, "end"))
            elif action in ("pause", "resume") and step.get("channel") == e.channel:
                out.append(Transition(sent, None, grace + lag, action))
        return sorted(out, key=lambda x: x.t)

    def allowed(self, promo: str, e: Endpoint, t: float) -> tuple[set[bool], str]:
        """The states ``promo`` may be in at ``e`` at ``t``, and the last settled kind."""
        state, kind, paused = False, "", False
        allowed: set[bool] = set()
        for tr in self.transitions(promo, e):
            if tr.t > t:
                break
            before = state
            if tr.kind == "pause":
                paused = True
            elif tr.kind == "resume":
                paused = False
            else:
                state, kind = bool(tr.active), tr.kind
            if t < tr.t + tr.grace:
                allowed |= {before, state}
        if paused:
            allowed |= {True, False}
        allowed.add(state)
        return allowed, kind


def parse_active(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        promo, _, version = item.rpartition("@")
        out[promo] = int(version) if version.isdigit() else 0
    return out


@dataclass
class Oracle:
    timeline: Timeline
    start: dt.datetime  # the instant scenario t=0 stands for

    def reference(self, basket: Basket, promos: Iterable[str], e: Endpoint, t: float) -> Any:
        chosen = [self.timeline.promotions[p] for p in sorted(promos)]
        at = self.start + dt.timedelta(seconds=t)
        return price_basket(basket, chosen, channel=e.channel, at=at, store=e.context())

    def check(self, basket: Basket, body: Mapping[str, Any], e: Endpoint) -> Verdict | None:
        t = float(body["at"])
        active = parse_active(body.get("active", ()))
        for promo in sorted(set(active) - set(self.timeline.promotions)):
            return Verdict(UNEXPECTED, promo)
        for promo in sorted(self.timeline.promotions):
            allowed, kind = self.timeline.allowed(promo, e, t)
            held = promo in active
            if held in allowed:
                continue
            if held:
                return Verdict(STALE if kind in ("rollback", "end") else UNEXPECTED, promo)
            return Verdict(NOT_YET, promo)
        expected = self.reference(basket, active, e, t)
        total = Decimal(str(body["total"]))
        if expected.total != total:
            detail = f"{e.id} charged {total}, reference {expected.total}"
            names = ",".join(e.dialects) or "undeclared"
            return Verdict(DIALECT, names, detail)
        return None
