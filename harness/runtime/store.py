"""Durable state for the live orchestrator: SQLite in WAL mode, one transaction per event.

The orchestrator core is deterministic for a seed, so its state is its input: every event
it accepted is journalled together with the records (audit trail) it produced, in ONE
transaction. After ``kill -9`` at any moment the journal is replayed through a fresh core
to rebuild promotions, per-endpoint delivery state (the outbox: what was in flight) and
the dead-letter queue; nothing committed is lost and nothing half-written is visible.
Process crashes are what WAL with ``synchronous=NORMAL`` survives; ``durable=True``
(``synchronous=FULL``) also survives power loss, at a cost per event.

Errors: a state file that is not one (random bytes, a truncated or malformed SQLite file)
is a ``BadState`` (an ``InputError``: the CLI prints one line and exits 2); an append that
fails (disk full, a read-only file, a value SQLite cannot hold) leaves the file as it was
and raises ``NotDurable``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.domain.eventlog import COLUMNS, Record
from harness.inputs import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, t REAL NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, journal INTEGER NOT NULL,
    t REAL NOT NULL, kind TEXT NOT NULL, promo TEXT NOT NULL, version INTEGER NOT NULL,
    endpoint TEXT NOT NULL, channel TEXT NOT NULL, region TEXT NOT NULL,
    attempt INTEGER NOT NULL, outcome TEXT NOT NULL, value REAL NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_promo ON records (promo, seq);
"""


class BadState(InputError):
    """The state file cannot be used: corrupt, truncated, tampered, or another scenario's."""


class NotDurable(RuntimeError):
    """An event could not be journalled, so it changed nothing (the service answers 503)."""


class Store:
    """The journal, the audit trail and a little metadata, in one SQLite file."""

    def __init__(self, path: str | Path, *, durable: bool = False, check: bool = False) -> None:
        """``check``: read every page once (``PRAGMA quick_check``), so a truncated or
        damaged file is refused at start-up rather than half-way through a replay."""
        self.path = Path(path)
        try:
            # One connection, used from the event loop's thread only.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(SCHEMA)
            if check:
                problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(problems[0])
                self._check_columns()
        except sqlite3.Error as exc:
            raise BadState(f"not a usable state file ({exc})", path=self.path) from None

    def _check_columns(self) -> None:
        """Tables of the same names but another shape (a tampered or foreign file)."""
        want = {
            "meta": ["key", "value"],
            "journal": ["seq", "t", "event"],
            "records": ["seq", "journal", *COLUMNS],
        }
        for table, columns in want.items():
            have = [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
            if have != columns:
                raise sqlite3.DatabaseError(f"table {table} has columns {have}")

    def close(self) -> None:
        self._db.close()

    # --- metadata ---------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    # --- the journal and its records ----------------------------------------------------------

    def append(self, t: float, event: str, records: Iterable[Record]) -> int:
        """Journal one event and the records it produced, atomically; returns its seq.

        Raises ``NotDurable`` (the file unchanged) when anything refuses the write."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            seq = db.execute("INSERT INTO journal (t, event) VALUES (?, ?)", (t, event)).lastrowid
            db.executemany(
                "INSERT INTO records (journal, t, kind, promo, version, endpoint, channel, "
                "region, attempt, outcome, value, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(seq, *r) for r in records],
            )
            db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, Exception):
                raise NotDurable(f"the journal refused the event: {exc}") from exc
            raise
        return int(seq or 0)

    def _rollback(self) -> None:
        # BEGIN itself may be what failed (a locked or read-only file): no transaction then.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def append_records(self, records: Iterable[Record]) -> None:
        """Records that no event produced (the driver's own: inventory, replays)."""
        rows = [(0, *r) for r in records]
        if not rows:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO records (journal, t, kind, promo, version, endpoint, channel, "
                "region, attempt, outcome, value, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def journal(self) -> Iterator[tuple[int, float, str]]:
        yield from self._db.execute("SELECT seq, t, event FROM journal ORDER BY seq")

    def journal_length(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def records(
        self, since: int = 0, limit: int | None = None, promo: str | None = None
    ) -> list[tuple[int, Record]]:
        """(seq, record) in order, after ``since``; the audit trail and event log."""
        sql = f"SELECT seq, {', '.join(COLUMNS)} FROM records WHERE seq > ?"
        args: list[Any] = [since]
        if promo is not None:
            sql += " AND promo = ?"
            args.append(promo)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [(row[0], Record(*row[1:])) for row in self._db.execute(sql, args)]

    def record_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
