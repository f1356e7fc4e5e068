"""Checks that need volume: pricing against the reference engine, faults (slow callbacks,
a burst of activations) and latency at a stated request rate."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import Counter

from harness.certify.base import Ctx, receipt_diffs
from harness.certify.boundary import boundary_cases, boundary_promotions
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
    """Pricing against the specification: twenty promotions (exclusions, stacking and
    exclusivity, every rounding mode at both levels, tiers, bundles, windows in four time
    zones) are applied, then generated baskets (gross and net tax modes; ``cases`` of them)
    and the boundary baskets (a half cent, or a fraction of one, under every rounding mode
    and level; half-cent taxes; an absolute amount over lines of different quantities) are
    priced; every receipt must equal the reference engine's: money fields, the shipping,
    which promotion each discount is attributed to, and the promotions applied. Each
    mismatch is shown with both receipts."""
    s = ctx.s
    promos = pricing_promotions(ctx.pid("x")) + boundary_promotions(ctx.pid("r"))
    statuses = await _send_all(ctx, promos, "apply")
    ctx.expect(set(statuses) <= {200, 202}, f"{len(promos)} promotions delivered: {dict(statuses)}")
    generated = pricing_cases(ctx.settings.cases, ctx.settings.seed)
    boundary = boundary_cases(ctx.settings.seed)
    tags: Counter[str] = Counter()
    failed = 0
    for case in generated + boundary:
        expected = s.reference(case.basket, promos, case.at)
        if case in boundary:
            case_tags = [
                "boundary",
                case.name.rsplit("-", 1)[0] if "rounding" in case.name else case.name,
            ]
        else:
            case_tags = [
                case.basket.tax_mode,
                *(a.split("@")[0].rsplit("-", 1)[-1] for a in expected.applied),
            ]
        tags.update(case_tags)
        answer = await s.price(case.basket, case.at)
        diffs = (
            [f"status {answer.status}"]
            if answer.status != 200
            else receipt_diffs(expected, answer.body)
        )
        if diffs:
            failed += 1
            ctx.mismatch(case.name, case_tags, expected, answer.body, "; ".join(diffs[:6]))
    total = len(generated) + len(boundary)
    coverage = ", ".join(f"{k}: {v}" for k, v in sorted(tags.items()))
    ctx.note(
        f"{len(generated)} generated baskets (seed {ctx.settings.seed}) and "
        f"{len(boundary)} boundary baskets; coverage {coverage}"
    )
    ctx.expect(failed == 0, f"{total - failed}/{total} receipts equal the reference")
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
                f"apply {promo.id} -> {answer.status} in {answer.elapsed * 1000:.0f} ms, "
                f"limit {limit * 1000:g} ms (receiver answers after {s.receiver.delay:g} s)",
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
    """A burst of activations: 50 promotions (0.10 off each) sent open loop at 100/s are
    all answered 200/202 (429/503 honoured with Retry-After and retried, never 5xx or a
    dropped connection), each takes effect (its 200, or its ack webhook) within the
    delivery-to-effect limits of being sent (p95 2 s, slowest 5 s at level basic), and the
    price is then 5.00 off."""
    s = ctx.s
    st = ctx.settings
    n = st.burst
    promos = [probe_promotion(ctx.pid(f"{i:02d}"), 1, "0.10", ctx.name) for i in range(n)]
    t0 = time.monotonic()

    async def one(i: int, p: Promotion) -> tuple[int, float]:
        await asyncio.sleep(max(0.0, t0 + i / st.burst_rate - time.monotonic()))
        body = s.delivery(p, "apply")
        answer = await s.deliver(body)
        acked = await s.settle(body, answer, expect_ack=True)
        if answer.status == 202 and acked:
            ack = await s.receiver.wait_ack(p.id, p.version, "apply", answer.sent_at, 0.0)
            effect = (ack.at if ack else time.monotonic()) - answer.sent_at
        elif answer.status == 200:
            effect = answer.elapsed
        else:
            effect = math.inf
        return answer.status, effect

    try:
        results = await asyncio.gather(*(one(i, p) for i, p in enumerate(promos)))
    except Exception as exc:  # a dropped connection is a failure of this check
        ctx.fail(f"FAIL: burst: {exc!r}")
        return
    statuses = Counter(status for status, _ in results)
    ctx.expect(set(statuses) <= {200, 202}, f"{n} activations answered {dict(statuses)}")
    times = sorted(t for _, t in results)
    p95, worst = _p95(times), times[-1]
    ctx.note(
        f"{n} deliveries sent at {st.burst_rate:g}/s; delivery-to-effect p50 "
        f"{_ms(times[len(times) // 2])}, p95 {_ms(p95)}, max {_ms(worst)}; all in effect "
        f"after {time.monotonic() - t0:.2f} s"
    )
    ctx.expect(
        p95 <= st.burst_p95_limit,
        f"delivery-to-effect p95 {_ms(p95)}, limit {st.burst_p95_limit * 1000:g} ms",
    )
    ctx.expect(
        worst <= st.burst_max_limit,
        f"delivery-to-effect max {_ms(worst)}, limit {st.burst_max_limit * 1000:g} ms",
    )
    basket = probe_basket(ctx.name)
    at = dt.datetime.now(dt.UTC)
    ctx.expect_total(await s.price(basket, at), s.reference(basket, promos, at), f"{n} applied")
    await _send_all(ctx, promos, "revoke")


def _ms(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds * 1000:.1f} ms"


def _p95(times: list[float]) -> float:
    return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


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
    p50, p95 = times[len(times) // 2], _p95(times)
    ctx.note(
        f"{count} requests at {rate:g} req/s over {took:.1f} s; p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
    )
    ctx.expect(p95 <= limit, f"p95 {p95 * 1000:.1f} ms, limit {limit * 1000:g} ms")
    ctx.expect(errors == 0, f"{errors} non-200 answers of {count}, expected none")
