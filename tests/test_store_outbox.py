"""The outbox stays cheap and true: schema 2's kind index, bounded queries, per-output backlogs,
and the upgrade of a schema-1 file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_store import T0, _mixed, alert, hr, metric

from outputs.codec import encode_parts
from outputs.outbox import StoreOutbox
from outputs.store import MIGRATIONS, SCHEMA_VERSION, SessionStore
from outputs.store.rows import to_us
from outputs.store.schema import APPLICATION_ID


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    s = SessionStore.open(tmp_path / "sessions.db")
    yield s  # type: ignore[misc]
    s.close()


def _plan(store: SessionStore, sql: str, params: tuple[object, ...]) -> str:
    conn = store._conn  # internal: the query plan of the store's own SQL
    assert conn is not None
    return " | ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_outbox_queries_seek_their_index(store: SessionStore) -> None:
    """Work per poll is bounded: the pending query seeks the cursor in an index, whatever the
    size of the store and however far behind the cursor is."""
    kinds_sql = ("SELECT seq, session_id, kind, payload, raw FROM records "
                 "WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?")  # fmt: skip
    plan = _plan(store, kinds_sql, ("alert", 0, 10))
    assert "records_by_kind" in plan
    assert "TEMP B-TREE" not in plan  # no sort of everything after the cursor
    all_sql = "SELECT seq FROM records WHERE seq > ? ORDER BY seq LIMIT ?"
    plan = _plan(store, all_sql, (0, 10))
    assert "INTEGER PRIMARY KEY" in plan
    assert "TEMP B-TREE" not in plan
    count_plan = _plan(store, "SELECT COUNT(*) FROM records WHERE kind = ? AND seq > ?",
                       ("alert", 0))  # fmt: skip
    assert "records_by_kind" in count_plan


def test_pending_by_kinds_merges_in_commit_order(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "ble")
    records = [hr(0), alert(0), metric(0), hr(1), alert(1), metric(1), alert(2)]
    store.write(sid, records)
    alerts = store.pending("mqtt", 10, kinds=["alert"])
    assert [i.record for i in alerts] == [alert(0), alert(1), alert(2)]
    assert [i.record for i in store.pending("x", 3, kinds=["alert", "heart_rate"])] == [
        hr(0), alert(0), hr(1)
    ]  # fmt: skip
    assert store.pending("x", 10, kinds=[]) == []
    store.mark_delivered("mqtt", alerts[1].seq)
    assert [i.record for i in store.pending("mqtt", 10, kinds=["alert"])] == [alert(2)]
    assert store.backlog("mqtt", kinds=["alert"]) == 1
    assert store.backlog("mqtt") == 2  # all kinds after the cursor: metric(1), alert(2)


def test_output_backlogs_are_per_output_and_only_for_outputs_in_use(store: SessionStore) -> None:
    kinds = {"influx": None, "mqtt": ("alert",)}
    _, records = _mixed(store)
    assert store.output_backlogs(kinds) == {}  # no output ever used: no backlog line
    store.register_output("influx")
    assert store.output_backlogs(kinds) == {"influx": len(records)}
    first = store.pending("influx", 2)
    store.mark_delivered("influx", first[-1].seq)
    store.register_output("mqtt")
    store.register_output("influx")  # registering again never moves a cursor back
    assert store.output_backlogs(kinds) == {"influx": len(records) - 2, "mqtt": 1}
    (only_alert,) = store.pending("mqtt", 10, kinds=["alert"])
    store.mark_delivered("mqtt", only_alert.seq)
    assert store.output_backlogs(kinds) == {"influx": len(records) - 2, "mqtt": 0}
    assert store.output_backlogs({"mqtt": ("alert",)}) == {"mqtt": 0}  # only those asked for
    assert store.cursors() == {"influx": first[-1].seq, "mqtt": only_alert.seq}


async def test_store_outbox_runs_off_the_loop(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "ble")
    store.write(sid, [hr(0), alert(0)])
    outbox = StoreOutbox(store)
    items = await outbox.pending("mqtt", 10, kinds=["alert"])
    assert [i.record for i in items] == [alert(0)]
    await outbox.mark_delivered("mqtt", items[0].seq)
    assert await outbox.backlog("mqtt", kinds=["alert"]) == 0


def _schema_1_file(path: Path) -> str:
    """A store as stridewatch with schema 1 wrote it, with a session left open."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    sid = "20240501T063000Z-zoe-0000"
    conn.execute(
        "INSERT INTO sessions (id, athlete, start_utc, source) VALUES (?, ?, ?, ?)",
        (sid, "Zoë", T0.isoformat(timespec="microseconds"), "ble"),
    )
    for i in range(5):
        kind, payload, raw = encode_parts(hr(i))
        us = to_us(hr(i).time_utc)
        conn.execute(
            "INSERT INTO records (session_id, cat, kind, athlete, sensor, tag, time_utc_us, "
            "time_mono_s, payload, raw) VALUES (?, 'reading', ?, 'Zoë', 's', NULL, ?, 0, ?, ?)",
            (sid, kind, us, payload, raw),
        )
    conn.execute("INSERT INTO session_counts VALUES (?, 'heart_rate', 5)", (sid,))
    conn.close()
    return sid


def test_schema_1_file_upgrades_and_its_open_session_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sid = _schema_1_file(path)
    with SessionStore.open(path) as s:
        conn = s._conn
        assert conn is not None
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"records_by_kind", "records_by_session"} <= indexes
        assert list(s.readings(sid)) == [hr(i) for i in range(5)]
        row = s.session(sid)
        assert row is not None
        assert row.interrupted  # no recorder can own a session of schema 1
        assert row.end_utc == hr(4).time_utc
        assert s.integrity_check() == "ok"
        assert [i.record for i in s.pending("influx", 10)] == [hr(i) for i in range(5)]
    with SessionStore.open(path) as s:  # a second open changes nothing
        row = s.session(sid)
        assert row is not None
        assert row.end_utc == hr(4).time_utc
