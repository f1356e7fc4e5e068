"""Estate shards (``--estate-shards N``, ``harness/shards.py``, ``harness/estate_front.py``).

A live run with the estate in two processes has the ground truth of the in-process one;
``estate --estate-shards 2`` lists every endpoint once with a URL on its own shard that
answers, switches a fault at the right shard, and its shards die with it (SIGKILL
included); the merged truth is ordered by t with a deterministic tie-break; a bad count
or a shard that cannot start is one line, exit 2.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_driver import assert_one_line_error, run_cli
from hypothesis import given
from hypothesis import strategies as st

import harness.live_calibrate
import harness.shards
from harness.domain.eventlog import Record
from harness.estate_front import next_cursor, page_of, parse_cursor
from harness.live_run import run_live
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from harness.shards import assign, merge_truth

TINY = Path(__file__).resolve().parents[1] / "runtime" / "tiny.yaml"
START_TIMEOUT_S = 120.0  # hang guards only: two shards start slowly on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivery_body(world: object, promo: str = "P1", version: int = 1) -> dict[str, object]:
    promotion = next(p for p in world.scenario.promotions if p.id == promo)  # type: ignore[attr-defined]
    return {
        "delivery_id": f"d-{version}",
        "idempotency_key": f"k-{version}",
        "op": "apply",
        "promo": promo,
        "version": version,
        "payload": promotion.model_dump(mode="json", by_alias=True),
    }


# --- assignment and merge ------------------------------------------------------------------


def test_round_robin_spreads_the_stores_and_the_central_channels() -> None:
    world = build_world(load_scenario(TINY, ["estate.stores=10"]), None)
    ids = [m.id for m in world.delivery_models]
    owner = assign(ids, 3)
    sizes = [sum(1 for s in owner.values() if s == i) for i in range(3)]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(ids)
    central = {owner[m.id] for m in world.delivery_models if m.channel != "pos"}
    assert len(central) > 1  # ERP, web, loyalty and marketplace are not all on one shard
    assert assign(ids, 3) == owner  # stable: every shard computes the same map


records = st.builds(
    Record,
    t=st.sampled_from([0.0, 1.0, 1.5, 2.0]),
    kind=st.sampled_from(["applied", "removed", "delivery"]),
    endpoint=st.sampled_from(["erp", "S0001", "S0002", "web", ""]),
    version=st.integers(0, 1000),
)


@given(st.lists(st.lists(records, max_size=12), min_size=1, max_size=4))
def test_merged_truth_is_ordered_by_t_and_loses_nothing(parts: list[list[Record]]) -> None:
    order = ["erp", "S0001", "S0002", "web"]
    merged = merge_truth(parts, order)
    assert sorted(map(repr, merged)) == sorted(repr(r) for part in parts for r in part)
    assert [r.t for r in merged] == sorted(r.t for r in merged)
    where = {id(r): (s, i) for s, part in enumerate(parts) for i, r in enumerate(part)}
    for s, part in enumerate(parts):
        for t, endpoint in {(r.t, r.endpoint) for r in part}:
            # At equal t one endpoint's records (on its shard) keep the order recorded.
            mine = [
                where[id(r)][1]
                for r in merged
                if (r.t, r.endpoint) == (t, endpoint) and where[id(r)][0] == s
            ]
            assert mine == sorted(mine)
    # At equal t the estate's order decides between endpoints (the inventory reads as an
    # in-process estate's): an earlier endpoint never follows a later one.
    for a, b in itertools.pairwise(merged):
        if a.t == b.t and a.endpoint in order and b.endpoint in order:
            assert order.index(a.endpoint) <= order.index(b.endpoint)
    assert merge_truth(parts, order) == merged  # deterministic


@given(
    st.lists(st.lists(records, max_size=6), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 2), records), max_size=12),
    st.integers(1, 4),
)
def test_paging_the_front_reads_each_record_once_though_records_arrive_between_pages(
    logs: list[list[Record]], arrivals: list[tuple[int, Record]], limit: int
) -> None:
    """The front's /truth paging (parse_cursor, page_of, next_cursor) over shard logs that
    grow between pages, often with a t before the cursor's: each record once, none lost."""
    order = ["erp", "S0001", "S0002", "web"]
    logs = [list(log) for log in logs]
    late = [(s % len(logs), r) for s, r in arrivals]
    read: list[Record] = []
    cursor = "0"
    for _ in range(1000):  # bounded: far more pages than records
        offsets = parse_cursor(cursor, len(logs))
        page, taken = page_of(
            [log[o : o + limit] for log, o in zip(logs, offsets, strict=True)], limit, order
        )
        assert len(page) <= limit and [r.t for r in page] == sorted(r.t for r in page)
        read.extend(page)
        cursor = next_cursor(offsets, taken)
        if late:  # a record arrives at a shard, its t at or before the last page's
            s, record = late.pop(0)
            logs[s].append(record._replace(t=min([record.t, *(r.t for r in read)])))
        elif not page:
            break
    assert sorted(map(id, read)) == sorted(id(r) for log in logs for r in log)


