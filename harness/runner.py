"""One virtual-time run end to end: scenario -> world -> SimPy -> event log -> figures -> report.

Used by ``promoharness run``, by ``sweep`` (one call per grid cell, in worker processes)
and by the tests. The output folder defaults to ``reports/<scenario>-<UTC timestamp>``;
``harness.report.run_report`` writes it, in this process or through a plot pool.

pandas, the metrics and the runtime are imported where used: ``run`` with a parallel
``PlotPool`` never imports pandas itself (``harness.report.handoff``), and a report
worker imports ``event_frame`` without the simulation's modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from harness.progress import Stages

if TYPE_CHECKING:
    import pandas as pd

    from harness.report.pool import PlotPool
    from harness.runtime.world import World
    from harness.scenario import Scenario

REPORTS_DIR = Path("reports")
EVENT_COLUMNS = (
    "t",
    "kind",
    "promo",
    "version",
    "endpoint",
    "channel",
    "region",
    "attempt",
    "outcome",
    "value",
    "detail",
)


# Above this many rows the command builds the frame itself and streams it to the workers
# (Arrow and numpy buffers) rather than pickling millions of Python objects for each.
HANDOFF_ROWS = 400_000


@dataclass
class RunResult:
    """``events`` is None when a pool's workers built the event log (``run_scenario``)."""

    summary: dict[str, Any]
    events: pd.DataFrame | None
    world: World
    out_dir: Path | None = None
    files: dict[str, Path] | None = None


def default_out_dir(scenario: str, base: Path = REPORTS_DIR) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = base / f"{scenario}-{stamp}"
    n = 1
    while out.exists():  # two runs in the same second must not share a folder
        n += 1
        out = base / f"{scenario}-{stamp}-{n}"
    return out


def validity_starts(world: World) -> dict[str, float]:
    """Each promotion's earliest opening over its in-scope endpoints, in scenario seconds."""
    t0 = world.scenario.start.timestamp()
    zones = {getattr(m, "timezone", None) for m in world.models.values() if m.channel == "pos"}
    out: dict[str, float] = {}
    for p in world.scenario.promotions:
        candidates = {p.validity.timezone}
        if p.validity.store_local and "pos" in p.scope.channels:
            candidates |= {z for z in zones if z}
        out[p.id] = min(
            p.validity.start.replace(tzinfo=ZoneInfo(z)).timestamp() - t0 for z in candidates
        )
    return out


def opening_windows(world: World) -> dict[str, tuple[float, float]]:
    """Promotions whose validity opens store-local across several zones: promo -> (first,
    last opening) in scenario seconds. Between the two, stores quote different prices by
    design (those whose local start has come, and the rest)."""
    t0 = world.scenario.start.timestamp()
    zones = {getattr(m, "timezone", None) for m in world.models.values() if m.channel == "pos"}
    zones.discard(None)
    out: dict[str, tuple[float, float]] = {}
    for p in world.scenario.promotions:
        if not (p.validity.store_local and "pos" in p.scope.channels) or len(zones) < 2:
            continue
        opens = [p.validity.start.replace(tzinfo=ZoneInfo(str(z))).timestamp() - t0 for z in zones]
        out[p.id] = (min(opens), max(opens))
    return out


def event_frame(
    records: list[Any], shopper_columns: Any | None, *, consume: bool = False
) -> pd.DataFrame:
    """Delivery records and shopper columns -> one event log, in time order.

    Rows at the same instant keep their order, delivery records first (a stable sort of
    the records followed by the shopper rows). ``consume`` empties each shopper list as
    soon as its column is built, so a peak day's lists and frame are not all alive at once.
    """
    from harness.metrics import to_frame

    if shopper_columns is None or not len(shopper_columns):
        return to_frame(to_frame(records).sort_values("t", kind="stable", ignore_index=True))
    return _merged_frame(to_frame(records), shopper_columns, consume)


