"""Estate shards started elsewhere (``--shard-via``) and servers on another address (``--bind``).

Loopback only: a tiny wrapper script in tmp_path stands in for ``ssh HOST`` (it records
which prefix started it, then runs the shard command it was given), so the estate's two
shards go through the same argv an ssh run would, and the estate must still list every
endpoint on its own shard and merge both shards' truth. A --bind or --shard-via mistake is
one line, exit 2, before anything starts. ``load --host --sim-token`` reads the truth of
a stack served with an admin token (what ``serve --bind`` requires).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import httpx
import pytest
from cli_driver import assert_one_line_error, run_cli

from harness.inputs import InputError
from harness.load.run import fetch_records
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from harness.shards import REMOTE_COMMAND, check_network, shard_command
from harness.stack import start_stack

TINY = Path(__file__).resolve().parents[1] / "runtime" / "tiny.yaml"
START_TIMEOUT_S = 120.0  # hang guard only: two shards start slowly on a busy machine

WRAPPER = """#!/bin/sh
# Stands in for `ssh HOST`: note which prefix ran (and what), then run the shard command.
tag="$1"; shift
echo "$tag $*" >> "{log}"
exec "$@"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_shard_i_starts_through_the_i_mod_n_th_prefix() -> None:
    via = ["ssh b.example", "ssh -p 2222 'c example'"]
    assert shard_command(0, via) == ["ssh", "b.example", *REMOTE_COMMAND]
    assert shard_command(1, via) == ["ssh", "-p", "2222", "c example", *REMOTE_COMMAND]
    assert shard_command(2, via) == shard_command(0, via)
    assert shard_command(0) == [sys.executable, "-m", "harness.shards"]  # no prefix: here


def test_a_non_loopback_bind_needs_a_token_the_user_gave() -> None:
    check_network("127.0.0.1", (), None)  # the default needs nothing
    check_network("0.0.0.0", ("ssh b",), "sekrit")
    with pytest.raises(InputError, match="--admin-token"):
        check_network("0.0.0.0", (), None)


def test_an_estate_with_shards_through_a_prefix_lists_and_merges_both(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    wrapper = tmp_path / "fake-ssh"
    wrapper.write_text(WRAPPER.format(log=log))
    wrapper.chmod(0o755)
    world = build_world(load_scenario(TINY), None)
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "estate", str(TINY), "--port", str(port),
         "--speed", "10", "--estate-shards", "2", "--admin-token", "sekrit",
         "--shard-via", f"{wrapper} host-b", "--shard-via", f"{wrapper} host-c",
         "--bind", "127.0.0.1"],
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
        # Each shard went through its own prefix, with the far side's command after it.
        ran = sorted(log.read_text().splitlines())
        assert ran == [f"host-{h} {' '.join(REMOTE_COMMAND)}" for h in "bc"], ran
        front = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer sekrit"}
        with httpx.Client(timeout=60) as http:
            listing = http.get(f"{front}/estate/endpoints").json()["endpoints"]
            assert [row["id"] for row in listing] == [m.id for m in world.delivery_models]
            shard_urls = {row["delivery_url"].split("/endpoints")[0] for row in listing}
            assert len(shard_urls) == 2 and f"{front}" not in shard_urls
            ok = set()
            for row in listing:
                resp = http.post(row["delivery_url"], json=delivery_body(world))
                assert resp.status_code in (200, 202), (row["id"], resp.text)
                if resp.status_code == 200:
                    ok.add(row["id"])
            records = http.get(f"{front}/truth", headers=auth).json()["records"]
        applied = {r["endpoint"] for r in records if r["kind"] == "applied"}
        owner = {row["id"]: row["delivery_url"].split("/endpoints")[0] for row in listing}
        assert applied >= ok  # what answered 200 is in the merged truth ...
        assert {owner[e] for e in ok} == shard_urls  # ... from both shards
        assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def delivery_body(world: object) -> dict[str, object]:
    promotion = next(p for p in world.scenario.promotions if p.id == "P1")  # type: ignore[attr-defined]
    return {
        "delivery_id": "d-1",
        "idempotency_key": "k-1",
        "op": "apply",
        "promo": "P1",
        "version": 1,
        "payload": promotion.model_dump(mode="json", by_alias=True),
    }


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--estate-shards", "2", "--shard-via", ""), ("--shard-via", "is empty")),
        (("--estate-shards", "2", "--shard-via", "ssh 'b"), ("--shard-via", "quotation")),
        (("--shard-via", "ssh b"), ("--shard-via", "--estate-shards")),
        (("--bind", "not-an-address", "--admin-token", "t"), ("--bind", "not-an-address")),
        (("--bind", "0.0.0.0"), ("--bind", "--admin-token")),
    ],
)
@pytest.mark.parametrize("command", ["estate", "serve"])
def test_a_bind_or_shard_via_mistake_is_one_line_exit_2(
    command: str, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    outcome = run_cli(command, str(TINY), *args)
    assert_one_line_error(outcome, *needles)


def test_load_reads_a_guarded_estates_truth_with_its_token(tmp_path: Path) -> None:
    """`load --host --sim-token`: a stack served with an admin token (as `serve --bind`
    needs) gives its truth to the load's collector with the token, and only with it."""

    async def main() -> None:
        stack = await start_stack(
            load_scenario(TINY), state=tmp_path / "o.db", speed=10.0, admin_token="sekrit"
        )
        try:
            api, sim = stack.api_url, stack.sim_url
            records = await asyncio.to_thread(fetch_records, api, sim, token="sekrit")
            inventory = [r for r in records if r.kind == "endpoint"]  # one per endpoint
            assert len(inventory) == len(stack.world.delivery_models)
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(fetch_records, api, sim)
            assert refused.value.code == 401
        finally:
            await stack.stop()

    asyncio.run(asyncio.wait_for(main(), START_TIMEOUT_S))


def test_a_sim_token_without_host_is_one_line_exit_2(tmp_path: Path) -> None:
    outcome = run_cli("load", "ci-smoke", "--sim-token", "t", "--out", str(tmp_path / "o"))
    assert_one_line_error(outcome, "--sim-token", "--host")
