"""Locust load for the live stack: shoppers, operators and channel callbacks.

Run by ``promoharness load`` (which writes the config named in ``PROMO_LOAD_CONFIG``)::

    python -m locust -f loadtests/locustfile.py --headless --csv out/locust ...

* ``Shopper`` — price checks and checkouts (``?checkout=true``) at POS stores, the web
  shop and the marketplace, with baskets from the scenario's catalog; the open-model
  ``Pacer`` (``loadtests/common.py``) times each arrival; each answer is checked by the
  price oracle (``loadtests/oracle.py``) and a wrong price is a Locust failure named
  "stale after rollback", "not yet active", "unexpected promotion" or "dialect mismatch",
  followed by `` @ ENDPOINT t=AT`` (the endpoint and the answer's scenario time).
* ``Operator`` (one) — walks the scenario timeline on the scenario clock through the
  orchestrator API (create, submit, approve, publish, rollback...), with each role's key.
* ``ChannelCallback`` (one) — channel adapters acknowledging what they hold
  (``POST /v1/callbacks/ack``), at ``callback_rate`` per second.
* With ``sut`` in the config (``load --sut``) there are no operators or callbacks: the
  harness plays the timeline through the driver and the oracle follows the steps it gave
  the system (``StepsFeed``, ``loadtests/common.py``).
* ``FlashSaleShape`` — runs for the campaign's duration; the shopper count (the
  concurrency ceiling) follows the curve while the pacer holds the arrival rate on it.

``check`` in the config: "full" (default), "compute" (price the reference, ignore the
verdict: ``bench load`` against a bare endpoint) or "off". ``mode`` "bench": no shape and
no pacing (closed loop, as fast as the users go), shoppers only.
"""

from __future__ import annotations

import json
import math
import random
import time

from locust import FastHttpUser, LoadTestShape, constant_throughput, events, task

from loadtests.common import CHANNEL_KEYS, LoadConfig, Pacer, load_config, request_of

CONFIG: LoadConfig = load_config()
BENCH = CONFIG.raw.get("mode") == "bench"
CHECK = CONFIG.raw.get("check", "full")
PROMOS = {p["id"]: p for p in CONFIG["promotions"]}
# load --sut: the driver plays the timeline and the estate pushes its own webhooks.
SUT = bool(CONFIG.raw.get("sut"))
FIXED = 0 if BENCH or SUT else 1 + (1 if CONFIG["callback_rate"] > 0 else 0)
PACER = Pacer(lambda: CONFIG.target_rate() / max(1, CONFIG["workers"]))
JSON_HEADERS = {"Content-Type": "application/json"}
# One process: the oracle sees when the operator sent each step (see Operator).
CONFIG.oracle.timeline.track_sends = SUT or (not BENCH and CONFIG["workers"] <= 1)


def _pace(user: Shopper) -> float:
    if BENCH:
        return 0.0
    early = CONFIG["epoch"] - time.time()
    if early > 0:  # the stack's clock has not reached t=0 yet
        return early
    wait, missed, late = PACER.wait()
    for _ in range(missed):
        events.request.fire(
            request_type="PACER",
            name="missed arrival",
            response_time=late * 1000.0,
            response_length=0,
            exception=None,
            context={},
        )
    return wait


