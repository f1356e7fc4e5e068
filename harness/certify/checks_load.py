"""Checks that need volume: pricing against the reference engine, faults (slow callbacks,
a burst of activations) and latency at a stated request rate."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import Counter

from harness.certify.base import Ctx, money_fields
from harness.certify.probes import pricing_cases, pricing_promotions, probe_basket, probe_promotion
from harness.domain.promotion import Promotion

__all__ = ["check_faults_burst", "check_faults_slow_callbacks", "check_latency", "check_pricing"]


async def _send_all(ctx: Ctx, promos: list[Promotion], op: str) -> Counter[int]:
    """Deliver concurrently and wait for each to take effect; status counts."""

    async def one(p: Promotion) -> int:
        if op == "apply":
            answer, _ = await ctx.s.send(p, "apply")
        else:
            answer, _ = await ctx.s.revoke(p)
        return answer.status

    return Counter(await asyncio.gather(*(one(p) for p in promos)))


async def check_pricing(ctx: Ctx) -> None:
    """Pricing against the reference engine: eleven promotions (exclusions, stacking and
    exclusivity, rounding modes and levels, tiers, bundles, windows in four time zones) are
    applied, then generated baskets (gross and net tax modes) are priced at instants around
    the windows' edges; every money field of every receipt must equal the reference
    engine's (``harness.domain.pricing``). Each mismatch is shown with both receipts."""
    s = ctx.s
    promos = pricing_promotions(ctx.pid("x"))
    statuses = await _send_all(ctx, promos, "apply")
    ctx.expect(set(statuses) <= {200, 202}, f"{len(promos)} promotions delivered: {dict(statuses)}")
    cases = pricing_cases(ctx.settings.cases, ctx.settings.seed)
    tags: Counter[str] = Counter()
    failed = 0
    for case in cases:
        expected = s.reference(case.basket, promos, case.at)
        case_tags = [
            case.basket.tax_mode,
            *(a.split("@")[0].rsplit("-", 1)[-1] for a in expected.applied),
        ]
        tags.update(case_tags)
        answer = await s.price(case.basket, case.at)
        diffs = (
            [f"status {answer.status}"]
            if answer.status != 200
            else money_fields(expected, answer.body)
        )
        if diffs:
            failed += 1
            ctx.mismatch(case.name, case_tags, expected, answer.body, "; ".join(diffs[:6]))
    coverage = ", ".join(f"{k}: {v}" for k, v in sorted(tags.items()))
    ctx.note(f"{len(cases)} baskets (seed {ctx.settings.seed}); coverage {coverage}")
    ctx.expect(failed == 0, f"{len(cases) - failed}/{len(cases)} receipts equal the reference")
    await _send_all(ctx, promos, "revoke")


async def check_faults_slow_callbacks(ctx: Ctx) -> None:
    """Slow callbacks: while the kit's callback receiver takes seconds to answer each
    webhook, deliveries are still answered within 1 s (webhooks are not on the delivery
    path), their acks still arrive, and prices follow."""
    s = ctx.s
    s.receiver.delay = ctx.settings.slow_callback_delay
    limit = ctx.settings.slow_callback_answer_limit
    promos = [probe_promotion(ctx.pid(str(n)), 1, "1.50", ctx.name) for n in (1, 2)]
    try:
        for promo in promos:
            body = s.delivery(promo, "apply")
            answer = await s.deliver(body)
            ok = answer.status in (200, 202)
            ctx.expect(
                ok and answer.elapsed < limit,
                f"apply {promo.id} -> {answer.status} in {answer.elapsed * 1000:.0f} ms "
                f"< {limit:g} s (receiver answers after {s.receiver.delay:g} s)",
            )
            if answer.status == 202:
                ctx.expect(await s.settle(body, answer, expect_ack=True), "its ack arrived")
        basket = probe_basket(ctx.name)
        at = dt.datetime.now(dt.UTC)
        ctx.expect_total(await s.price(basket, at), s.reference(basket, promos, at), "both applied")
    finally:
        s.receiver.delay = 0.0
    await _send_all(ctx, promos, "revoke")


async def check_faults_burst(ctx: Ctx) -> None:
    """A burst of activations: 50 promotions (0.10 off each) delivered at once are all
    answered 200/202 (429/503 honoured with Retry-After and retried, never 5xx or a
    dropped connection), all take effect, and the price is 5.00 off."""
    s = ctx.s
    n = ctx.settings.burst
    promos = [probe_promotion(ctx.pid(f"{i:02d}"), 1, "0.10", ctx.name) for i in range(n)]
    t0 = time.monotonic()
    try:
        statuses = await _send_all(ctx, promos, "apply")
    except Exception as exc:  # a dropped connection is a failure of this check
        ctx.fail(f"FAIL: burst: {exc!r}")
        return
    ctx.expect(set(statuses) <= {200, 202}, f"{n} activations answered {dict(statuses)}")
    ctx.note(f"all in effect after {time.monotonic() - t0:.2f} s")
    basket = probe_basket(ctx.name)
    at = dt.datetime.now(dt.UTC)
    ctx.expect_total(await s.price(basket, at), s.reference(basket, promos, at), f"{n} applied")
    await _send_all(ctx, promos, "revoke")


async def check_latency(ctx: Ctx) -> None:
    """Latency: POST /price at a steady request rate (20 req/s for 5 s at level basic,
    50 req/s for 20 s at full; open loop) has p95 within the limit (250 ms) and no error."""
    rate, seconds, limit = (
        ctx.settings.latency_rate,
        ctx.settings.latency_seconds,
        ctx.settings.p95_limit,
    )
    cases = pricing_cases(16, ctx.settings.seed)
    count = max(1, int(rate * seconds))
    start = time.monotonic()

    async def one(i: int) -> tuple[int, float]:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        case = cases[i % len(cases)]
        try:
            answer = await ctx.s.price(case.basket, case.at)
        except Exception:
            return 0, math.inf
        return answer.status, answer.elapsed

    results = await asyncio.gather(*(one(i) for i in range(count)))
    took = time.monotonic() - start
    times = sorted(t for _, t in results)
    errors = sum(1 for status, _ in results if status != 200)
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    ctx.note(
        f"{count} requests at {rate:g} req/s over {took:.1f} s; p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
    )
    ctx.expect(p95 <= limit, f"p95 {p95 * 1000:.1f} ms <= {limit * 1000:.0f} ms")
    ctx.expect(errors == 0, f"{errors} non-200 answers")
