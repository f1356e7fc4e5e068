"""docs/summary-json.md is generated from harness/metrics/keys.py and documents every key
a real summary.json holds, so the reference cannot drift from the code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.domain.eventlog import Record
from harness.metrics import summarise
from harness.metrics.keys import KEYS, concrete_paths, documented, render_markdown, undocumented
from harness.runner import simulate
from harness.scenario import load_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "summary-json.md"
TINY = Path(__file__).resolve().parents[1] / "runtime" / "tiny.yaml"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "regenerate: python -m harness.metrics.keys > docs/summary-json.md"
    )


def test_every_key_of_a_real_run_is_documented() -> None:
    summary = simulate(load_scenario(str(TINY))).summary
    assert undocumented(summary) == []
    # and the check can fail: an unknown key is reported by its path
    summary["propagation"]["overall"]["t42"] = 1.0
    assert undocumented(summary) == ["propagation.overall.t42"]


def test_every_key_of_a_rollback_and_violation_is_documented() -> None:
    # A hand-made log: a publish applied at S1, a rollback the store never honours.
    rows = [
        Record(0.0, "endpoint", "", 0, "S1", "pos", "east", 0, "", 5.0, "push"),
        Record(1.0, "publish", "P", 1, "", "", "", 0, "", 0.0, ""),
        Record(1.0, "target", "P", 1, "S1", "pos", "east", 0, "", 0.0, ""),
        Record(2.0, "applied", "P", 1, "S1", "pos", "east", 0, "", 0.0, ""),
        Record(10.0, "rollback", "P", 1, "", "", "", 0, "", 30.0, '{"channels": ["pos"]}'),
        Record(20.0, "discount", "P", 1, "S1", "pos", "east", 0, "", 2.5, ""),
    ]
    summary = summarise(pd.DataFrame(rows), scenario="x", seed=1, mode="sim")
    assert summary["rollbacks"] and summary["rollbacks"][0]["violations"]
    assert undocumented(summary) == []


def test_placeholders_match_any_key_even_with_dots_but_not_list_items() -> None:
    assert documented(("funding", "GROCERY.001", "overrun")) is not None
    assert documented(("funding", "[]", "overrun")) is None
    assert documented(("propagation", "by_channel", "pos", "t95")).unit.startswith("s")


def test_every_entry_has_a_unit_and_a_definition_and_is_listed_once() -> None:
    assert all(k.unit and k.definition for k in KEYS)
    assert len({k.path for k in KEYS}) == len(KEYS)


def test_concrete_paths_walk_lists_and_dicts() -> None:
    got = sorted(concrete_paths(json.loads('{"a": [{"b": 1}, {"b": 2}], "c": {"d": null}}')))
    assert got == [("a", "[]", "b"), ("a", "[]", "b"), ("c", "d")]
