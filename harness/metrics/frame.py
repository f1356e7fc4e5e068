"""Event-log records -> a pandas DataFrame with fixed dtypes, and the log's Parquet/CSV files.

Every metric reads this frame, never live objects (docs/architecture.md, "The event log").
Fixing the dtypes here means the metrics see the same columns whether the records came
from the SimPy run, the live run or a file written by either: ``t``/``value`` float64,
``version``/``attempt`` int64, ``kind``/``channel`` categorical, the other text columns
strings with ``""`` for missing (never NaN), as the ``Record`` defaults say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import pandas as pd

from harness.domain.eventlog import COLUMNS, KINDS, Record

__all__ = [
    "COLUMNS",
    "channel_of",
    "inventory",
    "read_events",
    "shared",
    "shared_results",
    "to_frame",
    "write_events",
]

TEXT_COLUMNS: tuple[str, ...] = ("promo", "endpoint", "region", "outcome", "detail")
INT_COLUMNS: tuple[str, ...] = ("version", "attempt")
FLOAT_COLUMNS: tuple[str, ...] = ("t", "value")
CATEGORY_COLUMNS: tuple[str, ...] = ("kind", "channel")
_TEXT_DTYPE = "str"


def _is_normalised(df: pd.DataFrame) -> bool:
    """True when ``df`` already has exactly the columns and dtypes ``to_frame`` produces."""
    if tuple(df.columns) != COLUMNS:
        return False
    for col in CATEGORY_COLUMNS:
        if not isinstance(df[col].dtype, pd.CategoricalDtype):
            return False
    return (
        all(df[c].dtype == np.float64 for c in FLOAT_COLUMNS)
        and all(df[c].dtype == np.int64 for c in INT_COLUMNS)
        and all(df[c].dtype == _TEXT_DTYPE for c in TEXT_COLUMNS)
    )


def _text(series: pd.Series) -> pd.Series:
    """A text column as the "str" dtype with "" for missing (never NaN)."""
    if series.dtype == _TEXT_DTYPE:
        # Already strings (what pandas builds from Records): only fill gaps, cheaply.
        return series.fillna("") if series.hasnans else series
    # astype(str) on a column with NaN would write "nan"; fill first.
    return series.astype(object).where(series.notna(), "").astype(_TEXT_DTYPE)


def _categorical(series: pd.Series, known: frozenset[str]) -> pd.Series:
    """A text column as a categorical with sorted categories (``known`` plus observed).

    Built from the factorized codes, so a millions-row column costs one hash pass instead
    of a string conversion per row. Sorted, fixed categories make two logs with the same
    content produce identical frames (and identical Parquet files).
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = ["" if pd.isna(u) else str(u) for u in uniques]
    if (codes < 0).any():
        labels.append("")
        codes = np.where(codes < 0, len(labels) - 1, codes)
    categories = sorted(known | set(labels))
    position = {c: i for i, c in enumerate(categories)}
    remap = np.array([position[label] for label in labels], dtype=np.int64)
    new_codes = remap[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=categories))


def _column(df: pd.DataFrame, col: str) -> pd.Series:
    """One column of the normalised frame, with the ``Record`` default where missing."""
    n = len(df)
    if col in FLOAT_COLUMNS or col in INT_COLUMNS:
        dtype = np.float64 if col in FLOAT_COLUMNS else np.int64
        if col not in df.columns:
            return pd.Series(np.zeros(n), dtype=dtype)
        s = df[col]
        if s.dtype != dtype:
            s = pd.to_numeric(s, errors="coerce").fillna(0).astype(dtype)
        return s.reset_index(drop=True)
    if col in CATEGORY_COLUMNS:
        s = df[col] if col in df.columns else pd.Series([""] * n, dtype=_TEXT_DTYPE)
        return _categorical(s, KINDS if col == "kind" else frozenset())
    s = _text(df[col]) if col in df.columns else pd.Series([""] * n, dtype=_TEXT_DTYPE)
    return s.reset_index(drop=True)


def to_frame(records: Iterable[Record] | pd.DataFrame) -> pd.DataFrame:
    """Return the event log as a DataFrame with the ``Record`` columns and fixed dtypes.

    Accepts records (any iterable of ``Record`` or equal tuples) or a DataFrame (e.g. one
    read from a file); missing columns get the ``Record`` defaults, extra columns are
    dropped, row order is kept (ties in ``t`` are ordered as written). A frame that is
    already normalised is returned as is, so metrics can call this cheaply on their input.
    """
    if isinstance(records, pd.DataFrame):
        if _is_normalised(records):
            return records
        df = records.reset_index(drop=True)
    else:
        rows = list(records)
        df = pd.DataFrame.from_records(rows, columns=list(COLUMNS)) if rows else pd.DataFrame()
    frame = pd.DataFrame({col: _column(df, col) for col in COLUMNS}, index=pd.RangeIndex(len(df)))
    return frame


