"""Checks of the version rule and idempotency, judged by prices on probe baskets.

Each check uses its own probe SKU (``probes.py``): the expected total is the reference
engine's for the promotions the adapter should hold, and the probes are built so that any
pricing dialect agrees on it -- these checks fail only for state, never for arithmetic.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from harness.certify.base import Ctx
from harness.certify.probes import probe_basket, probe_promotion, revoke_basket, revoke_promotions
from harness.certify.session import Answer
from harness.domain.promotion import Promotion

__all__ = ["check_deactivation", "check_faults_redelivery", "check_idempotency", "check_ordering"]


async def _expect_price(ctx: Ctx, held: list[Promotion], what: str) -> bool:
    basket = probe_basket(ctx.name)
    at = dt.datetime.now(dt.UTC)
    answer = await ctx.s.price(basket, at)
    return ctx.expect_total(answer, ctx.s.reference(basket, held, at), what)


def _outcome(answer: Answer) -> object:
    return answer.body.get("outcome") if isinstance(answer.body, dict) else None


async def check_idempotency(ctx: Ctx) -> None:
    """Idempotency: the same delivery sent twice (same Idempotency-Key, attempt 2) has one
    effect -- an amount_off of 5.00 takes 5.00 off, not 10.00 -- and the replay is answered
    with the first status and outcome ``duplicate``."""
    s = ctx.s
    promo = probe_promotion(ctx.pid("a"), 1, "5.00", ctx.name)
    body = s.delivery(promo, "apply")
    first = await s.deliver(body)
    ctx.expect_status(first, (200, 202), "first delivery")
    await s.settle(body, first, expect_ack=True)
    await _expect_price(ctx, [promo], "after the first delivery")
    replay = await s.deliver({**body, "attempt": 2})
    ctx.expect(
        replay.status == first.status,
        f"replay answered {replay.status}, expected {first.status} (the first status)",
    )
    ctx.expect(
        _outcome(replay) == "duplicate",
        f"replay outcome {_outcome(replay)!r}, expected 'duplicate'",
    )
    await s.settle(body | {"attempt": 2}, replay, expect_ack=False)
    await _expect_price(ctx, [promo], "after the replay (one effect)")
    await s.revoke(promo)


def _expect_stale(ctx: Ctx, answer: Answer, what: str) -> None:
    """A stale apply is 200 ``stale`` (a 202 may say ``stale`` or ``accepted``)."""
    allowed = ("stale",) if answer.status == 200 else ("stale", "accepted")
    ctx.expect(
        _outcome(answer) in allowed,
        f"{what}: outcome {_outcome(answer)!r}, expected {' or '.join(map(repr, allowed))}",
    )


async def check_ordering(ctx: Ctx) -> None:
    """Ordering: an older version arriving after a newer one is ignored and answered
    ``stale`` -- after v2 (7.00 off) then a late v1 (3.00 off), prices follow v2; after the
    revoke (tombstone v3), a late v2 does not bring the promotion back."""
    s = ctx.s
    v1 = probe_promotion(ctx.pid("a"), 1, "3.00", ctx.name)
    v2 = probe_promotion(ctx.pid("a"), 2, "7.00", ctx.name)
    answer, _ = await s.send(v2, "apply")
    ctx.expect_status(answer, (200, 202), "apply v2")
    await _expect_price(ctx, [v2], "after v2")
    body = s.delivery(v1, "apply")
    late = await s.deliver(body)
    if ctx.expect_status(late, (200, 202), "late apply v1 (stale: 200/202, not an error)"):
        _expect_stale(ctx, late, "late apply v1")
    await s.settle(body, late, expect_ack=False)
    await _expect_price(ctx, [v2], "after the late v1 (still v2)")
    answer, _ = await s.revoke(v2)
    ctx.expect_status(answer, (200, 202), "revoke (tombstone v3)")
    body = s.delivery(v2, "apply", key=f"{v2.id}:2:apply:late")
    late = await s.deliver(body)
    if ctx.expect_status(late, (200, 202), "late apply v2 after the revoke"):
        _expect_stale(ctx, late, "late apply v2 after the revoke")
    await s.settle(body, late, expect_ack=False)
    await _expect_price(ctx, [], "after the late v2 (still revoked: list price)")


async def check_deactivation(ctx: Ctx) -> None:
    """Deactivation of every benefit type: one promotion of each (amount_off, percent_off,
    fixed_price, buy_x_get_y, bundle_price, tiered, points_multiplier), each on its own
    line of a loyalty member's basket, are applied; then each is revoked (tombstone
    version) in turn and the basket priced again: after each revoke the total and the
    points equal the reference for the promotions left, and the adapter no longer lists
    the revoked one as active."""
    s = ctx.s
    promos = revoke_promotions(ctx.pid("t"), ctx.name)
    basket = revoke_basket(ctx.name)
    answers = await asyncio.gather(*(s.send(p, "apply") for p in promos.values()))
    for kind, (answer, _) in zip(promos, answers, strict=True):
        ctx.expect_status(answer, (200, 202), f"apply the {kind} promotion")
    held = dict(promos)
    at = dt.datetime.now(dt.UTC)
    priced = await s.price(basket, at)
    ctx.expect_total(
        priced, s.reference(basket, list(held.values()), at), "all seven applied", points=True
    )
    for kind in list(promos):
        promo = held.pop(kind)
        answer, _ = await s.revoke(promo)
        ctx.expect_status(answer, (200, 202), f"revoke the {kind} promotion")
        at = dt.datetime.now(dt.UTC)
        priced = await s.price(basket, at)
        ctx.expect_total(
            priced,
            s.reference(basket, list(held.values()), at),
            f"after revoking the {kind} promotion",
            points=True,
        )
        active = priced.body.get("active", []) if isinstance(priced.body, dict) else []
        listed = [a for a in active if str(a).startswith(f"{promo.id}@")]
        ctx.expect(
            not listed, f"the revoked {kind} promotion is not active (adapter lists {listed})"
        )


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