class Shopper(FastHttpUser):
    host = CONFIG["sim_url"]
    wait_time = _pace
    weight = 100

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def price_check(self) -> None:
        path, endpoint = CONFIG.pick_endpoint(self.rng)
        basket, body = CONFIG.baskets[self.rng.randrange(len(CONFIG.baskets))]
        checkout = self.rng.random() < CONFIG["checkout_share"]
        kind = "checkout" if checkout else "price"
        name = f"{kind} {endpoint.channel}"
        url = f"{path}?checkout=true" if checkout else path
        with self.client.post(
            url, data=body, headers=JSON_HEADERS, name=name, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                return
            if CHECK == "off":
                return
            try:
                answer = json.loads(resp.content or b"{}")
                if CONFIG.feed is not None:
                    CONFIG.feed.refresh()
                verdict = CONFIG.oracle.check(basket, answer, endpoint)
                if verdict is not None and CONFIG.feed and CONFIG.feed.refresh(force=True):
                    verdict = CONFIG.oracle.check(basket, answer, endpoint)  # a step just went
            except (ValueError, KeyError) as exc:
                resp.failure(f"bad response: {type(exc).__name__}")
                return
            if CHECK == "full" and verdict is not None:
                # where and when: the report attributes each wrong price to its endpoint's
                # modelled faults, or to none (harness/load/attribution.py)
                resp.failure(f"{verdict.message()} @ {endpoint.id} t={float(answer['at']):.1f}")
                return
            for item in answer.get("active", ()):
                promo, _, version = item.rpartition("@")
                CONFIG.seen.append((endpoint.channel, endpoint.id, promo, int(version or 0)))


class Operator(FastHttpUser):
    """Plays the timeline; a refused step is a failure and leaves the oracle's view.

    Each step goes at its time, and never sooner after the previous one than the plan
    says: an operator that starts late (a busy machine) shifts its steps rather than
    firing them back to back, which would approve before the ERP validated. The oracle
    (in this process: one worker) counts each step from when it was sent."""

    host = CONFIG["api_url"]
    fixed_count = 0 if BENCH or SUT else 1
    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.next_step = 0
        self.previous: tuple[float, float] | None = None  # (planned, sent) scenario s

    def _due(self, step: dict[str, object]) -> float:
        at = float(step["at"])  # type: ignore[arg-type]
        if self.previous is None:
            return at
        planned, sent = self.previous
        return max(at, sent + at - planned)

    @task
    def walk(self) -> None:
        timeline = CONFIG.oracle.timeline
        steps = timeline.steps
        deadline = time.time() + 1.0
        while self.next_step < len(steps) and time.time() < deadline:
            step = steps[self.next_step]
            wait = (self._due(step) - CONFIG.scenario_now()) / CONFIG["speed"]
            if time.time() + wait >= deadline:
                return
            if wait > 0:
                time.sleep(wait)  # gevent's: the step goes on time, not at the next tick
            sent = CONFIG.scenario_now()
            timeline.sent[self.next_step] = sent
            self.previous = (float(step["at"]), sent)
            path, key, body = request_of(step, PROMOS)
            with self.client.post(
                path,
                json=body,
                headers={"X-API-Key": key},
                name=f"operator {step['action']}",
                catch_response=True,
            ) as resp:
                if resp.status_code >= 400:
                    CONFIG.oracle.timeline.refused.add(self.next_step)
                    resp.failure(
                        f"refused {step['action']} {step.get('promo')}: HTTP {resp.status_code}"
                    )
            self.next_step += 1


class ChannelCallback(FastHttpUser):
    """A channel adapter confirming a promotion it holds, as real adapters do: again and
    again. The orchestrator counts an ack only for a delivery sent and awaiting it; a
    repeat is answered 409 (recorded as stale) and is no failure of the adapter's call."""

    host = CONFIG["api_url"]
    fixed_count = 1 if FIXED == 2 else 0
    wait_time = constant_throughput(max(CONFIG["callback_rate"], 0.01))

    @task
    def ack(self) -> None:
        if not CONFIG.seen:
            return
        channel, endpoint, promo, version = CONFIG.seen.popleft()
        body = {"endpoint": endpoint, "promo": promo, "version": version, "op": "apply"}
        with self.client.post(
            "/v1/callbacks/ack",
            json=body,
            headers={"X-API-Key": CHANNEL_KEYS[channel]},
            name=f"callback {channel}",
            catch_response=True,
        ) as resp:
            if resp.status_code == 409:
                resp.success()
            elif resp.status_code >= 400:
                resp.failure(f"HTTP {resp.status_code}")


if not BENCH:

    class FlashSaleShape(LoadTestShape):
        """Users follow the curve (a ceiling); the pacer makes the arrival rate."""

        def tick(self) -> tuple[int, float] | None:
            if self.get_run_time() >= CONFIG["duration"]:
                return None
            share = CONFIG.target_rate() / CONFIG["rate"]
            shoppers = max(1, math.ceil(CONFIG["users"] * share))
            return FIXED + shoppers, float(max(10, CONFIG["users"]))
