"""Mutants of the HTTP surface: acks, latency, auth, input validation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from certify_support import TOKEN
from mutant_kit import Intercept, Mutant, pos, web, without_headers
from pydantic import ValidationError

from harness.domain.promotion import Promotion


def _serialised() -> Any:
    """Deliveries processed one at a time, 0.1 s each (a single worker and a slow DB).

    The burst's 50 then queue for 5 s: its p95 is past the 2 s limit on any machine (the
    sleeps are a lower bound), and the last answer comes well inside the session's 15 s
    read timeout even on a busy one (at 0.3 s each it came at 15 s: a ReadTimeout, not
    the p95 failure this mutant stands for)."""
    lock = asyncio.Lock()

    async def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if (method, path) == ("POST", "/promotions"):
            async with lock:
                await asyncio.sleep(0.1)
        return None

    return Intercept(pos()[0], answer=answer)


def _slow(path: str, seconds: float) -> Any:
    async def answer(method: str, p: str, headers: dict[str, str], body: bytes) -> Any:
        if p == path:
            await asyncio.sleep(seconds)
        return None

    return Intercept(pos()[0], answer=answer)


def _ack_inline() -> Any:
    """The ack webhook is posted (and awaited) before the delivery is answered."""

    async def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        url = headers.get("x-callback-url")
        if (method, path) == ("POST", "/promotions") and url:
            try:
                d = json.loads(body)
                ack = {
                    "endpoint": "web",
                    "promo": d["promo"],
                    "version": d["version"],
                    "op": d["op"],
                }
                key = {"X-API-Key": headers.get("x-callback-key", "")}
                async with httpx.AsyncClient(timeout=30) as client:
                    await client.post(url, json=ack, headers=key)
            except (ValueError, KeyError, TypeError, httpx.HTTPError):
                pass
        return None

    return Intercept(web(), answer=answer)


def _any_token(scope: dict[str, Any]) -> dict[str, Any]:
    # The bug: only the scheme is checked ("Bearer <anything>" passes).
    headers = []
    for k, v in scope["headers"]:
        if k.lower() == b"authorization" and v.startswith(b"Bearer "):
            v = f"Bearer {TOKEN}".encode()
        headers.append((k, v))
    scope["headers"] = headers
    return scope


def _open_health() -> Any:
    async def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path == "/health" and headers.get("authorization") != f"Bearer {TOKEN}":
            return 200, {"ok": True, "channel": "pos", "contract": "1.0.0", "store": None}
        return None

    return Intercept(pos()[0], answer=answer)


def _lenient() -> Any:
    """A payload the adapter cannot read is acknowledged 200 ok and dropped."""

    async def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if (method, path) == ("POST", "/promotions"):
            try:
                payload = json.loads(body).get("payload")
                if payload is not None:
                    Promotion.model_validate(payload)
            except ValidationError:
                return 200, {"outcome": "ok", "detail": ""}
            except (ValueError, AttributeError):
                return None
        return None

    return Intercept(pos()[0], answer=answer)


def _crashes_on_bad_json() -> Any:
    async def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        try:
            json.loads(body or b"{}")
        except ValueError:
            return 500, {"detail": "Internal Server Error"}
        return None

    return Intercept(pos()[0], answer=answer)


MUTANTS = [
    Mutant(
        "never-acks",
        "202 but the ack webhook is never sent (callback URL ignored)",
        "ecommerce",
        "contract",
        "ack webhook within",
        lambda: Intercept(web(), scope_hook=without_headers("x-callback-url")),
    ),
    Mutant(
        "ack-without-key",
        "the ack webhook carries no X-API-Key",
        "ecommerce",
        "contract",
        "wrong X-API-Key",
        lambda: Intercept(web(), scope_hook=without_headers("x-callback-key")),
    ),
    Mutant(
        "ack-on-delivery-path",
        "the ack webhook is sent before the delivery is answered",
        "ecommerce",
        "faults_slow_callbacks",
        "limit 1000 ms",
        _ack_inline,
    ),
    Mutant(
        "serialises-deliveries",
        "one delivery at a time, 0.1 s each",
        "pos",
        "faults_burst",
        "delivery-to-effect p95",
        _serialised,
    ),
    Mutant(
        "slow-pricing",
        "POST /price takes 0.4 s (a remote call per basket)",
        "pos",
        "latency",
        "limit 250 ms",
        lambda: _slow("/price", 0.4),
    ),
    Mutant(
        "accepts-any-token",
        "only the Bearer scheme is checked, not the token",
        "pos",
        "auth",
        "with wrong token -> 200",
        lambda: Intercept(pos()[0], scope_hook=_any_token),
    ),
    Mutant(
        "open-health",
        "GET /health answers without a token",
        "pos",
        "auth",
        "GET /health with no Authorization -> 200",
        _open_health,
    ),
    Mutant(
        "lenient-payloads",
        "an unreadable payload is acknowledged 200 ok and dropped",
        "pos",
        "contract",
        "V14 tier thresholds",
        _lenient,
    ),
    Mutant(
        "500-on-bad-json",
        "a body that is not JSON crashes the handler: 500",
        "pos",
        "contract",
        "delivery not JSON) -> 500",
        _crashes_on_bad_json,
    ),
]
