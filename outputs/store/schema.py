"""The store's SQLite schema, its migrations, and the classification of SQLite errors.

Schema versions (``PRAGMA user_version``; ``PRAGMA application_id`` marks our files):

1. The initial schema (see :mod:`outputs.store`). Never edited.
2. ``records_by_kind`` on ``records(kind, seq)``: the outbox of an output that takes some kinds
   only (MQTT: alerts) seeks the next undelivered record of a kind instead of scanning every
   record after its cursor. ``sessions`` gains ``interrupted`` (1 when the session was closed
   by the next opener because its recording process had died) and ``owner`` (the token of
   the recording process's lock file, :mod:`outputs.store.owners`).

Migrations run in one ``BEGIN IMMEDIATE`` transaction, so a file is either at the old schema
or at the new one; an existing schema-1 file upgrades when it is opened.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from outputs.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreVersionError,
)

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SqliteErrorClass",
    "check_and_migrate",
    "classify_sqlite_error",
    "translate",
]

logger = logging.getLogger(__name__)

APPLICATION_ID = 0x53545257
"""``PRAGMA application_id`` of stridewatch stores ("STRW"), so foreign databases are refused."""


class SqliteErrorClass(enum.Enum):
    """How the store reacts to an :class:`sqlite3.Error`."""

    FULL = "full"  # SQLITE_FULL: keep the batch, retry later
    CORRUPT = "corrupt"  # SQLITE_CORRUPT / SQLITE_NOTADB: stop, never touch the file
    FOREIGN_KEY = "foreign_key"  # a record for a session that does not exist
    OTHER = "other"


def classify_sqlite_error(exc: sqlite3.Error) -> SqliteErrorClass:
    """Classify by SQLite's (extended) result code, never by message text.

    >>> try:
    ...     sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    ... except sqlite3.Error as exc:
    ...     classify_sqlite_error(exc)
    <SqliteErrorClass.OTHER: 'other'>
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return SqliteErrorClass.OTHER
    if code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
        return SqliteErrorClass.FOREIGN_KEY
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return SqliteErrorClass.FULL
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return SqliteErrorClass.CORRUPT
    return SqliteErrorClass.OTHER


def translate(exc: sqlite3.Error, path: Path, pending: int) -> StoreError:
    """The store's error for an :class:`sqlite3.Error` (raise it ``from exc``)."""
    match classify_sqlite_error(exc):
        case SqliteErrorClass.FULL:
            return StoreFullError(path, pending)
        case SqliteErrorClass.CORRUPT:
            return StoreCorruptError(path, f"SQLite reports the database damaged ({exc})")
        case SqliteErrorClass.FOREIGN_KEY:
            return StoreError(path, f"a record refers to a session that does not exist ({exc})")
        case _:
            return StoreError(path, str(exc))


_SCHEMA_1 = (
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        athlete TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        end_utc TEXT,
        source TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX sessions_by_athlete ON sessions(athlete, start_utc)",
    "CREATE INDEX sessions_by_start ON sessions(start_utc)",
    """CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        cat TEXT NOT NULL,
        kind TEXT NOT NULL,
        athlete TEXT NOT NULL,
        sensor TEXT,
        tag TEXT,
        time_utc_us INTEGER NOT NULL,
        time_mono_s REAL,
        payload TEXT NOT NULL,
        raw BLOB
    )""",
    "CREATE INDEX records_by_session ON records(session_id, cat, seq)",
    """CREATE TABLE session_counts (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (session_id, kind)
    ) WITHOUT ROWID""",
    """CREATE TABLE session_summary (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        num REAL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE outbox (
        output TEXT PRIMARY KEY,
        delivered_seq INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        output TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        payload TEXT NOT NULL,
        message TEXT NOT NULL,
        time_utc TEXT NOT NULL
    )""",
    "CREATE INDEX dead_letters_by_output ON dead_letters(output, id)",
    f"PRAGMA application_id = {APPLICATION_ID}",
)

_SCHEMA_2 = (
    "CREATE INDEX records_by_kind ON records(kind, seq)",
    "ALTER TABLE sessions ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sessions ADD COLUMN owner TEXT",
    "CREATE INDEX sessions_open ON sessions(end_utc) WHERE end_utc IS NULL",
)


def _migrate_1(conn: sqlite3.Connection) -> None:
    """Initial schema (statement by statement: ``executescript`` would commit early)."""
    for statement in _SCHEMA_1:
        conn.execute(statement)


def _migrate_2(conn: sqlite3.Connection) -> None:
    """The outbox's kind index; interrupted sessions and their owners."""
    for statement in _SCHEMA_2:
        conn.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_1, _migrate_2)
"""Migration ``i`` takes a database from schema ``i`` to ``i + 1``; all run in one transaction.
Append new ones; never edit a released one."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema this stridewatch writes (``PRAGMA user_version``)."""


def check_and_migrate(
    conn: sqlite3.Connection, path: Path, *, existed: bool, quick_check: bool, mode: str
) -> None:
    """Refuse foreign, newer or damaged files untouched; then WAL, pragmas and migrations."""
    try:
        # Read-only checks first: nothing is written to a file we do not recognise.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
    except sqlite3.Error as exc:
        if classify_sqlite_error(exc) is SqliteErrorClass.CORRUPT:
            raise StoreCorruptError(path, f"not a readable SQLite database ({exc})") from exc
        raise StoreError(path, f"cannot read: {exc}") from exc
    if app_id != APPLICATION_ID and (app_id != 0 or tables):
        raise StoreCorruptError(
            path,
            f"an SQLite database that is not a stridewatch store (application_id {app_id:#x}"
            f", tables {tables[:5]})",
        )
    if version > SCHEMA_VERSION:
        raise StoreVersionError(path, version, SCHEMA_VERSION)
    if existed and quick_check:
        try:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
        except sqlite3.Error as exc:
            raise StoreCorruptError(path, f"PRAGMA quick_check failed: {exc}") from exc
        if problems != ["ok"]:
            raise StoreCorruptError(path, f"PRAGMA quick_check failed: {'; '.join(problems[:5])}")
    try:
        journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(journal).lower() != "wal":
            raise StoreError(
                path,
                f"cannot switch to WAL journal mode (got {journal!r})",
                "put the store on a local file system",
            )
        conn.execute(f"PRAGMA synchronous={mode}")
        conn.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated between our read and our lock.
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                for number in range(version, SCHEMA_VERSION):
                    MIGRATIONS[number](conn)
                    logger.info("session store %s migrated to schema %d", path, number + 1)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    except sqlite3.Error as exc:
        raise translate(exc, path, pending=0) from exc
