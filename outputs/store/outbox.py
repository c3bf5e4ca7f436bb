"""The outbox: per output a cursor over ``records.seq``, pending records, backlogs, dead letters.

Every query here does bounded work whatever the size of the store: :meth:`pending` seeks the
cursor in the primary key (all kinds) or in ``records_by_kind`` (some kinds: one index range
per kind, at most ``limit`` rows each), and the counts of :meth:`backlog` walk only the records
after the cursor. The event loop reaches these through :class:`outputs.outbox.StoreOutbox`
(worker threads), never directly.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from outputs.codec import decode_parts, encode_record
from outputs.store.base import StoreBase, logger
from outputs.store.rows import DeadLetter, OutboxItem, from_iso, iso, utc

_ITEM_COLUMNS = "seq, session_id, kind, payload, raw"


class OutboxPart(StoreBase):
    """The delivery cursors of the outputs (``"influx"``, ``"mqtt"``…)."""

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
        with self._lock:
            cursor = self.delivered_seq(output)
            if kinds is None:
                rows = self._query(
                    f"SELECT {_ITEM_COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, limit),
                )
            else:
                wanted = sorted(set(kinds))
                if not wanted:
                    return []
                one = (f"SELECT * FROM (SELECT {_ITEM_COLUMNS} FROM records "
                       "WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?)")  # fmt: skip
                params: list[object] = []
                for kind in wanted:
                    params += [kind, cursor, limit]
                sql = " UNION ALL ".join([one] * len(wanted))
                if len(wanted) > 1:
                    sql += " ORDER BY seq LIMIT ?"
                    params.append(limit)
                rows = self._query(sql, params)
        return [
            OutboxItem(seq=seq, session_id=sid, record=decode_parts(kind, payload, raw))
            for seq, sid, kind, payload, raw in rows
        ]

    def register_output(self, output: str) -> None:
        """Give ``output`` a cursor (at the start of the store) if it has none: from now on
        :meth:`output_backlogs` reports it, even before its first delivery."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO outbox (output, delivered_seq) VALUES (?, 0) "
                "ON CONFLICT (output) DO NOTHING",
                (output,),
            )

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

    def cursors(self) -> dict[str, int]:
        """Every output that has a cursor, with its last delivered ``seq``."""
        return {str(o): int(s) for o, s in self._query("SELECT output, delivered_seq FROM outbox")}

    def _count_after(self, cursor: int, kinds: Collection[str] | None) -> int:
        if kinds is None:
            rows = self._query("SELECT COUNT(*) FROM records WHERE seq > ?", (cursor,))
            return int(rows[0][0])
        total = 0
        for kind in sorted(set(kinds)):
            rows = self._query(
                "SELECT COUNT(*) FROM records WHERE kind = ? AND seq > ?", (kind, cursor)
            )
            total += int(rows[0][0])
        return total

    def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        """How many stored records (of ``kinds``; all when None) ``output`` has not delivered."""
        with self._lock:
            return self._count_after(self.delivered_seq(output), kinds)

    def output_backlogs(
        self, kinds_by_output: Mapping[str, Collection[str] | None]
    ) -> dict[str, int]:
        """The true backlog of each output that has a cursor, counting only its kinds.

        ``kinds_by_output`` maps an output to the record kinds it takes (``None``: all), e.g.
        ``{"influx": None, "mqtt": ("alert",)}``. An output without a cursor row (never used
        with this store, see :meth:`register_output`) is left out of the result.
        """
        with self._lock:
            cursors = self.cursors()
            return {
                output: self._count_after(cursors[output], kinds)
                for output, kinds in kinds_by_output.items()
                if output in cursors
            }

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
        when = utc(time_utc, "time_utc") if time_utc is not None else datetime.now(UTC)
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
                 iso(when)),
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
                time_utc=from_iso(t),
            )
            for i, o, f, la, c, p, m, t in rows
        ]  # fmt: skip