def test_a_cursor_the_front_did_not_give_is_refused() -> None:
    assert parse_cursor("0", 3) == [0, 0, 0]
    assert parse_cursor("4.0.7", 3) == [4, 0, 7]
    for bad in ("5", "1.2", "1.2.3.4", "1.-2.3", "a.b.c", ""):
        with pytest.raises(ValueError):
            parse_cursor(bad, 3)


# --- a live run -----------------------------------------------------------------------------


def test_a_live_run_on_two_shards_has_the_in_process_ground_truth(tmp_path: Path) -> None:
    scenario = load_scenario(TINY)
    truth = {}
    for shards in (0, 2):
        result = asyncio.run(
            run_live(scenario, state=tmp_path / f"{shards}.db", speed=10, estate_shards=shards)
        )
        events = result.events  # sorted by t by run_live: the front's order is tested below
        assert result.refused == []
        changes = events[events["kind"].isin(["applied", "removed"])]
        inventory = events[events["kind"] == "endpoint"]
        truth[shards] = (
            sorted(
                zip(
                    changes["kind"],
                    changes["endpoint"],
                    changes["promo"],
                    changes["version"],
                    strict=True,
                )
            ),
            sorted(
                zip(inventory["endpoint"], inventory["channel"], inventory["detail"], strict=True)
            ),
        )
    # tiny.yaml: P1 applied at the ERP and both stores, rolled back at S0002.
    assert ("removed", "S0002", "P1", 1) in truth[0][0]
    assert len(truth[0][1]) == 6
    assert truth[2] == truth[0]


# --- the estate command ----------------------------------------------------------------------


