"""Recorded traces -> shopper traffic and an operator timeline, for replay against the estate.

A trace is a CSV or Parquet file of timestamped rows. Two shapes are understood:

* an event log of an earlier run (live or simulated; DESIGN's record columns): its
  ``sale`` rows replay the shopper traffic (``detail`` names the basket, ``b<n>`` from the
  scenario's basket pool) and its operator rows (create, submit, validate, approve,
  reject, schedule, publish, pause, resume, rollback, end, settle, reconcile, replay)
  replay the timeline;
* a sales export: columns ``t`` (seconds since the scenario start) and ``endpoint`` (a
  store id, ``web`` or the marketplace id) and ``basket`` as ``SKU:qty;SKU:qty``, plus an
  optional ``kind`` column (rows other than ``sale`` are ignored).

When the trace holds operator rows they replace the scenario's timeline; otherwise the
scenario's own timeline is kept. Problems name the file, the row and the column, and
``check_replay`` finds them all before a simulation starts: a time that is not a finite
number >= 0, an unknown endpoint, SKU, pool basket or promotion, a quantity outside 1 ..
``MAX_QUANTITY``, a scope that is not JSON of a scope, a deadline that is not a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from harness.domain.basket import Basket
from harness.inputs import InputError
from harness.scenario import Scenario, ScopeSpec, StepSpec
from simulators.erp import Product

if TYPE_CHECKING:  # imported where a trace is read: ``run`` without one never loads pandas
    import pandas as pd

OPERATOR_ACTIONS = (
    "create", "submit", "validate", "approve", "reject", "schedule", "publish", "pause",
    "resume", "rollback", "end", "settle", "reconcile", "replay",
)  # fmt: skip


# Limits on a trace, named in the error a file past them gets.
MAX_TRACE_BYTES = 512 * 1024 * 1024
MAX_TRACE_ROWS = 10_000_000
MAX_QUANTITY = 10_000  # units of one SKU in one basket line


@dataclass(frozen=True)
class Trace:
    sales: list[tuple[float, str, str]]  # (t, endpoint, basket key)
    steps: list[StepSpec]


@dataclass(frozen=True)
class Known:
    """What a trace may name, from the scenario's estate (a check before any simulation)."""

    skus: frozenset[str]
    pool: int  # baskets b0 .. b<pool-1>
    promos: frozenset[str]


def read_trace(path: str | Path) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError("no such trace file", path=path, field="traffic.file")
    if not path.is_file():
        raise InputError("not a regular file", path=path, field="traffic.file")
    size = path.stat().st_size
    if size > MAX_TRACE_BYTES:
        raise InputError(
            f"{size} bytes is larger than {MAX_TRACE_BYTES} (limit MAX_TRACE_BYTES)", path=path
        )
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, keep_default_na=False, dtype={"detail": str, "basket": str})
    except Exception as exc:  # pandas raises many kinds; all mean "not a readable trace"
        raise InputError(f"not a readable CSV/Parquet trace: {exc}", path=path) from None
    if len(df) > MAX_TRACE_ROWS:
        raise InputError(f"{len(df)} rows, over {MAX_TRACE_ROWS} (limit MAX_TRACE_ROWS)", path=path)
    return df.reset_index(drop=True)


def _row_error(path: Path, row: int, column: str, message: str) -> InputError:
    # Row numbers as a spreadsheet shows them: the header is line 1.
    return InputError(message, path=path, line=row + 2, field=column)


def _blank(raw: Any) -> bool:
    import pandas as pd  # loaded already (a trace was read): a lookup, not an import

    return (
        raw is None
        or (isinstance(raw, str) and not raw.strip())
        or raw is pd.NA
        or (isinstance(raw, float) and math.isnan(raw))
    )


