"""Parameter sweeps: one scenario run over a grid of overrides, repeated over seeds.

``promoharness sweep`` answers "what if" questions across many values at once: the grid
is the cartesian product of the ``--vary key=v1,v2,...`` lists (keys are scenario paths as
in ``--set``), and each cell runs ``repeats`` times with seeds ``seed, seed+1, ...`` — the
same seeds in every cell, so cells differ by the varied values and not by luck.

Every cell is validated before any run starts, so a typo fails fast (exit 2). Runs go to
Dask workers through ``harness.distributed.map_cells`` (an embedded local cluster, or an
existing one given ``--scheduler``); each gets its cell's loaded scenario and a seed and
returns one flat row of headline figures, never the event log. Rows are sorted by cell
then seed, so the results do not depend on ``jobs`` or on which workers ran them. A run
that fails twice is kept as a row naming its error. ``harness.report.sweep_report``
writes them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.inputs import InputError, parse_value
from harness.metrics.summary import HEADLINE_FIGURES
from harness.scenario import Scenario, load_scenario, parse_override, scenario_path

__all__ = [
    "HEADLINE_FIGURES",
    "RunSpec",
    "Vary",
    "cell_table",
    "counter",
    "expand_grid",
    "figures_of",
    "grid_jobs",
    "parse_vary",
    "run_errors",
    "run_grid",
    "run_job",
    "run_one",
    "runs_done",
    "validate_grid",
]

# Columns of a run row that are not figures.
CELL_COLUMN = "cell"
SEED_COLUMN = "seed"
# A run's failed SLOs by name ("|"-joined), so a report can say which SLO failed.
FAILED_COLUMN = "failed_slos"
# Why a run has no figures: it failed every attempt (only present when one did).
ERROR_COLUMN = "error"
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


def run_one(scenario: Scenario, spec: RunSpec, figures: tuple[str, ...]) -> dict[str, Any]:
    """Worker: simulate one run and keep one flat row (the event log stays in the worker).

    The cell's scenario arrives loaded (the driver loaded and checked it), so a worker on
    another machine needs promoharness, not the scenario file.
    """
    from harness.metrics.slo import resolve
    from harness.runner import simulate

    summary = simulate(scenario, seed=spec.seed).summary
    row: dict[str, Any] = {CELL_COLUMN: spec.cell, **dict(spec.values), SEED_COLUMN: spec.seed}
    for figure in figures:
        row[figure] = _flat(resolve(summary, figure))
    row[FAILED_COLUMN] = "|".join(r["name"] for r in summary["slos"] if not r["passed"])
    return row


Job = tuple[Scenario, RunSpec, tuple[str, ...]]


def grid_jobs(
    path: Path, base: Sequence[str], specs: Sequence[RunSpec], figures: Sequence[str]
) -> list[Job]:
    """What each run needs, as plain data for a worker: its cell's scenario, loaded here
    once per cell (a worker on another machine needs no scenario file, but does read a
    replay trace, at its absolute path), spec and figures."""
    loaded: dict[int, Scenario] = {}
    for spec in specs:
        if spec.cell not in loaded:
            loaded[spec.cell] = _trace_pinned(load_scenario(path, [*base, *spec.overrides]))
    return [(loaded[spec.cell], spec, tuple(figures)) for spec in specs]


def _trace_pinned(scenario: Scenario) -> Scenario:
    """A replay trace is read by the worker when its run starts, not shipped: name it by
    the absolute path this process checked, never relative to a worker's own folder."""
    traffic = scenario.traffic
    if traffic.kind != "replay" or not traffic.file:
        return scenario
    from harness.runtime.sim import resolve_trace

    pinned = str(resolve_trace(traffic.file).resolve())
    return scenario.model_copy(update={"traffic": traffic.model_copy(update={"file": pinned})})


def run_job(job: Job) -> dict[str, Any]:
    """One cell of ``map_cells``: ``run_one``, bad input named with the run it came from."""
    scenario, spec, figures = job
    try:
        return run_one(scenario, spec, figures)
    except InputError as exc:
        # Some input is only checked while building the world (a fault's region): still
        # bad input (exit 2), and the user needs to know which cell carried it.
        raise InputError(str(exc), field=where(spec)) from None


