"""Checks of the version rule and idempotency, judged by prices on probe baskets.

Each check uses its own probe SKU (``probes.py``): the expected total is the reference
engine's for the promotions the adapter should hold, and the probes are built so that any
pricing dialect agrees on it -- these checks fail only for state, never for arithmetic.
"""

from __future__ import annotations

import datetime as dt

from harness.certify.base import Ctx
from harness.certify.probes import probe_basket, probe_promotion
from harness.domain.promotion import Promotion

__all__ = ["check_deactivation", "check_faults_redelivery", "check_idempotency", "check_ordering"]


async def _expect_price(ctx: Ctx, held: list[Promotion], what: str) -> bool:
    basket = probe_basket(ctx.name)
    at = dt.datetime.now(dt.UTC)
    answer = await ctx.s.price(basket, at)
    return ctx.expect_total(answer, ctx.s.reference(basket, held, at), what)


async def check_idempotency(ctx: Ctx) -> None:
    """Idempotency: the same delivery sent twice (same Idempotency-Key, attempt 2) has one
    effect -- an amount_off of 5.00 takes 5.00 off, not 10.00 -- and the replay is answered
    with the first status."""
    s = ctx.s
    promo = probe_promotion(ctx.pid("a"), 1, "5.00", ctx.name)
    body = s.delivery(promo, "apply")
    first = await s.deliver(body)
    ctx.expect_status(first, (200, 202), "first delivery")
    await s.settle(body, first, expect_ack=True)
    await _expect_price(ctx, [promo], "after the first delivery")
    replay = await s.deliver({**body, "attempt": 2})
    ctx.expect(
        replay.status == first.status, f"replay answered {replay.status}, first {first.status}"
    )
    await s.settle(body | {"attempt": 2}, replay, expect_ack=False)
    await _expect_price(ctx, [promo], "after the replay (one effect)")
    await s.revoke(promo)


async def check_ordering(ctx: Ctx) -> None:
    """Ordering: an older version arriving after a newer one is ignored -- after v2
    (7.00 off) then a late v1 (3.00 off), prices follow v2."""
    s = ctx.s
    v1 = probe_promotion(ctx.pid("a"), 1, "3.00", ctx.name)
    v2 = probe_promotion(ctx.pid("a"), 2, "7.00", ctx.name)
    answer, _ = await s.send(v2, "apply")
    ctx.expect_status(answer, (200, 202), "apply v2")
    await _expect_price(ctx, [v2], "after v2")
    body = s.delivery(v1, "apply")
    late = await s.deliver(body)
    ctx.expect_status(late, (200, 202), "late apply v1 (stale: 200/202, not an error)")
    await s.settle(body, late, expect_ack=False)
    await _expect_price(ctx, [v2], "after the late v1 (still v2)")
    await s.revoke(v2)


async def check_deactivation(ctx: Ctx) -> None:
    """Deactivation: a revoke (tombstone version) puts list prices back -- after applying
    6.00 off and revoking it, the probe basket costs its list price again."""
    s = ctx.s
    promo = probe_promotion(ctx.pid("a"), 1, "6.00", ctx.name)
    answer, _ = await s.send(promo, "apply")
    ctx.expect_status(answer, (200, 202), "apply v1")
    await _expect_price(ctx, [promo], "while applied")
    answer, _ = await s.revoke(promo)
    ctx.expect_status(answer, (200, 202), "revoke (tombstone v2)")
    await _expect_price(ctx, [], "after the revoke (list price)")


async def check_faults_redelivery(ctx: Ctx) -> None:
    """Duplicate and out-of-order deliveries: v2, v3, v3 again (same key), a late v1 and v2
    again, back to back without waiting for acks, leave v3 applied exactly once."""
    s = ctx.s
    versions = {
        v: probe_promotion(ctx.pid("a"), v, amount, ctx.name)
        for v, amount in ((1, "2.00"), (2, "4.00"), (3, "8.00"))
    }
    sent = []
    for v in (2, 3, 3, 1, 2):
        body = s.delivery(versions[v], "apply")
        answer = await s.deliver(body)
        ctx.expect_status(answer, (200, 202), f"apply v{v}")
        sent.append((body, answer))
    for body, answer in sent:
        await s.settle(body, answer, expect_ack=body["version"] == 3)
    await _expect_price(ctx, [versions[3]], "after the storm (v3 once)")
    await s.revoke(versions[3])