def test_estate_on_two_shards_lists_each_endpoint_once_and_dies_with_its_parent() -> None:
    world = build_world(load_scenario(TINY), None)
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "estate", str(TINY), "--port", str(port),
         "--speed", "10", "--estate-shards", "2", "--admin-token", "sekrit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        banner = ""
        deadline = time.monotonic() + START_TIMEOUT_S
        assert child.stdout is not None
        while time.monotonic() < deadline and not banner.endswith("Ctrl-C to stop.\n"):
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"estate exited: {child.wait()} {child.stderr.read()}")  # type: ignore[union-attr]
            banner += line
        assert len(re.findall(r"shard \d +http://127\.0\.0\.1:\d+", banner)) == 2, banner
        front = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer sekrit"}
        with httpx.Client(timeout=60) as http:
            listing = http.get(f"{front}/estate/endpoints").json()["endpoints"]
            ids = [row["id"] for row in listing]
            assert ids == [m.id for m in world.delivery_models]  # each once, in order
            shards = http.get(f"{front}/estate/shards").json()["shards"]
            owner = {mid: s["url"] for s in shards for mid in s["endpoints"]}
            answered = {}
            for row in listing:  # on its own shard, not the front
                assert row["delivery_url"] == f"{owner[row['id']]}/endpoints/{row['id']}/deliveries"
                resp = http.post(row["delivery_url"], json=delivery_body(world))
                assert resp.status_code in (200, 202), (row["id"], resp.text)
                answered[row["id"]] = resp.status_code
            assert len({row["delivery_url"].split("/endpoints")[0] for row in listing}) == 2
            # A fault named at one store goes to its shard, and only that store goes dark.
            resp = http.post(
                f"{front}/admin/faults",
                json={"kind": "endpoint_offline", "endpoints": ["S0002"], "on": True},
                headers=auth,
            )
            assert resp.json()["targets"] == ["S0002"], resp.text
            offline = [
                e["id"]
                for e in http.get(f"{front}/admin/endpoints", headers=auth).json()
                if e["offline"]
            ]
            assert offline == ["S0002"]
            s2 = http.post(
                f"{owner['S0002']}/endpoints/S0002/deliveries", json=delivery_body(world, version=2)
            )
            s1 = http.post(
                f"{owner['S0001']}/endpoints/S0001/deliveries", json=delivery_body(world, version=2)
            )
            assert (s2.status_code, s1.status_code) == (503, 200)
            assert http.get(f"{front}/truth").status_code == 401  # the token still guards truth
            applied = [
                r
                for r in http.get(f"{front}/truth", headers=auth).json()["records"]
                if r["kind"] == "applied"
            ]
            # What answered 200 is applied already (202: the web shop settles later).
            assert {r["endpoint"] for r in applied} >= {k for k, v in answered.items() if v == 200}
            assert len([k for k, v in answered.items() if v == 200]) >= 4
            for shard in shards:  # its stdout, never read again, cannot fill and stall it
                assert os.readlink(f"/proc/{shard['pid']}/fd/1") == os.devnull
            check_front_truth(http, front, auth)
            check_front_faults(http, front, auth, owner)
            # A dead shard: the front answers JSON naming it, not a text/plain 500.
            os.kill(shards[1]["pid"], signal.SIGKILL)
            dead = http.get(f"{front}/truth", headers=auth)
            assert dead.status_code == 502, dead.text
            assert "estate shard 2 of 2" in dead.json()["detail"]
        pids = [s["pid"] for s in shards]
        child.kill()  # SIGKILL: no clean-up code runs in the parent
        child.wait()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.2)
        assert not any(alive(pid) for pid in pids), "a shard outlived its parent"
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait()


def check_front_truth(http: httpx.Client, front: str, auth: dict[str, str]) -> None:
    """The front's raw /truth is ordered by t; paged one record at a time through its
    cursor it gives each record of it once."""
    whole = http.get(f"{front}/truth", headers=auth).json()["records"]
    assert len(whole) >= 4 and [r["t"] for r in whole] == sorted(r["t"] for r in whole)
    # Both shards recorded: the deliveries alternated between them, so a front that only
    # concatenated the shards' logs would not be in t order.
    assert len({r["endpoint"] for r in whole}) >= 4
    paged, cursor = [], "0"
    for _ in range(len(whole) + 2):
        page = http.get(f"{front}/truth?since={cursor}&limit=1", headers=auth).json()
        if not page["records"]:
            break
        paged.extend(page["records"])
        cursor = page["next"]
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, paged)) == sorted(map(key, whole))
    bad = http.get(f"{front}/truth?since=3", headers=auth)  # one offset for two shards
    assert bad.status_code == 422 and "since" in bad.json()["detail"]