def where(spec: RunSpec) -> str:
    """A run as the user reads it: cell, its overrides and the seed."""
    return f"sweep cell {spec.cell} ({', '.join(spec.overrides)}), seed {spec.seed}"


def default_jobs(runs: int) -> int:
    from harness.distributed import available_cpus

    return max(1, min(available_cpus(), runs))


def run_grid(
    path: Path,
    base: Sequence[str],
    specs: Sequence[RunSpec],
    figures: Sequence[str],
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    on_done: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Run every spec -> one row per run, by cell then seed, whatever ran them.

    Runs go to ``harness.distributed.map_cells``: an embedded Dask cluster of ``jobs``
    worker processes (1 = in this process), or the cluster at ``scheduler``. A run that
    fails twice (an exception, or its worker dying twice) is kept as a row with its
    ``error`` column set and no figures, so it is reported, not lost; that column exists
    only when some run failed. Bad input found during a run raises InputError.
    """
    from harness.distributed import map_cells

    jobs = default_jobs(len(specs)) if jobs is None else max(1, min(jobs, len(specs)))
    jobs_in = grid_jobs(path, base, specs, figures)

    def done(index: int, row: dict | None) -> None:
        if on_done is not None:
            on_done(row if row is not None else _error_row(specs[index], figures, ""))

    mapped = map_cells(
        run_job, jobs_in, scheduler=scheduler, jobs=jobs, on_done=done, fatal=(InputError,)
    )
    rows = list(mapped.results)
    for failure in mapped.failures:
        spec = specs[failure.index]
        error = f"failed {failure.attempts} times, last: {failure.error}"
        rows[failure.index] = _error_row(spec, figures, error)
    rows.sort(key=lambda row: (row[CELL_COLUMN], row[SEED_COLUMN]))
    return pd.DataFrame(rows)


def _error_row(spec: RunSpec, figures: Sequence[str], error: str) -> dict[str, Any]:
    row: dict[str, Any] = {CELL_COLUMN: spec.cell, **dict(spec.values), SEED_COLUMN: spec.seed}
    row.update(dict.fromkeys(figures))
    row[FAILED_COLUMN] = ""
    row[ERROR_COLUMN] = error
    return row


def run_errors(runs: pd.DataFrame, specs: Sequence[RunSpec]) -> list[str]:
    """One line per run that never completed: where it was and its last error."""
    if ERROR_COLUMN not in runs.columns:
        return []
    by_key = {(s.cell, s.seed): s for s in specs}
    lines = []
    for _, row in runs.iterrows():
        if isinstance(row[ERROR_COLUMN], str) and row[ERROR_COLUMN]:
            spec = by_key[int(row[CELL_COLUMN]), int(row[SEED_COLUMN])]
            lines.append(f"{where(spec)}: {row[ERROR_COLUMN]}")
    return lines


def is_numeric(column: pd.Series) -> bool:
    """True when every present value is a number or a bool (bools average to a share)."""
    present = [v for v in column if v is not None and not (isinstance(v, float) and v != v)]
    return all(isinstance(v, bool | int | float) for v in present)


def cell_table(runs: pd.DataFrame, keys: Sequence[str], figures: Sequence[str]) -> pd.DataFrame:
    """One row per cell: the varied values, runs, passed runs (errored runs, when a run
    failed every attempt), then per figure mean, sd (sample, over repeats), min, max and
    n (runs where the figure exists)."""
    out: list[dict[str, Any]] = []
    for cell, group in runs.groupby(CELL_COLUMN, sort=True):
        first = group.iloc[0]
        row: dict[str, Any] = {CELL_COLUMN: cell, **{k: first[k] for k in keys}}
        row["runs"] = len(group)
        row["passed_runs"] = int(sum(bool(v) is True for v in group["passed"]))
        if ERROR_COLUMN in group.columns:  # runs that failed every attempt: no figures
            row["errored_runs"] = int(group[ERROR_COLUMN].map(_is_error).sum())
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


def _is_error(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


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
