"""`promoharness serve` refuses a state file it cannot trust, and a port it cannot have,
with one line on stderr and exit code 2 — no traceback — through the real CLI.

The refusals run ``harness.cli.main`` in this process (tests/cli_driver.py), which sees
the same exit code and stderr as a user; one case goes through a real interpreter too, so
that what reaches a terminal is proven once without paying a Python start-up per case.

A state file carries its scenario's identity (name, seed, a digest of the estate's
endpoint inventory); restarting on it with another estate would replay the journal against
endpoints that are not there, so that is refused too, naming both identities.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_driver import Outcome, run_cli

from harness.orchestrator import events as ev
from harness.runtime import codec
from harness.runtime.world import build_world
from harness.scenario import load_scenario
from harness.stack import open_state

SCENARIO = Path(__file__).with_name("durable.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_args(state: Path, *extra: str, api_port: int | None = None) -> list[str]:
    """`serve --component api` arguments, a start that must be refused."""
    return [
        *("serve", str(SCENARIO), "--component", "api"),
        *("--api-port", str(api_port or free_port()), "--sim-port", str(free_port())),
        *("--state", str(state), *extra),
    ]


def serve(state: Path, *extra: str, api_port: int | None = None) -> Outcome:
    """`serve` in this process; it must refuse to start and return by itself."""
    box: list[Outcome] = []
    args = serve_args(state, *extra, api_port=api_port)
    thread = threading.Thread(target=lambda: box.append(run_cli(*args)), daemon=True)
    thread.start()
    thread.join(120)  # a hang guard only: a refusal takes well under a second
    assert box, "serve did not refuse within 120 s: it started"
    return box[0]


def serve_process(state: Path) -> subprocess.CompletedProcess[str]:
    """`serve` in a real interpreter, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *serve_args(state)],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard only
    )


def one_line_exit_2(done: Outcome | subprocess.CompletedProcess[str]) -> str:
    code = done.code if isinstance(done, Outcome) else done.returncode
    assert code == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def real_state(path: Path, *texts: str, overrides: list[str] | None = None) -> None:
    """A state file as `serve` writes it, with ``texts`` as its journal."""
    scenario = load_scenario(SCENARIO, overrides or [])
    world = build_world(scenario)
    store, _ = open_state(path, scenario, world.seed, 1.0, endpoints=world.endpoint_infos())
    for i, text in enumerate(texts):
        store.append(float(i), text, [])
    store.close()


CREATE = codec.encode(ev.CreateDraft(load_scenario(SCENARIO).promotions[0]))


def test_random_bytes(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    state.write_bytes(bytes(range(256)) * 40)
    line = one_line_exit_2(serve_process(state))
    assert str(state) in line and "not a usable state file" in line


def test_truncated_sqlite_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    real_state(state, CREATE, *[codec.encode(ev.Submit("X" * 500 + str(i))) for i in range(200)])
    with sqlite3.connect(state) as db:  # everything into the main file, then cut it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = state.read_bytes()
    assert len(data) > 40_000
    state.write_bytes(data[: len(data) // 2])
    line = one_line_exit_2(serve(state))
    assert str(state) in line and "not a usable state file" in line


@pytest.mark.parametrize(
    "tampered, reason",
    [
        ('{"type":"Submit","promo":', "JSONDecodeError"),
        ('{"type":"Explode","promo":"SCENARIO-ONLY"}', "KeyError"),
        ('{"type":"Submit","promotion":"SCENARIO-ONLY"}', "TypeError"),
        ('{"type":"Approve","promo":"SCENARIO-ONLY"}', "IllegalTransition"),
    ],
    ids=["not-json", "unknown-type", "wrong-fields", "refused-by-the-core"],
)
def test_a_journal_row_that_does_not_replay(tmp_path: Path, tampered: str, reason: str) -> None:
    state = tmp_path / "state.db"
    real_state(state, CREATE, codec.encode(ev.Submit("SCENARIO-ONLY")), tampered)
    line = one_line_exit_2(serve(state))
    assert str(state) in line and "journal row 3 cannot be replayed" in line and reason in line


def test_tampered_metadata(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    real_state(state, CREATE)
    with sqlite3.connect(state) as db:
        db.execute("UPDATE meta SET value = 'yesterday' WHERE key = 'epoch'")
    line = one_line_exit_2(serve(state))
    assert "meta 'epoch' is 'yesterday'" in line


def test_another_estate_on_the_same_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    real_state(state, CREATE)  # 6 stores + erp, web, loyalty, marketplace: 10 endpoints
    line = one_line_exit_2(serve(state, "--set", "estate.stores=3"))
    assert "scenario 'durable-tests' (seed 11, 10 endpoints" in line
    assert "scenario 'durable-tests' (seed 11, 7 endpoints" in line
    line = one_line_exit_2(serve(state, "--seed", "12"))
    assert "(seed 11," in line and "(seed 12," in line
    # The journal was not touched by the refused starts.
    with sqlite3.connect(state) as db:
        assert [row[0] for row in db.execute("SELECT event FROM journal")] == [CREATE]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_exit_2(serve(tmp_path / "state.db", api_port=port))
    assert "cannot bind a port on 127.0.0.1" in line and "in use" in line