def write_events(df: pd.DataFrame | Iterable[Record], path: str | Path) -> Path:
    """Write the event log to ``path``: CSV when it ends in ``.csv``, Parquet otherwise.

    Parent folders are created. Returns the path written.
    """
    frame = to_frame(df)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".csv":
        # Plain text in CSV: categoricals would otherwise be fine, but be explicit so the
        # file carries no pandas-specific notion of categories.
        plain = frame.astype({c: object for c in CATEGORY_COLUMNS})
        plain.to_csv(target, index=False)
    else:
        frame.to_parquet(target, index=False, engine="pyarrow")
    return target


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an event log written by ``write_events`` (CSV or Parquet) into a normalised frame."""
    source = Path(path)
    if source.suffix.lower() == ".csv":
        dtypes: dict[str, object] = {c: str for c in (*TEXT_COLUMNS, *CATEGORY_COLUMNS)}
        dtypes |= {c: np.float64 for c in FLOAT_COLUMNS} | {c: np.int64 for c in INT_COLUMNS}
        # keep_default_na=False: an empty text field is "" (the Record default), not NaN.
        raw = pd.read_csv(source, dtype=dtypes, keep_default_na=False)
    else:
        raw = pd.read_parquet(source, engine="pyarrow")
    return to_frame(raw)


# Results derived from one frame, shared while ``shared_results`` is on (see there).
_SHARED: ContextVar[dict[tuple[str, int], tuple[pd.DataFrame, pd.DataFrame]] | None]
_SHARED = ContextVar("harness_metrics_shared", default=None)


@contextmanager
def shared_results() -> Iterator[None]:
    """Within this block, ``inventory`` and ``propagation.publish_targets`` of one frame
    are computed once and handed out as copies.

    ``summarise`` asks for the inventory five times and the plots ask again; on a
    5,000-store log each costs a scan of a million rows. Scoped, not global: a frame is
    not modified while its figures are computed, but a caller's frame may be afterwards.
    """
    token = _SHARED.set({}) if _SHARED.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _SHARED.reset(token)


def shared(name: str, df: pd.DataFrame, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``compute()``, or a copy of its earlier result for this very ``df`` inside
    ``shared_results``."""
    cache = _SHARED.get()
    if cache is None:
        return compute()
    hit = cache.get((name, id(df)))
    if hit is None or hit[0] is not df:
        hit = cache[(name, id(df))] = (df, compute())
    return hit[1].copy()


def inventory(df: pd.DataFrame) -> pd.DataFrame:
    """Endpoint inventory indexed by endpoint: ``channel``, ``region``, ``capacity``, ``mode``.

    From the "endpoint" records (value = capacity, detail = realtime|batch). An endpoint
    that appears in other records but has no inventory record gets the channel/region it
    was first seen with and capacity 0 (unknown), so channel lookups never miss.
    """
    return shared("inventory", df, lambda: _inventory(df))


def _inventory(df: pd.DataFrame) -> pd.DataFrame:
    inv = df.loc[df["kind"] == "endpoint", ["endpoint", "channel", "region", "value", "detail"]]
    inv = inv.astype({"channel": _TEXT_DTYPE}).drop_duplicates("endpoint", keep="last")
    inv = inv.rename(columns={"value": "capacity", "detail": "mode"}).set_index("endpoint")
    # The log of a big run has millions of rows (sales): find unlisted names on the
    # distinct values first and scan the rows only when there are any.
    unlisted = set(pd.unique(df["endpoint"])) - set(inv.index) - {""}
    seen = df.loc[df["endpoint"].isin(unlisted)] if unlisted else df.iloc[:0]
    seen = seen[["endpoint", "channel", "region"]].astype({"channel": _TEXT_DTYPE})
    if len(seen):
        # First non-empty channel/region each unlisted endpoint was seen with.
        ch = seen[seen["channel"] != ""].drop_duplicates("endpoint").set_index("endpoint")
        rg = seen[seen["region"] != ""].drop_duplicates("endpoint").set_index("endpoint")
        extra = pd.DataFrame(index=pd.Index(pd.unique(seen["endpoint"]), name="endpoint"))
        extra["channel"] = ch["channel"].reindex(extra.index).fillna("").astype(_TEXT_DTYPE)
        extra["region"] = rg["region"].reindex(extra.index).fillna("").astype(_TEXT_DTYPE)
        extra["capacity"] = 0.0
        extra["mode"] = ""
        inv = pd.concat([inv, extra.astype({"mode": _TEXT_DTYPE})])
    inv.index.name = "endpoint"
    return inv


def channel_of(rows: pd.DataFrame, inv: pd.DataFrame) -> pd.Series:
    """The channel of each row of ``rows``: its own, else its endpoint's in ``inv``, else
    "unknown" (so a runtime that leaves ``channel`` blank on some records still groups)."""
    own = rows["channel"].astype(object).fillna("")
    mapped = rows["endpoint"].map(inv["channel"]).astype(object).fillna("")
    out = own.where(own != "", mapped)
    return out.where(out != "", "unknown").astype(_TEXT_DTYPE)
