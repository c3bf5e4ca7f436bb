"""Session store: codec round trips, sessions, outbox, real SQLite failures, async writer."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    SensorInfo,
    SensorKind,
    StrideReading,
)
from outputs.codec import (
    Record,
    decode_parts,
    decode_record,
    encode_parts,
    encode_record,
    kind_of,
)
from outputs.errors import (
    RecordCodecError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreVersionError,
    UnknownSessionError,
)
from outputs.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    AsyncStore,
    OutboxItem,
    SessionStore,
    SqliteErrorClass,
    classify_sqlite_error,
)
from processing.records import (
    Alert,
    AlertKind,
    Metric,
    MetricGroup,
    Segment,
    SegmentKind,
    SegmentSummary,
    Severity,
)

T0 = datetime(2024, 5, 1, 6, 30, 0, 123456, tzinfo=UTC)

# ----------------------------------------------------------------------------- strategies

names = st.text(min_size=1, max_size=12)  # includes non-ASCII ("Zoë", "Юлия", emoji)
finite = st.floats(allow_nan=False, allow_infinity=False)
floats = st.floats(allow_nan=False)  # ±inf round-trips too (NaN is tested separately)
maybe_float = st.none() | floats
aware_times = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
)
stamped: dict[str, Any] = {
    "athlete": names,
    "sensor": st.text(max_size=17),
    "time_utc": aware_times,
    "time_mono_s": finite,
}
metric_values = st.dictionaries(
    st.text(max_size=10),
    st.none() | st.booleans() | st.integers() | floats | st.text(max_size=8),
    max_size=6,
)

heart_rates = st.builds(
    HeartRateReading,
    **stamped,
    heart_rate_bpm=st.integers(0, 255),
    rr_intervals_s=st.lists(st.integers(0, 65535).map(lambda t: t / 1024), max_size=9).map(tuple),
    beat_times_mono_s=st.lists(finite, max_size=9).map(tuple),
    contact=st.sampled_from(Contact),
    energy_kj=st.none() | st.integers(0, 65535),
    raw=st.binary(max_size=24),
)
strides = st.builds(
    StrideReading,
    **stamped,
    speed_mps=floats,
    cadence_per_min=st.integers(0, 255),
    stride_length_m=maybe_float,
    total_distance_m=maybe_float,
    running=st.none() | st.booleans(),
    raw=st.binary(max_size=12),
)
batteries = st.builds(
    BatteryReading, **stamped, level_pct=st.integers(0, 100), raw=st.binary(max_size=2)
)
links = st.builds(
    LinkEvent,
    **stamped,
    state=st.sampled_from(LinkState),
    detail=st.text(max_size=30),
    raw=st.binary(max_size=8),
)
sensor_infos = st.builds(
    SensorInfo,
    **stamped,
    name=st.text(max_size=20),
    kind=st.sampled_from(SensorKind),
    manufacturer=st.none() | st.text(max_size=10),
    model=st.none() | st.text(max_size=10),
    firmware=st.none() | st.text(max_size=10),
    body_sensor_location=st.none() | st.text(max_size=10),
    rsc_features=st.none() | st.lists(st.text(max_size=10), max_size=4).map(tuple),
)
metrics = st.builds(
    Metric,
    athlete=names,
    time_utc=aware_times,
    time_mono_s=finite,
    group=st.sampled_from(MetricGroup),
    values=metric_values,
)
alerts = st.builds(
    Alert,
    id=st.text(max_size=20),
    athlete=names,
    time_utc=aware_times,
    time_mono_s=finite,
    kind=st.sampled_from(AlertKind),
    severity=st.sampled_from(Severity),
    value=maybe_float,
    threshold=maybe_float,
    message=st.text(max_size=40),
)
summaries = st.builds(
    SegmentSummary,
    duration_s=floats,
    distance_m=floats,
    avg_speed_mps=maybe_float,
    avg_pace_s_per_km=maybe_float,
    avg_hr_bpm=maybe_float,
    max_hr_bpm=maybe_float,
    avg_cadence_spm=maybe_float,
    avg_step_length_m=maybe_float,
)
segments = st.builds(
    Segment,
    athlete=names,
    kind=st.sampled_from(SegmentKind),
    start_utc=aware_times,
    end_utc=aware_times,
    start_mono_s=finite,
    end_mono_s=finite,
    start_m=floats,
    end_m=floats,
    summary=summaries,
)
readings_st = heart_rates | strides | batteries | links | sensor_infos
records_st = readings_st | metrics | alerts | segments


def hr(i: int, athlete: str = "Zoë") -> HeartRateReading:
    """A deterministic heart-rate reading (RR not whole milliseconds, odd microseconds)."""
    return HeartRateReading(
        athlete=athlete,
        sensor="C0:FF:EE:00:00:01",
        time_utc=T0 + timedelta(microseconds=250_001 * i),
        time_mono_s=1000.0 + 0.25 * i,
        heart_rate_bpm=120 + i % 50,
        rr_intervals_s=(523 / 1024, 517 / 1024)[: i % 3],
        beat_times_mono_s=(999.5 + 0.25 * i, 1000.0 + 0.25 * i)[: i % 3],
        contact=Contact.DETECTED,
        energy_kj=i if i % 10 == 0 else None,
        raw=bytes([0x16, 120 + i % 50, i % 256, 2]),
    )


def metric(i: int, group: MetricGroup = MetricGroup.HEART) -> Metric:
    return Metric(
        athlete="Zoë",
        time_utc=T0 + timedelta(seconds=i),
        time_mono_s=1000.0 + i,
        group=group,
        values={"heart_rate_bpm": 120 + i, "zone": 3, "contact": True, "note": None},
    )


def alert(i: int) -> Alert:
    return Alert(
        id=f"Zoë-hr_surge-{i}",
        athlete="Zoë",
        time_utc=T0 + timedelta(seconds=i),
        time_mono_s=1000.0 + i,
        kind=AlertKind.HR_SURGE,
        severity=Severity.WARNING,
        value=25.0,
        threshold=20.0,
        message="HR +25 bpm in 30 s",
    )


def segment(i: int) -> Segment:
    return Segment(
        athlete="Zoë",
        kind=SegmentKind.RUN,
        start_utc=T0 + timedelta(seconds=i),
        end_utc=T0 + timedelta(seconds=i + 60),
        start_mono_s=1000.0 + i,
        end_mono_s=1060.0 + i,
        start_m=0.0,
        end_m=250.0,
        summary=SegmentSummary(
            duration_s=60.0,
            distance_m=250.0,
            avg_speed_mps=250 / 60,
            avg_pace_s_per_km=240.0,
            avg_hr_bpm=150.5,
            max_hr_bpm=None,
            avg_cadence_spm=182.0,
            avg_step_length_m=None,
        ),
    )


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


def times_of(record: Record) -> list[datetime]:
    if isinstance(record, Segment):
        return [record.start_utc, record.end_utc]
    return [record.time_utc]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path / "store" / "sessions.db") as s:
        yield s


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path_factory.mktemp("shared") / "sessions.db") as s:
        yield s


# ----------------------------------------------------------------------------- codec


@given(records_st)
@settings(max_examples=300)
def test_codec_round_trip_every_record_type(record: Record) -> None:
    kind, payload = encode_record(record)
    assert kind == kind_of(record)
    decoded = decode_record(kind, payload)
    assert decoded == record
    assert type(decoded) is type(record)
    for value in times_of(decoded):
        assert_utc(value)
    kind2, payload2, raw = encode_parts(record)
    assert kind2 == kind
    assert decode_parts(kind2, payload2, raw) == record
    assert "raw" not in payload2 or raw is None


def test_codec_payload_is_compact_json_with_exact_floats() -> None:
    record = hr(7)
    _, payload = encode_record(record)
    assert ", " not in payload
    assert '": ' not in payload
    assert '"raw":"16' in payload  # hex
    assert '"time_utc":"2024-05-01T06:30:01.873463+00:00"' in payload
    assert decode_record("heart_rate", payload).rr_intervals_s == (523 / 1024,)  # type: ignore[union-attr]


def test_codec_keeps_nan_and_infinity() -> None:
    record = Metric(
        athlete="a",
        time_utc=T0,
        time_mono_s=1.0,
        group=MetricGroup.HRV,
        values={"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "zero": -0.0},
    )
    values = decode_record(*encode_record(record)).values  # type: ignore[union-attr]
    assert math.isnan(values["nan"])
    assert values["inf"] == math.inf
    assert values["ninf"] == -math.inf
    assert math.copysign(1.0, values["zero"]) == -1.0


def test_codec_rejects_naive_datetime_and_unknown_types() -> None:
    naive = HeartRateReading(
        athlete="a", sensor="s", time_utc=datetime(2024, 1, 1), time_mono_s=0.0,
        heart_rate_bpm=60, rr_intervals_s=(), beat_times_mono_s=(),
        contact=Contact.UNSUPPORTED, energy_kj=None, raw=b"",
    )  # fmt: skip
    with pytest.raises(RecordCodecError, match="naive"):
        encode_record(naive)
    with pytest.raises(RecordCodecError, match="not a record type"):
        encode_record("nope")  # type: ignore[arg-type]
    with pytest.raises(RecordCodecError, match="unknown record kind"):
        decode_record("gps", "{}")
    with pytest.raises(RecordCodecError, match="cannot decode"):
        decode_record("battery", "[1, 2]")
    with pytest.raises(RecordCodecError, match="cannot decode"):
        decode_record("battery", '{"athlete": "a"}')


def test_codec_ignores_unknown_keys_from_newer_writers() -> None:
    kind, payload = encode_record(hr(1))
    newer = payload[:-1] + ',"skin_temp_c":33.5}'
    assert decode_record(kind, newer) == hr(1)


# ----------------------------------------------------------------------------- store round trip


@given(st.lists(records_st, min_size=1, max_size=6))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_store_round_trip_every_record_type(
    shared_store: SessionStore, records: list[Record]
) -> None:
    sid = shared_store.create_session(records[0].athlete, T0, "hypothesis")
    shared_store.write(sid, records)
    back: list[Record] = [
        *shared_store.readings(sid),
        *shared_store.metrics(sid),
        *shared_store.alerts(sid),
        *shared_store.segments(sid),
    ]
    expected = (
        [r for r in records if kind_of(r) not in ("metric", "alert", "segment")]
        + [r for r in records if isinstance(r, Metric)]
        + [r for r in records if isinstance(r, Alert)]
        + [r for r in records if isinstance(r, Segment)]
    )
    assert back == expected
    for record in back:
        for value in times_of(record):
            assert_utc(value)
    row = shared_store.session(sid)
    assert row is not None
    assert row.total == len(records)


def test_readings_are_exact_including_raw_bytes(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "virtual")
    written = [hr(i) for i in range(2_500)]  # more than one page of reads
    store.write(sid, written)
    back = list(store.readings(sid))
    assert back == written
    assert [r.raw for r in back] == [r.raw for r in written]
    assert all(r.time_utc.tzinfo is UTC for r in back)


def test_metrics_filter_by_group(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "virtual")
    heart = [metric(i) for i in range(3)]
    gait = [metric(i, MetricGroup.GAIT) for i in range(2)]
    store.write(sid, [heart[0], gait[0], heart[1], gait[1], heart[2]])
    assert list(store.metrics(sid, MetricGroup.GAIT)) == gait
    assert list(store.metrics(sid, "heart")) == heart
    assert len(list(store.metrics(sid))) == 5


# ----------------------------------------------------------------------------- sessions


def test_session_ids_are_sortable_unique_and_deterministic(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "a.db") as a, SessionStore.open(tmp_path / "b.db") as b:
        ids_a = [a.create_session("Zoë Smith", T0, "ble") for _ in range(3)]
        ids_b = [b.create_session("Zoë Smith", T0, "ble") for _ in range(3)]
        assert ids_a == ids_b
        assert len(set(ids_a)) == 3
        assert re.fullmatch(r"20240501T063000Z-zoe-smith-[0-9a-f]{4}", ids_a[0])
        later = a.create_session("Юлия", T0 + timedelta(hours=1), "ble")
        assert re.fullmatch(r"20240501T073000Z-athlete-[0-9a-f]{4}", later)
        assert max([*ids_a, later]) == later


def test_sessions_listing_counts_and_lifecycle(store: SessionStore) -> None:
    assert store.latest_session() is None
    a1 = store.create_session("Zoë", T0, "ble", {"workout": "morning-5k"})
    b1 = store.create_session("Юлия", T0 + timedelta(minutes=5), "virtual")
    a2 = store.create_session("Zoë", T0 + timedelta(days=1), "replay:x.fit")
    store.write(a1, [hr(0), hr(1), metric(0), alert(0), segment(0)])
    store.write(a1, [hr(2)])
    store.end_session(a1, T0 + timedelta(hours=1))

    assert [s.id for s in store.sessions()] == [a1, b1, a2]
    assert [s.id for s in store.sessions("Zoë")] == [a1, a2]
    row = store.session(a1)
    assert row is not None
    assert row.athlete == "Zoë"
    assert row.source == "ble"
    assert row.meta == {"workout": "morning-5k"}
    assert row.start_utc == T0
    assert row.start_utc.tzinfo is UTC
    assert row.end_utc == T0 + timedelta(hours=1)
    assert row.counts == {"heart_rate": 3, "metric": 1, "alert": 1, "segment": 1}
    assert store.sessions()[1].counts == {}
    assert store.session("nope") is None
    latest = store.latest_session()
    assert latest is not None
    assert latest.id == a2
    assert latest.end_utc is None
    latest_yulia = store.latest_session("Юлия")
    assert latest_yulia is not None
    assert latest_yulia.id == b1

    store.delete_session(a1)
    assert store.session(a1) is None
    assert [s.id for s in store.sessions()] == [b1, a2]
    assert store.backlog("influx") == 0  # the deleted records are gone from the outbox too
    assert store.integrity_check() == "ok"


def test_unknown_session_is_refused(store: SessionStore) -> None:
    with pytest.raises(UnknownSessionError, match="no session 'ghost'"):
        store.write("ghost", [hr(0)])
    with pytest.raises(UnknownSessionError):
        store.end_session("ghost", T0)
    with pytest.raises(UnknownSessionError):
        store.readings("ghost")
    with pytest.raises(UnknownSessionError):
        store.delete_session("ghost")
    with pytest.raises(UnknownSessionError):
        store.set_session_summary("ghost", "resting_rmssd_ms", 40.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.create_session("a", datetime(2024, 1, 1), "ble")


def test_write_is_all_or_nothing(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "ble")
    naive = Metric(
        athlete="Zoë", time_utc=datetime(2024, 1, 1), time_mono_s=0.0,
        group=MetricGroup.HEART, values={},
    )  # fmt: skip
    with pytest.raises(RecordCodecError):
        store.write(sid, [hr(0), naive])
    assert list(store.readings(sid)) == []
    assert store.backlog("influx") == 0


def test_session_summary_and_resting_rmssd_history(store: SessionStore) -> None:
    ids = [store.create_session("Zoë", T0 + timedelta(days=d), "ble") for d in range(5)]
    other = store.create_session("Юлия", T0, "ble")
    for d, sid in enumerate(ids):
        if d != 2:  # one session without a value
            store.set_session_summary(sid, "resting_rmssd_ms", 40.0 + d)
    store.set_session_summary(ids[2], "resting_rmssd_ms", None)
    store.set_session_summary(other, "resting_rmssd_ms", 99.0)
    store.set_session_summary(ids[4], "note", "slept badly")
    store.set_session_summary(ids[4], "resting_rmssd_ms", 30.5)  # replaced

    assert store.session_summary(ids[4]) == {"note": "slept badly", "resting_rmssd_ms": 30.5}
    assert store.session_summary(ids[2]) == {"resting_rmssd_ms": None}
    assert store.resting_rmssd_history("Zoë") == [40.0, 41.0, 43.0, 30.5]
    assert store.resting_rmssd_history("Zoë", limit=2) == [43.0, 30.5]
    assert store.resting_rmssd_history("Zoë", exclude_session=ids[4]) == [40.0, 41.0, 43.0]
    assert store.resting_rmssd_history("nobody") == []


def test_resume_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SessionStore.open(path) as s:
        sid = s.create_session("Zoë", T0, "ble")
        s.write(sid, [hr(i) for i in range(10)])
    with SessionStore.open(path) as s:
        s.write(sid, [hr(i) for i in range(10, 20)])
        s.end_session(sid, T0 + timedelta(minutes=30))
        assert list(s.readings(sid)) == [hr(i) for i in range(20)]
        row = s.session(sid)
        assert row is not None
        assert row.end_utc is not None
        assert row.counts == {"heart_rate": 20}


def test_open_sets_pragmas_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.db"
    with SessionStore.open(path, synchronous="FULL") as s:
        conn = s._conn  # internal: inspect the connection's settings
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert s.integrity_check() == "ok"
    with SessionStore.open(path) as s:
        assert s._conn is not None
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ValueError, match="synchronous"):
        SessionStore.open(path, synchronous="OFF")


def test_closed_store_raises(tmp_path: Path) -> None:
    s = SessionStore.open(tmp_path / "s.db")
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.sessions()


# ----------------------------------------------------------------------------- outbox


def _mixed(store: SessionStore) -> tuple[list[str], list[Record]]:
    a = store.create_session("Zoë", T0, "ble")
    b = store.create_session("Юлия", T0, "ble")
    batches: list[tuple[str, list[Record]]] = [
        (a, [hr(0), metric(0), hr(1)]),
        (b, [hr(0, "Юлия"), alert(0)]),
        (a, [segment(0), metric(1, MetricGroup.GAIT)]),
        (b, [hr(1, "Юлия")]),
    ]
    sids: list[str] = []
    records: list[Record] = []
    for sid, recs in batches:
        store.write(sid, recs)
        sids += [sid] * len(recs)
        records += recs
    return sids, records


def test_outbox_returns_commit_order_across_kinds(store: SessionStore) -> None:
    sids, records = _mixed(store)
    items = store.pending("influx", 100)
    assert [i.record for i in items] == records
    assert [i.session_id for i in items] == sids
    seqs = [i.seq for i in items]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert store.backlog("influx") == len(records)
    assert store.backlog("influx", kinds={"heart_rate"}) == 4
    assert [i.record for i in store.pending("influx", 10, kinds=["metric"])] == [
        metric(0), metric(1, MetricGroup.GAIT),
    ]  # fmt: skip


def test_outbox_mark_delivered_per_output(store: SessionStore) -> None:
    _, records = _mixed(store)
    first = store.pending("influx", 3)
    store.mark_delivered("influx", first[-1].seq)
    assert store.backlog("influx") == len(records) - 3
    assert store.backlog("mqtt") == len(records)  # outputs are independent
    rest = store.pending("influx", 100)
    assert [i.record for i in rest] == records[3:]
    store.mark_delivered("influx", first[0].seq)  # stale: the cursor never moves back
    assert store.delivered_seq("influx") == first[-1].seq
    store.mark_delivered("influx", rest[-1].seq)
    assert store.pending("influx", 100) == []
    assert store.backlog("influx") == 0
    with pytest.raises(ValueError, match="beyond the last stored record"):
        store.mark_delivered("influx", rest[-1].seq + 1)
    assert store.pending("influx", 0) == []


def test_seq_is_never_reused_after_delete(store: SessionStore) -> None:
    a = store.create_session("Zoë", T0, "ble")
    store.write(a, [hr(0), hr(1)])
    last = store.pending("influx", 10)[-1].seq
    store.mark_delivered("influx", last)
    store.delete_session(a)
    b = store.create_session("Zoë", T0 + timedelta(days=1), "ble")
    store.write(b, [hr(2)])
    items = store.pending("influx", 10)  # the new record is not hidden behind the cursor
    assert [i.record for i in items] == [hr(2)]
    assert items[0].seq > last


def test_dead_letters_do_not_block_the_rest(store: SessionStore) -> None:
    _, records = _mixed(store)
    bad = store.pending("influx", 2)
    when = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    store.dead_letter("influx", bad, 'partial write: field type conflict "hr"', time_utc=when)
    assert [i.record for i in store.pending("influx", 100)] == records[2:]
    assert store.backlog("influx") == len(records) - 2
    assert store.backlog("mqtt") == len(records)  # only that output moved on
    (letter,) = store.dead_letters("influx")
    assert letter.output == "influx"
    assert (letter.first_seq, letter.last_seq, letter.count) == (bad[0].seq, bad[1].seq, 2)
    assert letter.message == 'partial write: field type conflict "hr"'
    assert letter.time_utc == when
    assert letter.items() == bad
    assert store.dead_letters("mqtt") == []
    with pytest.raises(ValueError, match="at least one"):
        store.dead_letter("influx", [], "empty")


def test_outbox_item_holds_session_and_record(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "ble")
    store.write(sid, [alert(3)])
    (item,) = store.pending("mqtt", 5)
    assert item == OutboxItem(seq=item.seq, session_id=sid, record=alert(3))


# ----------------------------------------------------------------------------- damaged files


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SessionStore.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreVersionError) as info:
        SessionStore.open(path)
    assert (
        f"created by a newer stridewatch (schema {SCHEMA_VERSION + 5}, this one knows "
        f"{SCHEMA_VERSION}): upgrade stridewatch"
    ) in str(info.value).replace(". upgrade", ": upgrade")
    assert info.value.found == SCHEMA_VERSION + 5
    assert info.value.known == SCHEMA_VERSION
    assert path.read_bytes() == before


def test_garbage_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    garbage = bytes(range(256)) * 40
    path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as info:
        SessionStore.open(path)
    message = str(info.value)
    assert str(path) in message
    assert "restore it from a backup" in message
    assert "move it away" in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # no -wal/-shm created


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match="not a stridewatch store"):
        SessionStore.open(path)
    assert path.read_bytes() == before


def test_damaged_database_fails_quick_check_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SessionStore.open(path) as s:
        sid = s.create_session("Zoë", T0, "ble")
        s.write(sid, [hr(i) for i in range(3_000)])
    data = bytearray(path.read_bytes())
    pages = len(data) // 4096
    for page in (3, pages // 2):
        data[page * 4096 : (page + 1) * 4096] = b"\xa5" * 4096
    path.write_bytes(data)
    with pytest.raises(StoreCorruptError, match=r"quick_check|malformed"):
        SessionStore.open(path)
    assert path.read_bytes() == data


# ----------------------------------------------------------------------------- disk full


def _limit_pages(store: SessionStore, extra_pages: int | None) -> None:
    """Cap the database at its current size (+ extra pages): a real SQLITE_FULL when it grows.

    ``None`` lifts the cap. Uses the store's connection (internal) under its lock.
    """
    with store._lock:
        conn = store._conn
        assert conn is not None
        if extra_pages is None:
            conn.execute("PRAGMA max_page_count = 1073741823")
        else:
            count = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {count + extra_pages}")


def test_disk_full_raises_store_full_and_nothing_is_half_written(store: SessionStore) -> None:
    sid = store.create_session("Zoë", T0, "ble")
    store.write(sid, [hr(i) for i in range(100)])
    batch = [hr(i) for i in range(100, 3_100)]
    _limit_pages(store, 0)
    with pytest.raises(StoreFullError) as info:
        store.write(sid, batch)
    assert info.value.pending == len(batch)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert "database or disk is full" in str(info.value.__cause__)
    assert len(list(store.readings(sid))) == 100  # the failed transaction left nothing
    _limit_pages(store, None)
    store.write(sid, batch)  # the same batch, retried
    assert list(store.readings(sid)) == [hr(i) for i in range(3_100)]
    row = store.session(sid)
    assert row is not None
    assert row.counts == {"heart_rate": 3_100}
    assert store.integrity_check() == "ok"


async def test_async_writer_keeps_batch_on_disk_full_and_retries(tmp_path: Path) -> None:
    async with AsyncStore.open(tmp_path / "s.db", batch_interval_s=10.0) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        out.extend(sid, [hr(i) for i in range(50)])
        await out.flush()
        _limit_pages(out.store, 0)
        out.extend(sid, [hr(i) for i in range(50, 3_050)])
        with pytest.raises(StoreFullError):
            await out.flush()
        assert out.buffered == 3_000  # nothing lost
        assert out.committed == 50
        out.add(sid, hr(3_050))  # still accepting
        _limit_pages(out.store, None)
        await out.flush()
        assert out.buffered == 0
        assert list(out.store.readings(sid)) == [hr(i) for i in range(3_051)]


async def test_async_writer_retries_by_itself_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="outputs.store")
    async with AsyncStore.open(tmp_path / "s.db", batch_interval_s=0.02) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        _limit_pages(out.store, 0)
        out.extend(sid, [hr(i) for i in range(3_000)])
        for _ in range(500):  # wait (bounded) for several failed attempts
            if out._failures >= 3:  # internal: the writer's count of failed commits
                break
            await asyncio.sleep(0.01)
        assert out._failures >= 3
        assert out.buffered == 3_000
        _limit_pages(out.store, None)
        for _ in range(100):
            if out.buffered == 0:
                break
            await asyncio.sleep(0.02)
        assert out.committed == 3_000
    warnings = [r for r in caplog.records if "database or disk is full" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert any("resumed after" in r.getMessage() for r in caplog.records)
    with SessionStore.open(tmp_path / "s.db") as s:
        assert list(s.readings(sid)) == [hr(i) for i in range(3_000)]


async def test_async_writer_refuses_beyond_max_buffered(tmp_path: Path) -> None:
    async with AsyncStore.open(
        tmp_path / "s.db", batch_interval_s=10.0, batch_size=10, max_buffered=20
    ) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        _limit_pages(out.store, 0)
        out.extend(sid, [hr(i) for i in range(9)])  # below batch_size: no commit yet
        out.extend(sid, [hr(i) for i in range(9, 20)])
        with pytest.raises(StoreFullError, match="refused") as info:
            out.add(sid, hr(20))
        assert info.value.refused
        _limit_pages(out.store, None)


# ----------------------------------------------------------------------------- classification


def _sqlite_error(tmp_path: Path, case: str) -> sqlite3.Error:
    path = tmp_path / f"{case}.db"
    if case == "not_a_database":
        path.write_bytes(b"x" * 4096)
    conn = sqlite3.connect(path)
    try:
        if case == "full":
            conn.execute("CREATE TABLE t (x BLOB)")
            conn.execute("PRAGMA max_page_count = 3")
            conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
        elif case == "foreign_key":
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
            conn.execute("CREATE TABLE c (p INTEGER REFERENCES p(id))")
            conn.execute("INSERT INTO c VALUES (1)")
        elif case == "not_a_database":
            conn.execute("PRAGMA user_version")
        else:
            conn.execute("SELEC 1")
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"no error for {case}")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("full", SqliteErrorClass.FULL),
        ("foreign_key", SqliteErrorClass.FOREIGN_KEY),
        ("not_a_database", SqliteErrorClass.CORRUPT),
        ("syntax", SqliteErrorClass.OTHER),
    ],
)
def test_classify_sqlite_error(tmp_path: Path, case: str, expected: SqliteErrorClass) -> None:
    assert classify_sqlite_error(_sqlite_error(tmp_path, case)) is expected


def test_classify_error_without_code() -> None:
    assert classify_sqlite_error(sqlite3.Error("no code")) is SqliteErrorClass.OTHER


# ----------------------------------------------------------------------------- async writer


async def test_async_writer_commits_by_interval(tmp_path: Path) -> None:
    commits: list[int] = []
    async with AsyncStore.open(
        tmp_path / "s.db", batch_interval_s=0.05, on_commit=commits.append
    ) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        out.add(sid, hr(0))
        assert out.buffered == 1
        for _ in range(100):
            if out.committed:
                break
            await asyncio.sleep(0.01)
        assert out.committed == 1
        assert commits == [1]
        assert list(out.store.readings(sid)) == [hr(0)]


async def test_async_writer_commits_by_size(tmp_path: Path) -> None:
    commits: list[int] = []
    async with AsyncStore.open(
        tmp_path / "s.db", batch_interval_s=60.0, batch_size=100, on_commit=commits.append
    ) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        out.extend(sid, [hr(i) for i in range(99)])
        await asyncio.sleep(0.05)
        assert out.committed == 0  # below batch_size: waits for the (long) interval
        out.extend(sid, [hr(i) for i in range(99, 250)])
        for _ in range(200):
            if out.committed == 250:
                break
            await asyncio.sleep(0.01)
        # Reaching batch_size wakes the writer, which drains the buffer in batch_size chunks.
        assert commits == [100, 200, 250]
        assert out.buffered == 0


async def test_async_writer_flushes_everything_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with AsyncStore.open(path, batch_interval_s=60.0) as out:
        sid = out.store.create_session("Zoë", T0, "ble")
        records: list[Record] = [hr(0), metric(0), alert(0), segment(0), hr(1)]
        out.extend(sid, records)
    assert out.committed == 5
    with SessionStore.open(path) as s:
        assert [i.record for i in s.pending("influx", 10)] == records
    with pytest.raises(StoreError, match="closed"):
        out.add(sid, hr(2))


async def test_async_writer_validates(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "s.db") as s:
        with pytest.raises(ValueError, match="batch_interval_s"):
            AsyncStore(s, batch_interval_s=0)
        with pytest.raises(ValueError, match="batch_size"):
            AsyncStore(s, batch_size=0)
        async with AsyncStore(s) as out:
            with pytest.raises(UnknownSessionError):
                out.add("ghost", hr(0))
        assert s.sessions() == []  # the store is not owned: still open


async def test_async_writer_commits_off_the_event_loop(tmp_path: Path) -> None:
    """Commits run on the writer's worker thread (lag figures: benchmarks/bench_store.py)."""
    loop_thread = threading.get_ident()
    commit_threads: set[int] = set()
    async with AsyncStore.open(tmp_path / "s.db") as out:
        store = out.store
        write_batch = store.write_batch

        def recording(items: Any) -> None:
            commit_threads.add(threading.get_ident())
            write_batch(items)

        store.write_batch = recording  # type: ignore[method-assign]
        sid = store.create_session("Zoë", T0, "ble")
        for chunk in range(5):
            out.extend(sid, [hr(chunk * 2_000 + i) for i in range(2_000)])
            await asyncio.sleep(0.01)
    assert out.committed == 10_000
    assert commit_threads
    assert loop_thread not in commit_threads
