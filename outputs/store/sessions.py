"""Sessions: create, end, list, delete; per-session summaries; closing the sessions of dead
recorders (marked interrupted)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from outputs.errors import StoreError, UnknownSessionError
from outputs.store.base import StoreBase, logger
from outputs.store.owners import owner_alive
from outputs.store.rows import SessionRow, from_iso, from_us, iso, slug, summary_num, utc
from processing.records import MetricValue

_SESSION_COLUMNS = "id, athlete, start_utc, end_utc, source, meta, interrupted"


class SessionsPart(StoreBase):
    """The sessions of a :class:`~outputs.store.SessionStore`."""

    def has_session(self, session_id: str) -> bool:
        """Whether the session exists (cached: cheap to call per record)."""
        if session_id in self._known_sessions:
            return True
        found = bool(self._query("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))
        if found:
            self._known_sessions.add(session_id)
        return found

    def _require_session(self, session_id: str) -> None:
        if not self.has_session(session_id):
            raise UnknownSessionError(self._path, session_id)

    def create_session(
        self,
        athlete: str,
        start_utc: datetime,
        source: str,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a session owned by this store (this process) and return its id.

        The id is ``YYYYMMDDTHHMMSSZ-<athlete-slug>-<4 hex>``: sortable by start time, and
        deterministic: the hex digits hash (athlete, start, source, n) where n counts up from 0
        until the id is free. The first session takes this store's recorder lock
        (:mod:`outputs.store.owners`), held until :meth:`close`.

        Raises:
            ValueError: a naive ``start_utc``, or ``meta`` that is not JSON-serialisable.
        """
        start = utc(start_utc, "start_utc")
        try:
            meta_json = json.dumps(dict(meta or {}), separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session meta must be JSON-serialisable: {exc}") from exc
        prefix = f"{start:%Y%m%dT%H%M%SZ}-{slug(athlete)}-"
        owner = self._owner_token()
        with self._transaction() as conn:
            for n in range(1 << 16):
                digest = hashlib.sha256(f"{athlete}\x00{iso(start)}\x00{source}\x00{n}".encode())
                session_id = prefix + digest.hexdigest()[:4]
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                    continue
                conn.execute(
                    "INSERT INTO sessions (id, athlete, start_utc, source, meta, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (session_id, athlete, iso(start), source, meta_json, owner),
                )
                break
            else:  # pragma: no cover - 65,536 sessions with the same athlete and second
                raise StoreError(self._path, f"no free session id for {prefix}*")
        self._known_sessions.add(session_id)
        logger.info("session %s created (athlete %r, source %r)", session_id, athlete, source)
        return session_id

    def end_session(self, session_id: str, end_utc: datetime) -> None:
        """Mark the session ended (may be called again, e.g. after resuming it)."""
        end = utc(end_utc, "end_utc")
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE sessions SET end_utc = ? WHERE id = ?", (iso(end), session_id)
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

    def close_interrupted_sessions(self) -> list[str]:
        """Close every open session whose recording process is gone; their ids.

        A session is left alone while its owner (the store that created it, in this or in
        another process) holds its lock. Otherwise it ends at the time of its last stored
        record (its start when it has none) and is marked ``interrupted``. Sessions written
        before schema 2 have no owner: open ones are closed too. Run by :meth:`open`.
        """
        rows = self._query("SELECT id, owner, start_utc FROM sessions WHERE end_utc IS NULL")
        dead = [(sid, start) for sid, owner, start in rows
                if owner is None or not owner_alive(self._path, owner)]  # fmt: skip
        closed: list[str] = []
        for session_id, start in dead:
            with self._transaction() as conn:
                (last_us,) = conn.execute(
                    "SELECT MAX(time_utc_us) FROM records WHERE session_id = ?", (session_id,)
                ).fetchone()
                end = iso(from_us(int(last_us))) if last_us is not None else start
                cur = conn.execute(
                    "UPDATE sessions SET end_utc = ?, interrupted = 1 "
                    "WHERE id = ? AND end_utc IS NULL",
                    (end, session_id),
                )
            if cur.rowcount:
                closed.append(session_id)
                logger.warning(
                    "session %s was left open by a process that is gone: closed at its last "
                    "record (%s), marked interrupted", session_id, end,
                )  # fmt: skip
        return closed

    def sessions(self, athlete: str | None = None) -> list[SessionRow]:
        """All sessions (of one athlete), oldest first."""
        where, params = ("WHERE athlete = ?", (athlete,)) if athlete is not None else ("", ())
        return self._session_rows(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} ORDER BY start_utc, id", params
        )

    def session(self, session_id: str) -> SessionRow | None:
        """One session, or None when there is no such session."""
        rows = self._session_rows(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        return rows[0] if rows else None

    def latest_session(self, athlete: str | None = None) -> SessionRow | None:
        """The session that started last (of one athlete), or None for an empty store."""
        where, params = ("WHERE athlete = ?", (athlete,)) if athlete is not None else ("", ())
        rows = self._session_rows(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} "
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
                start_utc=from_iso(start),
                end_utc=from_iso(end) if end is not None else None,
                source=source,
                meta=json.loads(meta),
                counts=counts[sid],
                interrupted=bool(interrupted),
            )
            for sid, athlete, start, end, source, meta, interrupted in rows
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
                (session_id, key, text, summary_num(value)),
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
