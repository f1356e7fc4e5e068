"""The subprocesses of a load run: the stack (``promoharness serve``) and Locust.

Locust always runs in its own processes (it monkey-patches with gevent): headless, bound
to 127.0.0.1, bounded by ``--run-time`` and by a wall-clock timeout here. With
``workers`` > 0 it is Locust's master/worker mode with that many local workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.selfwatch import CpuWatch
from harness.stack import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


def http_json(
    url: str,
    body: Any = None,
    *,
    key: str | None = None,
    timeout: float = 10,
    bearer: str | None = None,
) -> Any:
    """One JSON request with the standard library (GET, or POST when ``body`` is given);
    ``key`` is an API key, ``bearer`` an estate admin token."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def wait_healthy(
    url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the stack exited with code {proc.returncode} during start-up")
        try:
            http_json(f"{url}/healthz", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"{url}/healthz did not answer within {timeout:g} s")


@dataclass
class StackProcess:
    proc: subprocess.Popen[bytes]
    api_url: str
    sim_url: str

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def prime_state(state: Path, scenario: str, seed: int, speed: float, epoch: float) -> None:
    """Give a fresh state file its clock, so scenario t=0 is ``epoch`` (the load's start)
    rather than the moment the stack process happens to open it."""
    from harness.runtime.store import Store

    store = Store(state)
    try:
        for key, value in (("epoch", epoch), ("scenario", scenario), ("seed", seed)):
            store.put(key, value)
        store.put("speed", speed)
    finally:
        store.close()


def start_stack_process(
    scenario_file: Path, state: Path, speed: float, log: Path, estate_shards: int = 0
) -> StackProcess:
    """``promoharness serve`` on two free loopback ports; returns once both answer.
    ``state`` may be primed (``prime_state``) to set where its clock starts;
    ``estate_shards`` > 0 serves the estate from that many processes behind the sim port."""
    api_port, sim_port = free_port(), free_port()
    cmd = [
        sys.executable, "-m", "harness.cli", "serve", str(scenario_file),
        "--api-port", str(api_port), "--sim-port", str(sim_port),
        "--speed", f"{speed:g}", "--state", str(state),
        "--estate-shards", str(estate_shards),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    stack = StackProcess(proc, f"http://{HOST}:{api_port}", f"http://{HOST}:{sim_port}")
    try:
        wait_healthy(stack.sim_url, proc=proc)
        wait_healthy(stack.api_url, proc=proc)
    except BaseException:
        stack.stop()
        raise
    return stack


def shard_map(sim_url: str) -> dict[str, str]:
    """Endpoint id -> the base URL of its estate shard, from a sharded estate's front
    (``GET /estate/shards``); empty for an estate in one process (it has no such route)."""
    try:
        shards = http_json(f"{sim_url}/estate/shards")["shards"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return {}
    return {mid: shard["url"] for shard in shards for mid in shard["endpoints"]}


def locust_command(prefix: Path, run_time: float, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--csv", str(prefix), "--csv-full-history", "--json", "--only-summary",
        "--run-time", f"{max(1, round(run_time))}s", "--stop-timeout", "5",
        "--loglevel", "WARNING", *extra,
    ]  # fmt: skip


def run_locust(
    config: Path,
    prefix: Path,
    *,
    run_time: float,
    workers: int = 0,
    users: int | None = None,
    spawn_rate: float | None = None,
    classes: tuple[str, ...] = (),
    watch: CpuWatch | None = None,
) -> int:
    """Run Locust headless (master + ``workers`` local workers when > 0); its stdout (the
    ``--json`` statistics) goes to ``<prefix>.json``, stderr to ``<prefix>.log``. Each
    Locust process is added to ``watch`` (its CPU sampled through the run)."""
    env = {**os.environ, "PROMO_LOAD_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    extra: list[str] = []
    if users is not None:
        extra += ["--users", str(users), "--spawn-rate", f"{spawn_rate or users:g}"]
    bound = run_time + 60.0
    workers_procs: list[subprocess.Popen[bytes]] = []
    out_json, log = prefix.with_suffix(".json"), prefix.with_suffix(".log")
    if workers > 0:
        port = free_port()
        extra += [
            "--master", "--expect-workers", str(workers), "--master-bind-host", HOST,
            "--master-bind-port", str(port),
        ]  # fmt: skip
        worker_cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", HOST, "--master-port", str(port), "--loglevel", "WARNING",
            *classes,
        ]  # fmt: skip
    with out_json.open("wb") as stdout, log.open("wb") as stderr:
        master = subprocess.Popen(
            [*locust_command(prefix, run_time, *extra), *classes],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        if watch is not None:
            watch.add("locust master" if workers else "locust", master.pid)
        for i in range(workers):
            workers_procs.append(
                subprocess.Popen(
                    worker_cmd, cwd=ROOT, env=env, stdout=stderr, stderr=subprocess.STDOUT
                )
            )
            if watch is not None:
                watch.add(f"locust worker {i + 1}", workers_procs[-1].pid)
        try:
            code = master.wait(bound)
        except subprocess.TimeoutExpired:
            master.kill()
            code = master.wait(5)
        finally:
            for proc in workers_procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    return code
