"""``promoharness estate``: a real process serving a scenario's estate to whoever delivers.

It prints where everything is and the admin token, answers deliveries, keeps ground truth
behind the token, switches the scenario's scheduled rate faults, refuses a port in use in
one line (exit 2) and stops cleanly on Ctrl-C. Also: the built-in stack runs with a token
and ``fetch_truth`` passes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import pytest
from cli_driver import Outcome, run_cli
from test_apps import delivery, run_async, scenario_file

from harness.scenario import load_scenario
from harness.stack import fetch_truth, start_stack

START_TIMEOUT_S = 60.0  # guards against a hang only; a busy machine may start slowly


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def faulted_scenario(tmp_path: Path) -> Path:
    """The three-store test estate with loyalty failing every request from t=0."""
    path = scenario_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["faults"] = [{"kind": "error_rate", "channel": "loyalty", "rate": 1.0, "start": 0}]
    path.write_text(json.dumps(doc))
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "estate", *args]


def refused(*args: str) -> Outcome:
    """``estate ARGS`` through ``harness.cli.main`` in this process (exit code and stderr,
    tests/cli_driver.py): it must refuse and return by itself. A fresh interpreter would
    add only its ~3 s of imports; a thread and a join bound a start instead of a refusal."""
    box: list[Outcome] = []
    thread = threading.Thread(target=lambda: box.append(run_cli("estate", *args)), daemon=True)
    thread.start()
    thread.join(START_TIMEOUT_S)
    assert box, f"estate did not refuse within {START_TIMEOUT_S:.0f} s: it started"
    return box[0]


@contextmanager
def serving(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    port = free_port()
    child = subprocess.Popen(
        command(str(faulted_scenario(tmp_path)), "--port", str(port), "--speed", "10", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    banner: dict[str, str] = {"port": str(port)}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert child.stdout is not None
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"estate exited: {child.wait()} {child.stderr.read()}")  # type: ignore[union-attr]
            if line.startswith("Ctrl-C"):
                break
            m = re.match(r"\s+(\w[\w ]*?)\s{2,}(.*)", line)
            if m:
                banner[m.group(1)] = m.group(2)
        yield child, banner
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_estate_serves_prints_its_urls_and_token_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as (child, banner):
        url = f"http://127.0.0.1:{banner['port']}"
        assert banner["deliveries"].startswith(f"POST {url}/endpoints/{{endpoint_id}}/deliveries")
        for name, path in (("listing", "/estate/endpoints"), ("clock", "/clock")):
            assert banner[name] == f"GET  {url}{path}"
        assert banner["contract"].startswith(f"GET  {url}/openapi.json")
        token = banner["admin token"].split()[0]
        assert len(token) >= 20
        admin = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=10) as client:
            r = client.post("/endpoints/S0001/deliveries", json=delivery())
            assert r.json() == {"outcome": "ok", "effect": "applied"}
            # The scenario's error_rate fault on loyalty is switched on at t=0.
            assert client.post("/loyalty/promotions", json=delivery()).status_code == 500
            assert client.get("/truth").status_code == 401
            records = client.get("/truth", headers=admin).json()["records"]
            assert ("applied", "S0001") in {(r["kind"], r["endpoint"]) for r in records}
            assert client.get("/openapi.json").json()["info"]["title"] == "promoharness estate"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=START_TIMEOUT_S) == 0


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with serving(tmp_path, "--admin-token", "t0k-fixed-for-test") as (_, banner):
        assert banner["admin token"].split()[0] == "t0k-fixed-for-test"
        again = refused(str(faulted_scenario(tmp_path)), "--port", banner["port"])
    assert again.code == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0] and banner["port"] in lines[0]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("pos=http://127.0.0.1:9/acks", "channel 'pos' sends no webhooks"),
        ("ecommerce", "is not CHANNEL=URL"),
        ("ecommerce=ftp://x", "must start with http"),
    ],
)
def test_bad_callbacks_are_one_line_and_exit_2(tmp_path: Path, option: str, expected: str) -> None:
    done = refused(str(faulted_scenario(tmp_path)), "--callback", option)
    assert done.code == 2
    [line] = done.stderr.strip().splitlines()
    assert "--callback" in line and expected in line


@run_async
async def test_the_built_in_stack_runs_with_a_token_and_fetch_truth_passes_it(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(scenario_file(tmp_path))
    stack = await start_stack(
        scenario, state=tmp_path / "state.db", speed=10.0, admin_token="stack-token"
    )
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientResponseError) as refused:
                await fetch_truth(http, stack.sim_url)
            assert refused.value.status == 401
            truth = await fetch_truth(http, stack.sim_url, stack.sim_token)
    finally:
        await stack.stop()
    assert stack.sim_token == "stack-token"
    assert {r.endpoint for r in truth if r.kind == "endpoint"} >= {"erp", "S0001", "web"}
