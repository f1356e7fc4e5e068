"""Checks of the HTTP surface: contract conformance (status codes, bodies, bad input) and
authentication."""

from __future__ import annotations

import datetime as dt
import json

from harness.certify.base import Ctx
from harness.certify.contract import validate
from harness.certify.probes import probe_basket, probe_promotion
from harness.certify.rules import RULES
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
    keys differing, and one case for each input rule V1-V35 of the specification: money
    places, tiers, benefit types per class, validity forms and zones, basket lines, ``at``)
    is answered 4xx with a reason, never 5xx, and never takes effect."""
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
    basket = json.loads(probe_basket(ctx.name).model_dump_json())
    Params = dict[str, str] | None
    cases: list[tuple[str, str, bytes, dict[str, str], Params]] = [
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
    ]
    # One case per input rule of the specification (part V), each breaking only that rule.
    for rule in RULES:
        what = f"{rule.id} {rule.text}"
        if rule.target == "promotion":
            key = f"{good['promo']}:{rule.id}"
            body = {**good, "delivery_id": key, "idempotency_key": key}
            body["payload"] = rule.breaks(good["payload"])
            content = json.dumps(body).encode()
            cases.append((what, "/promotions", content, {"Idempotency-Key": key}, None))
        elif rule.target == "basket":
            content = json.dumps(rule.breaks(basket)).encode()
            cases.append((what, "/price", content, {}, None))
        else:
            at = rule.breaks(None)
            cases.append((what, "/price", json.dumps(basket).encode(), {}, {"at": at}))
    refused = 0
    for what, path, content, extra, params in cases:
        answer = await s.request(
            "POST", path, content=content, headers={**hdr, **extra}, params=params
        )
        if 400 <= answer.status < 500 and answer.status != 401:
            refused += 1
            errors = validate(s.contract, "ErrorBody", answer.body)
            detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
            if errors or not detail:
                ctx.fail(f"FAIL: bad input ({what}): no reason in 'detail' {errors or ''}")
        else:
            ctx.fail(f"FAIL: bad input ({what}) -> {answer.status}, expected 4xx (not 401)")
    ctx.note(f"{refused}/{len(cases)} bad inputs refused with 4xx")
    held = await s.held()
    leaked = [a for a in held if a.startswith(f"{good['promo']}@")]
    ctx.expect(not leaked, f"no refused delivery took effect (adapter holds {leaked})")


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
