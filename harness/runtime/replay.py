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
scenario's own timeline is kept. Problems name the file, the row and the column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.domain.basket import Basket
from harness.inputs import InputError
from harness.scenario import ScopeSpec, StepSpec
from simulators.erp import Product

OPERATOR_ACTIONS = (
    "create", "submit", "validate", "approve", "reject", "schedule", "publish", "pause",
    "resume", "rollback", "end", "settle", "reconcile", "replay",
)  # fmt: skip


@dataclass(frozen=True)
class Trace:
    sales: list[tuple[float, str, str]]  # (t, endpoint, basket key)
    steps: list[StepSpec]


def read_trace(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError("no such trace file", path=path, field="traffic.file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, keep_default_na=False, dtype={"detail": str, "basket": str})
    except Exception as exc:  # pandas raises many kinds; all mean "not a readable trace"
        raise InputError(f"not a readable CSV/Parquet trace: {exc}", path=path) from None


def _row_error(path: Path, row: int, column: str, message: str) -> InputError:
    # Row numbers as a spreadsheet shows them: the header is line 1.
    return InputError(message, path=path, line=row + 2, field=column)


def _scope(raw: Any) -> ScopeSpec:
    if not isinstance(raw, str) or not raw.strip().startswith("{"):
        return ScopeSpec()
    return ScopeSpec.model_validate(json.loads(raw))


def _steps(df: pd.DataFrame, path: Path) -> list[StepSpec]:
    ops = df[df["kind"].isin(OPERATOR_ACTIONS)]
    scheduled: dict[str, float] = {}
    steps: list[StepSpec] = []
    for i, row in ops.iterrows():
        action = str(row["kind"])
        promo = str(row.get("promo", "") or "") or None
        t = float(row["t"])
        fields: dict[str, Any] = {"at": t, "action": action, "promo": promo}
        if action == "publish" and promo in scheduled and abs(scheduled[promo] - t) < 1e-6:
            continue  # the scheduled publish fires by itself when the schedule is replayed
        if action in ("publish", "rollback", "schedule"):
            fields["scope"] = _scope(row.get("detail"))
        if action == "rollback":
            fields["deadline"] = float(row.get("value") or 300.0)
        if action == "schedule":
            fields["publish_at"] = float(row.get("value") or t)
            scheduled[promo or ""] = fields["publish_at"]
        if action in ("pause", "resume"):
            fields["channel"] = str(row.get("channel", "") or "") or None
        if action == "reject":
            fields["reason"] = str(row.get("detail", "") or "")
        try:
            steps.append(StepSpec.model_validate(fields))
        except Exception as exc:
            raise _row_error(path, int(i), "kind", f"cannot replay {action!r}: {exc}") from None
    return steps


def load_trace(path: str | Path, endpoints: Sequence[str]) -> Trace:
    path = Path(path)
    df = read_trace(path)
    for column in ("t",):
        if column not in df.columns:
            raise InputError(f"the trace has no {column!r} column", path=path, field=column)
    if "kind" not in df.columns:
        df = df.assign(kind="sale")
    known = set(endpoints)
    sales_rows = df[df["kind"] == "sale"]
    basket_column = "basket" if "basket" in df.columns else "detail"
    if len(sales_rows) and basket_column not in df.columns:
        raise InputError("sales need a 'basket' (or 'detail') column", path=path, field="basket")
    if len(sales_rows) and "endpoint" not in df.columns:
        raise InputError("sales need an 'endpoint' column", path=path, field="endpoint")
    sales: list[tuple[float, str, str]] = []
    for i, row in sales_rows.iterrows():
        endpoint = str(row["endpoint"])
        if endpoint not in known:
            raise _row_error(path, int(i), "endpoint", f"unknown endpoint {endpoint!r}")
        try:
            t = float(row["t"])
        except (TypeError, ValueError):
            raise _row_error(path, int(i), "t", f"not a number: {row['t']!r}") from None
        sales.append((t, endpoint, str(row[basket_column])))
    sales.sort(key=lambda s: s[0])
    return Trace(sales, _steps(df, path))


def basket_of(
    key: str, pool: Sequence[Basket], products: Mapping[str, Product], path: str | Path
) -> Basket:
    """A trace's basket key: ``b<n>`` from the pool, or ``SKU:qty;SKU:qty``."""
    if key.startswith("b") and key[1:].isdigit():
        n = int(key[1:])
        if n < len(pool):
            return pool[n]
        raise InputError(
            f"basket {key!r} is beyond the pool of {len(pool)}", path=path, field="basket"
        )
    lines = []
    for part in key.split(";"):
        sku, _, qty = part.partition(":")
        product = products.get(sku.strip())
        if product is None:
            raise InputError(f"unknown SKU {sku!r} in basket {key!r}", path=path, field="basket")
        try:
            quantity = int(qty or 1)
        except ValueError:
            raise InputError(f"bad quantity in {part!r}", path=path, field="basket") from None
        lines.append(product.to_line(quantity))
    return Basket(lines=lines, tax_mode="net")
