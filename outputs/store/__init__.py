"""The session store: SQLite in WAL mode, the embedded default output and the durable outbox.

Two layers:

* :class:`SessionStore`: the synchronous core over one :mod:`sqlite3` connection. Every
  :meth:`~SessionStore.write` is one short transaction. Thread-safe (one lock around the
  connection), so the async writer can commit from a worker thread while outputs read the
  outbox from others (:class:`outputs.outbox.StoreOutbox`).
* :class:`AsyncStore`: an async context manager that collects records in memory and commits
  them every ``batch_interval_s`` (default 0.25 s) or every ``batch_size`` (default 2,000)
  records, whichever comes first, in one transaction run on a dedicated worker thread, so the
  event loop is never blocked by SQLite. On exit it flushes everything.

Modules: :mod:`~outputs.store.schema` (schema, migrations, SQLite error classes),
:mod:`~outputs.store.rows` (returned rows, conversions), :mod:`~outputs.store.base`
(connection, lock, transactions), :mod:`~outputs.store.sessions` (sessions, summaries,
interrupted sessions), :mod:`~outputs.store.owners` (which live process records a session),
:mod:`~outputs.store.records` (writes, reads), :mod:`~outputs.store.outbox` (cursors, pending,
backlogs, dead letters), :mod:`~outputs.store.core` (:class:`SessionStore`, opening) and
:mod:`~outputs.store.writer` (:class:`AsyncStore`).

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

Sessions of a killed process; several recorders
-----------------------------------------------
Each store that creates sessions holds a ``flock`` on its own lock file
(``<store>.owners/<pid>-<hex>.lock``) and writes that token into the sessions it creates. The
next :meth:`SessionStore.open` closes every open session whose owner no longer holds its lock
(the process died, or closed the store without ending it): the session ends at its last stored
record and :attr:`SessionRow.interrupted` is True. A session still being recorded is never
touched. Two processes may record into one store at the same time: both finish and the store
stays consistent (each owns its sessions; SQLite serialises their commits, each waiting at
most 10 s for the other's).

Schema (``PRAGMA user_version`` 2; ``PRAGMA application_id`` marks our files)
-----------------------------------------------------------------------------
* ``sessions(id, athlete, start_utc, end_utc, source, meta, interrupted, owner)``: times as
  ISO 8601 UTC text with microseconds (sorts chronologically); ``meta`` JSON; ``owner`` the
  recorder's lock token (schema 2).
* ``records(seq, session_id, cat, kind, athlete, sensor, tag, time_utc_us, time_mono_s,
  payload, raw)``: every record of every kind in **one** table. ``seq`` is an
  ``AUTOINCREMENT`` primary key, so it increases in commit order and is never reused (not even
  after a delete), which makes it the outbox cursor. ``payload`` is the record as compact JSON
  from :mod:`outputs.codec` (without ``raw``), ``raw`` the characteristic bytes as a
  BLOB. Typed columns serve queries: ``cat`` (``reading``/``metric``/``alert``/``segment``),
  ``kind`` (the codec's tag), ``tag`` (metric group, alert kind or segment kind),
  ``time_utc_us`` (microseconds since the Unix epoch; segments: their start) and
  ``time_mono_s``. Indexes: ``(session_id, cat, seq)`` serves every per-session read in
  order; ``(kind, seq)`` (schema 2) serves the outbox of an output that takes some kinds only.
* ``session_counts(session_id, kind, n)``: maintained in the same transaction as the rows.
* ``session_summary(session_id, key, value, num)``: per-session values set by the pipeline
  (``resting_rmssd_ms``), JSON with a numeric copy for queries.
* ``outbox(output, delivered_seq)``: per output (``"influx"``, ``"mqtt"``) the last delivered
  ``seq``. :meth:`SessionStore.pending` returns the next undelivered records in commit order;
  :meth:`SessionStore.output_backlogs` what each output in use still has to deliver.
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

from outputs.store.core import BUSY_TIMEOUT_MS, SessionStore
from outputs.store.rows import DeadLetter, OutboxItem, SessionRow
from outputs.store.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteErrorClass,
    classify_sqlite_error,
)
from outputs.store.writer import (
    DEFAULT_BATCH_INTERVAL_S,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BUFFERED,
    AsyncStore,
)

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT_MS",
    "DEFAULT_BATCH_INTERVAL_S",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_BUFFERED",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AsyncStore",
    "DeadLetter",
    "OutboxItem",
    "SessionRow",
    "SessionStore",
    "SqliteErrorClass",
    "classify_sqlite_error",
]
