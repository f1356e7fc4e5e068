"""Checks of the HTTP surface: contract conformance (status codes, bodies, bad input) and
authentication."""

from __future__ import annotations

import datetime as dt
import json

from harness.certify.base import Ctx
from harness.certify.contract import validate
from harness.certify.probes import probe_basket, probe_promotion
from harness.certify.session import Answer
from harness.certify.wire import CONTRACT_VERSION

__all__ = ["check_auth", "check_contract"]


def _conforms(ctx: Ctx, answer: Answer, schema: str, what: str) -> None:
    errors = validate(ctx.s.contract, schema, answer.body)
    ctx.expect(not errors, f"{what}: body matches {schema}" + (f": {errors}" if errors else ""))


async def check_contract(ctx: Ctx) -> None:
    """Contract conformance: GET /health, POST /promotions (apply, revoke) and POST /price
    answer with the contract's status codes and bodies that validate against its schemas;
    an accepted (202) delivery is followed by a valid ack webhook carrying the X-API-Key;
    bad input (not JSON, missing fields, unknown op, apply without payload, header and body
    keys differing, an invalid basket, a bad ``at``) is answered 4xx with a reason, never
    5xx."""
    s = ctx.s
    health = await s.request("GET", "/health", headers=s.auth)
    if ctx.expect_status(health, (200,), "GET /health"):
        _conforms(ctx, health, "HealthAnswer", "GET /health")
        body = health.body if isinstance(health.body, dict) else {}
        ctx.expect(body.get("channel") == s.channel, f"health channel {body.get('channel')!r}")
        major = str(body.get("contract", "")).split(".")[0]
        ctx.expect(
            major == CONTRACT_VERSION.split(".")[0],
            f"contract version {body.get('contract')!r} (kit {CONTRACT_VERSION})",
        )
    promo = probe_promotion(ctx.pid("a"), 1, "4.00", ctx.name)
    for op, promotion, version in (("apply", promo, 1), ("revoke", None, 2)):
        body = s.delivery(promotion, op, promo=promo.id, version=version)
        answer = await s.deliver(body)
        what = f"POST /promotions {op} v{version}"
        if ctx.expect_status(answer, (200, 202), what):
            _conforms(ctx, answer, "DeliveryAnswer", what)
            acked = await s.settle(body, answer, expect_ack=True)
            if answer.status == 202:
                ctx.expect(acked, f"{what}: ack webhook within {s.ack_timeout:g} s")
        if op == "apply":
            priced = await s.price(probe_basket(ctx.name), dt.datetime.now(dt.UTC))
            if ctx.expect_status(priced, (200,), "POST /price"):
                _conforms(ctx, priced, "PriceAnswer", "POST /price")
    acks = [a for a in s.receiver.acks if isinstance(a.body, dict)]
    bad = [a for a in s.receiver.acks if a.errors or not a.key_ok]
    for ack in bad[:5]:
        ctx.fail(f"FAIL: ack webhook {ack.body!r}: {ack.errors or 'wrong X-API-Key'}")
    ctx.note(f"{len(acks)} ack webhook(s) received, {len(bad)} invalid")
    await _bad_input(ctx)


async def _bad_input(ctx: Ctx) -> None:
    s = ctx.s
    hdr = {**s.auth, "Content-Type": "application/json"}
    good = s.delivery(probe_promotion(ctx.pid("b"), 1, "1.00", ctx.name), "apply")
    cases: list[tuple[str, str, bytes, dict[str, str], dict[str, str] | None]] = [
        ("delivery not JSON", "/promotions", b"{not json", {"Idempotency-Key": "k1"}, None),
        (
            "delivery missing fields",
            "/promotions",
            b'{"op":"apply"}',
            {"Idempotency-Key": "k2"},
            None,
        ),
        (
            "unknown op",
            "/promotions",
            json.dumps({**good, "op": "frobnicate"}).encode(),
            {"Idempotency-Key": good["idempotency_key"]},
            None,
        ),
        (
            "apply without payload",
            "/promotions",
            json.dumps({**good, "payload": None}).encode(),
            {"Idempotency-Key": good["idempotency_key"]},
            None,
        ),
        (
            "Idempotency-Key header differs from body",
            "/promotions",
            json.dumps(good).encode(),
            {"Idempotency-Key": "another-key"},
            None,
        ),
        (
            "basket with quantity 0",
            "/price",
            b'{"lines":[{"sku":"X","quantity":0,"unit_price":"1.00"}]}',
            {},
            None,
        ),
        (
            "price at a non-date",
            "/price",
            probe_basket(ctx.name).model_dump_json().encode(),
            {},
            {"at": "yesterday"},
        ),
    ]
    for what, path, content, extra, params in cases:
        answer = await s.request(
            "POST", path, content=content, headers={**hdr, **extra}, params=params
        )
        if ctx.expect(
            400 <= answer.status < 500 and answer.status != 401,
            f"bad input ({what}) -> {answer.status} (expected 4xx)",
        ):
            errors = validate(s.contract, "ErrorBody", answer.body)
            detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
            ctx.expect(
                not errors and bool(detail),
                f"bad input ({what}): a reason in 'detail'" + (f": {errors}" if errors else ""),
            )


async def check_auth(ctx: Ctx) -> None:
    """Authentication: every route refuses a missing bearer token, a wrong one and another
    scheme with 401 (and does nothing)."""
    s = ctx.s
    promo = probe_promotion(ctx.pid("a"), 1, "9.00", ctx.name)
    delivery = json.dumps(s.delivery(promo, "apply")).encode()
    basket = probe_basket(ctx.name).model_dump_json().encode()
    credentials = {
        "no Authorization": {},
        "wrong token": {"Authorization": f"Bearer {s.token}-wrong"},
        "Basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    }
    for label, creds in credentials.items():
        for method, path, content in (
            ("POST", "/promotions", delivery),
            ("POST", "/price", basket),
            ("GET", "/health", None),
        ):
            headers = {**creds, "Content-Type": "application/json", "Idempotency-Key": "auth"}
            answer = await s.request(method, path, content=content, headers=headers)
            ctx.expect(answer.status == 401, f"{method} {path} with {label} -> {answer.status}")
    priced = await s.price(probe_basket(ctx.name), dt.datetime.now(dt.UTC))
    active = priced.body.get("active", []) if isinstance(priced.body, dict) else []
    ctx.expect(
        not any(a.startswith(promo.id) for a in active), "the refused delivery did not take effect"
    )
