"""Stopping a live stack writes nothing of its own into the run's durable state.

The run's records are taken before the stack stops; the state file (``--out``'s
orchestrator.db) is what a later resume starts from. Deliveries still hung at the
estate when the run ends must not come back as results (and retries) journalled after
the scenario's end: a resume would start with attempts used up and breakers fed by
failures that never happened (a review found exactly that after the estate was told of
the stop before the orchestrator).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from harness.live_run import run_live
from harness.runtime.live import run as live_loop
from harness.scenario import load_scenario

HERE = Path(__file__).parent


def test_deliveries_hung_at_the_end_leave_no_result_in_the_journal(tmp_path: Path) -> None:
    scenario = load_scenario(HERE / "hung_at_end.yaml")
    live = live_loop(run_live(scenario, state=tmp_path / "state.db", speed=5.0))
    events = live.events
    assert events[(events.channel == "pos") & (events.kind == "result")].empty
    with sqlite3.connect(tmp_path / "state.db") as db:
        rows = db.execute(
            "select kind, endpoint, attempt from records where channel = 'pos' "
            "and kind in ('send', 'result') order by seq"
        ).fetchall()
    # The two first attempts of the publish at t=20, still hung: nothing after them.
    assert rows == [("send", "S0001", 1), ("send", "S0002", 1)]