def _number(raw: Any, path: Path, row: int, column: str) -> float:
    """A finite number from a cell, or an error naming its row and column."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _row_error(path, row, column, f"not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise _row_error(path, row, column, f"not a finite number: {raw!r}")
    return value


def _time(raw: Any, path: Path, row: int) -> float:
    t = _number(raw, path, row, "t")
    if t < 0:
        raise _row_error(path, row, "t", f"{t:g} is before the scenario start (t >= 0)")
    return t


def _scope(raw: Any, path: Path, row: int) -> ScopeSpec:
    if not isinstance(raw, str) or not raw.strip().startswith("{"):
        return ScopeSpec()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise _row_error(path, row, "detail", f"scope is not valid JSON: {exc}") from None
    try:
        return ScopeSpec.model_validate(data)
    except ValidationError as exc:
        raise _row_error(path, row, "detail", f"bad scope: {_first(exc)}") from None


def _first(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{where}: {message}" if where else str(message)


def _steps(df: pd.DataFrame, path: Path, known: Known | None) -> list[StepSpec]:
    ops = df[df["kind"].isin(OPERATOR_ACTIONS)]
    scheduled: dict[str, float] = {}
    steps: list[StepSpec] = []
    for i, row in ops.iterrows():
        n = int(i)  # type: ignore[arg-type]
        action = str(row["kind"])
        promo = None if _blank(row.get("promo")) else str(row.get("promo"))
        t = _time(row["t"], path, n)
        if known is not None and promo is not None and promo not in known.promos:
            raise _row_error(path, n, "promo", f"unknown promotion {promo!r} for {action!r}")
        fields: dict[str, Any] = {"at": t, "action": action, "promo": promo}
        if action == "publish" and promo in scheduled and abs(scheduled[promo] - t) < 1e-6:
            continue  # the scheduled publish fires by itself when the schedule is replayed
        if action in ("publish", "rollback", "schedule"):
            fields["scope"] = _scope(row.get("detail"), path, n)
        value = row.get("value")
        if action == "rollback":
            deadline = 300.0 if _blank(value) else _number(value, path, n, "value")
            if deadline <= 0:
                raise _row_error(path, n, "value", f"rollback deadline {deadline:g} s (> 0)")
            fields["deadline"] = deadline
        if action == "schedule":
            fields["publish_at"] = t if _blank(value) else _number(value, path, n, "value")
            scheduled[promo or ""] = fields["publish_at"]
        if action in ("pause", "resume"):
            fields["channel"] = None if _blank(row.get("channel")) else str(row.get("channel"))
        if action == "reject":
            fields["reason"] = "" if _blank(row.get("detail")) else str(row.get("detail"))
        try:
            steps.append(StepSpec.model_validate(fields))
        except ValidationError as exc:
            raise _row_error(path, n, "kind", f"cannot replay {action!r}: {_first(exc)}") from None
    return steps


def load_trace(path: str | Path, endpoints: Sequence[str], known: Known | None = None) -> Trace:
    """Read and check every row a replay uses: times, endpoints, baskets, operator steps.

    With ``known`` the baskets' SKUs and pool ids and the steps' promotions are checked
    too, so a bad row fails here, before the simulation, and never half-way through it.
    """
    path = Path(path)
    df = read_trace(path)
    for column in ("t",):
        if column not in df.columns:
            raise InputError(f"the trace has no {column!r} column", path=path, field=column)
    if "kind" not in df.columns:
        df = df.assign(kind="sale")
    all_endpoints = set(endpoints)
    sales_rows = df[df["kind"] == "sale"]
    basket_column = "basket" if "basket" in df.columns else "detail"
    if len(sales_rows) and basket_column not in df.columns:
        raise InputError("sales need a 'basket' (or 'detail') column", path=path, field="basket")
    if len(sales_rows) and "endpoint" not in df.columns:
        raise InputError("sales need an 'endpoint' column", path=path, field="endpoint")
    sales: list[tuple[float, str, str]] = []
    checked: set[str] = set()
    for i, row in sales_rows.iterrows():
        n = int(i)  # type: ignore[arg-type]
        endpoint = str(row["endpoint"])
        if endpoint not in all_endpoints:
            raise _row_error(path, n, "endpoint", f"unknown endpoint {endpoint!r}")
        t = _time(row["t"], path, n)
        key = str(row[basket_column])
        if known is not None and key not in checked:
            try:
                basket_lines(key, known.skus, known.pool)
            except ValueError as exc:
                raise _row_error(path, n, basket_column, str(exc)) from None
            checked.add(key)
        sales.append((t, endpoint, key))
    sales.sort(key=lambda s: s[0])
    return Trace(sales, _steps(df, path, known))


def basket_lines(key: str, skus: Collection[str], pool: int) -> list[tuple[str, int]]:
    """A basket key's lines: ``[]`` for ``b<n>`` (a pool basket), else ``[(sku, qty)]``.

    ValueError names what is wrong: a pool id past the pool, an unknown SKU, a quantity
    that is not a whole number from 1 to ``MAX_QUANTITY``.
    """
    if key.startswith("b") and key[1:].isdigit():
        if int(key[1:]) >= pool:
            raise ValueError(f"basket {key!r} is beyond the pool of {pool}")
        return []
    lines = []
    for part in key.split(";"):
        sku, _, qty = part.partition(":")
        if sku.strip() not in skus:
            raise ValueError(f"unknown SKU {sku!r} in basket {key!r}")
        try:
            quantity = int(qty.strip()) if qty.strip() else 1
        except ValueError:
            raise ValueError(f"quantity {qty!r} in {part!r} is not a whole number") from None
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(
                f"quantity {quantity} in {part!r} is not from 1 to {MAX_QUANTITY} "
                "(limit MAX_QUANTITY)"
            )
        lines.append((sku.strip(), quantity))
    return lines


def basket_of(
    key: str, pool: Sequence[Basket], products: Mapping[str, Product], path: str | Path
) -> Basket:
    """A trace's basket key: ``b<n>`` from the pool, or ``SKU:qty;SKU:qty``."""
    try:
        lines = basket_lines(key, products, len(pool))
    except ValueError as exc:
        raise InputError(str(exc), path=path, field="basket") from None
    if not lines:
        return pool[int(key[1:])]
    return Basket(
        lines=[products[sku].to_line(quantity) for sku, quantity in lines], tax_mode="net"
    )


def check_replay(scenario: Scenario) -> None:
    """Load the scenario's replay trace and check every row, before any simulation.

    Does nothing unless ``traffic.kind`` is ``replay``. The estate is built (cheap, no
    simulation) for the endpoint ids and SKUs the trace may name.
    """
    if scenario.traffic.kind != "replay":
        return
    from harness.runtime.sim import resolve_trace
    from harness.runtime.world import build_world

    world = build_world(scenario, None)
    known = Known(
        skus=frozenset(p.sku for p in world.estate.catalog),
        pool=scenario.traffic.basket_pool,
        promos=frozenset(p.id for p in scenario.promotions),
    )
    load_trace(resolve_trace(scenario.traffic.file or ""), list(world.models), known)