def check_front_faults(
    http: httpx.Client, front: str, auth: dict[str, str], owner: dict[str, str]
) -> None:
    """Faults by channel and region reach every shard (one holding no target is no error);
    a list over both shards switches each at its own; an unknown id is named alone."""

    def switch(**body: object) -> httpx.Response:
        return http.post(f"{front}/admin/faults", json=body, headers=auth)

    erp_rate = {"kind": "error_rate", "channel": "erp", "rate": 0.5}
    not_erp = next(url for url in owner.values() if url != owner["erp"])
    # The shard without the ERP refuses the fault itself ...
    alone = http.post(f"{not_erp}/admin/faults", json={**erp_rate, "on": True}, headers=auth)
    assert alone.status_code == 422, alone.text
    # ... and through the front that refusal is ignored: the ERP's shard switched it.
    for on in (True, False):
        resp = switch(**erp_rate, on=on)
        assert (resp.status_code, resp.json()["targets"]) == (200, ["erp"]), resp.text
    both = ["S0001", "erp"]
    assert owner["S0001"] != owner["erp"]
    resp = switch(kind="endpoint_offline", endpoints=both, on=True)
    assert (resp.status_code, resp.json()["targets"]) == (200, ["erp", "S0001"]), resp.text
    offline = {
        e["id"] for e in http.get(f"{front}/admin/endpoints", headers=auth).json() if e["offline"]
    }
    assert offline >= {"erp", "S0001"}
    assert switch(kind="endpoint_offline", endpoints=both, on=False).status_code == 200
    resp = switch(kind="region_offline", region="east", on=True)
    assert resp.json()["targets"] == ["S0001", "S0002"], resp.text  # one store per shard
    assert switch(kind="region_offline", region="east", on=False).status_code == 200
    resp = switch(kind="endpoint_offline", endpoints=["S0001", "S9999"], on=True)
    assert resp.status_code == 422
    assert "S9999" in resp.json()["detail"] and "S0001" not in resp.json()["detail"]
    anonymous = http.post(f"{front}/admin/faults", json={"kind": "quota", "endpoints": ["S9999"]})
    assert anonymous.status_code == 401  # the token is checked first, as a shard does


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- bad counts and shards that cannot start --------------------------------------------------


@pytest.mark.parametrize("count", ["-1", "7"])
def test_a_shard_count_the_estate_cannot_take_is_one_line_exit_2(count: str) -> None:
    outcome = run_cli("estate", str(TINY), "--estate-shards", count, "--port", str(free_port()))
    assert_one_line_error(outcome, "--estate-shards", count)


def test_live_refuses_a_bad_shard_count_before_calibrating(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("calibrated although the shard count was bad")

    monkeypatch.setattr(harness.live_calibrate, "calibrate", refuse)
    outcome = run_cli("live", str(TINY), "--estate-shards", "7", "--out", str(tmp_path / "o"))
    assert_one_line_error(outcome, "--estate-shards", "6 endpoints")


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("import sys; sys.exit(3)", "exited with code 3 before it served"),
        ('print(\'{"error": "boom"}\')', "failed to start: boom"),
    ],
)
def test_a_shard_that_cannot_start_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, command: str, needle: str
) -> None:
    monkeypatch.setattr(harness.shards, "SHARD_COMMAND", (sys.executable, "-c", command))
    outcome = run_cli("estate", str(TINY), "--estate-shards", "2", "--port", str(free_port()))
    assert_one_line_error(outcome, "--estate-shards", "estate shard 1 of 2", needle)


def test_a_shard_that_never_answers_is_reported_with_the_timeout_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It reads its stdin to the end (it stops when the parent closes it) and never answers.
    silent = (sys.executable, "-c", "import sys; sys.stdin.buffer.read()")
    monkeypatch.setattr(harness.shards, "SHARD_COMMAND", silent)
    world = build_world(load_scenario(TINY), None)
    with pytest.raises(harness.shards.ShardError, match=r"did not start within 0\.5 s"):
        harness.shards.ShardSet.launch(world, 2, timeout=0.5)


def test_a_shard_given_no_spec_answers_one_error_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.shards"],
        input=b"[1]\n",
        capture_output=True,
        timeout=START_TIMEOUT_S,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"].startswith("ValueError")
