"""Random operator sequences, kill -9 at random points, real process restarts.

For each seed, a random sequence of operator commands over two promotions (create,
submit, validate, approve, publish and roll back to random channel sets, pause, resume,
end) is played twice against `serve` processes: once undisturbed, once with the
orchestrator killed with SIGKILL right after up to three random commands — while what
they set off is still in flight — and restarted on the same state file. Between commands
the driver waits for quiescence (every delivery settled or held by a pause), a condition,
not a duration.

The killed run must answer every command as the undisturbed one did, end in the same
promotion states, and leave the same ground truth at the endpoints (the simulators' own
record of every apply and removal); no endpoint may apply a version twice.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.serve_procs import Estate, promotion_body, wait_for

# Each seed's test starts its own estates: they spread over the xdist workers one by one.
SPREAD_OVER_WORKERS = True
SCENARIO = Path(__file__).with_name("durable.yaml")
SPEED = 20.0
CHANNELS = {"R1": ["pos", "loyalty"], "R2": ["pos"]}
SETTLED = {"acked", "revoked", "dead_lettered", "superseded", "held"}

Op = tuple[str, str, str, Any]  # (path, who, what to wait for after it, body)


def subset(rng: random.Random, channels: list[str]) -> dict[str, Any]:
    chosen = [c for c in channels if rng.random() < 0.5]
    return {"channels": chosen} if chosen else {}


def operations(seed: int) -> list[Op]:
    """A random, seeded sequence; illegal commands (409) are part of it."""
    rng = random.Random(seed)
    ops: list[Op] = []
    for promo, channels in CHANNELS.items():
        ops += [
            ("/promotions", "merch", "", promotion_body(promo, channels)),
            (f"/promotions/{promo}/submit", "merch", "", None),
            (f"/promotions/{promo}/validate", "merch", "validated", None),
            (f"/promotions/{promo}/approve", "approver", "", None),
        ]
    for _ in range(rng.randint(7, 10)):
        promo = rng.choice(list(CHANNELS))
        channels = CHANNELS[promo]
        kind = rng.choice(
            ["publish", "publish", "publish", "rollback", "rollback", "pause", "resume"]
        )
        if kind in ("pause", "resume"):
            body: Any = {"channel": rng.choice(channels)}
        elif kind == "rollback":
            body = {**subset(rng, channels), "deadline": 600}
        elif kind == "publish":
            body = subset(rng, channels)
        else:
            body = None
        ops.append((f"/promotions/{promo}/{kind}", "operator", "", body))
    if rng.random() < 0.5:
        ops.append((f"/promotions/{rng.choice(list(CHANNELS))}/end", "operator", "", None))
    # Whatever was paused goes out in the end, so the run settles with nothing held.
    ops += [
        (f"/promotions/{p}/resume", "operator", "", {"channel": c})
        for p, chans in CHANNELS.items()
        for c in chans
    ]
    return ops


def quiescent(estate: Estate) -> bool:
    for promo in CHANNELS:
        r = estate.call("GET", f"/promotions/{promo}?endpoints=false", "viewer")
        if r.status_code == 404:
            continue
        body = r.json()
        if set(body["propagation"]["states"]) - SETTLED:
            return False
    return True


def play(estate: Estate, ops: list[Op], kill_after: set[int]) -> list[int]:
    statuses = []
    for i, (path, who, then, body) in enumerate(ops):
        statuses.append(estate.command(path, who, body))
        if i in kill_after:
            estate.kill_api()  # mid-flight: what the command set off has not settled
            estate.start_api()
        promo = path.split("/")[2] if path.count("/") > 1 else body["id"]
        if then:
            wait_for(
                lambda p=promo, s=then: estate.promotion(p)["state"] == s,  # type: ignore[misc]
                f"{promo} {then}",
            )
        wait_for(lambda: quiescent(estate), f"quiescence after {path}")
    return statuses


def outcome(estate: Estate) -> dict[str, Any]:
    truth = estate.truth()
    return {
        "states": {p: estate.promotion(p)["state"] for p in CHANNELS},
        "changes": Counter(
            (r["kind"], r["endpoint"], r["promo"], r["version"])
            for r in truth
            if r["kind"] in ("applied", "removed")
        ),
        "active": estate.active(),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kills_leave_the_same_ground_truth(tmp_path: Path, seed: int) -> None:
    ops = operations(seed)
    rng = random.Random(f"kills:{seed}")
    kill_after = set(rng.sample(range(2, len(ops)), rng.randint(1, 3)))

    with Estate(tmp_path, SCENARIO, SPEED, name="calm") as calm:
        calm_statuses = play(calm, ops, set())
        expected = outcome(calm)
    with Estate(tmp_path, SCENARIO, SPEED, name="killed") as killed:
        statuses = play(killed, ops, kill_after)
        got = outcome(killed)

    assert statuses == calm_statuses
    assert got == expected
    applies = Counter(
        (ep, promo, version)
        for kind, ep, promo, version in got["changes"].elements()
        if kind == "applied"
    )
    assert applies and set(applies.values()) == {1}  # no version applied twice anywhere
