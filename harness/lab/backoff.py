"""Backoff lab: Brooker's optimistic-concurrency contention experiment, run with our Backoff.

Re-runs the experiment of the AWS Architecture Blog post "Exponential Backoff And Jitter"
(Marc Brooker, 2015) in SimPy virtual time, with ``harness.orchestrator.delivery.Backoff``
choosing every retry delay, so the policy the orchestrator ships is the one measured.

The model: N clients start together at t=0 and each wants to update one versioned row
once. A client reads the row's version, then writes; the write fails when the version
moved since that client's read. On failure it backs off (``Backoff.delay`` with attempt =
failures so far; decorrelated jitter threads ``previous`` from ``base``) and starts over
with a fresh read. Every one-way message (read request, read reply, write request, write
reply) takes |Normal(10 ms, 2 ms)| drawn from the run's seeded rng; the server answers
instantly in arrival order and checks the version when the write arrives.

Figures per (strategy, N): ``calls`` = write attempts by all clients (the blog's "work");
completion = when the last client learns its write succeeded.
"""

from __future__ import annotations

import csv
import hashlib
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import simpy

from harness.distributed import CellsFailed, map_cells
from harness.orchestrator.delivery import Backoff

__all__ = [
    "DEFAULT_CLIENTS",
    "DEFAULT_KINDS",
    "ROW_FIELDS",
    "derive_seed",
    "normal_delay",
    "plot_lab",
    "run_contention",
    "run_lab",
    "write_lab",
]

DEFAULT_CLIENTS: range = range(10, 200, 10)
DEFAULT_KINDS: tuple[str, ...] = (
    "exponential",
    "full_jitter",
    "equal_jitter",
    "decorrelated_jitter",
)
ROW_FIELDS: tuple[str, ...] = (
    "kind",
    "clients",
    "calls_mean",
    "calls_sd",
    "completion_mean",
    "completion_sd",
    "runs",
)

# The blog's network: one-way delay |Normal(10 ms, sd 2 ms)|.
NET_MEAN = 0.010
NET_SD = 0.002

MessageDelay = Callable[[random.Random], float]


def normal_delay(rng: random.Random) -> float:
    """One one-way message delay, |Normal(10 ms, 2 ms)| in seconds (the blog's ``Net``)."""
    # gauss rather than normalvariate: cheaper, and just as reproducible for a seeded rng.
    return abs(rng.gauss(NET_MEAN, NET_SD))


def derive_seed(master: int, n_clients: int, run: int) -> int:
    """Seed of one run, a pure function of (master seed, N, run index).

    The strategy is deliberately left out: every strategy faces the same network draws up
    to its first retry (common random numbers), which sharpens the comparison between
    them. Hashing (not ``hash()``) keeps it stable across processes and Python builds.
    """
    digest = hashlib.blake2b(f"backoff-lab:{master}:{n_clients}:{run}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def run_contention(
    n_clients: int,
    kind: str,
    *,
    base: float = 0.005,
    cap: float = 2.0,
    seed: int,
    message_delay: MessageDelay | None = None,
) -> tuple[int, float]:
    """One contention run: (write calls by all clients, completion time in seconds).

    ``message_delay(rng)`` gives each one-way delay; the default is the blog's network.
    Tests inject a constant to derive results by hand.
    """
    if not (isinstance(n_clients, int) and n_clients >= 1):
        raise ValueError(f"n_clients: must be an integer >= 1, got {n_clients!r}")
    backoff = Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]  # validates kind
    net = normal_delay if message_delay is None else message_delay
    rng = random.Random(seed)
    env = simpy.Environment()
    # The server is plain state: the row's version and the write counter. Each client is one
    # SimPy process whose timeouts end exactly when its requests reach the server, so the
    # server's work happens inline, in SimPy's (time, scheduling order) = arrival order.
    version = [0]
    calls = [0]
    finished: list[float] = []
    delay_of = backoff.delay
    timeout = env.timeout

    def client() -> Any:
        failures = 0
        previous = base
        # The first read request leaves at t=0.
        yield timeout(net(rng))
        while True:
            seen = version[0]  # read request arrives: the server reads the version
            # Read reply back to the client, which sends the write at once: one wait.
            yield timeout(net(rng) + net(rng))
            calls[0] += 1  # write request arrives: the version check happens now
            if version[0] == seen:
                version[0] = seen + 1
                # Nothing else depends on the success reply, so it needs no event.
                finished.append(env.now + net(rng))
                return
            failures += 1
            # Write reply back, back off, then the next read request out: one wait. The
            # draws happen now rather than when the reply lands; the values are the same
            # kind of independent draws, and no other event can change this client's path.
            reply = net(rng)
            pause = delay_of(failures, previous, rng)
            previous = pause
            yield timeout(reply + pause + net(rng))

    for _ in range(n_clients):
        env.process(client())
    env.run()
    return calls[0], max(finished)


