"""Backoff lab tests: hand-derived small cases, and the blog's published findings as oracles.

The oracles come from first principles (a lone client needs one round trip for the read
and one for the write; clients in lockstep lose all but one write per round) and from the
qualitative results of Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog,
2015), never from numbers this code printed.
"""

from __future__ import annotations

import csv
import random
import statistics

import pytest
from typer.testing import CliRunner

from harness.lab import app
from harness.lab.backoff import (
    DEFAULT_KINDS,
    ROW_FIELDS,
    derive_seed,
    normal_delay,
    run_contention,
    run_lab,
    write_lab,
)

ALL_KINDS = (*DEFAULT_KINDS, "none")
BASE = 0.005
CAP = 2.0
HOP = 0.010  # a fixed one-way delay, for the cases worked out by hand


def fixed_hop(_rng: random.Random) -> float:
    return HOP


# --- a lone client ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2015])
def test_one_client_makes_one_call_and_completes_after_its_four_messages(
    kind: str, seed: int
) -> None:
    # Record every delay the run draws: nobody contends, so there must be exactly the four
    # one-way messages (read request, read reply, write request, write reply) and no more.
    drawn: list[float] = []

    def recording(rng: random.Random) -> float:
        value = normal_delay(rng)
        drawn.append(value)
        return value

    calls, completion = run_contention(1, kind, seed=seed, message_delay=recording)
    assert calls == 1
    assert len(drawn) == 4
    assert completion == pytest.approx(sum(drawn), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_one_client_replays_the_seeded_network_draws(seed: int) -> None:
    # The default network: four draws of |Normal(10 ms, 2 ms)| from Random(seed), in order.
    replay = random.Random(seed)
    expected = sum(normal_delay(replay) for _ in range(4))
    calls, completion = run_contention(1, "full_jitter", seed=seed)
    assert calls == 1
    assert completion == pytest.approx(expected, rel=1e-12)
    assert 0.0 < completion < 0.1  # four hops of about 10 ms each


def test_one_client_with_fixed_hops_takes_forty_ms() -> None:
    assert run_contention(1, "exponential", seed=0, message_delay=fixed_hop) == (
        1,
        pytest.approx(4 * HOP),
    )


# --- clients in lockstep (every hop exactly 10 ms), worked out by hand --------------------


def test_two_clients_no_backoff_by_hand() -> None:
    # t=10 ms both reads reach the server (version 0); t=30 both writes arrive: the first
    # wins (version 1), the second fails; t=40 the winner hears "ok", the loser hears "fail"
    # and, with no backoff, re-sends its read: it arrives at 50, the reply is back at 60,
    # its write arrives at 70 and succeeds, the reply lands at 80 ms.
    calls, completion = run_contention(2, "none", seed=0, message_delay=fixed_hop)
    assert calls == 3
    assert completion == pytest.approx(0.080)


def test_two_clients_exponential_by_hand() -> None:
    # As above, but the loser waits base * 2**1 = 10 ms after hearing "fail" at 40 ms: read
    # leaves at 50, the whole read-write cycle takes 40 ms, done at 90 ms.
    calls, completion = run_contention(2, "exponential", seed=0, message_delay=fixed_hop)
    assert calls == 3
    assert completion == pytest.approx(0.090)


@pytest.mark.parametrize(
    ("kind", "draw"),
    [
        # The only rng draw of the run is the loser's single backoff (fixed hops draw none).
        ("full_jitter", lambda rng: rng.uniform(0.0, 2 * BASE)),
        ("equal_jitter", lambda rng: BASE + rng.uniform(0.0, BASE)),
        ("decorrelated_jitter", lambda rng: rng.uniform(BASE, 3 * BASE)),
    ],
)
@pytest.mark.parametrize("seed", [0, 3, 99])
def test_two_clients_jittered_backoff_replays_the_one_draw(kind: str, draw, seed: int) -> None:
    expected_pause = draw(random.Random(seed))
    calls, completion = run_contention(2, kind, seed=seed, message_delay=fixed_hop)
    assert calls == 3
    assert completion == pytest.approx(0.080 + expected_pause)


@pytest.mark.parametrize("n", range(1, 13))
def test_lockstep_clients_do_quadratic_work(n: int) -> None:
    # In lockstep every round all remaining clients read the same version and exactly one
    # write wins: n + (n-1) + ... + 1 calls, n rounds of 40 ms. Plain exponential adds the
    # same pause to everyone after round j: min(cap, base * 2**j); n = 12 reaches the cap.
    calls, completion = run_contention(n, "none", seed=0, message_delay=fixed_hop)
    assert calls == n * (n + 1) // 2
    assert completion == pytest.approx(4 * HOP * n)

    calls, completion = run_contention(n, "exponential", seed=0, message_delay=fixed_hop)
    pauses = sum(min(CAP, BASE * 2**j) for j in range(1, n))
    assert calls == n * (n + 1) // 2
    assert completion == pytest.approx(4 * HOP * n + pauses)


# --- the blog's published findings ------------------------------------------------------


@pytest.fixture(scope="module")
def moderate() -> dict[tuple[str, int], dict]:
    rows = run_lab([10, 30, 50, 100], ALL_KINDS, runs=30, seed=2015)
    return {(row["kind"], row["clients"]): row for row in rows}


def calls(cells, kind: str, n: int) -> float:
    return cells[kind, n]["calls_mean"]


def completion(cells, kind: str, n: int) -> float:
    return cells[kind, n]["completion_mean"]


JITTERED = ("full_jitter", "equal_jitter", "decorrelated_jitter")


@pytest.mark.parametrize("n", [50, 100])
def test_unjittered_exponential_does_the_most_work_of_the_four(moderate, n: int) -> None:
    # "Both cut down work substantially relative to both the no-jitter approaches."
    for kind in JITTERED:
        assert calls(moderate, "exponential", n) > 1.3 * calls(moderate, kind, n)
        assert calls(moderate, "none", n) > 1.3 * calls(moderate, kind, n)


def test_full_jitter_halves_the_calls_at_one_hundred_clients(moderate) -> None:
    # "In the case with 100 contending clients, we've reduced our call count by more than
    # half" (full jitter against exponential backoff without jitter).
    assert calls(moderate, "full_jitter", 100) < 0.5 * calls(moderate, "exponential", 100)


@pytest.mark.parametrize("n", [50, 100])
def test_work_ranking_among_the_jittered(moderate, n: int) -> None:
    # "the number of calls is approximately the same for Full and Equal jitter, and higher
    # for Decorrelated"; Equal Jitter "does slightly more work than Full Jitter". So Equal
    # sits between Full and exponential, within a small factor of Full.
    full = calls(moderate, "full_jitter", n)
    equal = calls(moderate, "equal_jitter", n)
    assert full < equal < calls(moderate, "exponential", n)
    assert equal < 1.25 * full
    assert calls(moderate, "decorrelated_jitter", n) > full


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_work_grows_with_contention(moderate, kind: str) -> None:
    # Work grows about as N squared: every retry round is lost by all but one contender.
    series = [calls(moderate, kind, n) for n in (10, 30, 50, 100)]
    assert series == sorted(series)
    assert len(set(series)) == len(series)
    # Ten times the clients, well over ten times the work (superlinear growth).
    assert series[-1] > 10 * series[0]


@pytest.mark.parametrize("n", [50, 100])
def test_unjittered_exponential_is_the_clear_loser_on_time(moderate, n: int) -> None:
    # "It not only takes more work, but also takes more time than the jittered approaches.
    # In fact, it takes so much more time we have to leave it off the graph."
    for kind in JITTERED:
        assert completion(moderate, "exponential", n) > 3 * completion(moderate, kind, n)


@pytest.mark.parametrize("n", [50, 100])
def test_equal_jitter_is_the_slowest_jittered_approach(moderate, n: int) -> None:
    # "Of the jittered approaches, Equal Jitter is the loser. It does slightly more work
    # than Full Jitter, and takes much longer."
    for kind in ("full_jitter", "decorrelated_jitter"):
        assert completion(moderate, "equal_jitter", n) > 1.1 * completion(moderate, kind, n)


def test_full_jitter_takes_slightly_more_time_than_decorrelated(moderate) -> None:
    # "The Full Jitter approach uses less work, but slightly more time." The blog calls this
    # trade-off "less clear", so it is checked only at N=50 where the gap is wide.
    assert completion(moderate, "full_jitter", 50) > completion(moderate, "decorrelated_jitter", 50)
    assert calls(moderate, "full_jitter", 50) < calls(moderate, "decorrelated_jitter", 50)


# --- determinism and the lab API ---------------------------------------------------------

SMALL = {"clients": [5, 20], "kinds": ("exponential", "full_jitter", "none"), "runs": 5}


def test_same_seed_gives_identical_rows() -> None:
    assert run_lab(**SMALL, seed=3) == run_lab(**SMALL, seed=3)
    assert run_lab(**SMALL, seed=3) != run_lab(**SMALL, seed=4)


def test_process_pool_gives_the_same_rows_as_one_process() -> None:
    assert run_lab(**SMALL, seed=11, jobs=2) == run_lab(**SMALL, seed=11, jobs=1)


def test_rows_are_means_over_runs_with_derived_seeds() -> None:
    rows = run_lab([20], ["equal_jitter"], runs=7, seed=5)
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == set(ROW_FIELDS)
    results = [run_contention(20, "equal_jitter", seed=derive_seed(5, 20, r)) for r in range(7)]
    assert row["runs"] == 7
    assert row["calls_mean"] == statistics.fmean(c for c, _ in results)
    assert row["calls_sd"] == statistics.stdev(c for c, _ in results)
    assert row["completion_mean"] == statistics.fmean(t for _, t in results)
    assert row["completion_sd"] == statistics.stdev(t for _, t in results)


def test_rows_follow_kinds_then_clients_order_and_report_progress() -> None:
    seen: list[tuple[int, int]] = []
    rows = run_lab([20, 5], ["none", "exponential"], runs=2, seed=0, progress=_append(seen))
    assert [(r["kind"], r["clients"]) for r in rows] == [
        ("none", 20),
        ("none", 5),
        ("exponential", 20),
        ("exponential", 5),
    ]
    assert seen == [(2, 8), (4, 8), (6, 8), (8, 8)]


def _append(sink: list[tuple[int, int]]):
    return lambda done, total: sink.append((done, total))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kinds": ["bogus"]},
        {"clients": [0]},
        {"clients": []},
        {"runs": 0},
        {"jobs": 0},
    ],
)
def test_run_lab_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        run_lab(**{"clients": [5], "runs": 1, **kwargs})


