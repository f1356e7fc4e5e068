"""What every locustfile process shares: the run config, the scenario clock, the flash-sale
curve as a target arrival rate, and the open-model pacer. No Locust import here.

The config is the JSON ``promoharness load`` writes (``harness/load/campaign.py``) and
names in ``PROMO_LOAD_CONFIG``; a worker on another machine needs the same file.

Arrival rate, not user count: ``target_rate(t)`` is the campaign's peak ``rate`` scaled by
the scenario's curve (``multiple(t) / peak_multiple``; 1 x base before the sale, linear
ramp, hold, exponential decay — ``harness.runtime.shoppers.curve_multiple``), evaluated
on the scenario clock. The ``Pacer`` hands each idle shopper the next arrival slot of
that rate (per process: the rate divided by the worker count), so arrivals follow the
curve whatever the response times are — an open model; users are only the concurrency
ceiling. When every shopper is busy the slots fall behind: those are *missed arrivals*,
reported apart (request type ``PACER``) instead of silently lowering the rate.

With ``load --sut`` the config names ``steps_file``: the steps the harness gave the
system under test through its driver, which ``StepsFeed`` follows for the oracle.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.domain.basket import Basket
from harness.domain.promotion import Promotion
from harness.live_run import OPERATOR_KEY, ROLE_OF
from loadtests.oracle import Endpoint, Oracle, Timeline

CONFIG_ENV = "PROMO_LOAD_CONFIG"
MAX_LAG = 0.25  # wall seconds behind schedule before slots count as missed
MAX_MISSED_PER_CALL = 1000

CHANNEL_KEYS = {
    "pos": "channel-pos-demo-key",
    "ecommerce": "channel-ecommerce-demo-key",
    "marketplace": "channel-marketplace-demo-key",
}


def curve_multiple(curve: dict[str, float], t: float) -> float:
    """Demand multiple at scenario time ``t`` (same law as the SimPy shoppers)."""
    if t < curve["start"]:
        return 1.0
    peak, x = curve["peak_multiple"], t - curve["start"]
    if x < curve["ramp"]:
        return 1.0 + (peak - 1.0) * x / curve["ramp"]
    x -= curve["ramp"]
    if x < curve["hold"]:
        return peak
    return 1.0 + (peak - 1.0) * math.exp(-(x - curve["hold"]) / curve["decay"])


def request_of(step: dict[str, Any], promotions: dict[str, Any]) -> tuple[str, str, Any]:
    """(path, API key, JSON body) for a timeline step (as ``harness.live_run.request_of``)."""
    promo, action = step.get("promo") or "", step["action"]
    scope = step.get("scope") or {}
    if action == "create":
        return "/v1/promotions", ROLE_OF[action], promotions[promo]
    if action == "replay":
        return "/v1/dead-letters/replay", OPERATOR_KEY, {"promo": promo or None}
    body: Any = None
    if action == "publish":
        body = scope
    elif action == "rollback":
        body = {**scope, "deadline": step.get("deadline", 300.0)}
    elif action == "schedule":
        body = {**scope, "publish_at": step["publish_at"]}
    elif action in ("pause", "resume"):
        body = {"channel": step["channel"]}
    elif action == "reject":
        body = {"reason": step.get("reason", "")}
    return f"/v1/promotions/{promo}/{action}", ROLE_OF.get(action, OPERATOR_KEY), body


@dataclass
class StepsFeed:
    """The steps a system under test was given (``load --sut``), followed from the
    JSON-lines file the harness appends to (``harness/load/sut.py``): a step counts from
    when it went to the system, and one the system refused is dropped, exactly as the
    harness writes the expected targets. Every process reads the file itself, so the
    oracle is exact with any number of workers."""

    path: Path
    timeline: Timeline
    offset: int = 0
    read_at: float = 0.0

    def refresh(self, *, force: bool = False, every: float = 0.05) -> bool:
        """Read what was appended (at most every ``every`` wall s unless ``force``);
        True when something new was read."""
        now = time.monotonic()
        if not force and now - self.read_at < every:
            return False
        self.read_at = now
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return False
        end = chunk.rfind(b"\n")  # a line still being written waits for the next read
        if end < 0:
            return False
        for line in chunk[:end].splitlines():
            step = json.loads(line)
            i = int(step["i"])
            if "sent" in step:
                self.timeline.sent[i] = float(step["sent"])
            if step.get("ok") is False:
                self.timeline.refused.add(i)
        self.offset += end + 1
        return True


@dataclass
class LoadConfig:
    raw: dict[str, Any]
    oracle: Oracle
    baskets: list[tuple[Basket, bytes]]
    stores: list[Endpoint]
    web: Endpoint
    marketplace: Endpoint
    seen: deque[tuple[str, str, str, int]] = field(default_factory=lambda: deque(maxlen=2000))
    feed: StepsFeed | None = None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def scenario_now(self) -> float:
        return (time.time() - self.raw["epoch"]) * self.raw["speed"]

    def target_rate(self, wall: float | None = None) -> float:
        """Shopper requests/s the whole campaign aims at now (all workers together)."""
        now = time.time() if wall is None else wall
        t = (now - self.raw["epoch"]) * self.raw["speed"]
        curve = self.raw["curve"]
        return self.raw["rate"] * curve_multiple(curve, t) / curve["peak_multiple"]

    def pick_endpoint(self, rng: random.Random) -> tuple[str, Endpoint]:
        """(path or URL, endpoint) of the next shopper request. With ``shards`` in the
        config (``--estate-shards``: endpoint id -> its shard's base URL) the URL is
        absolute, straight to the shard serving that store or channel."""
        mix = self.raw["mix"]
        kind = rng.choices(
            ("pos", "web", "marketplace"), (mix["pos"], mix["web"], mix["marketplace"])
        )
        if kind[0] == "pos":
            store = self.stores[rng.randrange(len(self.stores))]
            path, endpoint = f"/stores/{store.id}/price", store
        elif kind[0] == "web":
            path, endpoint = "/web/price", self.web
        else:
            path, endpoint = "/marketplace/price", self.marketplace
        return self.shards.get(endpoint.id, "") + path, endpoint

    @property
    def shards(self) -> dict[str, str]:
        return self.raw.get("shards") or {}


def load_config(path: str | Path | None = None) -> LoadConfig:
    source = path or os.environ.get(CONFIG_ENV)
    if not source:
        raise RuntimeError(f"set {CONFIG_ENV} to the JSON that `promoharness load` writes")
    raw = json.loads(Path(source).read_text(encoding="utf-8"))
    promotions = {p["id"]: Promotion.model_validate(p) for p in raw["promotions"]}
    timeline = Timeline(promotions, raw["timeline"], grace=raw["grace"])
    oracle = Oracle(timeline, dt.datetime.fromisoformat(raw["start"]))
    baskets = []
    for b in raw["baskets"]:
        basket = Basket.model_validate(b)
        baskets.append((basket, json.dumps(b).encode()))
    stores = [
        Endpoint(s["id"], "pos", s["region"], s["timezone"], s["interval"], tuple(s["dialects"]))
        for s in raw["stores"]
    ]
    web = Endpoint(raw["web"]["id"], "ecommerce", dialects=tuple(raw["web"]["dialects"]))
    market = raw["marketplace"]
    marketplace = Endpoint(market["id"], "marketplace", dialects=tuple(market["dialects"]))
    feed = None
    if raw.get("steps_file"):  # load --sut: the driver plays the timeline, not Locust
        timeline.track_sends = True
        feed = StepsFeed(Path(raw["steps_file"]), timeline)
    return LoadConfig(raw, oracle, baskets, stores, web, marketplace, feed=feed)


@dataclass
class Pacer:
    """Arrival slots at ``rate_of()`` per second, shared by the shoppers of one process."""

    rate_of: Any  # () -> requests/s for this process
    next_at: float = 0.0

    def wait(self) -> tuple[float, int, float]:
        """(seconds until this shopper's slot, missed arrivals, how late they were)."""
        now = time.time()
        rate = max(self.rate_of(), 1e-3)
        missed, late = 0, 0.0
        if self.next_at and self.next_at < now - MAX_LAG:
            late = now - self.next_at
            missed = min(int(late * rate), MAX_MISSED_PER_CALL)
            self.next_at = now
        slot = max(self.next_at, now)
        self.next_at = slot + 1.0 / rate
        return slot - now, missed, late