def _merged_frame(rec: pd.DataFrame, c: Any, consume: bool) -> pd.DataFrame:
    """The normalised frame (``metrics.to_frame``'s dtypes) of ``rec`` then the shopper
    columns ``c``, stably sorted by time, built column by column from the shopper lists.

    A peak day has millions of shopper rows: going through a DataFrame of Python objects
    and a sort of it cost seconds and twice the memory. Here the order is found once on the
    times (numpy), each column is put in that order as a list of references (C speed), and
    becomes an Arrow string array, a categorical or a numpy array directly.
    """
    import operator

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from harness.domain.eventlog import COLUMNS, KINDS
    from harness.metrics import to_frame

    n_rec, n_shop = len(rec), len(c)
    times = np.concatenate([rec["t"].to_numpy(dtype=np.float64), np.asarray(c.t, np.float64)])

    def done(shop: Any) -> None:
        if consume and isinstance(shop, list):
            shop.clear()

    order = np.argsort(times, kind="stable")
    if n_rec + n_shop < 2:  # itemgetter of one index returns the item, not a tuple
        frame = to_frame(event_frame_slow(rec, c))
        for shop in vars(c).values():
            done(shop)
        return frame
    pick = operator.itemgetter(*order.tolist())
    text_dtype = pd.StringDtype("pyarrow", na_value=np.nan)

    def numbers(col: str, shop: Any, dtype: Any) -> np.ndarray:
        both = np.concatenate([rec[col].to_numpy(dtype=dtype), np.asarray(shop, dtype=dtype)])
        done(shop)
        return both[order]

    def labels(col: str, shop: list[Any]) -> Any:
        """The column in time order as an Arrow string array, "" for missing."""
        mine = rec[col].astype(object).tolist()
        merged = pick(mine + shop)
        done(shop)
        return pc.fill_null(pa.array(merged, type=pa.large_string()), "")

    def text(col: str, shop: list[Any]) -> pd.Series:
        return pd.Series(pd.arrays.ArrowStringArray(labels(col, shop), dtype=text_dtype))

    def categorical(col: str, shop: list[Any], known: frozenset[str]) -> pd.Series:
        encoded = labels(col, shop).dictionary_encode()
        seen = [str(x) for x in encoded.dictionary.to_pylist()]
        categories = sorted(known | set(seen))
        position = {v: i for i, v in enumerate(categories)}
        remap = np.array([position[v] for v in seen], dtype=np.int64)
        codes = remap[encoded.indices.to_numpy(zero_copy_only=False)]
        return pd.Series(pd.Categorical.from_codes(codes, categories=categories))

    done(c.t)
    columns = {
        "t": pd.Series(times[order]),
        "kind": categorical("kind", c.kind, KINDS),
        "promo": text("promo", c.promo),
        "version": pd.Series(numbers("version", c.version, np.int64)),
        "endpoint": text("endpoint", c.endpoint),
        "channel": categorical("channel", c.channel, frozenset()),
        "region": text("region", c.region),
        "attempt": pd.Series(numbers("attempt", np.zeros(n_shop, np.int64), np.int64)),
        "outcome": text("outcome", [""] * n_shop),
        "value": pd.Series(numbers("value", c.value, np.float64)),
        "detail": text("detail", c.detail),
    }
    frame = pd.DataFrame({k: columns[k] for k in COLUMNS}, index=pd.RangeIndex(n_rec + n_shop))
    return to_frame(frame)


def event_frame_slow(records: Any, shopper_columns: Any | None) -> pd.DataFrame:
    """``event_frame`` through one DataFrame of Python objects: the reference the fast
    path is tested against (and what it does for a log of fewer than two rows)."""
    import pandas as pd

    from harness.metrics import to_frame

    frames = [to_frame(records)]
    if shopper_columns is not None and len(shopper_columns):
        c = shopper_columns
        n = len(c)
        frames.append(
            to_frame(
                pd.DataFrame(
                    {
                        "t": c.t,
                        "kind": c.kind,
                        "promo": c.promo,
                        "version": c.version,
                        "endpoint": c.endpoint,
                        "channel": c.channel,
                        "region": c.region,
                        "attempt": [0] * n,
                        "outcome": [""] * n,
                        "value": c.value,
                        "detail": c.detail,
                    }
                )
            )
        )
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df.sort_values("t", kind="stable", ignore_index=True)
    return to_frame(df)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    progress: Callable[[float, float], None] | None = None,
    stages: Stages | None = None,
    on_events: Callable[[pd.DataFrame], None] | None = None,
) -> RunResult:
    """Run the scenario in virtual time and compute its figures (no files written).

    ``stages`` shows "simulating" (over simulated time) and "computing figures";
    ``progress(now, total)`` is also called with simulated seconds, for other callers;
    ``on_events(events)`` as soon as the event log exists, before the figures.
    """
    from harness.metrics import summarise

    stages = stages or Stages.off()
    world, records, shoppers = _simulate(scenario, seed, progress, stages)
    with stages.stage("computing figures"):
        events = event_frame(records, shoppers, consume=True)
        # The lists the frame was built from are garbage now: hundreds of MB on a peak day.
        del records, shoppers
        if on_events is not None:
            on_events(events)
        summary = summarise(events, **summary_args(scenario, world))
    return RunResult(summary, events, world)


