"""Parameter sweeps: one scenario run over a grid of overrides, repeated over seeds.

``promoharness sweep`` answers "what if" questions across many values at once: the grid
is the cartesian product of the ``--vary key=v1,v2,...`` lists (keys are scenario paths as
in ``--set``), and each cell runs ``repeats`` times with seeds ``seed, seed+1, ...`` — the
same seeds in every cell, so cells differ by the varied values and not by luck.

Every cell is validated before any run starts, so a typo fails fast (exit 2). Runs go to
a process pool; each worker loads the scenario itself from (path, overrides) and returns
one flat row of headline figures, never the event log. Rows are sorted by cell then seed,
so the results do not depend on ``jobs``. ``harness.report.sweep_report`` writes them.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.inputs import InputError, parse_value
from harness.metrics.summary import HEADLINE_FIGURES
from harness.scenario import Scenario, load_scenario, parse_override, scenario_path

__all__ = [
    "HEADLINE_FIGURES",
    "RunProgress",
    "RunSpec",
    "Vary",
    "cell_table",
    "counter",
    "expand_grid",
    "figures_of",
    "parse_vary",
    "run_grid",
    "run_one",
    "runs_done",
    "validate_grid",
]

# Columns of a run row that are not figures.
CELL_COLUMN = "cell"
SEED_COLUMN = "seed"
# A run's failed SLOs by name ("|"-joined), so a report can say which SLO failed.
FAILED_COLUMN = "failed_slos"
DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Vary:
    """One ``--vary`` option: a scenario path and the values it takes, in the given order."""

    key: str
    raw: tuple[str, ...]  # as typed, so a worker's override parses exactly like --set
    values: tuple[Any, ...]

    def override(self, index: int) -> str:
        return f"{self.key}={self.raw[index]}"


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of the grid. Plain data only: it crosses the process boundary by pickle."""

    cell: int
    values: tuple[tuple[str, Any], ...]
    overrides: tuple[str, ...]
    seed: int


def parse_vary(text: str) -> Vary:
    """``key=v1,v2,...`` -> Vary; values are YAML scalars (so ``10`` is int, ``fixed`` str)."""
    if "=" not in text:
        raise InputError(f"expects key=v1,v2,..., got {text!r}", field="--vary")
    key, rest = text.split("=", 1)
    key = key.strip()
    try:
        parse_override(f"{key}=0")  # the same key rules as --set (no empty segments)
    except InputError as exc:
        raise InputError(exc.reason.replace("--set ", ""), field="--vary") from None
    if key == "seed":
        # A varied seed would be overwritten by the per-run seeds; say so instead.
        raise InputError("vary the seed with --seed and --repeats", field=f"--vary {key}")
    raw = tuple(part.strip() for part in rest.split(","))
    if not rest.strip() or any(part == "" for part in raw):
        raise InputError(f"empty value in {text!r}", field=f"--vary {key}")
    values: list[Any] = []
    for part in raw:
        value = parse_value(part, f"--vary {key}")
        if isinstance(value, dict | list):
            raise InputError(f"values must be scalars, got {part!r}", field=f"--vary {key}")
        values.append(value)
    if len(set(map(repr, values))) != len(values):
        raise InputError(f"a value is repeated in {rest!r}", field=f"--vary {key}")
    return Vary(key, raw, tuple(values))


def expand_grid(varies: Sequence[Vary], repeats: int, seed: int) -> list[RunSpec]:
    """The cartesian product of the varied values (first key slowest) times the seeds."""
    if repeats < 1:
        raise InputError("must be at least 1", field="--repeats")
    keys = [v.key for v in varies]
    if len(set(keys)) != len(keys):
        raise InputError("a key is varied twice; give all its values in one --vary", field="--vary")
    specs: list[RunSpec] = []
    indices = itertools.product(*(range(len(v.values)) for v in varies))
    for cell, combo in enumerate(indices):
        values = tuple((v.key, v.values[i]) for v, i in zip(varies, combo, strict=True))
        overrides = tuple(v.override(i) for v, i in zip(varies, combo, strict=True))
        for r in range(repeats):
            specs.append(RunSpec(cell, values, overrides, seed + r))
    return specs


def validate_grid(
    scenario: str | Path | None, base: Sequence[str], varies: Sequence[Vary]
) -> tuple[Path, Scenario]:
    """Load the base scenario and every cell's, so a bad key or value fails before any run.

    Each value is tried alone first, so the error names the ``--vary`` key at fault;
    then every combination, for values that are only wrong together (uniform low > high).
    Returns the scenario file (absolute, for the workers) and the base scenario.
    """
    path = scenario_path(scenario).resolve()
    chosen = load_scenario(path, list(base))
    for vary in varies:
        for i in range(len(vary.values)):
            option = f"--vary {vary.key}={vary.raw[i]}"
            try:
                load_scenario(path, [*base, vary.override(i)])
            except InputError as exc:
                if exc.field == f"--set {vary.override(i)}":  # the value itself is wrong
                    raise InputError(exc.reason, field=option) from None
                raise InputError(str(exc), field=option) from None
    if len(varies) > 1:
        for spec in {s.cell: s for s in expand_grid(varies, 1, 0)}.values():
            try:
                load_scenario(path, [*base, *spec.overrides])
            except InputError as exc:
                raise InputError(
                    str(exc), field=f"--vary combination {', '.join(spec.overrides)}"
                ) from None
    return path, chosen


def figures_of(extra: Sequence[str]) -> tuple[str, ...]:
    """Headline figures then the user's --metric paths, each once, in that order."""
    for metric in extra:
        if not metric or any(not part for part in metric.split(".")):
            raise InputError(f"not a dotted summary path: {metric!r}", field="--metric")
    return tuple(dict.fromkeys([*HEADLINE_FIGURES, *extra]))


