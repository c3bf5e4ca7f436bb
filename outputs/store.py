"""The session store: SQLite in WAL mode, the embedded default output and the durable outbox.

Two layers:

* :class:`SessionStore`: the synchronous core over one :mod:`sqlite3` connection. Every
  :meth:`~SessionStore.write` is one short transaction. Thread-safe (one lock around the
  connection), so the async writer can commit from a worker thread while the event loop reads.
* :class:`AsyncStore`: an async context manager that collects records in memory and commits
  them every ``batch_interval_s`` (default 0.25 s) or every ``batch_size`` (default 2,000)
  records, whichever comes first, in one transaction run on a dedicated worker thread, so the
  event loop is never blocked by SQLite. On exit it flushes everything.

Durability
----------
The database runs with ``journal_mode=WAL`` and, by default, ``synchronous=NORMAL``:

* A committed transaction survives a crash of the process (``SIGKILL``, an exception, OOM):
  it is in the WAL file, which the next open recovers. What a crash can lose is only what was
  never committed: the records still buffered in :class:`AsyncStore`, that is at most
  ``batch_interval_s`` (plus the duration of one commit) worth of records. Callers that need
  a record durable *now* call :meth:`AsyncStore.flush`.
* On power loss or an OS crash, WAL + NORMAL may lose the most recent commits (the WAL is
  fsynced only at checkpoints), but the database stays consistent (never corrupt).
  ``synchronous="FULL"`` fsyncs the WAL on every commit, so committed data also survives power
  loss, at the price of one fsync per batch (cheap with batching; expensive per record).

Schema (version 1, ``PRAGMA user_version``; ``PRAGMA application_id`` marks our files)
--------------------------------------------------------------------------------------------
* ``sessions(id, athlete, start_utc, end_utc, source, meta)``: times as ISO 8601 UTC text
  with microseconds (sorts chronologically); ``meta`` JSON.
* ``records(seq, session_id, cat, kind, athlete, sensor, tag, time_utc_us, time_mono_s,
  payload, raw)``: every record of every kind in **one** table. ``seq`` is an
  ``AUTOINCREMENT`` primary key, so it increases in commit order and is never reused (not even
  after a delete), which makes it the outbox cursor. ``payload`` is the record as compact JSON
  from :mod:`outputs.codec` (without ``raw``), ``raw`` the characteristic bytes as a
  BLOB. Typed columns serve queries: ``cat`` (``reading``/``metric``/``alert``/``segment``),
  ``kind`` (the codec's tag), ``tag`` (metric group, alert kind or segment kind),
  ``time_utc_us`` (microseconds since the Unix epoch; segments: their start) and
  ``time_mono_s``. One index, ``(session_id, cat, seq)``, keeps writes cheap and serves every
  per-session read in order.
* ``session_counts(session_id, kind, n)``: maintained in the same transaction as the rows.
* ``session_summary(session_id, key, value, num)``: per-session values set by the pipeline
  (``resting_rmssd_ms``), JSON with a numeric copy for queries.
* ``outbox(output, delivered_seq)``: per output (``"influx"``, ``"mqtt"``) the last delivered
  ``seq``. :meth:`SessionStore.pending` returns the next undelivered records in commit order.
* ``dead_letters(id, output, first_seq, last_seq, count, payload, message, time_utc)``:
  batches an output's server rejected as bad data, with the records (JSON) and the message.

Sessions and foreign keys: ``records``, ``session_counts`` and ``session_summary`` reference
``sessions`` with ``ON DELETE CASCADE``; ``PRAGMA foreign_keys=ON``.

Errors are classified once, by SQLite result code (:func:`classify_sqlite_error`), into
:class:`~outputs.errors.StoreFullError`, :class:`~outputs.errors.StoreCorruptError`,
:class:`~outputs.errors.UnknownSessionError` or :class:`~outputs.errors.StoreError`.
A file that is not a stridewatch store, or is damaged, is never modified.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import enum
import hashlib
import json
import logging
import math
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from ingest.background import BackgroundTask
from ingest.records import Reading
from outputs.codec import (
    Record,
    decode_parts,
    encode_parts,
    encode_record,
)
from outputs.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreVersionError,
    UnknownSessionError,
)
from processing.records import Alert, Metric, MetricGroup, MetricValue, Segment

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "AsyncStore",
    "DeadLetter",
    "OutboxItem",
    "SessionRow",
    "SessionStore",
    "SqliteErrorClass",
    "classify_sqlite_error",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

APPLICATION_ID = 0x53545257
"""``PRAGMA application_id`` of stridewatch stores ("STRW"), so foreign databases are refused."""

DEFAULT_BATCH_INTERVAL_S = 0.25
"""Commit period of :class:`AsyncStore`: the most a crash can lose, and the store's latency."""
DEFAULT_BATCH_SIZE = 2_000
"""Records per transaction: ~10–20 ms of work, short enough to keep readers and writers fluid."""
DEFAULT_MAX_BUFFERED = 500_000
"""Records :class:`AsyncStore` holds while the disk is full (~ hours of one athlete) before
refusing new ones: a bound on memory, not a drop policy (nothing accepted is ever dropped)."""
_BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another process's lock (a CLI reading a live store)."""
_PAGE_ROWS = 1_000
"""Rows fetched per query when iterating a session (the lock is released between pages)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# --------------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------------- rows


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """One session as listed by :meth:`SessionStore.sessions`."""

    id: str
    athlete: str
    start_utc: datetime
    """Start, timezone-aware UTC."""
    end_utc: datetime | None
    """End, timezone-aware UTC; None while the session is open (running, or crashed)."""
    source: str
    """Where the data came from (``"ble"``, ``"virtual"``, ``"replay:<file>"``…)."""
    meta: Mapping[str, Any]
    counts: Mapping[str, int]
    """Stored records per kind (``"heart_rate"``, ``"stride"``, ``"metric"``…)."""

    @property
    def total(self) -> int:
        """All stored records of the session."""
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """A stored record waiting for an output."""

    seq: int
    """Commit order across all kinds; strictly increasing, never reused."""
    session_id: str
    record: Record


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A batch an output gave up on (rejected by its server as bad data)."""

    id: int
    output: str
    first_seq: int
    last_seq: int
    count: int
    payload: str
    """JSON array of ``{"seq", "session_id", "kind", "record"}`` (the codec's JSON, raw as hex)."""
    message: str
    """What the server said."""
    time_utc: datetime

    def items(self) -> list[OutboxItem]:
        """The records of the batch, decoded (to inspect or re-queue them)."""
        return [
            OutboxItem(
                seq=int(entry["seq"]),
                session_id=str(entry["session_id"]),
                record=decode_parts(str(entry["kind"]), json.dumps(entry["record"]), None),
            )
            for entry in json.loads(self.payload)
        ]


