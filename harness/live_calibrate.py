"""Calibrate the live stack on this machine: the wall cost the harness adds per delivery.

A quiet twin of the scenario (the same estate size up to ``cap`` stores, every endpoint
answering at once with no faults, outages, rate limits or shoppers) is served by the real
stack (``harness.stack.start_stack``: the estate app, the orchestrator API, the live
runtime journalling to SQLite, the aiohttp client) in this process, as a live run is, at
each speed of ``SPEEDS`` in turn (16x, the speed the issue asks for, then 32x if the 16x
twin vouched for all of 16x). Not at 1x: the live runtime spends what the loop does
before a send (and the CPU the machine's other processes take from it) and its timers'
lateness inside each modelled link leg (``LiveRuntime._send``), and a leg is
``delay / speed`` wall seconds, so a 1x calibration would have its overhead hidden in
20 ms legs that a 16x run does not have. At the twin's speed the legs are no longer than
at any speed its result allows (it is capped at the twin's speed), so what is measured is
never less than a run at the faithful speed would see. A faster twin only measures more
(shorter legs hide less of a publish's decision, for one), so the result is the best of
the twins' capped results, and a twin slower than its own result is not followed by a
faster one. Then:

* ``isolated``: a few promotions published one at a time to a single store; each
  delivery's send-to-result time (the orchestrator's own ``send`` and ``result`` records)
  is a loopback round trip plus estate and orchestrator CPU with nothing else in flight;
* ``step``: ``STEPS`` single-store promotions published at one instant, at once, as
  ``live`` plays the steps of one instant (``harness.live_run.instants``): the wall time
  until every one is answered, per step — how far apart the stack puts steps the
  scenario means to be simultaneous (a series published at once);
* ``at_concurrency``: one promotion published to every endpoint at once (the scenario's
  fan-out, capped); the p95 of the send-to-result times, and the whole burst's wall time.

Modelled latency is 0.1 ms in the twin (and subtracted), so every second measured is
the harness's own.
``harness.faithful`` turns the result into the faithful speed.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from harness.domain.promotion import Promotion
from harness.faithful import Faithful, Overhead, faithful_speed, limits_of
from harness.runtime.live import DEFAULT_NETWORK_DELAY, NETWORK_DELAY
from harness.runtime.store import Store
from harness.runtime.world import build_world
from harness.scenario import Scenario, StepSpec, load_scenario
from harness.service.auth import DEMO_KEY_FOR_ACTION, DEMO_OPERATOR_KEY

CAP = 600  # stores in the calibration burst at most
SPEEDS = (16.0, 32.0)  # the twins' speeds, each the highest faithful speed it can vouch for
SPEED = SPEEDS[0]
ISOLATED = 15  # single-store publishes (and as many ERP price-book deliveries)
STEPS = 20  # single-store promotions published at one instant (``Overhead.step``)
RE_READ = 0.25  # wall s: the audit trail re-read at least this often while a publish runs

# The spec wants latencies > 0: a tenth of a millisecond, subtracted from what is measured.
TINY = 0.0001
_QUIET = f"latency: {{kind: fixed, mean: {TINY}}}, error_rate: 0, timeout_rate: 0, lost_ack_rate: 0"
_CHANNELS = ("pos", "ecommerce", "loyalty", "marketplace")


def quiet_twin(scenario: Scenario, cap: int = CAP) -> Scenario:
    """The scenario's estate (stores capped) with instant, fault-free endpoints, one
    promotion over every channel plus ``ISOLATED`` and ``STEPS`` single-store ones, and
    no timeline."""
    stores = min(scenario.estate.stores, cap)
    base = load_scenario(
        "weekend-private-label",
        [
            f"estate.stores={stores}",
            "traffic.kind=none",
            "faults=[]",
            "slos=[]",
            f"endpoints.pos={{{_QUIET}, random_outages: null}}",
            f"endpoints.erp={{{_QUIET}}}",
            f"endpoints.loyalty={{{_QUIET}}}",
            f"endpoints.ecommerce={{{_QUIET}, ack_delay: {{kind: fixed, mean: {TINY}}}}}",
            f"endpoints.marketplace={{{_QUIET}, ack_delay: {{kind: fixed, mean: {TINY}}},"
            " rate_limit: {rate: 100000, burst: 100000}}",
            "estate.regions=[{name: east, timezone: America/New_York, batch_share: 0,"
            " link: healthy-pos}]",
        ],
    )
    template = base.promotions[0]
    wide = template.model_copy(
        update={
            "id": "CAL-FANOUT",
            "scope": template.scope.model_copy(update={"channels": list(_CHANNELS)}),
        }
    )

    def at_one_store(promo_id: str, store: int) -> Promotion:
        """The template, at one POS store only (store 0 is S0001)."""
        scope = template.scope.model_copy(
            update={"channels": ["pos"], "stores": [f"S{store + 1:04d}"]}
        )
        return template.model_copy(update={"id": promo_id, "scope": scope})

    single = [at_one_store(f"CAL-ONE-{i}", i) for i in range(min(ISOLATED, stores))]
    steps = [at_one_store(f"CAL-STEP-{i}", i % stores) for i in range(STEPS)]
    promos = [*single, *steps, wide]
    return base.model_copy(
        update={
            "name": f"{scenario.name}-calibration",
            "promotions": promos,
            "timeline": [StepSpec(at=0, action="create", promo=p.id) for p in promos],
            "series": {},
        }
    )


# A result is recorded "stale" when the endpoint's webhook ack beat it (an instant twin).
_ANSWERS = ("result", "stale")


class _Tally:
    """Send-to-result wall seconds of one promotion's deliveries, less what is modelled
    (the twin's latency and the link's network delay both ways), read incrementally: the
    calibration polls it every few milliseconds, and re-reading the whole audit trail each
    time was most of the loop's CPU during the burst it measures."""

    def __init__(self, promo: str, speed: float = 1.0) -> None:
        self.promo = promo
        self.speed = speed  # records are in scenario seconds; durations come out in wall
        self.seq = 0
        self.sent: dict[tuple[str, int], tuple[float, str]] = {}
        self.durations: list[float] = []
        self.answered: set[str] = set()

    def read(self, store: Store) -> tuple[list[float], int]:
        """The durations so far and how many endpoints still await a result."""
        for seq, r in store.records(self.seq, promo=self.promo):
            self.seq = seq
            if r.kind == "send":
                self.sent[(r.endpoint, r.attempt)] = (r.t, r.channel)
            elif r.kind in _ANSWERS and (r.endpoint, r.attempt) in self.sent:
                self.answered.add(r.endpoint)
                t, channel = self.sent.pop((r.endpoint, r.attempt))
                modelled = TINY + 2 * NETWORK_DELAY.get(channel, DEFAULT_NETWORK_DELAY)
                self.durations.append(max(0.0, r.t - t - modelled) / self.speed)
        # An endpoint counts as answered once any attempt of it has (a failed first
        # attempt's retry may be minutes of backoff away).
        waiting = {endpoint for endpoint, _ in self.sent} - self.answered
        return self.durations, len(waiting)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def measure(
    scenario: Scenario,
    cap: int = CAP,
    patience: float = 120.0,
    estate_shards: int = 0,
    speed: float = SPEED,
) -> Overhead:
    """Serve the quiet twin at ``speed`` and time the two kinds of publish (module
    docstring); ``estate_shards``: the estate in that many processes, as the run it gates
    will."""
    from harness.stack import start_stack

    twin = quiet_twin(scenario, cap)
    with tempfile.TemporaryDirectory() as tmp:
        stack = await start_stack(
            twin, state=Path(tmp) / "cal.db", speed=speed, estate_shards=estate_shards
        )
        runtime = stack.runtime
        try:
            async with aiohttp.ClientSession(base_url=stack.api_url) as http:

                async def call(path: str, key: str, body: object = None) -> None:
                    async with http.post(path, json=body, headers={"X-API-Key": key}) as r:
                        if r.status >= 400:
                            raise RuntimeError(f"calibration {path}: {r.status} {await r.text()}")

                ids = [p.id for p in twin.promotions]
                merch = DEMO_KEY_FOR_ACTION["create"]
                for p in twin.promotions:
                    await call("/v1/promotions", merch, p.model_dump(mode="json", by_alias=True))
                    await call(f"/v1/promotions/{p.id}/submit", DEMO_KEY_FOR_ACTION["submit"])
                    await call(f"/v1/promotions/{p.id}/validate", DEMO_KEY_FOR_ACTION["validate"])
                deadline = time.monotonic() + patience
                while any(runtime.orchestrator.status(i) != "validated" for i in ids):
                    if time.monotonic() > deadline:
                        raise RuntimeError("calibration: validation did not finish")
                    await asyncio.sleep(0.01)
                for i in ids:
                    await call(f"/v1/promotions/{i}/approve", DEMO_KEY_FOR_ACTION["approve"])

                counters = runtime.counters

                async def publish(promo: str) -> tuple[list[float], float]:
                    began = time.perf_counter()
                    read_at = counters["results"]  # results when the trail was last read
                    await call(f"/v1/promotions/{promo}/publish", DEMO_OPERATOR_KEY, {})
                    tally = _Tally(promo, speed)
                    read_when = time.monotonic()
                    while True:  # until every send has its result
                        # The audit trail is read only when results came in and nothing
                        # is on the wire: read every 5 ms, it took a share of the loop a
                        # live run does not spend, inside the very deliveries timed. And
                        # at least every RE_READ s: a result whose journal write was
                        # deferred (not durable yet) lands after its count.
                        results, now = counters["results"], time.monotonic()
                        quiet = results != read_at and counters["sends"] == results
                        if quiet or now - read_when > RE_READ:
                            read_at, read_when = results, now
                            done, pending = tally.read(runtime.store)
                            if done and not pending:
                                return done, time.perf_counter() - began
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"calibration: {promo} did not finish")
                        await asyncio.sleep(0.005)

                isolated: list[float] = []
                for p in twin.promotions:  # one store (and the ERP's price book)
                    if p.id.startswith("CAL-ONE-"):
                        isolated += (await publish(p.id))[0]
                # The steps of one instant, at once, as ``live`` plays them; then their
                # deliveries are let finish, so they are not inside the burst below.
                at_once = [p.id for p in twin.promotions if p.id.startswith("CAL-STEP-")]
                began = time.perf_counter()
                await asyncio.gather(
                    *(call(f"/v1/promotions/{i}/publish", DEMO_OPERATOR_KEY, {}) for i in at_once)
                )
                step = (time.perf_counter() - began) / len(at_once)
                while counters["sends"] != counters["results"]:
                    if time.monotonic() > deadline:
                        raise RuntimeError("calibration: the steps' deliveries did not finish")
                    await asyncio.sleep(0.01)
                wide = twin.promotions[-1].id
                lags: list[float] = []

                async def ticker() -> None:
                    # How late the loop wakes a 5 ms sleep: the CPU queue every timer,
                    # reply and timeout of the live run waits in.
                    while True:
                        began = time.perf_counter()
                        await asyncio.sleep(0.005)
                        lags.append(time.perf_counter() - began - 0.005)

                tick = asyncio.get_running_loop().create_task(ticker())
                try:
                    runtime.wire_times.clear()
                    burst, burst_wall = await publish(wide)
                    wire = list(runtime.wire_times)
                finally:
                    tick.cancel()
        finally:
            await stack.stop()
    return Overhead(
        isolated=statistics.median(isolated),
        at_concurrency=_p95(wire),
        burst_delay=_p95(burst),
        burst=len(burst),
        burst_wall=burst_wall,
        loop_lag=max(lags, default=0.0),
        speed=speed,
        step=step,
    )


