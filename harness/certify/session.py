"""The kit's side of the wire: an HTTP client for one adapter and a callback receiver.

:class:`Receiver` is the orchestrator's ``/v1/callbacks/ack`` played on 127.0.0.1 (an
aiohttp server on a free port): it records every webhook (arrival time, body, schema
errors, whether the ``X-API-Key`` matched) and can be made slow (``delay`` seconds before
it answers). :class:`Session` sends deliveries (retrying 429/503 after ``Retry-After``, at
most :data:`MAX_ATTEMPTS` times, with the same idempotency key), waits for the webhook of
an accepted (202) one, prices baskets, and prices them by the reference engine too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from harness.certify.contract import load_contract, validate
from harness.domain.basket import Basket, Receipt
from harness.domain.dialects import Dialect
from harness.domain.pricing import StoreContext, price_basket
from harness.domain.promotion import Promotion

__all__ = ["MAX_ATTEMPTS", "Answer", "Receiver", "Refused", "Session", "Unreachable"]

HOST = "127.0.0.1"
MAX_ATTEMPTS = 4
CALLBACK_PATH = "/v1/callbacks/ack"


class Unreachable(Exception):
    """The adapter does not answer GET /health (bad URL, nothing listening, not HTTP), or
    refuses the token, or no token was given."""


class Refused(Exception):
    """The pre-flight refuses the adapter: it already holds promotions (a run would judge
    them as its own), and cleaning was not asked for."""


@dataclass
class Answer:
    """One HTTP exchange: status, JSON body (or None), seconds, attempts made."""

    status: int
    body: Any
    elapsed: float
    attempts: int = 1
    sent_at: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ack:
    at: float
    body: Any
    key_ok: bool
    errors: list[str]


class Receiver:
    """The orchestrator's callback endpoint, on 127.0.0.1, for the certification run."""

    def __init__(self, contract: dict[str, Any], key: str) -> None:
        self.contract = contract
        self.key = key
        self.delay = 0.0
        self.acks: list[Ack] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw)
            errors = validate(self.contract, "AckBody", body)
        except ValueError as exc:
            body, errors = raw.decode("utf-8", "replace"), [f"not JSON: {exc}"]
        self.acks.append(Ack(at, body, request.headers.get("X-API-Key") == self.key, errors))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(CALLBACK_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((HOST, 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://{HOST}:{sock.getsockname()[1]}{CALLBACK_PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_ack(
        self, promo: str, version: int, op: str, since: float, timeout: float
    ) -> Ack | None:
        """The first webhook for (promo, version, op) received after ``since``, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for ack in self.acks:
                b = ack.body
                if (
                    ack.at >= since
                    and isinstance(b, dict)
                    and (b.get("promo"), b.get("version"), b.get("op")) == (promo, version, op)
                ):
                    return ack
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.02)


class Session:
    """One certification run's connection to one adapter."""

    def __init__(
        self,
        url: str,
        channel: str,
        token: str,
        *,
        ack_timeout: float = 10.0,
        dialect: Dialect | None = None,
    ) -> None:
        self.dialect = dialect
        self.url = url.rstrip("/")
        self.channel = channel
        self.token = token
        self.ack_timeout = ack_timeout
        self.contract = load_contract(channel)
        self.run_id = "C" + secrets.token_hex(3)
        self.receiver = Receiver(self.contract, key=secrets.token_hex(8))
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )
        self.health: dict[str, Any] = {}
        self.store: StoreContext | None = None
        self.max_ack_delay = 0.0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self) -> None:
        """Reach the adapter (GET /health) and start the receiver; Unreachable on failure."""
        if not self.token.strip():
            await self.client.aclose()
            raise Unreachable(
                "no bearer token: give --token (or PROMOHARNESS_ADAPTER_TOKEN); the contract "
                "requires one on every route"
            )
        try:
            resp = await self.client.get(f"{self.url}/health", headers=self.auth, timeout=5.0)
            self.health = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            await self.client.aclose()
            raise Unreachable(f"cannot reach {self.url}/health: {exc!r}") from None
        if resp.status_code == 401:
            await self.client.aclose()
            raise Unreachable(f"{self.url}/health answered 401: the adapter refuses this token")
        store = self.health.get("store") if isinstance(self.health, dict) else None
        if isinstance(store, dict) and store.get("timezone"):
            self.store = StoreContext(store.get("id"), store.get("region"), store["timezone"])
        await self.receiver.start()

    async def close(self) -> None:
        await self.receiver.stop()
        await self.client.aclose()

    @property
    def grace(self) -> float:
        """How long to wait for a webhook that may not come (a duplicate, a stale one)."""
        return min(3.0, max(0.3, 2 * self.max_ack_delay))

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """One raw request (no retry): the answer, with a JSON body when there is one."""
        t0 = time.monotonic()
        resp = await self.client.request(
            method, f"{self.url}{path}", content=content, headers=headers, params=params
        )
        try:
            body = resp.json()
        except ValueError:
            body = None
        return Answer(resp.status_code, body, time.monotonic() - t0, 1, t0, dict(resp.headers))

    def delivery(
        self,
        promotion: Promotion | None,
        op: str,
        *,
        promo: str | None = None,
        version: int | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """A delivery body; the key defaults to ``promo:version:op``."""
        promo = promo or (promotion.id if promotion else "")
        version = version or (promotion.version if promotion else 1)
        key = key or f"{promo}:{version}:{op}"
        payload = promotion.model_dump(mode="json", by_alias=True) if promotion else None
        return {
            "delivery_id": key,
            "idempotency_key": key,
            "op": op,
            "promo": promo,
            "version": version,
            "attempt": 1,
            "payload": payload,
        }

    async def deliver(self, body: dict[str, Any]) -> Answer:
        """POST /promotions, retrying 429/503 after Retry-After (same key, attempt + 1)."""
        headers = {
            **self.auth,
            "Idempotency-Key": body["idempotency_key"],
            "Content-Type": "application/json",
            "X-Callback-URL": self.receiver.url,
            "X-Callback-Key": self.receiver.key,
        }
        t0 = time.monotonic()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            content = json.dumps({**body, "attempt": attempt}).encode()
            answer = await self.request("POST", "/promotions", content=content, headers=headers)
            if answer.status not in (429, 503) or attempt == MAX_ATTEMPTS:
                answer.attempts, answer.sent_at = attempt, t0
                answer.elapsed = time.monotonic() - t0
                return answer
            try:
                wait = float(answer.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.05), 5.0))
        raise AssertionError("unreachable")

    async def settle(self, body: dict[str, Any], answer: Answer, *, expect_ack: bool) -> bool:
        """Wait for the webhook of an accepted (202) delivery: up to ``ack_timeout`` when
        one is due (``expect_ack``), else up to ``grace``. True: acked (or 200)."""
        if answer.status != 202:
            return answer.status == 200
        timeout = self.ack_timeout if expect_ack else self.grace
        ack = await self.receiver.wait_ack(
            body["promo"], body["version"], body["op"], answer.sent_at, timeout
        )
        if ack is not None:
            self.max_ack_delay = max(self.max_ack_delay, ack.at - answer.sent_at)
        return ack is not None

    async def send(self, promotion: Promotion | None, op: str, **kw: Any) -> tuple[Answer, bool]:
        """Deliver and wait for it to take effect: (answer, acked-or-200)."""
        body = self.delivery(promotion, op, **kw)
        answer = await self.deliver(body)
        return answer, await self.settle(body, answer, expect_ack=True)

    async def revoke(self, promotion: Promotion) -> tuple[Answer, bool]:
        """Revoke with the tombstone version (version + 1)."""
        return await self.send(None, "revoke", promo=promotion.id, version=promotion.version + 1)

    async def price(self, basket: Basket, at: dt.datetime | None = None) -> Answer:
        params = {"at": at.isoformat()} if at is not None else None
        headers = {**self.auth, "Content-Type": "application/json"}
        return await self.request(
            "POST",
            "/price",
            content=basket.model_dump_json().encode(),
            headers=headers,
            params=params,
        )

    def reference(self, basket: Basket, promotions: list[Promotion], at: dt.datetime) -> Receipt:
        """The reference engine's receipt for this adapter's channel (and store)."""
        return price_basket(
            basket, promotions, channel=self.channel, at=at, store=self.store, dialect=self.dialect
        )

    async def held(self) -> list[str]:
        """The promotions the adapter says it holds ("id@version", from POST /price)."""
        basket = Basket(lines=[{"sku": "PREFLIGHT", "quantity": 1, "unit_price": "1.00"}])
        answer = await self.price(basket, dt.datetime.now(dt.UTC))
        active = answer.body.get("active") if isinstance(answer.body, dict) else None
        return [a for a in active if isinstance(a, str)] if isinstance(active, list) else []

    async def preflight(self, clean: bool) -> list[str]:
        """Refuse an adapter that already holds promotions, or (``clean``) revoke each with
        a tombstone version and check it is gone; the revoked "id@version" list."""
        held = await self.held()
        if not held:
            return []
        if not clean:
            raise Refused(
                f"the adapter already holds {len(held)} promotion(s) ({', '.join(held[:5])}"
                f"{', ...' if len(held) > 5 else ''}): certify a fresh instance, or pass "
                "--clean to revoke them first"
            )
        for item in held:
            promo, _, version = item.rpartition("@")
            try:
                tombstone = int(version) + 1
            except ValueError:
                raise Refused(f"the adapter holds {item!r}, not an id@version") from None
            await self.send(None, "revoke", promo=promo, version=tombstone, key=f"clean:{item}")
        left = await self.held()
        if left:
            raise Refused(f"--clean revoked {len(held)} promotion(s) but {', '.join(left)} remain")
        return held