def test_run_contention_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_contention(0, "full_jitter", seed=0)
    with pytest.raises(ValueError):
        run_contention(3, "bogus", seed=0)


def test_write_lab_writes_csv_plots_and_summary(tmp_path) -> None:
    rows = run_lab(**SMALL, seed=0)
    paths = write_lab(rows, tmp_path / "out")
    names = [p.name for p in paths]
    assert names == ["lab.csv", "lab_calls.png", "lab_completion.png", "lab.md"]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
    for png in paths[1:3]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with paths[0].open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        assert got["kind"] == want["kind"]
        assert int(got["clients"]) == want["clients"]
        assert float(got["calls_mean"]) == want["calls_mean"]  # repr round-trips exactly
        assert float(got["completion_sd"]) == want["completion_sd"]
    summary = paths[3].read_text()
    assert "| N | exponential | full_jitter | none |" in summary


def test_cli_runs_a_small_grid(tmp_path) -> None:
    out = tmp_path / "lab"
    result = CliRunner().invoke(
        app,
        [
            *("backoff", "--n-min", "5", "--n-max", "15", "--n-step", "5", "--runs", "3"),
            *("--with-none", "--jobs", "1", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "lab.csv",
        "lab.md",
        "lab_calls.png",
        "lab_completion.png",
    ]
    with (out / "lab.csv").open(newline="") as handle:
        kinds = {row["kind"] for row in csv.DictReader(handle)}
    assert kinds == set(ALL_KINDS)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--n-min", "20", "--n-max", "10"], "--n-max"),
        (["--kinds", "exponential,bogus"], "--kinds"),
    ],
)
def test_cli_reports_bad_input_as_input_error(tmp_path, args: list[str], field: str) -> None:
    from harness.inputs import InputError

    result = CliRunner().invoke(app, ["backoff", *args, "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, InputError)
    assert result.exception.field == field
    assert not (tmp_path / "x").exists()