def _simulate(
    scenario: Scenario,
    seed: int | None,
    progress: Callable[[float, float], None] | None,
    stages: Stages,
) -> tuple[World, list[Any], Any]:
    """The world, the delivery records and the shopper columns (or None) of one run."""
    from harness.runtime.sim import SimRuntime
    from harness.runtime.world import build_world

    world = build_world(scenario, seed)
    with stages.stage(f"simulating {scenario.name}", scenario.duration, fmt=_sim_hours) as tick:

        def both(now: float, total: float) -> None:
            tick(now, total)
            if progress is not None:
                progress(now, total)

        # Stepping the clock for progress costs a little: only when someone watches.
        watched = stages.enabled or progress is not None
        runtime = SimRuntime(world, progress=both if watched else None)
        records = runtime.run()
    shoppers = runtime.shoppers.columns if runtime.shoppers is not None else None
    return world, records, shoppers


def summary_args(scenario: Scenario, world: World) -> dict[str, Any]:
    """``metrics.summarise``'s keyword arguments for a virtual-time run of ``scenario``."""
    return {
        "scenario": scenario.name,
        "seed": world.seed,
        "mode": "sim",
        "slos": [s.model_dump(exclude={"expect"}) for s in scenario.slos],
        "budgets": world.budgets(),
        "starts": validity_starts(world),
        "windows": opening_windows(world),
    }


def _sim_hours(now: float, total: float) -> str:
    return f"t={now / 3600:.2f} h of {total / 3600:.2f} h"


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    out: Path | None = None,
    progress: Callable[[float, float], None] | None = None,
    stages: Stages | None = None,
    pool: PlotPool | None = None,
) -> RunResult:
    """Simulate and write the report folder (docs/architecture.md, "What a run writes").

    With a started ``pool`` (``harness.report.pool.PlotPool``) the plots render in its
    worker processes from the moment the event log exists, beside the figures and files.
    With a parallel pool and a log of at most ``HANDOFF_ROWS`` rows, the workers build
    the event log and the summary files too (``harness.report.handoff``): this process
    never imports pandas, and the result's ``events`` is None.
    """
    from harness.report.run_report import write_run

    out_dir = out or default_out_dir(scenario.name)
    if pool is not None and pool.parallel and not pool.submitted:
        stages = stages or Stages.off()
        world, records, shoppers = _simulate(scenario, seed, progress, stages)
        from harness.report.handoff import Handoff, ShopperLists
        from harness.report.run_report import figures_here, handed_off

        handoff = Handoff(records, None if shoppers is None else ShopperLists(shoppers))
        if handoff.rows <= HANDOFF_ROWS:
            return handed_off(scenario, world, handoff, out_dir, stages, pool)
        result = figures_here(scenario, world, handoff, out_dir, pool)
        return write_run(scenario, result, out_dir, stages, pool)

    def plot_early(events: pd.DataFrame) -> None:
        if pool is not None:
            from harness.report.plots import PLOTS

            out_dir.mkdir(parents=True, exist_ok=True)
            pool.submit(events, out_dir, list(PLOTS))

    result = simulate(scenario, seed=seed, progress=progress, stages=stages, on_events=plot_early)
    return write_run(scenario, result, out_dir, stages, pool)
