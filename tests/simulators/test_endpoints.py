"""Endpoint behaviour: version rule, idempotency, faults, async acks, channels' extras."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from harness.domain.basket import Basket, BasketLine
from harness.domain.promotion import Promotion
from simulators.ecommerce import EcommerceSite
from simulators.endpoint import EndpointModel, Plan, Request, TruthChange
from simulators.erp import Erp, Product
from simulators.loyalty import LoyaltyService
from simulators.marketplace import Marketplace
from simulators.pos import PosStore, PosVersion
from simulators.profiles import Latency, Outage, Profile, RateLimit

FAST = Latency.fixed(0.1)


def promo(version: int = 1, pid: str = "P1", **over: object) -> Promotion:
    data: dict = {
        "id": pid,
        "version": version,
        "name": "Flash 10%",
        "validity": {
            "start": "2026-11-27T09:00:00",
            "end": "2026-11-27T12:00:00",
            "timezone": "America/New_York",
        },
        "scope": {"channels": ["pos", "ecommerce", "loyalty", "marketplace"]},
        "conditions": {"skus": ["A"]},
        "benefit": {"type": "percent_off", "percent": "10"},
    }
    data.update(over)
    return Promotion.model_validate(data)


def apply(version: int = 1, key: str | None = None, pid: str = "P1", **over: object) -> Request:
    return Request(
        f"d-{pid}-{version}",
        key or f"k-{pid}-{version}",
        "apply",
        pid,
        version,
        1,
        promo(version, pid, **over),
    )


def revoke(version: int, key: str | None = None, pid: str = "P1") -> Request:
    return Request(f"r-{pid}-{version}", key or f"rk-{pid}-{version}", "revoke", pid, version)


def model(**profile: object) -> EndpointModel:
    return EndpointModel("S0001", "pos", Profile(latency=FAST, **profile), region="east")


def run(m: EndpointModel, req: Request, now: float = 0.0) -> tuple[Plan, list[TruthChange]]:
    plan = m.plan(req, now, random.Random(0))
    return plan, m.complete(req, plan, now + plan.service_time)


# --- the version rule and idempotency ------------------------------------------------------


def test_apply_then_idempotent_repeat() -> None:
    m = model()
    plan, changes = run(m, apply(1))
    assert (plan.outcome, plan.status, plan.service_time) == ("ok", 200, 0.1)
    assert changes == [TruthChange("applied", "P1", 1, "S0001")]
    assert m.active() == {"P1": 1}
    assert [p.key for p in m.promotions()] == [("P1", 1)]
    plan, changes = run(m, apply(1), now=5.0)
    assert (plan.outcome, plan.detail, changes) == ("ok", "duplicate", [])
    assert m.copies("P1") == 1


def test_non_idempotent_applies_twice() -> None:
    m = model(idempotent=False)
    run(m, apply(1))
    plan, changes = run(m, apply(1), now=5.0)
    assert plan.outcome == "ok"
    assert changes == [TruthChange("applied", "P1", 1, "S0001", "double")]
    assert m.copies("P1") == 2


def test_in_flight_duplicate_applies_once() -> None:
    # The retry arrives while the first attempt is still in service.
    m = model()
    first, second = apply(1), Request("d-P1-1", "k-P1-1", "apply", "P1", 1, 2, promo(1))
    p1 = m.plan(first, 0.0, random.Random(0))
    p2 = m.plan(second, 0.05, random.Random(0))
    assert len(m.complete(first, p1, 0.1)) == 1
    assert m.complete(second, p2, 0.15) == []


def test_revoke_then_late_apply_is_ignored() -> None:
    m = model()
    run(m, apply(1))
    _, changes = run(m, revoke(2), now=1.0)
    assert changes == [TruthChange("removed", "P1", 1, "S0001")]  # the version taken off
    assert m.active() == {}
    assert m.promotions() == ()
    # The race: a retry of the publish lands after the rollback.
    plan, changes = run(m, apply(1, key="another-key"), now=2.0)
    assert (plan.outcome, changes) == ("ok", [])
    assert m.active() == {}
    # A genuinely newer version goes through.
    _, changes = run(m, apply(3), now=3.0)
    assert changes == [TruthChange("applied", "P1", 3, "S0001")]


def test_tombstone_holds_on_non_idempotent_endpoints() -> None:
    m = model(idempotent=False)
    run(m, apply(1))
    run(m, revoke(1), now=1.0)
    assert run(m, apply(1), now=2.0)[1] == []


def test_accept_stale_resurrects() -> None:
    m = model(accept_stale=True)
    run(m, apply(1))
    run(m, revoke(2), now=1.0)
    _, changes = run(m, apply(1, key="late"), now=2.0)
    assert changes == [TruthChange("applied", "P1", 1, "S0001", "stale")]
    assert m.active() == {"P1": 1}


def test_no_downgrade_unless_faulty() -> None:
    m = model()
    run(m, apply(2))
    assert run(m, apply(1), now=1.0)[1] == []
    assert m.active() == {"P1": 2}
    faulty = model(accept_stale=True)
    run(faulty, apply(2))
    assert run(faulty, apply(1), now=1.0)[1][0].version == 1
    assert faulty.active() == {"P1": 1}


def test_stale_revoke_does_not_take_newer_version_down() -> None:
    m = model()
    run(m, apply(2))
    assert run(m, revoke(1), now=1.0)[1] == []
    assert m.active() == {"P1": 2}


def test_keep_after_revoke_acks_but_keeps() -> None:
    m = model(keep_after_revoke=True)
    run(m, apply(1))
    plan, changes = run(m, revoke(2), now=1.0)
    assert (plan.outcome, plan.status, changes) == ("ok", 200, [])
    assert m.active() == {"P1": 1}


# --- faults --------------------------------------------------------------------------------


def test_outage_refuse_is_503_unavailable() -> None:
    m = model(outages=(Outage(10.0, 20.0, "refuse"),))
    plan, changes = run(m, apply(1), now=12.0)
    assert (plan.outcome, plan.status, plan.needs_capacity, changes) == (
        "unavailable",
        503,
        False,
        [],
    )
    assert run(m, apply(1), now=20.0)[1]  # back at the window's end


def test_outage_hang_times_out() -> None:
    m = model(outages=(Outage(0.0, 60.0, "hang"),))
    plan, changes = run(m, apply(1), now=1.0)
    assert plan.hang and plan.outcome == "timeout" and plan.status == 0
    assert changes == []


def test_injected_error_hang_and_lost_reply() -> None:
    plan, changes = run(model(error_rate=1.0), apply(1))
    assert (plan.outcome, plan.status, changes) == ("error", 500, [])
    plan, changes = run(model(timeout_rate=1.0), apply(1))
    assert plan.hang and plan.outcome == "timeout" and changes == []
    m = model(lost_ack_rate=1.0)
    plan, changes = run(m, apply(1))
    assert plan.reply_lost and plan.outcome == "timeout"
    assert changes == [TruthChange("applied", "P1", 1, "S0001")]  # applied all the same
    # The client retries with the same key: the idempotent endpoint changes nothing.
    assert run(m, apply(1), now=30.0)[1] == []


def test_rate_limit_answers_429_with_retry_after() -> None:
    m = model(rate_limit=RateLimit(rate=1.0, burst=1.0))
    assert run(m, apply(1))[0].outcome == "ok"
    plan, changes = run(m, apply(2), now=0.25)
    assert (plan.outcome, plan.status, plan.retry_after, changes) == ("throttled", 429, 0.75, [])
    assert run(m, apply(2), now=1.0)[0].outcome == "ok"


def test_full_queue_is_503() -> None:
    m = model(max_in_queue=2)
    plan = m.plan(apply(1), 0.0, random.Random(0), queued=2)
    assert (plan.outcome, plan.status, plan.detail) == ("unavailable", 503, "queue full")
    assert m.plan(apply(1), 0.0, random.Random(0), queued=1).outcome == "ok"


def test_apply_without_payload_is_rejected() -> None:
    m = model()
    plan, changes = run(m, Request("d", "k", "apply", "P1", 1))
    assert (plan.outcome, plan.status, changes) == ("rejected", 422, [])


def test_same_seed_same_plans() -> None:
    prof = {"error_rate": 0.2, "timeout_rate": 0.1, "lost_ack_rate": 0.1}

    def plans(seed: int) -> list[Plan]:
        m = EndpointModel("S1", "pos", Profile(latency=Latency.lognormal(0.1, 0.5), **prof))
        rng = random.Random(seed)
        return [m.plan(apply(v), float(v), rng) for v in range(1, 50)]

    assert plans(4) == plans(4)
    assert plans(4) != plans(5)


def test_request_from_command() -> None:
    from harness.orchestrator.commands import SendDelivery

    cmd = SendDelivery("d1", "S0001", "pos", "apply", "P1", 1, 2, "k1", 5.0, promo(1))
    assert Request.from_command(cmd) == Request("d1", "k1", "apply", "P1", 1, 2, promo(1))


# --- asynchronous endpoints ----------------------------------------------------------------


def _web(**over: object) -> EcommerceSite:
    base: dict = {"latency": FAST, "ack_delay": Latency.fixed(5.0)}
    base.update(over)
    return EcommerceSite(link=Profile("web-test", **base))


def test_ecommerce_accepts_then_webhook() -> None:
    web = _web()
    req = apply(1)
    plan, changes = run(web, req)
    assert (plan.outcome, plan.status, plan.ack_delay, plan.ack_lost) == (
        "accepted",
        202,
        5.0,
        False,
    )
    assert changes == [] and web.active() == {}
    assert web.pending() == [("apply", "P1", 1, 5.1)]
    assert web.settle(req, 5.1) == [TruthChange("applied", "P1", 1, "web")]
    assert web.settle(req, 5.1) == []  # settling twice changes nothing
    assert web.ack_via == "push"


def test_ecommerce_webhook_lost_still_applies() -> None:
    web = _web(ack_loss_rate=1.0)
    req = apply(1)
    plan, _ = run(web, req)
    assert plan.ack_lost and plan.outcome == "accepted"
    assert web.settle(req, 5.1)[0].kind == "applied"  # a ghost: applied, never acked


def test_ecommerce_webhook_late() -> None:
    web = _web(ack_late_rate=1.0, ack_late_delay=Latency.fixed(600.0))
    plan, _ = run(web, apply(1))
    assert plan.ack_delay == 605.0 and not plan.ack_lost


def test_ecommerce_duplicate_gets_stored_202_and_no_second_webhook() -> None:
    web = _web()
    req = apply(1)
    run(web, req)
    plan, changes = run(web, req, now=1.0)
    assert (plan.outcome, plan.status, plan.ack_delay, changes) == ("accepted", 202, None, [])


def test_marketplace_activation_after_delay_learned_by_polling() -> None:
    mkt = Marketplace(link=Profile("mkt-test", latency=FAST, ack_delay=Latency.fixed(300.0)))
    assert mkt.ack_via == "poll"
    assert mkt.poll("P1").state == "unknown"
    req = apply(1)
    plan, changes = run(mkt, req, now=10.0)
    assert (plan.outcome, plan.ack_delay, changes) == ("accepted", 300.0, [])
    assert mkt.poll("P1").state == "pending"
    assert mkt.activate_due(309.0) == []
    assert mkt.activate_due(310.1) == [TruthChange("applied", "P1", 1, "mkt-amazon")]
    assert mkt.poll("P1").state == "active" and mkt.poll("P1").version == 1
    rv = revoke(2)
    run(mkt, rv, now=400.0)
    status = mkt.poll("P1")
    assert (status.state, status.pending_op, status.pending_version) == ("active", "revoke", 2)
    assert mkt.settle(rv, 700.1) == [TruthChange("removed", "P1", 1, "mkt-amazon")]
    assert mkt.poll("P1").state == "inactive"


def test_marketplace_needs_activation_delay() -> None:
    with pytest.raises(ValueError):
        Marketplace(link=Profile("sync", latency=FAST))


def test_deferred_revoke_beats_earlier_pending_apply() -> None:
    # Both accepted; the revoke settles first (shorter wait): the apply must stay off.
    web = _web()
    a, r = apply(1), revoke(1)
    pa = web.plan(a, 0.0, random.Random(0))
    web.complete(a, pa, 0.1)
    pr = web.plan(r, 0.0, random.Random(0))
    web.complete(r, pr, 0.1)
    assert web.settle(r, 1.0) == []
    assert web.settle(a, 5.1) == []
    assert web.active() == {}


# --- POS -----------------------------------------------------------------------------------

BATCH = PosVersion("v5-batch", realtime=False, poll_interval=900.0)


def test_batch_pos_applies_at_next_pickup() -> None:
    store = PosStore(
        "S0002",
        region="east",
        timezone="America/New_York",
        version=BATCH,
        link=Profile("t", latency=FAST),
        poll_offset=100.0,
    )
    assert store.mode == "batch" and store.ack_via == "push"
    req = apply(1)
    plan, changes = run(store, req, now=50.0)
    assert (plan.outcome, plan.status, changes) == ("accepted", 202, [])
    assert plan.ack_delay == pytest.approx(100.0 - 50.1)
    plan, _ = run(store, apply(2), now=950.0)
    assert plan.ack_delay == pytest.approx(1000.0 - 950.1)  # pick-ups at 100, 1000, 1900...
    assert store.next_pickup(100.0) == 100.0


def test_batch_pos_misses_pickups_during_an_outage() -> None:
    link = Profile("t", latency=FAST, outages=(Outage(90.0, 95.0), Outage(1000.0, 1200.0)))
    store = PosStore(
        "S0003",
        region="east",
        timezone="America/New_York",
        version=BATCH,
        link=link,
        poll_offset=100.0,
    )
    plan, _ = run(store, apply(1), now=500.0)
    assert plan.ack_delay == pytest.approx(1900.0 - 500.1)  # 1000 falls in the outage


def _basket() -> Basket:
    return Basket(
        tax_mode="net",
        lines=[
            BasketLine(sku="A", quantity=2, unit_price=Decimal("10.00")),
            BasketLine(sku="B", quantity=1, unit_price=Decimal("5.00")),
        ],
        loyalty_member=True,
    )


def _utc(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 27, hour, minute, tzinfo=dt.UTC)


def test_pos_price_follows_ground_truth_and_store_zone() -> None:
    from harness.domain.pricing import StoreContext, price_basket

    la = PosStore(
        "S0004", region="pacific", timezone="America/Los_Angeles", link=Profile("t", latency=FAST)
    )
    basket = _basket()
    assert la.price(basket, _utc(18)).total == Decimal("25.00")
    run(la, apply(1))
    # 09:00-12:00 store-local in Los Angeles is 17:00-20:00 UTC.
    for at in (_utc(16, 59), _utc(17), _utc(19, 59), _utc(20), _utc(14)):
        expected = price_basket(
            basket,
            [promo(1)],
            channel="pos",
            at=at,
            store=StoreContext("S0004", "pacific", "America/Los_Angeles"),
        )
        assert la.price(basket, at) == expected, at
    assert la.price(basket, _utc(17, 30)).total == Decimal("23.00")
    hits = la._prices.hits
    la.price(basket, _utc(18, 30))
    la.price(_basket(), _utc(19))  # an equal basket, another object: same content key
    assert la._prices.hits == hits + 2
    run(la, revoke(2), now=10.0)
    assert la.price(basket, _utc(17, 30)).total == Decimal("25.00")


def test_ecommerce_price_reads_the_promotions_zone() -> None:
    web = _web()
    req = apply(1)
    run(web, req)
    web.settle(req, 5.1)
    # No store: the window is read in America/New_York (14:00-17:00 UTC).
    assert web.price(_basket(), _utc(14, 30)).total == Decimal("23.00")
    assert web.price(_basket(), _utc(17, 30)).total == Decimal("25.00")


def test_loyalty_points_with_multiplier() -> None:
    loyalty = LoyaltyService(link=Profile("t", latency=FAST))
    basket = _basket()
    base = loyalty.points(basket, _utc(15))
    x3 = apply(
        1, benefit={"type": "points_multiplier", "multiplier": "3"}, scope={"channels": ["loyalty"]}
    )
    run(loyalty, x3)
    assert loyalty.rules() == {"P1": Decimal("3")}
    assert loyalty.points(basket, _utc(15)) > base
    assert loyalty.points(basket, _utc(20)) == base  # outside the window


# --- ERP -----------------------------------------------------------------------------------


def _erp(**kw: object) -> Erp:
    products = [
        Product("A", "Alpha", "grocery", Decimal("10.00"), Decimal("0"), "acme"),
        Product("B", "Beta", "grocery", Decimal("5.00"), Decimal("0"), "acme"),
        Product("C", "Gamma", "toys", Decimal("7.00"), Decimal("0.07"), "toyco"),
    ]
    base: dict = {
        "regions": ["east", "west"],
        "stores": ["S0001"],
        "price_book": {"A": Decimal("10.00"), "C": Decimal("7.00")},
        "inventory_ready": {"C": False},
        "vendor_budgets": {"acme": Decimal("1000")},
        "link": Profile("erp-test", latency=FAST),
    }
    base.update(kw)
    return Erp(products, **base)


def test_erp_validate() -> None:
    erp = _erp()
    assert erp.validate(promo(1)) == (True, ())
    ok, reasons = erp.validate(
        promo(
            1,
            conditions={"skus": ["A", "B", "C", "Z"], "categories": ["garden"]},
            scope={"channels": ["pos"], "regions": ["north"], "stores": ["S9999"]},
            funding={
                "source": "shared",
                "vendor": "acme",
                "vendor_share_percent": "50",
                "budget_cap": "5000.00",
            },
        )
    )
    assert not ok
    assert set(reasons) == {
        "no price-book entry for sku B",
        "inventory not ready for sku C",
        "unknown sku Z",
        "unknown category garden",
        "region north not eligible (unknown)",
        "unknown store S9999",
        "vendor acme budget 1000 is short of its share 2500.00",
    }
    ok, reasons = erp.validate(promo(1, funding={"source": "vendor", "vendor": "nobody"}))
    assert reasons == ("unknown funding vendor nobody",)


def test_erp_budgets() -> None:
    erp = _erp()
    assert erp.remaining("P1") is None  # uncapped until allocated or activated
    erp.allocate("P1", Decimal("100"))
    assert erp.consume("P1", "acme", Decimal("60"))
    assert not erp.consume("P1", "acme", Decimal("60"))  # all or nothing
    assert erp.remaining("P1") == Decimal("40")
    assert erp.vendor_remaining("acme") == Decimal("940")
    assert erp.consumed("P1") == Decimal("60")
    assert erp.consume("P1", None, Decimal("40"))
    assert erp.validate(promo(1))[1] == ("budget of P1 exhausted",)
    assert not erp.consume("P2", "unknown-vendor", Decimal("1"))


def test_erp_activation_quota_maintenance_and_rejection() -> None:
    erp = _erp(quota=2.0, maintenance=Outage(100.0, 200.0))
    capped = apply(1, funding={"budget_cap": "750.00"})
    _, changes = run(erp, capped)
    assert changes[0].kind == "applied"
    assert erp.remaining("P1") == Decimal("750.00")
    assert run(erp, apply(2), now=0.0)[0].outcome == "ok"
    throttled = run(erp, apply(3), now=0.0)[0]
    assert (throttled.outcome, throttled.retry_after) == ("throttled", 0.5)
    assert run(erp, apply(3), now=150.0)[0].status == 503
    bad = run(erp, apply(4, conditions={"skus": ["Z"]}), now=300.0)
    assert (bad[0].outcome, bad[0].status, bad[0].detail, bad[1]) == (
        "rejected",
        422,
        "unknown sku Z",
        [],
    )
    assert erp.gate(150.0) is not None and erp.gate(400.0) is None


def test_records_for_the_event_log() -> None:
    from harness.domain.eventlog import KINDS, Record

    m = EndpointModel(
        "S0009",
        "pos",
        Profile(latency=Latency.fixed(0.5), capacity=2, outages=(Outage(5.0, 8.0, "hang"),)),
        region="east",
    )
    inv = m.inventory_record()
    assert (inv.kind, inv.value, inv.detail, inv.region) == ("endpoint", 4.0, "realtime", "east")
    _, changes = run(m, apply(1))
    rec = m.truth_record(changes[0], 0.5)
    assert rec == Record(0.5, "applied", "P1", 1, "S0009", "pos", "east")
    assert m.outage_records() == [
        Record(
            5.0, "outage", endpoint="S0009", channel="pos", region="east", value=3.0, detail="hang"
        )
    ]
    assert {inv.kind, rec.kind, "outage"} <= KINDS


def test_loyalty_reads_store_local_windows_with_a_store() -> None:
    from harness.domain.pricing import StoreContext

    loyalty = LoyaltyService(link=Profile("t", latency=FAST))
    x3 = apply(
        1, benefit={"type": "points_multiplier", "multiplier": "3"}, scope={"channels": ["loyalty"]}
    )
    run(loyalty, x3)
    hawaii = StoreContext("S0100", "hawaii", "Pacific/Honolulu")
    basket = _basket()
    # 15:00 UTC: in the New York window (10:00), before the Honolulu one (05:00).
    assert loyalty.points(basket, _utc(15)) > loyalty.points(basket, _utc(15), store=hawaii)
    # 20:00 UTC: after New York's window, inside Honolulu's (10:00).
    assert loyalty.points(basket, _utc(20), store=hawaii) > loyalty.points(basket, _utc(20))
