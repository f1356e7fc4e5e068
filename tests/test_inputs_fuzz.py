"""Property: every malformed scenario, override or trace exits 2 with one line, no traceback.

Hypothesis builds bad inputs from a good one (``tests/runtime/tiny.yaml`` and a trace that
replays against it) by one mutation each, every mutation chosen so the result is wrong
(a value out of its range or of the wrong type, an unknown key, a missing required key,
broken YAML, a limit exceeded, a bad trace cell). The real entry point runs in this
process; the examples never reach a simulation (``harness.runner.simulate`` would fail
the test), so the runtime stays small whatever the machine.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_driver import assert_one_line_error, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness.report.pool
import harness.runner
from harness.inputs import MAX_DEPTH

TINY = Path(__file__).parent / "runtime" / "tiny.yaml"
GOOD = yaml.safe_load(TINY.read_text())
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values no numeric field takes: not finite, not a number, over Python's digit limit.
NOT_A_NUMBER = st.sampled_from([".inf", "-.inf", ".nan", "soon", "[1, 2]", "{a: 1}", "9" * 5000])
# (path, a value outside its range): each field refuses the value for a reason of its own.
OUT_OF_RANGE = [
    ("duration", "-5"),
    ("duration", "0"),
    ("seed", str(2**64)),
    ("estate.stores", "0"),
    ("estate.stores", "20001"),
    ("estate.products", "3"),
    ("estate.regions.0.timezone", "Nowhere/Else"),
    ("estate.regions.0.link", "dial-up"),
    ("estate.regions.0.batch_share", "1.5"),
    ("endpoints.pos.preset", "nope"),
    ("endpoints.pos.error_rate", "2"),
    ("endpoints.pos.capacity", "0"),
    ("endpoints.pos.latency.kind", "gaussian"),
    ("endpoints.erp.latency.mean", "-1"),
    ("policies.pos.backoff.base", "0"),
    ("policies.pos.backoff.kind", "random"),
    ("policies.pos.max_attempts", "100000"),
    ("policies.pos.distribution.interval", "0.001"),
    ("policies.shop.timeout", "5"),
    ("promotions.0.benefit.percent", "120"),
    ("timeline.0.action", "explode"),
    ("timeline.0.at", "-1"),
    ("timeline.4.promo", "P404"),
    ("traffic.kind", "telepathy"),
    ("traffic.basket_lines", "[5, 1]"),
    ("traffic.quote_interval", "0.0001"),
    ("series", "{P1: 0}"),
    ("series", "{P1: 5000}"),
    ("series", "{P9: 2}"),
    ("slos", "[{name: x, metric: no.such.figure, op: '<', threshold: 1}]"),
    ("slos", "[{name: x, metric: leakage_value, op: '~', threshold: 1}]"),
    ("faults", "[{kind: region_offline}]"),
    ("name", "Has Spaces"),
    ("start", "2026-11-28T06:00:00"),
]
NUMERIC = [
    "duration",
    "seed",
    "estate.stores",
    "endpoints.pos.error_rate",
    "endpoints.erp.latency.mean",
    "endpoints.ecommerce.capacity",
    "policies.pos.backoff.base",
    "policies.pos.backoff.cap",
    "policies.erp.timeout",
    "traffic.rate_online",
    "traffic.rate_per_store",
    "traffic.curve.peak_multiple",
    "promotions.0.benefit.percent",
    "timeline.2.at",
]
# Keys that exist nowhere in the schema at that place.
WORD = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).map(lambda w: f"zz_{w}")
SECTIONS = ["", "estate", "endpoints.pos", "traffic", "traffic.curve", "timeline.0", "promotions.0"]
REQUIRED = ["name", "promotions", "timeline", "promotions.0.id", "promotions.0.benefit"]


@pytest.fixture(autouse=True)
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("simulated although the input was bad")

    monkeypatch.setattr(harness.runner, "simulate", refuse)
    monkeypatch.setattr(harness.runner, "run_scenario", refuse)
    # `run` forks its two plot workers before it reads the scenario; forked from this big
    # test process, each warms matplotlib before the refusal kills it: 60% of this module's
    # CPU, for workers that never see an input. tests/test_cli_errors.py refuses bad input
    # with the real pool.
    monkeypatch.setattr(harness.report.pool.PlotPool, "start", lambda self: self)


def _set(data: Any, dotted: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    parts = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[parts[-1]] = value
    return data


def _delete(data: Any, dotted: str) -> Any:
    data = copy.deepcopy(data)
    parts = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = data
    for part in parts[:-1]:
        node = node[part]
    del node[parts[-1]]
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=10_000)


@st.composite
def bad_scenario_texts(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(
            ["range", "number", "unknown", "missing", "syntax", "deep", "recursive", "laughs"]
        )
    )
    if kind == "range":
        path, raw = draw(st.sampled_from(OUT_OF_RANGE))
        return _dump(_set(GOOD, path, yaml.safe_load(f"v: {raw}")["v"] if raw else raw))
    if kind == "number":
        path = draw(st.sampled_from(NUMERIC))
        raw = draw(NOT_A_NUMBER)
        # Written as YAML text, so ".inf" is the float and "9"*5000 the (unreadable) int.
        return _dump(_set(GOOD, path, "@@")).replace("'@@'", raw)
    if kind == "unknown":
        section = draw(st.sampled_from(SECTIONS))
        key = draw(WORD)
        return _dump(_set(GOOD, f"{section}.{key}" if section else key, 1))
    if kind == "missing":
        return _dump(_delete(GOOD, draw(st.sampled_from(REQUIRED))))
    if kind == "syntax":
        text = _dump(GOOD)
        at = draw(st.integers(0, len(text.splitlines())))
        rows = text.splitlines()
        broken = draw(st.sampled_from(["key: [unclosed", "\tname: tab", "a: b: c", "- x\ny: 1"]))
        return "\n".join([*rows[:at], broken, *rows[at:]]) + "\n"
    if kind == "deep":
        depth = draw(st.integers(MAX_DEPTH + 1, 3000))
        return _dump(GOOD) + "description: " + "[" * depth + "]" * depth + "\n"
    if kind == "recursive":
        # An anchor on a list or mapping, referred to from inside it (PyYAML allows it).
        inner = draw(st.sampled_from(["[*r]", "[1, [*r]]", "{a: *r}", "{a: [1, {b: *r}]}"]))
        return _dump(GOOD) + f"notes: &r {inner}\n"
    fanout = draw(st.integers(6, 10))
    rows = [f"a0: &a0 [{', '.join(['lol'] * fanout)}]"]
    for level in range(1, 9):
        rows.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * fanout)}]")
    return "\n".join(rows) + "\n"


@SETTINGS
@given(text=bad_scenario_texts())
def test_a_malformed_scenario_file_exits_2_naming_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "fuzzed.yaml"
        bad.write_text(text)
        out = Path(tmp) / "out"
        assert_one_line_error(run_cli("run", str(bad), "-q", "--out", str(out)), "fuzzed.yaml")
        assert not out.exists()


@st.composite
def bad_overrides(draw: st.DrawFn) -> tuple[str, str]:
    """(--set text, what the error must name)."""
    kind = draw(st.sampled_from(["range", "number", "unknown", "syntax"]))
    if kind == "range":
        path, raw = draw(st.sampled_from(OUT_OF_RANGE))
        return f"{path}={raw}", "--set"
    if kind == "number":
        path = draw(st.sampled_from(NUMERIC))
        return f"{path}={draw(NOT_A_NUMBER)}", "--set"
    if kind == "unknown":
        section = draw(st.sampled_from(SECTIONS))
        key = draw(WORD)
        dotted = f"{section}.{key}" if section else key
        return f"{dotted}=1", f"--set {dotted}"
    return draw(st.sampled_from(["duration", "=5", "a..b=1", ".x=1", "timeline.99.at=1"])), "--set"


@SETTINGS
@given(override=bad_overrides(), command=st.sampled_from(["run", "sweep"]))
def test_a_malformed_override_exits_2_naming_the_option(
    override: tuple[str, str], command: str
) -> None:
    text, needle = override
    args = ["run", str(TINY), "-q", "--set", text]
    if command == "sweep":
        # The same value through --vary: the error names that option instead.
        key, _, value = text.partition("=")
        if not key or not value or "," in value or key == "seed" or "\n" in value:
            args = ["sweep", str(TINY), "-q", "--vary", "duration=60,61", "--set", text]
        else:
            args = ["sweep", str(TINY), "-q", "--vary", f"{key}={value}"]
            needle = "--vary"
    assert_one_line_error(run_cli(*args), needle)


SKU = "SKU-00001"
BAD_CELLS = {
    "t": ["nan", "inf", "soon", "-50", "-0.5", "1e400", ""],
    "endpoint": ["S9999", "shop", ""],
    "basket": [
        f"{SKU}:0",
        f"{SKU}:-3",
        f"{SKU}:1e20",
        f"{SKU}:x",
        "NOPE:1",
        "b999999",
        f"{SKU}:1;",
    ],
}
OPERATOR_ROWS = [
    ('{t},rollback,P1,,,5,"{{""stores"": [""S0002""]"', "detail"),
    ('{t},rollback,P1,,,5,"{{""shops"": [""S0002""]}}"', "detail"),
    ('{t},rollback,P1,,,soon,"{{""stores"": [""S0002""]}}"', "value"),
    ('{t},rollback,P1,,,-1,"{{""stores"": [""S0002""]}}"', "value"),
    ("{t},create,P77,,,,", "promo"),
    ("{t},pause,P1,,,,", "kind"),
    ("{t},schedule,P1,,,later,", "value"),
]
HEADER = "t,kind,promo,endpoint,channel,value,detail"
GOOD_ROWS = [
    "0,create,P1,,,,",
    "1,submit,P1,,,,",
    "2,validate,P1,,,,",
    "10,approve,P1,,,,",
    "20,publish,P1,,,,",
    f"25,sale,,S0001,,,{SKU}:2",
    "30,sale,,S0002,,,b3",
]


@st.composite
def bad_traces(draw: st.DrawFn) -> tuple[list[str], int, str]:
    """(rows, the bad row's line in the file, its column)."""
    rows = list(GOOD_ROWS)
    at = draw(st.integers(0, len(rows)))
    t = draw(st.integers(0, 59))
    if draw(st.booleans()):
        template, column = draw(st.sampled_from(OPERATOR_ROWS))
        row = template.format(t=t)
    else:
        column = draw(st.sampled_from(sorted(BAD_CELLS)))
        cells = {"t": str(t), "endpoint": "S0001", "basket": f"{SKU}:1"}
        cells[column] = draw(st.sampled_from(BAD_CELLS[column]))
        row = f"{cells['t']},sale,,{cells['endpoint']},,,{cells['basket']}"
        column = "detail" if column == "basket" else column  # event-log shape: detail
    rows.insert(at, row)
    return rows, at + 2, column


@SETTINGS
@given(trace=bad_traces())
def test_a_malformed_trace_exits_2_naming_file_row_and_column(
    trace: tuple[list[str], int, str],
) -> None:
    rows, line, column = trace
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.csv"
        path.write_text("\n".join([HEADER, *rows]) + "\n")
        out = Path(tmp) / "out"
        override = f"traffic={{kind: replay, file: '{path}'}}"
        result = run_cli("run", str(TINY), "-q", "--out", str(out), "--set", override)
        assert_one_line_error(result, f"fuzzed.csv:{line}: {column}:")
        assert not out.exists()
