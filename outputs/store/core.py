""":class:`SessionStore`: opening (checks, migrations, closing interrupted sessions) and the
parts (sessions, records, outbox) on one connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from outputs.errors import StoreError
from outputs.store.base import logger
from outputs.store.outbox import OutboxPart
from outputs.store.records import RecordsPart
from outputs.store.schema import SCHEMA_VERSION, check_and_migrate

BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another process's lock (a CLI reading a live store, a second
recorder committing)."""


class SessionStore(RecordsPart, OutboxPart):
    """The synchronous session store over one SQLite connection. Use :meth:`open`.

    A context manager (closes on exit). Thread-safe: one lock serialises use of the connection.
    Other processes may read and record into the same file concurrently (WAL; each recorder
    owns the sessions it creates, see :mod:`outputs.store.owners`).
    """

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] | str = "NORMAL",
        quick_check: bool = True,
        close_interrupted: bool = True,
    ) -> SessionStore:
        """Open (or create) the store at ``path``; creates parent directories.

        Opening closes the sessions left open by recording processes that are gone (killed,
        crashed): they end at their last stored record, marked ``interrupted``. Sessions of a
        live recorder (this or another process) are never touched.

        Args:
            path: the database file.
            synchronous: ``"NORMAL"`` (default: commits survive a process crash, the last
                ones may be lost on power loss) or ``"FULL"`` (fsync every commit: also
                survives power loss).
            quick_check: run ``PRAGMA quick_check`` on an existing file (reads the whole file;
                switch off only for very large stores opened often).
            close_interrupted: close the sessions of dead recorders (default).

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
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                path, f"cannot open: {exc}", "check the path and its permissions"
            ) from exc
        try:
            check_and_migrate(conn, path, existed=existed, quick_check=quick_check, mode=mode)
        except BaseException:
            conn.close()
            raise
        store = cls(conn, path)
        if close_interrupted:
            try:
                store.close_interrupted_sessions()
            except BaseException:
                store.close()
                raise
        logger.info("session store %s open (schema %d, synchronous=%s)", path, SCHEMA_VERSION, mode)
        return store

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