def _flat(value: Any) -> Any:
    # A path may name a whole section (a dict or list); a CSV cell needs one value.
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def run_one(
    path: str, base: tuple[str, ...], spec: RunSpec, figures: tuple[str, ...]
) -> dict[str, Any]:
    """Worker: load, simulate, and keep one flat row (the event log stays in the worker)."""
    from harness.metrics.slo import resolve
    from harness.runner import simulate

    scenario = load_scenario(path, [*base, *spec.overrides])
    summary = simulate(scenario, seed=spec.seed).summary
    row: dict[str, Any] = {CELL_COLUMN: spec.cell, **dict(spec.values), SEED_COLUMN: spec.seed}
    for figure in figures:
        row[figure] = _flat(resolve(summary, figure))
    row[FAILED_COLUMN] = "|".join(r["name"] for r in summary["slos"] if not r["passed"])
    return row


def default_jobs(runs: int) -> int:
    return max(1, min(os.cpu_count() or 1, runs))


def run_grid(
    path: Path,
    base: Sequence[str],
    specs: Sequence[RunSpec],
    figures: Sequence[str],
    *,
    jobs: int | None = None,
    on_done: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Run every spec (``jobs`` processes; 1 = in this process) -> rows by cell then seed."""
    jobs = default_jobs(len(specs)) if jobs is None else max(1, min(jobs, len(specs)))
    args = (str(path), tuple(base))
    rows: list[dict] = []

    def done(row: dict) -> None:
        rows.append(row)
        if on_done is not None:
            on_done(row)

    if jobs == 1:
        for spec in specs:
            done(_with_context(spec, run_one, *args, spec, tuple(figures)))
    else:
        # spawn, not fork: the parent runs a progress-bar thread, and forking a threaded
        # process can deadlock; the simulation itself is independent of hash seeds.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures: dict[Future, RunSpec] = {
                pool.submit(run_one, *args, spec, tuple(figures)): spec for spec in specs
            }
            try:
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        done(_with_context(futures[future], future.result))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    rows.sort(key=lambda row: (row[CELL_COLUMN], row[SEED_COLUMN]))
    return pd.DataFrame(rows)


def _with_context(spec: RunSpec, fn: Callable[..., dict], *args: Any) -> dict:
    where = f"sweep cell {spec.cell} ({', '.join(spec.overrides)}), seed {spec.seed}"
    try:
        return fn(*args)
    except InputError as exc:
        # Some input is only checked while building the world (a fault's region): still
        # bad input (exit 2), and the user needs to know which cell carried it.
        raise InputError(str(exc), field=where) from None
    except Exception as exc:
        exc.add_note(where)
        raise


def is_numeric(column: pd.Series) -> bool:
    """True when every present value is a number or a bool (bools average to a share)."""
    present = [v for v in column if v is not None and not (isinstance(v, float) and v != v)]
    return all(isinstance(v, bool | int | float) for v in present)


def cell_table(runs: pd.DataFrame, keys: Sequence[str], figures: Sequence[str]) -> pd.DataFrame:
    """One row per cell: the varied values, runs, passed runs, then per figure
    mean, sd (sample, over repeats), min, max and n (runs where the figure exists)."""
    out: list[dict[str, Any]] = []
    for cell, group in runs.groupby(CELL_COLUMN, sort=True):
        first = group.iloc[0]
        row: dict[str, Any] = {CELL_COLUMN: cell, **{k: first[k] for k in keys}}
        row["runs"] = len(group)
        row["passed_runs"] = int(sum(bool(v) is True for v in group["passed"]))
        row[FAILED_COLUMN] = failed_slos(group)
        for figure in figures:
            column = group[figure]
            if is_numeric(column):
                x = pd.to_numeric(column.map(_number), errors="coerce").astype(float)
                # 6 decimals like summary.json, so the CSV shows no float noise.
                row[f"{figure}.mean"] = round(x.mean(), DECIMALS)
                row[f"{figure}.sd"] = round(x.std(ddof=1), DECIMALS)
                row[f"{figure}.min"] = x.min()
                row[f"{figure}.max"] = x.max()
                row[f"{figure}.n"] = int(x.notna().sum())
            else:
                seen = sorted({str(v) for v in column if v is not None})
                row[f"{figure}.values"] = "|".join(seen)
        out.append(row)
    return pd.DataFrame(out)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


def failed_slos(group: pd.DataFrame) -> str:
    """The SLOs that failed in a cell's runs, each with its count: "leakage (2/3); ..."."""
    if FAILED_COLUMN not in group.columns:
        return ""
    counts: dict[str, int] = {}
    for text in group[FAILED_COLUMN]:
        for name in str(text or "").split("|"):
            if name:
                counts[name] = counts.get(name, 0) + 1
    return "; ".join(f"{name} ({n}/{len(group)})" for name, n in counts.items())


def failed_cells(cells: pd.DataFrame) -> int:
    return int((cells["passed_runs"] < cells["runs"]).sum())


def runs_done(done: float, total: float) -> str:
    """Progress text for a sweep's runs: "3/12 runs"."""
    return f"{done:.0f}/{total:.0f} runs"


def counter(tick: Callable[[float], None]) -> Callable[[dict], None]:
    """An ``on_done`` for ``run_grid`` that reports the number of finished runs to ``tick``."""
    done = itertools.count(1)
    return lambda _row: tick(next(done))


class RunProgress:
    """A rich progress bar over runs (completed/total, elapsed), on the given console."""

    def __init__(self, total: int, console: Any, *, quiet: bool = False) -> None:
        self.total = total
        self.console = console
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[dict], None]:
        if self.quiet:
            return lambda _row: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("sweep", total=self.total)
        return lambda _row: self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