async def calibrate(
    scenario: Scenario, cap: int = CAP, estate_shards: int = 0
) -> tuple[Faithful, Overhead]:
    """The faithful speed of ``scenario`` on this machine, and the costs it rests on
    (``estate_shards``: as the live run will serve the estate)."""
    world = build_world(scenario)
    best: tuple[Faithful, Overhead] | None = None
    for speed in SPEEDS:
        overhead = await measure(scenario, cap, estate_shards=estate_shards, speed=speed)
        faithful = faithful_speed(limits_of(world), overhead)
        # Measured at ``speed``: above it the link legs are shorter than measured.
        capped = faithful._replace(speed=min(faithful.speed, speed))
        if best is None or capped.speed > best[0].speed:
            best = capped, overhead
        if faithful.speed < speed:
            break  # a faster twin would only measure more
    assert best is not None
    return best


def describe(faithful: Faithful, overhead: Overhead) -> str:
    """One line for the console: the costs and the faithful speed with what limits it."""
    limit = faithful.limit
    why = f" (limited by the {limit.name}, {limit.seconds:g} s)" if limit else ""
    return (
        f"calibration at {overhead.speed or SPEED:g}x: "
        f"{overhead.isolated * 1000:.2f} ms per delivery alone (median), "
        f"{overhead.step * 1000:.2f} ms per step of one instant, "
        f"{overhead.at_concurrency * 1000:.1f} ms p95 on the wire in a burst of "
        f"{overhead.burst} (p95 {overhead.burst_delay:.2f} s from send to result, "
        f"{overhead.burst_wall:.2f} s wall, event loop up to "
        f"{overhead.loop_lag * 1000:.0f} ms late); faithful speed {faithful.speed:.3g}x{why}"
    )