def _run_cell(
    kind: str, n_clients: int, runs: int, seed: int, base: float, cap: float
) -> dict[str, Any]:
    """All runs of one (strategy, N) cell; top level so a Dask worker can unpickle it."""
    calls: list[int] = []
    times: list[float] = []
    for r in range(runs):
        c, t = run_contention(
            n_clients, kind, base=base, cap=cap, seed=derive_seed(seed, n_clients, r)
        )
        calls.append(c)
        times.append(t)
    sd = statistics.stdev if runs > 1 else (lambda _values: 0.0)
    return {
        "kind": kind,
        "clients": n_clients,
        "calls_mean": statistics.fmean(calls),
        "calls_sd": sd(calls),
        "completion_mean": statistics.fmean(times),
        "completion_sd": sd(times),
        "runs": runs,
    }


def run_lab(
    clients: Sequence[int] = DEFAULT_CLIENTS,
    kinds: Sequence[str] = DEFAULT_KINDS,
    runs: int = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    *,
    base: float = 0.005,
    cap: float = 2.0,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Mean and sample sd of calls and completion per (strategy, N), ``runs`` runs each.

    Rows come in ``kinds`` order, then ``clients`` order, whatever ``jobs`` is: each run's
    seed depends only on (seed, N, run), so ``jobs`` local Dask workers (1 = this process)
    or the cluster at ``scheduler`` give the same rows as one process. A cell is retried
    once (``harness.distributed``); one that fails twice raises ``CellsFailed`` naming it.
    ``progress(done, total)`` is called after each finished cell, in runs.
    """
    clients = list(clients)
    kinds = list(kinds)
    if not (isinstance(runs, int) and runs >= 1):
        raise ValueError(f"runs: must be an integer >= 1, got {runs!r}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs: must be an integer >= 1, got {jobs!r}")
    if not clients or not kinds:
        raise ValueError("clients and kinds must not be empty")
    for n in clients:
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"clients: every N must be an integer >= 1, got {n!r}")
    for kind in kinds:
        Backoff(kind=kind, base=base, cap=cap)  # type: ignore[arg-type]  # fail before forking

    cells = [(kind, n) for kind in kinds for n in clients]
    total = len(cells) * runs
    # Biggest N first: those cells dominate the run time, and starting them early keeps
    # the workers from ending on one straggler. Rows still come back in ``cells`` order.
    ordered = sorted(cells, key=lambda cell: -cell[1])
    done = 0

    def finished(_index: int, _row: Any) -> None:
        nonlocal done
        done += runs
        if progress is not None:
            progress(done, total)

    mapped = map_cells(
        partial(_lab_cell, runs=runs, seed=seed, base=base, cap=cap),
        ordered,
        scheduler=scheduler,
        jobs=jobs,
        on_done=finished,
    )
    if mapped.failures:
        raise CellsFailed(
            [f"{ordered[f.index][0]} N={ordered[f.index][1]}: {f.error}" for f in mapped.failures]
        )
    results = dict(zip(ordered, mapped.results, strict=True))
    return [results[cell] for cell in cells]


def _lab_cell(
    cell: tuple[str, int], *, runs: int, seed: int, base: float, cap: float
) -> dict[str, Any]:
    kind, n_clients = cell
    return _run_cell(kind, n_clients, runs, seed, base, cap)


def _by_kind(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["kind"], []).append(row)
    for series in grouped.values():
        series.sort(key=lambda row: row["clients"])
    return grouped


def plot_lab(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Two PNGs, calls vs N and completion time vs N, one line per strategy."""
    import matplotlib

    # Agg: no display on CI machines, and no GUI backend picked up from the environment.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grouped = _by_kind(rows)
    # Completion goes on a log scale: un-jittered exponential takes over ten times longer
    # than the rest (the blog leaves it off its graph), which would flatten the other lines.
    figures = (
        (
            "calls_mean",
            "calls_sd",
            1.0,
            False,
            "write calls (all clients)",
            "Work",
            "lab_calls.png",
        ),
        (
            "completion_mean",
            "completion_sd",
            1000.0,
            True,
            "completion time (ms, log scale)",
            "Completion time",
            "lab_completion.png",
        ),
    )
    paths: list[Path] = []
    for mean_key, sd_key, scale, log, ylabel, title, name in figures:
        fig, ax = plt.subplots(figsize=(8, 5))
        for kind, series in grouped.items():
            xs = [row["clients"] for row in series]
            ys = [row[mean_key] * scale for row in series]
            sds = [row[sd_key] * scale for row in series]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=kind)
            # A ±1 sd band shows how far apart the strategies really are run to run.
            ax.fill_between(
                xs,
                [y - s for y, s in zip(ys, sds, strict=True)],
                [y + s for y, s in zip(ys, sds, strict=True)],
                color=line.get_color(),
                alpha=0.12,
                linewidth=0,
            )
        runs = sorted({row["runs"] for row in rows})
        ax.set_title(f"{title} vs contending clients (mean of {'/'.join(map(str, runs))} runs)")
        ax.set_xlabel("clients")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _summary_markdown(rows: Sequence[dict[str, Any]]) -> str:
    grouped = _by_kind(rows)
    kinds = list(grouped)
    all_n = sorted({row["clients"] for row in rows})
    cell = {(row["kind"], row["clients"]): row for row in rows}
    runs = sorted({row["runs"] for row in rows})

    def table(key: str, scale: float, fmt: str) -> list[str]:
        lines = ["| N | " + " | ".join(kinds) + " |", "|---:|" + "---:|" * len(kinds)]
        for n in all_n:
            values = []
            for kind in kinds:
                row = cell.get((kind, n))
                values.append("—" if row is None else format(row[key] * scale, fmt))
            lines.append(f"| {n} | " + " | ".join(values) + " |")
        return lines

    parts = [
        "# Backoff lab: optimistic-concurrency contention",
        "",
        'Brooker\'s experiment (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015)',
        "re-run with promoharness's `Backoff`: N clients read-then-write one versioned row;",
        "a write fails if another write landed since the read; failed clients back off and",
        "retry. One-way delays |Normal(10 ms, 2 ms)|; means over "
        + "/".join(map(str, runs))
        + " runs per cell.",
        "",
        "## Work: write calls by all clients (mean)",
        "",
        *table("calls_mean", 1.0, ".1f"),
        "",
        "## Completion: time until the last client's write succeeded (mean, ms)",
        "",
        *table("completion_mean", 1000.0, ".1f"),
        "",
        "Plots: `lab_calls.png`, `lab_completion.png`; every figure with its sd in `lab.csv`.",
        "",
    ]
    return "\n".join(parts)


def write_lab(rows: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write lab.csv, the two PNGs and lab.md into ``out_dir``; return the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "lab.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    pngs = plot_lab(rows, out_dir)
    md_path = out_dir / "lab.md"
    md_path.write_text(_summary_markdown(rows), encoding="utf-8")
    return [csv_path, *pngs, md_path]
