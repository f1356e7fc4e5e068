"""API keys, roles, channel scoping and the per-key rate limit, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.service.auth import DEMO_KEYS, KeyRing, Principal, RateLimiter
from tests.service.live_stack import KEYS, Stack, promotion_body, running_stack

# --- the key ring and the token bucket, without a server ---------------------------------------


def test_demo_ring_knows_every_role_and_channel() -> None:
    ring = KeyRing.demo()
    roles = {p.role for p in ring.principals()}
    assert roles == {"merchandiser", "approver", "operator", "finance", "viewer", "channel"}
    assert ring.lookup("channel-pos-demo-key") == Principal("demo-pos", "channel", "pos")
    assert ring.lookup("nope-nope-nope") is None
    assert ring.lookup(None) is None
    assert ring.lookup("") is None
    assert len(ring) == len(DEMO_KEYS)


def test_principal_rules() -> None:
    with pytest.raises(ValueError, match="role"):
        Principal("x", "admin")
    with pytest.raises(ValueError, match="channel"):
        Principal("x", "channel")  # a channel key must say which channel
    with pytest.raises(ValueError, match="channel"):
        Principal("x", "operator", "pos")
    with pytest.raises(ValueError, match="channel"):
        Principal("x", "channel", "fax")


def test_ring_from_file_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps(
            {
                "a-long-secret-1": {"name": "ops", "role": "operator"},
                "a-long-secret-2": {"name": "web", "role": "channel", "channel": "ecommerce"},
            }
        )
    )
    ring = KeyRing.from_file(path)
    assert ring.lookup("a-long-secret-2") == Principal("web", "channel", "ecommerce")
    with pytest.raises(ValueError, match="already"):
        ring.add("a-long-secret-1", Principal("again", "viewer"))
    with pytest.raises(ValueError, match="8 characters"):
        ring.add("short", Principal("s", "viewer"))


def test_token_bucket_bursts_then_refills_at_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.check("k") for _ in range(3)] == [None, None, None]
    assert limiter.check("k") == 1  # 0.5 s to the next token: rounded up to whole seconds
    assert limiter.check("other") is None  # buckets are per key
    now[0] += 0.5
    assert limiter.check("k") is None
    assert limiter.check("k") == 1
    slow = RateLimiter(rate=0.1, burst=1, clock=lambda: now[0])
    assert slow.check("k") is None
    assert slow.check("k") == 10


# --- over HTTP ---------------------------------------------------------------------------------


def test_missing_and_unknown_keys_are_401(stack: Stack) -> None:
    with stack.client() as anonymous:
        r = anonymous.get("/v1/promotions")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "ApiKey"
        assert "X-API-Key" in r.json()["detail"]
        # A valid body does not help; the key is checked before the body is validated.
        r = anonymous.post("/v1/promotions", json=promotion_body("AUTH-401"))
        assert r.status_code == 401
        # (Only JSON that does not even parse is refused earlier, by FastAPI, with 422.)
        r = anonymous.post("/v1/promotions", content=b"{not json", headers=_json())
        assert r.status_code == 422
    with stack.client("not-a-key-at-all") as stranger:
        r = stranger.post("/v1/promotions", json=promotion_body("AUTH-401"))
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "ApiKey"
    with stack.client() as anonymous:
        assert anonymous.get("/healthz").status_code == 200  # the one open route


def test_roles_are_enforced_with_a_message_naming_the_role(stack: Stack) -> None:
    with stack.client("merch") as merch:
        assert merch.post("/v1/promotions", json=promotion_body("AUTH-ROLE")).status_code == 201
        r = merch.post("/v1/promotions/AUTH-ROLE/publish", json={})
        assert r.status_code == 403
        assert "'operator'" in r.json()["detail"]
        assert "'merchandiser'" in r.json()["detail"]
    with stack.client("pos") as channel:
        r = channel.post("/v1/promotions/AUTH-ROLE/approve")
        assert r.status_code == 403
        assert "'approver'" in r.json()["detail"]
    with stack.client("approver") as approver:
        r = approver.post("/v1/promotions/AUTH-ROLE/settle")
        assert r.status_code == 403
        assert "'finance'" in r.json()["detail"]
        r = approver.post("/v1/promotions", json=promotion_body("AUTH-ROLE-2"))
        assert r.status_code == 403
    with stack.client("viewer") as viewer:
        r = viewer.get("/v1/promotions/AUTH-ROLE")
        assert r.status_code == 200
        assert r.json()["state"] == "draft"  # the refused publish changed nothing
        assert viewer.post("/v1/promotions/AUTH-ROLE/submit").status_code == 403
        assert viewer.get("/v1/promotions/AUTH-ROLE-2").status_code == 404


def test_a_channel_key_acks_its_own_channel_only(stack: Stack) -> None:
    with stack.client("merch") as merch:
        assert merch.post("/v1/promotions", json=promotion_body("AUTH-ACK")).status_code == 201
    ack = {"endpoint": "web", "promo": "AUTH-ACK", "version": 1, "op": "apply"}
    with stack.client("pos") as pos:
        r = pos.post("/v1/callbacks/ack", json=ack)
        assert r.status_code == 403
        assert "ecommerce" in r.json()["detail"]
        r = pos.post("/v1/callbacks/ack", json={**ack, "endpoint": "no-such-endpoint"})
        assert r.status_code == 404
    with stack.client("operator") as operator:
        assert operator.post("/v1/callbacks/ack", json=ack).status_code == 403
    before = len(stack.runtime.records())
    with stack.client("ecommerce") as web:
        r = web.post("/v1/callbacks/ack", json=ack)
        # Past the key checks, refused by the core as stale: nothing was ever sent to web.
        assert r.status_code == 409
        assert (r.json()["reason"], r.json()["delivery_state"]) == ("untargeted", "untargeted")
        r = web.post("/v1/callbacks/ack", json={**ack, "promo": "NO-SUCH-PROMO"})
        assert r.status_code == 404
    kinds = [r.kind for r in stack.runtime.records(before)]
    assert kinds.count("stale") == 1  # only the in-scope ack reached the core


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    with running_stack(tmp_path / "state.db", rate=0.5, burst=3) as tiny:
        with tiny.client("viewer") as viewer:
            codes = [viewer.get("/v1/promotions").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            r = viewer.get("/v1/dead-letters")
            assert r.status_code == 429
            assert int(r.headers["Retry-After"]) >= 1
            assert "rate limit" in r.json()["detail"]
        with tiny.client("operator") as other:  # another key has its own bucket
            assert other.get("/v1/promotions").status_code == 200
        with tiny.client("not-a-key-at-all") as stranger:  # 401 before any bucket
            assert stranger.get("/v1/promotions").status_code == 401


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_keys_table_matches_the_brief() -> None:
    for name in (
        "merch-demo-key",
        "approver-demo-key",
        "operator-demo-key",
        "finance-demo-key",
        "viewer-demo-key",
        "channel-pos-demo-key",
        "channel-ecommerce-demo-key",
        "channel-loyalty-demo-key",
        "channel-marketplace-demo-key",
    ):
        assert name in DEMO_KEYS
    assert set(KEYS.values()) <= set(DEMO_KEYS)
