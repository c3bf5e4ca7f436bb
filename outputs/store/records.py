"""Records: batched writes (one transaction each) and per-session reads in commit order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from ingest.records import Reading
from outputs.codec import Record, decode_parts, encode_parts
from outputs.errors import UnknownSessionError
from outputs.store.rows import columns, to_us
from outputs.store.sessions import SessionsPart
from processing.records import Alert, Metric, MetricGroup, Segment

PAGE_ROWS = 1_000
"""Rows fetched per query when iterating a session (the lock is released between pages)."""


class RecordsPart(SessionsPart):
    """Writing and reading the records of sessions."""

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
            cat, athlete, sensor, tag, time_utc, mono = columns(record)
            rows.append(
                (session_id, cat, kind, athlete, sensor, tag, to_us(time_utc), mono, payload, raw)
            )
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
                f"AND seq > ?{tag_sql} ORDER BY seq LIMIT {PAGE_ROWS}",
                (session_id, cat, last, *extra),
            )
            for seq, kind, payload, raw in rows:
                last = seq
                yield decode_parts(kind, payload, raw)
            if len(rows) < PAGE_ROWS:
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