# --------------------------------------------------------------------------------- schema


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


def _migrate_1(conn: sqlite3.Connection) -> None:
    """Initial schema (statement by statement: ``executescript`` would commit early)."""
    for statement in _SCHEMA_1:
        conn.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_1,)
"""Migration ``i`` takes a database from schema ``i`` to ``i + 1``; all run in one transaction.
Append new ones; never edit a released one."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema this stridewatch writes (``PRAGMA user_version``)."""


# --------------------------------------------------------------------------------- helpers


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _slug(athlete: str) -> str:
    """ASCII slug of an athlete name for session ids (``"Zoë Smith"`` → ``"zoe-smith"``)."""
    ascii_name = unicodedata.normalize("NFKD", athlete).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:24].strip("-")
    return slug or "athlete"


_Columns = tuple[str, str, str | None, str | None, datetime, float | None]


def _columns(r: Record) -> _Columns:
    """``(cat, athlete, sensor, tag, time_utc, time_mono_s)`` of a record, for typed columns."""
    match r:
        case Metric():
            return "metric", r.athlete, None, str(r.group), r.time_utc, r.time_mono_s
        case Alert():
            return "alert", r.athlete, None, str(r.kind), r.time_utc, r.time_mono_s
        case Segment():
            return "segment", r.athlete, None, str(r.kind), r.start_utc, r.start_mono_s
        case _:
            return "reading", r.athlete, r.sensor, None, r.time_utc, r.time_mono_s


