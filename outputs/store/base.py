"""The connection every part of :class:`~outputs.store.SessionStore` shares: one lock around
one :mod:`sqlite3` connection, short transactions, errors translated once."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from outputs.errors import StoreError
from outputs.store.owners import OwnerLock
from outputs.store.schema import translate

logger = logging.getLogger("outputs.store")

Row = tuple[Any, ...]


class StoreBase:
    """Connection, lock, transactions and queries; the store's parts build on it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an opened, migrated connection; use :meth:`SessionStore.open` instead."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._lock = threading.RLock()
        self._known_sessions: set[str] = set()
        self._owner = OwnerLock(path)

    def close(self) -> None:
        """Close the connection (idempotent) and give up ownership of this store's sessions.

        Sessions it created and did not end are then closed (interrupted) by the next opener.
        """
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()
                self._conn = None
            self._owner.release()

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
                raise translate(exc, self._path, pending) from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self._path, 0) from exc

    def _owner_token(self) -> str:
        """This store's owner token, taking its lock file on first use."""
        try:
            return self._owner.acquire()
        except OSError as exc:
            raise StoreError(
                self._path,
                f"cannot create the recorder lock file {self._owner.path}: {exc}",
                "check the permissions of the store's directory",
            ) from exc
