"""Errors raised by the outputs (session store, record codecs).

A small, flat hierarchy with structured attributes and messages that say what to do. SQLite
errors are classified once, at the edge, by :func:`outputs.store.schema.classify_sqlite_error`
(by SQLite's result code, never by message text) and re-raised with ``from exc``.
"""

from __future__ import annotations

from pathlib import Path


class OutputError(Exception):
    """Base class of every error raised by :mod:`outputs`."""


class RecordCodecError(OutputError, ValueError):
    """A record that cannot be serialised, or a stored payload that cannot be decoded.

    Attributes:
        kind: the record kind tag (``"heart_rate"``, ``"metric"``, …) or the type name.
        reason: what is wrong, in words.
    """

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}")


class StoreError(OutputError):
    """The session store failed.

    Attributes:
        path: the database file (``None`` when not known).
        reason: what went wrong, in words.
        advice: what the user can do about it ("" when nothing specific).
    """

    def __init__(self, path: Path | str | None, reason: str, advice: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        self.advice = advice
        where = f"session store {self.path}: " if self.path is not None else "session store: "
        text = where + reason
        super().__init__(f"{text}. {advice}" if advice else text)


class StoreVersionError(StoreError):
    """The database was created by a newer stridewatch (a schema this one does not know)."""

    def __init__(self, path: Path | str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            path,
            f"created by a newer stridewatch (schema {found}, this one knows {known})",
            "upgrade stridewatch; the file was not modified",
        )


class StoreCorruptError(StoreError):
    """The file is not a stridewatch database, or SQLite reports it damaged.

    The store never overwrites or repairs such a file.
    """

    def __init__(self, path: Path | str | None, reason: str) -> None:
        super().__init__(
            path,
            reason,
            "the file was left untouched: restore it from a backup, or move it away so a new "
            "store can be created (try `sqlite3 FILE .recover` on a copy to salvage data)",
        )


class StoreFullError(StoreError):
    """The disk (or the database's page limit) is full; nothing of the failed batch was written.

    Attributes:
        pending: how many records were in the batch that failed (kept by the caller / the
            async writer, which retries them), or, when ``refused``, how many wait.
        refused: True when the async writer's buffer limit was reached and the new record
            was not accepted.
    """

    def __init__(self, path: Path | str | None, pending: int, *, refused: bool = False) -> None:
        self.pending = pending
        self.refused = refused
        if refused:
            reason = (
                f"write buffer full: {pending} record(s) wait for a disk that has been full; "
                "new records are refused"
            )
        else:
            reason = f"database or disk is full ({pending} record(s) not written, kept in memory)"
        super().__init__(
            path,
            reason,
            "free disk space (or move the store to a larger disk); the writer retries",
        )


class UnknownSessionError(StoreError, LookupError):
    """A session id that is not in the store (never created, or deleted)."""

    def __init__(self, path: Path | str | None, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            path,
            f"no session {session_id!r}",
            "create it with create_session() or list sessions with sessions()",
        )