def _summary_num(value: MetricValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


_Row = tuple[Any, ...]


# --------------------------------------------------------------------------------- store


class SessionStore:
    """The synchronous session store over one SQLite connection. Use :meth:`open`.

    A context manager (closes on exit). Thread-safe: one lock serialises use of the connection.
    Other processes may read the same file concurrently (WAL).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an opened, migrated connection; use :meth:`open` instead."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._lock = threading.RLock()
        self._known_sessions: set[str] = set()

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] | str = "NORMAL",
        quick_check: bool = True,
    ) -> SessionStore:
        """Open (or create) the store at ``path``; creates parent directories.

        Args:
            path: the database file.
            synchronous: ``"NORMAL"`` (default: commits survive a process crash, the last
                ones may be lost on power loss) or ``"FULL"`` (fsync every commit: also
                survives power loss).
            quick_check: run ``PRAGMA quick_check`` on an existing file (reads the whole file;
                switch off only for very large stores opened often).

        Raises:
            StoreCorruptError: not a stridewatch database, or damaged (the file is untouched).
            StoreVersionError: written by a newer stridewatch (the file is untouched).
            StoreError: cannot create or open the file.
            ValueError: an unknown ``synchronous`` mode.
        """
        mode = synchronous.upper()
        if mode not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists() and path.stat().st_size > 0
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                path, f"cannot open: {exc}", "check the path and its permissions"
            ) from exc
        try:
            cls._check_and_migrate(conn, path, existed=existed, quick_check=quick_check, mode=mode)
        except BaseException:
            conn.close()
            raise
        logger.info("session store %s open (schema %d, synchronous=%s)", path, SCHEMA_VERSION, mode)
        return cls(conn, path)

    @staticmethod
    def _check_and_migrate(
        conn: sqlite3.Connection, path: Path, *, existed: bool, quick_check: bool, mode: str
    ) -> None:
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
                raise StoreCorruptError(
                    path, f"PRAGMA quick_check failed: {'; '.join(problems[:5])}"
                )
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
            raise _translate(exc, path, pending=0) from exc

    def close(self) -> None:
        """Close the connection (idempotent). WAL content is checkpointed by SQLite."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # ---------------------------------------------------------------- plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(self._path, "the store is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, pending: int = 0) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back and translated on error."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise _translate(exc, self._path, pending) from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[_Row]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self._path, 0) from exc

    def _require_session(self, session_id: str) -> None:
        if not self.has_session(session_id):
            raise UnknownSessionError(self._path, session_id)

    # ---------------------------------------------------------------- sessions

    def has_session(self, session_id: str) -> bool:
        """Whether the session exists (cached: cheap to call per record)."""
        if session_id in self._known_sessions:
            return True
        found = bool(self._query("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))
        if found:
            self._known_sessions.add(session_id)
        return found

    def create_session(
        self,
        athlete: str,
        start_utc: datetime,
        source: str,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a session and return its id.

        The id is ``YYYYMMDDTHHMMSSZ-<athlete-slug>-<4 hex>``: sortable by start time, and
        deterministic: the hex digits hash (athlete, start, source, n) where n counts up from 0
        until the id is free.

        Raises:
            ValueError: a naive ``start_utc``, or ``meta`` that is not JSON-serialisable.
        """
        start = _utc(start_utc, "start_utc")
        try:
            meta_json = json.dumps(dict(meta or {}), separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session meta must be JSON-serialisable: {exc}") from exc
        prefix = f"{start:%Y%m%dT%H%M%SZ}-{_slug(athlete)}-"
        with self._transaction() as conn:
            for n in range(1 << 16):
                digest = hashlib.sha256(f"{athlete}\x00{_iso(start)}\x00{source}\x00{n}".encode())
                session_id = prefix + digest.hexdigest()[:4]
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    continue
                conn.execute(
                    "INSERT INTO sessions (id, athlete, start_utc, source, meta) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (session_id, athlete, _iso(start), source, meta_json),
                )
                break
            else:  # pragma: no cover - 65,536 sessions with the same athlete and second
                raise StoreError(self._path, f"no free session id for {prefix}*")
        self._known_sessions.add(session_id)
        logger.info("session %s created (athlete %r, source %r)", session_id, athlete, source)
        return session_id

    def end_session(self, session_id: str, end_utc: datetime) -> None:
        """Mark the session ended (may be called again, e.g. after resuming it)."""
        end = _utc(end_utc, "end_utc")
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE sessions SET end_utc = ? WHERE id = ?", (_iso(end), session_id)
            )
            if cur.rowcount == 0:
                raise UnknownSessionError(self._path, session_id)
        logger.info("session %s ended", session_id)

    def delete_session(self, session_id: str) -> None:
        """Delete a session and everything stored with it. ``seq`` values are never reused."""
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            if cur.rowcount == 0:
                raise UnknownSessionError(self._path, session_id)
        self._known_sessions.discard(session_id)
        logger.info("session %s deleted", session_id)

    def sessions(self, athlete: str | None = None) -> list[SessionRow]:
        """All sessions (of one athlete), oldest first."""
        where, params = ("WHERE athlete = ?", (athlete,)) if athlete is not None else ("", ())
        return self._session_rows(
            f"SELECT id, athlete, start_utc, end_utc, source, meta FROM sessions {where} "
            "ORDER BY start_utc, id",
            params,
        )

    def session(self, session_id: str) -> SessionRow | None:
        """One session, or None when there is no such session."""
        rows = self._session_rows(
            "SELECT id, athlete, start_utc, end_utc, source, meta FROM sessions WHERE id = ?",
            (session_id,),
        )
        return rows[0] if rows else None

    def latest_session(self, athlete: str | None = None) -> SessionRow | None:
        """The session that started last (of one athlete), or None for an empty store."""
        where, params = ("WHERE athlete = ?", (athlete,)) if athlete is not None else ("", ())
        rows = self._session_rows(
            f"SELECT id, athlete, start_utc, end_utc, source, meta FROM sessions {where} "
            "ORDER BY start_utc DESC, id DESC LIMIT 1",
            params,
        )
        return rows[0] if rows else None

    def _session_rows(self, sql: str, params: Sequence[Any]) -> list[SessionRow]:
        with self._lock:
            rows = self._query(sql, params)
            counts: dict[str, dict[str, int]] = {row[0]: {} for row in rows}
            if len(rows) == 1:
                count_rows = self._query(
                    "SELECT session_id, kind, n FROM session_counts WHERE session_id = ?",
                    (rows[0][0],),
                )
            elif rows:
                count_rows = self._query("SELECT session_id, kind, n FROM session_counts")
            else:
                count_rows = []
        for session_id, kind, n in count_rows:
            if session_id in counts:
                counts[session_id][kind] = int(n)
        return [
            SessionRow(
                id=sid,
                athlete=athlete,
                start_utc=_from_iso(start),
                end_utc=_from_iso(end) if end is not None else None,
                source=source,
                meta=json.loads(meta),
                counts=counts[sid],
            )
            for sid, athlete, start, end, source, meta in rows
        ]

    def set_session_summary(self, session_id: str, key: str, value: MetricValue) -> None:
        """Store (replace) one per-session summary value, e.g. ``resting_rmssd_ms``."""
        text = json.dumps(value)
        with self._transaction() as conn:
            if not conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise UnknownSessionError(self._path, session_id)
            conn.execute(
                "INSERT INTO session_summary (session_id, key, value, num) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, "
                "num = excluded.num",
                (session_id, key, text, _summary_num(value)),
            )

    def session_summary(self, session_id: str) -> dict[str, MetricValue]:
        """All summary values of a session (empty when none were set)."""
        rows = self._query(
            "SELECT key, value FROM session_summary WHERE session_id = ? ORDER BY key",
            (session_id,),
        )
        return {key: json.loads(value) for key, value in rows}

    def resting_rmssd_history(
        self, athlete: str, limit: int = 30, *, exclude_session: str | None = None
    ) -> list[float]:
        """The athlete's last ``limit`` resting RMSSD values (ms), oldest first.

        Reads the ``resting_rmssd_ms`` summary of each session that has a finite number there;
        ``exclude_session`` leaves one out (today's, when computing its baseline).
        """
        rows = self._query(
            "SELECT ss.num FROM sessions s JOIN session_summary ss ON ss.session_id = s.id "
            "WHERE s.athlete = ? AND ss.key = 'resting_rmssd_ms' AND ss.num IS NOT NULL "
            "AND s.id IS NOT ? ORDER BY s.start_utc DESC, s.id DESC LIMIT ?",
            (athlete, exclude_session, limit),
        )
        return [float(r[0]) for r in reversed(rows)]

    # ---------------------------------------------------------------- records

    def write(self, session_id: str, records: Sequence[Record]) -> None:
        """Store records of one session in one transaction (all or nothing).

        Raises:
            UnknownSessionError: no such session.
            StoreFullError: the disk is full; nothing was written, ``records`` can be retried.
            RecordCodecError: a record that cannot be serialised (nothing was written).
        """
        self.write_batch([(session_id, record) for record in records])

    def write_batch(self, items: Sequence[tuple[str, Record]]) -> None:
        """Store ``(session_id, record)`` pairs, possibly of several sessions, in one
        transaction, in order (all or nothing). Errors as :meth:`write`."""
        if not items:
            return
        rows = []
        counts: Counter[tuple[str, str]] = Counter()
        for session_id, record in items:
            kind, payload, raw = encode_parts(record)
            cat, athlete, sensor, tag, time_utc, mono = _columns(record)
            rows.append(
                (
                    session_id, cat, kind, athlete, sensor, tag,
                    (time_utc - _EPOCH) // _MICROSECOND, mono, payload, raw,
                )
            )  # fmt: skip
            counts[session_id, kind] += 1
        session_ids = {session_id for session_id, _ in counts}
        with self._transaction(pending=len(items)) as conn:
            for session_id in session_ids - self._known_sessions:
                found = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
                if found.fetchone() is None:
                    raise UnknownSessionError(self._path, session_id)
            conn.executemany(
                "INSERT INTO records (session_id, cat, kind, athlete, sensor, tag, time_utc_us, "
                "time_mono_s, payload, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO session_counts (session_id, kind, n) VALUES (?, ?, ?) "
                "ON CONFLICT (session_id, kind) DO UPDATE SET n = n + excluded.n",
                [(sid, kind, n) for (sid, kind), n in counts.items()],
            )
        self._known_sessions.update(session_ids)

    def _iter(self, session_id: str, cat: str, tag: str | None) -> Iterator[Record]:
        last = 0
        tag_sql = " AND tag = ?" if tag is not None else ""
        extra: tuple[str, ...] = (tag,) if tag is not None else ()
        while True:
            rows = self._query(
                "SELECT seq, kind, payload, raw FROM records WHERE session_id = ? AND cat = ? "
                f"AND seq > ?{tag_sql} ORDER BY seq LIMIT {_PAGE_ROWS}",
                (session_id, cat, last, *extra),
            )
            for seq, kind, payload, raw in rows:
                last = seq
                yield decode_parts(kind, payload, raw)
            if len(rows) < _PAGE_ROWS:
                return

    def _checked_iter(self, session_id: str, cat: str, tag: str | None = None) -> Iterator[Record]:
        self._require_session(session_id)
        return self._iter(session_id, cat, tag)

    def readings(self, session_id: str) -> Iterator[Reading]:
        """The session's readings (all kinds) in commit order, exactly as written.

        Raises:
            UnknownSessionError: no such session (raised at the call, not on iteration).
        """
        return self._checked_iter(session_id, "reading")  # type: ignore[return-value]

    def metrics(self, session_id: str, group: MetricGroup | str | None = None) -> Iterator[Metric]:
        """The session's metric samples (of one group) in commit order."""
        tag = str(MetricGroup(group)) if group is not None else None
        return self._checked_iter(session_id, "metric", tag)  # type: ignore[return-value]

    def alerts(self, session_id: str) -> Iterator[Alert]:
        """The session's alerts in commit order."""
        return self._checked_iter(session_id, "alert")  # type: ignore[return-value]

    def segments(self, session_id: str) -> Iterator[Segment]:
        """The session's segments in commit order."""
        return self._checked_iter(session_id, "segment")  # type: ignore[return-value]

    # ---------------------------------------------------------------- outbox

    def pending(
        self, output: str, limit: int, *, kinds: Collection[str] | None = None
    ) -> list[OutboxItem]:
        """The next ``limit`` records not yet delivered to ``output``, in commit order.

        An output never seen before starts at the beginning of the store. ``kinds`` restricts
        the result to some record kinds (the others count as delivered once a later ``seq`` is
        marked).
        """
        if limit <= 0:
            return []
        kind_sql, kind_params = self._kind_filter(kinds)
        rows = self._query(
            "SELECT seq, session_id, kind, payload, raw FROM records WHERE seq > "
            "COALESCE((SELECT delivered_seq FROM outbox WHERE output = ?), 0)"
            f"{kind_sql} ORDER BY seq LIMIT ?",
            (output, *kind_params, limit),
        )
        return [
            OutboxItem(seq=seq, session_id=sid, record=decode_parts(kind, payload, raw))
            for seq, sid, kind, payload, raw in rows
        ]

    @staticmethod
    def _kind_filter(kinds: Collection[str] | None) -> tuple[str, tuple[str, ...]]:
        if kinds is None:
            return "", ()
        kinds = tuple(kinds)
        return f" AND kind IN ({', '.join('?' * len(kinds))})", kinds

    def mark_delivered(self, output: str, up_to_seq: int) -> None:
        """Mark every record with ``seq <= up_to_seq`` delivered to ``output``.

        The cursor only moves forward (a stale, smaller value is ignored).

        Raises:
            ValueError: ``up_to_seq`` beyond the last record ever stored.
        """
        with self._transaction() as conn:
            self._advance(conn, output, up_to_seq)

    def _advance(self, conn: sqlite3.Connection, output: str, up_to_seq: int) -> None:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        last = int(row[0]) if row else 0
        if up_to_seq > last:
            raise ValueError(f"up_to_seq {up_to_seq} is beyond the last stored record ({last})")
        conn.execute(
            "INSERT INTO outbox (output, delivered_seq) VALUES (?, ?) ON CONFLICT (output) "
            "DO UPDATE SET delivered_seq = MAX(delivered_seq, excluded.delivered_seq)",
            (output, up_to_seq),
        )

    def delivered_seq(self, output: str) -> int:
        """The output's cursor: the last ``seq`` marked delivered (0 for a new output)."""
        rows = self._query("SELECT delivered_seq FROM outbox WHERE output = ?", (output,))
        return int(rows[0][0]) if rows else 0

    def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        """How many stored records ``output`` has not delivered yet."""
        kind_sql, kind_params = self._kind_filter(kinds)
        rows = self._query(
            "SELECT COUNT(*) FROM records WHERE seq > "
            f"COALESCE((SELECT delivered_seq FROM outbox WHERE output = ?), 0){kind_sql}",
            (output, *kind_params),
        )
        return int(rows[0][0])

    def dead_letter(
        self,
        output: str,
        items: Sequence[OutboxItem],
        message: str,
        *,
        time_utc: datetime | None = None,
    ) -> None:
        """Set aside a batch ``output``'s server rejected as bad data, and move past it.

        The records are copied (as the codec's JSON) into ``dead_letters`` with ``message``,
        and the output's cursor advances to the batch's last ``seq`` in the same transaction,
        so the rest of the backlog is not blocked.
        """
        if not items:
            raise ValueError("dead_letter needs at least one item")
        when = _utc(time_utc, "time_utc") if time_utc is not None else datetime.now(UTC)
        entries = []
        for item in items:
            kind, payload = encode_record(item.record)
            head = json.dumps({"seq": item.seq, "session_id": item.session_id, "kind": kind})
            entries.append(f'{head[:-1]}, "record": {payload}}}')
        seqs = [item.seq for item in items]
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO dead_letters (output, first_seq, last_seq, count, payload, message, "
                "time_utc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (output, min(seqs), max(seqs), len(items), f"[{', '.join(entries)}]", message,
                 _iso(when)),
            )  # fmt: skip
            self._advance(conn, output, max(seqs))
        logger.warning(
            "%s: %d record(s) (seq %d–%d) dead-lettered: %s",
            output, len(items), min(seqs), max(seqs), message,
        )  # fmt: skip

    def dead_letters(self, output: str) -> list[DeadLetter]:
        """The output's dead-lettered batches, oldest first."""
        rows = self._query(
            "SELECT id, output, first_seq, last_seq, count, payload, message, time_utc "
            "FROM dead_letters WHERE output = ? ORDER BY id",
            (output,),
        )
        return [
            DeadLetter(
                id=i, output=o, first_seq=f, last_seq=la, count=c, payload=p, message=m,
                time_utc=_from_iso(t),
            )
            for i, o, f, la, c, p, m, t in rows
        ]  # fmt: skip

    # ---------------------------------------------------------------- maintenance

    def integrity_check(self) -> str:
        """``"ok"``, or what ``PRAGMA integrity_check`` and ``foreign_key_check`` report."""
        problems = [str(r[0]) for r in self._query("PRAGMA integrity_check")]
        if problems == ["ok"]:
            problems = []
        problems += [
            f"foreign key: {table} row {rowid} → {parent}"
            for table, rowid, parent, _ in self._query("PRAGMA foreign_key_check")
        ]
        return "; ".join(problems) if problems else "ok"


def _translate(exc: sqlite3.Error, path: Path, pending: int) -> StoreError:
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


# --------------------------------------------------------------------------------- async writer


class AsyncStore:
    """Batched, non-blocking writes into a :class:`SessionStore`: an async context manager.

    :meth:`add` only appends to an in-memory buffer (it never touches SQLite). A writer task
    commits the buffer every ``batch_interval_s``, or as soon as ``batch_size`` records are
    waiting, in transactions of at most ``batch_size`` records run on a dedicated worker
    thread: the event loop only appends and hands over. On exit everything is flushed.

    What a crash can lose: only records never committed, i.e. those added during the last
    ``batch_interval_s`` plus the duration of the commit in progress. Each successful commit
    calls ``on_commit(total_committed)`` in the event loop (outputs use it to wake up).

    Disk full: the failed batch stays in the buffer (in order, nothing lost); the writer logs
    one warning, retries every ``batch_interval_s`` and logs when writes resume. Once
    ``max_buffered`` records wait, :meth:`add` raises :class:`StoreFullError` instead of
    growing without bound. Any other store error stops the writer: :meth:`add`,
    :meth:`flush` and exit then raise it.

    Example::

        async with AsyncStore.open(path) as out:
            sid = out.store.create_session("Ana", start, "ble")
            out.add(sid, reading)
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        on_commit: Callable[[int], None] | None = None,
        owns_store: bool = False,
    ) -> None:
        """Wrap ``store``; ``owns_store`` closes it on exit (as :meth:`open` does)."""
        if not batch_interval_s > 0:
            raise ValueError(f"batch_interval_s must be > 0, not {batch_interval_s}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if max_buffered < batch_size:
            raise ValueError(f"max_buffered ({max_buffered}) must be >= batch_size ({batch_size})")
        self._store = store
        self._interval = batch_interval_s
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._on_commit = on_commit
        self._owns_store = owns_store
        self._buffer: list[tuple[str, Record]] = []
        self._committed = 0
        self._inflight: tuple[asyncio.Future[None], int] | None = None
        self._failures = 0
        self._error: StoreError | None = None
        self._closed = False
        self._wake = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._runner = BackgroundTask("AsyncStore")

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] | str = "NORMAL",
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        on_commit: Callable[[int], None] | None = None,
    ) -> AsyncStore:
        """Open the store at ``path`` (see :meth:`SessionStore.open`); closed on exit."""
        return cls(
            SessionStore.open(path, synchronous=synchronous),
            batch_interval_s=batch_interval_s,
            batch_size=batch_size,
            max_buffered=max_buffered,
            on_commit=on_commit,
            owns_store=True,
        )

    @property
    def store(self) -> SessionStore:
        """The synchronous store (sessions, reads, outbox)."""
        return self._store

    @property
    def buffered(self) -> int:
        """Records added but not yet committed."""
        return len(self._buffer)

    @property
    def committed(self) -> int:
        """Records committed by this writer so far."""
        return self._committed

    def add(self, session_id: str, record: Record) -> None:
        """Queue one record for the next commit (never blocks).

        Raises:
            UnknownSessionError: no such session (checked here, so a bad id cannot poison a
                batch later).
            StoreFullError: ``max_buffered`` records already wait (the disk has been full).
            StoreError: the writer stopped on an error, or the store is closed.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StoreError(self._store.path, "the async writer is closed")
        if not self._store.has_session(session_id):
            raise UnknownSessionError(self._store.path, session_id)
        if len(self._buffer) >= self._max_buffered:
            raise StoreFullError(self._store.path, len(self._buffer), refused=True)
        self._buffer.append((session_id, record))
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    def extend(self, session_id: str, records: Sequence[Record]) -> None:
        """Queue several records of one session (see :meth:`add`)."""
        for record in records:
            self.add(session_id, record)

    async def flush(self) -> None:
        """Commit everything buffered now.

        Raises:
            StoreFullError: the disk is full; the records stay buffered for a later retry.
        """
        if self._error is not None:
            raise self._error
        await self._drain()

    async def __aenter__(self) -> Self:
        if self._runner.running or self._closed:
            raise RuntimeError("an AsyncStore can be entered only once")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="stridewatch-store"
        )
        self._runner.start(self._run(), name="stridewatch-store-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._runner.stop()  # re-raises a fatal store error of the writer
            await self.flush()
        finally:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self._owns_store:
                self._store.close()
            if self._buffer:
                logger.error(
                    "session store %s: %d record(s) were never committed",
                    self._store.path, len(self._buffer),
                )  # fmt: skip

    async def _run(self) -> None:
        while True:
            if len(self._buffer) < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except StoreFullError as exc:
                self._failures += 1
                if self._failures == 1:
                    logger.warning(
                        "%s; retrying every %.2f s (%d record(s) buffered)",
                        exc, self._interval, len(self._buffer),
                    )  # fmt: skip
                continue
            except StoreError as exc:
                logger.error("session store writer stopped: %s", exc)
                self._error = exc
                raise
            if self._failures:
                logger.info(
                    "session store writes resumed after %d failed attempt(s)", self._failures
                )
                self._failures = 0

    async def _drain(self) -> None:
        """Commit the buffer in chunks of ``batch_size``; stops at the first failure."""
        async with self._drain_lock:
            await self._settle_inflight()
            while self._buffer:
                n = min(len(self._buffer), self._batch_size)
                batch = self._buffer[:n]
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(self._executor, self._store.write_batch, batch)
                self._inflight = (future, n)
                await self._settle_inflight()

    async def _settle_inflight(self) -> None:
        """Wait for the commit in progress and account for it (also after a cancellation:
        the commit runs on in its thread, and its outcome must reach the buffer exactly once).
        """
        if self._inflight is None:
            return
        future, n = self._inflight
        await asyncio.wait([future])  # not cancelled with us: the thread finishes regardless
        self._inflight = None
        error = future.exception()
        if error is not None:
            raise error
        del self._buffer[:n]
        self._committed += n
        if self._on_commit is not None:
            self._on_commit(self._committed)
