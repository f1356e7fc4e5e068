"""kill -9 while every kind of pending thing is pending; restart; every one resumes.

One orchestrator process (`serve --component api`) holds at once: a batch window (POS),
an ack wait (the web shop's webhook comes after the ack timeout), a marketplace offer
awaiting activation (learned by polling), a backoff timer and an open circuit breaker
holding a delivery (loyalty, taken offline), and a scheduled publish. It is killed with
SIGKILL and restarted on the same state file. What proves each resumed is read from the
journal after the restart — the timer that fired, the poll that acknowledged — and from
the simulators' ground truth, not from how long anything took.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.runtime.serve_procs import Estate, approved, wait_for

SCENARIO = Path(__file__).with_name("restart.yaml")
SPEED = 20.0
WINDOW = 400.0  # the POS batch interval (restart.yaml)


def test_every_pending_kind_resumes_after_sigkill(tmp_path: Path) -> None:
    with Estate(tmp_path, SCENARIO, SPEED) as estate:
        estate.fault("endpoint_offline", ["loyalty"], on=True)
        approved(estate, "K1", ["pos", "ecommerce", "marketplace", "loyalty"])
        approved(estate, "K2", ["loyalty"])
        approved(estate, "K3", ["loyalty"])
        # Publish early in a batch interval, so the POS window is >= 250 s (12 s of wall
        # time) away: the kill lands while it is pending, checked from the journal below.
        wait_for(lambda: estate.now() % WINDOW < WINDOW - 250, "the start of a batch interval")
        estate.command("/promotions/K1/publish", "operator", {})
        at = estate.now() + 250.0
        estate.command("/promotions/K2/schedule", "operator", {"publish_at": at})

        def all_pending() -> bool:
            channels = estate.promotion("K1")["propagation"]["by_channel"]
            return (
                channels
                == {
                    "erp": {"acked": 1},
                    "pos": {"held": 3},
                    "ecommerce": {"awaiting_ack": 1},
                    "marketplace": {"awaiting_ack": 1},
                    "loyalty": {"retry_wait": 1},
                }
                and estate.promotion("K2")["state"] == "scheduled"
            )

        wait_for(all_pending, "every kind pending")
        # A delivery to loyalty while its breaker is open is held on the breaker's timer.
        estate.command("/promotions/K3/publish", "operator", {})
        wait_for(
            lambda: (
                estate.promotion("K3")["propagation"]["by_channel"].get("loyalty") == {"held": 1}
            ),
            "K3 held by the open breaker",
        )
        before = estate.kill_api()

        # What was pending at the kill, from the journal as it was left.
        fired = [e["timer_id"] for _, _, e in estate.journal() if e["type"] == "TimerFired"]
        assert not [t for t in fired if t.split(":")[0] in ("window", "ack", "schedule")]
        assert not [t for t in fired if t.startswith(("retry:", "breaker:"))]
        assert [r["outcome"] for r in estate.records("breaker")] == ["open"]
        accepted = {
            e["endpoint"]: t
            for _, t, e in estate.journal()
            if e["type"] == "DeliveryResult" and e["outcome"] == "accepted"
        }
        assert set(accepted) == {"web", "mkt-amazon"}

        estate.fault("endpoint_offline", ["loyalty"], on=False)
        estate.start_api()

        def resumed() -> bool:
            k1 = estate.promotion("K1")["propagation"]["by_channel"]
            return (
                all(k1[ch] == {"acked": n} for ch, n in [("pos", 3), ("loyalty", 1), ("erp", 1)])
                and k1["marketplace"] == {"acked": 1}
                and estate.promotion("K2")["state"] == "active"
                and estate.promotion("K3")["state"] == "active"
                and any(
                    e["type"] == "TimerFired" and e["timer_id"].startswith("ack:")
                    for seq, _, e in estate.journal()
                    if seq > before
                )
            )

        wait_for(resumed, "everything pending to resume")
        after = [(t, e) for seq, t, e in estate.journal() if seq > before]
        truth = estate.truth()

    timers = Counter(e["timer_id"].split(":")[0] for _, e in after if e["type"] == "TimerFired")
    # Each kind fired after the restart, from timers the journal re-armed.
    assert {"window", "ack", "retry", "breaker", "schedule"} <= set(timers)
    acks = [e["timer_id"] for _, e in after if e.get("timer_id", "").startswith("ack:")]
    assert acks[0] == "ack:K1:1:web:apply:1"  # the web shop's wait, armed before the kill
    # The marketplace was polled again: its ack came by poll, long before the 1,800 s ack
    # timeout that was its only way back before polls resumed.
    polls = [t for t, e in after if e["type"] == "Ack" and e["detail"] == "poll"]
    assert len(polls) == 1 and polls[0] - accepted["mkt-amazon"] < 1800 / 2
    # Each endpoint applied each promotion once, and every target got it.
    applied = Counter((r["endpoint"], r["promo"]) for r in truth if r["kind"] == "applied")
    assert set(applied.values()) == {1}
    stores = {ep for ep, promo in applied if promo == "K1" and ep.startswith("S")}
    assert len(stores) == 3
    assert {ep for ep, promo in applied if promo == "K1"} >= {"erp", "mkt-amazon", "loyalty", "web"}
    assert {ep for ep, promo in applied if promo == "K2"} == {"erp", "loyalty"}
    assert {ep for ep, promo in applied if promo == "K3"} == {"erp", "loyalty"}
