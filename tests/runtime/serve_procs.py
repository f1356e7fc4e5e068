"""`promoharness serve` as real processes for the restart tests: the simulators in one
process (they survive the kills, like a real estate), the orchestrator API in another,
killed with SIGKILL and restarted on the same --state.

Waits are on conditions (the API's views, the journal, the simulators' truth), never on
fixed sleeps; their timeouts only guard against a hang.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "merch": "merch-demo-key",
    "approver": "approver-demo-key",
    "operator": "operator-demo-key",
    "finance": "finance-demo-key",
    "viewer": "viewer-demo-key",
}
HANG = 120.0  # seconds: a hang guard, never a pass/fail criterion
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T], what: str, timeout: float = HANG) -> T:
    """Poll ``predicate`` until it holds: often at first, then every 0.25 s at most (each
    poll is HTTP requests the servers answer; a wait of seconds at a fixed 50 ms cost
    the processes more CPU than what they waited for)."""
    end = time.monotonic() + timeout
    pause = 0.02
    while True:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(0.25, pause * 1.5)


class Estate:
    """Simulators and the orchestrator API of one scenario, as `serve` subprocesses."""

    def __init__(self, tmp: Path, scenario: Path, speed: float, name: str = "state") -> None:
        self.tmp, self.scenario, self.speed = tmp, scenario, speed
        self.state = tmp / f"{name}.db"
        self.api_port, self.sim_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.sim = f"http://127.0.0.1:{self.sim_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0
        self.http = httpx.Client(timeout=30)

    def _spawn(self, component: str) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = open(self.tmp / f"{self.state.stem}-{component}-{self.starts}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from harness.cli import main; main()",
                "serve",
                str(self.scenario),
                "--component",
                component,
                "--api-port",
                str(self.api_port),
                "--sim-port",
                str(self.sim_port),
                "--speed",
                str(self.speed),
                "--state",
                str(self.state),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Estate:
        self.procs["sim"] = self._spawn("sim")
        wait_for(lambda: self._up(self.sim), "the simulators")
        self.start_api()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.http.close()

    def _up(self, url: str) -> bool:
        return self.http.get(f"{url}/healthz", timeout=2).status_code == 200

    def start_api(self) -> None:
        self.procs["api"] = self._spawn("api")
        wait_for(lambda: self._alive("api") and self._up(self.api), "the orchestrator API")

    def _alive(self, component: str) -> bool:
        code = self.procs[component].poll()
        assert code is None, f"serve --component {component} exited with {code}"
        return True

    def kill_api(self) -> int:
        """SIGKILL the orchestrator; returns the journal's length at its death."""
        proc = self.procs["api"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return len(self.journal())

    # --- the orchestrator's API ---------------------------------------------------------------

    def call(self, method: str, path: str, who: str, body: object = None) -> httpx.Response:
        return self.http.request(
            method, f"{self.api}/v1{path}", json=body, headers={"X-API-Key": KEYS[who]}
        )

    def command(self, path: str, who: str, body: object = None) -> int:
        r = self.call("POST", path, who, body)
        assert r.status_code < 300 or r.status_code == 409, r.text
        return r.status_code

    def promotion(self, promo: str) -> dict[str, Any]:
        r = self.call("GET", f"/promotions/{promo}?endpoints=false", "viewer")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def now(self) -> float:
        return float(self.http.get(f"{self.api}/healthz").json()["now"])

    # --- the simulators ---------------------------------------------------------------------

    def fault(self, kind: str, endpoints: list[str], on: bool) -> None:
        r = self.http.post(
            f"{self.sim}/admin/faults", json={"kind": kind, "endpoints": endpoints, "on": on}
        )
        assert r.status_code == 200, r.text

    def truth(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.sim}/truth").json()["records"]  # type: ignore[no-any-return]

    def active(self) -> dict[str, Any]:
        return self.http.get(f"{self.sim}/truth/active").json()  # type: ignore[no-any-return]

    # --- the state file (read-only, beside the running service: WAL allows it) ----------------

    def journal(self) -> list[tuple[int, float, dict[str, Any]]]:
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT seq, t, event FROM journal ORDER BY seq").fetchall()
        finally:
            db.close()
        return [(seq, t, json.loads(text)) for seq, t, text in rows]

    def records(self, kind: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM records WHERE kind = ? ORDER BY seq", (kind,))
            return [dict(r) for r in rows]
        finally:
            db.close()


def promotion_body(promo: str, channels: list[str]) -> dict[str, Any]:
    return {
        "id": promo,
        "name": f"{promo}: 10% off everything",
        "validity": {
            "start": "2026-11-28T00:00:00",
            "end": "2026-11-29T00:00:00",
            "timezone": "America/New_York",
        },
        "scope": {"channels": channels},
        "benefit": {"type": "percent_off", "percent": 10},
    }


def approved(estate: Estate, promo: str, channels: list[str]) -> None:
    """Create, submit, validate (the simulated ERP answers) and approve ``promo``."""
    estate.command("/promotions", "merch", promotion_body(promo, channels))
    estate.command(f"/promotions/{promo}/submit", "merch")
    estate.command(f"/promotions/{promo}/validate", "merch")
    wait_for(lambda: estate.promotion(promo)["state"] == "validated", f"{promo} validated")
    estate.command(f"/promotions/{promo}/approve", "approver")
