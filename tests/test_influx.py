"""InfluxDB output: classification table, settings, and delivery against a real influxd (1.6)
and, for the v2 API (no InfluxDB 2.x is installable here), a recording HTTP fake."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from influx_server import InfluxServer, free_port

from ingest.records import BatteryReading, Contact, HeartRateReading, LinkEvent, LinkState
from outputs.codec import Record
from outputs.influx import (
    DeliveryState,
    InfluxAuthError,
    InfluxConfigError,
    InfluxTarget,
    InfluxWriter,
    OutboxDelivery,
    OutcomeKind,
    classify,
)
from outputs.lineprotocol import FIELD_TYPES, TAG_KEYS, unix_ms
from outputs.store import OutboxItem, SessionStore
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

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
ATHLETE = 'Zoë "Z" Ångström, Jr.=1'  # every character class that needs escaping, non-ASCII


# ------------------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "retry_after", "in_message"),
    [
        (204, {}, b"", OutcomeKind.OK, None, ""),
        (200, {}, b"", OutcomeKind.OK, None, ""),
        (500, {}, b'{"error":"engine: cache maximum memory size exceeded"}', OutcomeKind.RETRY,
         None, "cache maximum"),
        (503, {"retry-after": "7"}, b"", OutcomeKind.RETRY, 7.0, "503"),
        (429, {"Retry-After": "1"}, b"", OutcomeKind.RETRY, 1.0, "429"),
        (429, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, b"", OutcomeKind.RETRY, None, ""),
        (429, {"Retry-After": "99999"}, b"", OutcomeKind.RETRY, 300.0, ""),
        (408, {}, b"", OutcomeKind.RETRY, None, "408"),
        (401, {}, b'{"error":"authorization failed"}', OutcomeKind.AUTH, None, "authorization"),
        (403, {}, b'{"code":"forbidden","message":"insufficient permissions"}', OutcomeKind.AUTH,
         None, "insufficient permissions"),
        (404, {}, b'{"error":"database not found: \\"x\\""}', OutcomeKind.CONFIG, None,
         "create the database"),
        (404, {}, b'{"code":"not found","message":"bucket \\"b\\" not found"}',
         OutcomeKind.CONFIG, None, "create the bucket"),
        (404, {}, b"404 page not found", OutcomeKind.CONFIG, None, "use mode v1"),
        (400, {}, b'{"error":"partial write: field type conflict: input field \\"x\\""}',
         OutcomeKind.REJECTED, None, "field type conflict"),
        (400, {}, b'{"error":"unable to parse \'x\': missing fields"}', OutcomeKind.REJECTED,
         None, "unable to parse"),
        (413, {}, b"", OutcomeKind.REJECTED, None, "413"),
        (422, {}, b'{"code":"unprocessable entity","message":"failure writing points"}',
         OutcomeKind.REJECTED, None, "failure writing"),
        (301, {"Location": "https://x/write"}, b"", OutcomeKind.CONFIG, None, "fix the url"),
    ],
)  # fmt: skip
def test_classify(
    status: int, headers: dict[str, str], body: bytes, kind: OutcomeKind,
    retry_after: float | None, in_message: str,
) -> None:  # fmt: skip
    outcome = classify(status, headers, body)
    assert outcome.kind is kind
    assert outcome.retry_after_s == retry_after
    assert in_message in outcome.message


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"url": "127.0.0.1:8086", "database": "d"}, "url must look like"),
        ({"url": "http://h", "mode": "v1"}, "v1 needs database"),
        ({"url": "http://h", "database": "d", "token": "t", "username": "u"}, "not both"),
        ({"url": "http://h", "database": "d", "password": "p"}, "needs a user"),
        ({"url": "http://h", "mode": "v2", "org": "o", "bucket": "b"}, "STRIDEWATCH_INFLUX_TOKEN"),
        ({"url": "http://h", "mode": "v2", "token": "t"}, "v2 needs org and bucket"),
        ({"url": "http://h", "mode": "v2", "org": "o", "bucket": "b", "token": "t",
          "database": "d"}, "v1 settings"),
        ({"url": "http://h", "mode": "v3", "database": "d"}, "mode must be"),
        ({"url": "http://h?db=x", "database": "d"}, "query"),
        ({"url": "http://h", "database": "d", "batch_lines": 0}, "batch_lines"),
    ],
)  # fmt: skip
def test_target_validation(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(InfluxConfigError, match=problem):
        InfluxTarget(**settings)  # type: ignore[arg-type]


def test_target_paths_headers_and_env() -> None:
    v1 = InfluxTarget(url="http://db:8086/proxy/", database="run s", retention_policy="raw",
                      username="u", password="hunter2")  # fmt: skip
    assert v1.write_path == "/proxy/write?db=run+s&rp=raw&precision=ms"
    assert v1.auth_headers() == {"Authorization": "Basic dTpodW50ZXIy"}
    assert "hunter2" not in repr(v1)
    v2 = InfluxTarget.from_env(
        {"STRIDEWATCH_INFLUX_TOKEN": "s3cr3t"}, url="https://cloud", mode="v2", org="o",
        bucket="b",
    )  # fmt: skip
    assert v2.write_path == "/api/v2/write?org=o&bucket=b&precision=ms"
    assert v2.auth_headers() == {"Authorization": "Token s3cr3t"}
    assert "s3cr3t" not in repr(v2)


# ------------------------------------------------------------------------------ fakes


class FakeOutbox:
    """A FAKE of the delivery's outbox (outputs.influx.DeliveryOutbox): async, in memory."""

    def __init__(self, records: Sequence[Record] = ()) -> None:
        self.items: list[OutboxItem] = []
        self.cursor = 0
        self.marks: list[int] = []
        self.dead: list[tuple[list[OutboxItem], str]] = []
        self.registered: list[str] = []
        self.add(records)

    def add(self, records: Sequence[Record]) -> None:
        for record in records:
            self.items.append(OutboxItem(seq=len(self.items) + 1, session_id="s1", record=record))

    def left(self) -> int:
        return sum(1 for i in self.items if i.seq > self.cursor)

    async def pending(
        self, output: str, limit: int, *, kinds: Collection[str] | None = None
    ) -> list[OutboxItem]:
        return [i for i in self.items if i.seq > self.cursor][:limit]

    async def mark_delivered(self, output: str, up_to_seq: int) -> None:
        self.marks.append(up_to_seq)
        self.cursor = max(self.cursor, up_to_seq)

    async def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        return self.left()

    async def dead_letter(self, output: str, items: Sequence[OutboxItem], message: str) -> None:
        self.dead.append((list(items), message))
        self.cursor = max(self.cursor, *(i.seq for i in items))

    async def register_output(self, output: str) -> None:
        self.registered.append(output)


class RecordingFakeInflux:
    """A FAKE HTTP server on loopback that records requests and answers from a script."""

    def __init__(self, responses: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.responses = responses
        self.requests: list[dict[str, object]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                split = urllib.parse.urlsplit(self.path)
                fake.requests.append({
                    "time": time.monotonic(), "path": split.path,
                    "query": dict(urllib.parse.parse_qsl(split.query)),
                    "headers": dict(self.headers.items()), "body": body,
                })  # fmt: skip
                status, headers, answer = (
                    fake.responses.pop(0) if fake.responses else (204, {}, b"")
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_influx() -> Iterator[Callable[..., RecordingFakeInflux]]:
    servers: list[RecordingFakeInflux] = []

    def make(*responses: tuple[int, dict[str, str], bytes]) -> RecordingFakeInflux:
        servers.append(RecordingFakeInflux(list(responses)))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


# ------------------------------------------------------------------------------ records


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session_records(n_seconds: int = 120, athlete: str = ATHLETE) -> list[Record]:
    """A hand-built virtual session: every record type, every measurement."""
    out: list[Record] = []
    for i in range(n_seconds):
        t = float(i)
        hr = 95.0 + i * 0.5 + (i % 7) * 0.25
        rr = (60.0 / hr, 60.0 / hr + 0.01)
        out.append(HeartRateReading(
            athlete=athlete, sensor="C0:FF:EE:00:00:01", time_utc=at(t), time_mono_s=1000.0 + t,
            heart_rate_bpm=round(hr), rr_intervals_s=rr,
            beat_times_mono_s=(1000.0 + t - rr[1] - 0.05, 1000.0 + t - 0.05),
            contact=Contact.DETECTED, energy_kj=i if i % 10 == 0 else None, raw=b"\x10",
        ))  # fmt: skip
        out.append(Metric(athlete=athlete, time_utc=at(t), time_mono_s=t, group=MetricGroup.HEART,
                          values={"heart_rate_bpm": float(round(hr)), "zone": 1 + i // 30,
                                  "rise_30s_bpm": None if i < 30 else i / 7.0,
                                  "contact": "detected", "sensor": "C0:FF:EE:00:00:01"}))
        out.append(Metric(athlete=athlete, time_utc=at(t + 0.5), time_mono_s=t + 0.5,
                          group=MetricGroup.RR,
                          values={"rr_ms": rr[0] * 1000.0,
                                  "clean_rr_ms": None if i % 13 == 0 else rr[0] * 1000.0,
                                  "artifact": "missed" if i % 13 == 0 else None}))
        out.append(Metric(athlete=athlete, time_utc=at(t + 0.25), time_mono_s=t + 0.25,
                          group=MetricGroup.GAIT,
                          values={"cadence_spm": 170.0 + i % 5, "speed_mps": 1.6 + i / 100,
                                  "step_length_m": 0.9 + i / 1000, "running": i >= 60,
                                  "distance_m": i * 2.1, "segment": "walk" if i < 60 else "run",
                                  "pace_s_per_km": 1000.0 / (1.6 + i / 100)}))
        if i % 10 == 9:
            out.append(Metric(athlete=athlete, time_utc=at(t + 0.75), time_mono_s=t + 0.75,
                              group=MetricGroup.HRV,
                              values={"rmssd_60s_ms": 40.0 - i / 10, "sdnn_60s_ms": 55.5,
                                      "dfa_alpha1": float("nan") if i < 30 else 1.1 - i / 200,
                                      "dfa_reason": "ok" if i >= 30 else "warming up",
                                      "coverage_60s": 1.0}))
            out.append(Metric(athlete=athlete, time_utc=at(t + 0.8), time_mono_s=t + 0.8,
                              group=MetricGroup.SESSION,
                              values={"segment": "walk", "trimp": i / 3.0,
                                      "zone1_s": float(i)}))
    out.append(Metric(athlete=athlete, time_utc=at(70), time_mono_s=70.0,
                      group=MetricGroup.ACCELERATION,
                      values={"time_to_5mps_s": 3.25, "peak_cadence_spm": 208.0,
                              "peak_step_length_m": 1.72}))
    out.append(Metric(athlete=athlete, time_utc=at(71), time_mono_s=71.0, group=MetricGroup.SPLIT,
                      values={"km": 1, "duration_s": 431.5, "partial": False}))
    out.append(Metric(athlete=athlete, time_utc=at(72), time_mono_s=72.0, group=MetricGroup.EVENT,
                      values={"event": "hr_source_switch", "sensor": "A", "to_sensor": "B",
                              "detail": 'strap "A" silent\\lost'}))
    out.append(Alert(id="a-1", athlete=athlete, time_utc=at(65), time_mono_s=65.0,
                     kind=AlertKind.HR_SURGE, severity=Severity.WARNING, value=24.5,
                     threshold=20.0, message="HR +24 bpm in 30 s: ease off ✋"))
    out.append(Segment(athlete=athlete, kind=SegmentKind.WALK, start_utc=at(0), end_utc=at(60),
                       start_mono_s=0.0, end_mono_s=60.0, start_m=0.0, end_m=126.0,
                       summary=SegmentSummary(duration_s=60.0, distance_m=126.0,
                                              avg_speed_mps=2.1, avg_pace_s_per_km=476.2,
                                              avg_hr_bpm=110.5, max_hr_bpm=125.0,
                                              avg_cadence_spm=172.0, avg_step_length_m=None)))
    out.append(BatteryReading(athlete=athlete, sensor="C0:FF:EE:00:00:01", time_utc=at(5),
                              time_mono_s=1005.0, level_pct=87, raw=b"W"))
    out.append(LinkEvent(athlete=athlete, sensor="C0:FF:EE:00:00:01", time_utc=at(90),
                         time_mono_s=1090.0, state=LinkState.RR_GAP, detail="3 frames"))
    return out  # fmt: skip


def expected_rows(records: Sequence[Record]) -> dict[str, set[tuple[object, ...]]]:
    """Independent expectation: measurement → {(time_ms, tags..., sorted fields)}."""
    out: dict[str, set[tuple[object, ...]]] = {}

    def add(measurement: str, when: datetime, tags: dict[str, str], fields: dict[str, object]
            ) -> None:  # fmt: skip
        kept = {k: v for k, v in fields.items()
                if v is not None and not (isinstance(v, float) and v != v)}  # fmt: skip
        if kept:
            key = (unix_ms(when), tuple(sorted(tags.items())), tuple(sorted(kept.items())))
            out.setdefault(measurement, set()).add(key)

    for r in records:
        if isinstance(r, Metric):
            add(r.group.value, r.time_utc, {"athlete": r.athlete}, dict(r.values))
        elif isinstance(r, Alert):
            add("alert", r.time_utc, {"athlete": r.athlete, "kind": r.kind.value,
                                      "severity": r.severity.value},
                {"id": r.id, "value": r.value, "threshold": r.threshold, "message": r.message})
        elif isinstance(r, Segment):
            s = r.summary
            add("segment", r.start_utc, {"athlete": r.athlete, "kind": r.kind.value},
                {"start_m": r.start_m, "end_m": r.end_m, "end_unix_ms": unix_ms(r.end_utc),
                 "duration_s": s.duration_s, "distance_m": s.distance_m,
                 "avg_speed_mps": s.avg_speed_mps, "avg_pace_s_per_km": s.avg_pace_s_per_km,
                 "avg_hr_bpm": s.avg_hr_bpm, "max_hr_bpm": s.max_hr_bpm,
                 "avg_cadence_spm": s.avg_cadence_spm,
                 "avg_step_length_m": s.avg_step_length_m})
        elif isinstance(r, HeartRateReading):
            tags = {"athlete": r.athlete, "sensor": r.sensor}
            add("hr_raw", r.time_utc, tags,
                {"heart_rate_bpm": r.heart_rate_bpm, "contact": r.contact.value,
                 "energy_kj": r.energy_kj, "rr_count": len(r.rr_intervals_s)})
            for rr, beat in zip(r.rr_intervals_s, r.beat_times_mono_s, strict=True):
                add("rr_raw", r.time_utc - timedelta(seconds=r.time_mono_s - beat), tags,
                    {"rr_ms": rr * 1000.0})
        elif isinstance(r, BatteryReading):
            add("battery", r.time_utc, {"athlete": r.athlete, "sensor": r.sensor},
                {"level_pct": r.level_pct})
        elif isinstance(r, LinkEvent):
            add("link", r.time_utc, {"athlete": r.athlete, "sensor": r.sensor},
                {"state": r.state.value, "detail": r.detail})
    return out  # fmt: skip


def stored_rows(server: InfluxServer, db: str, measurement: str) -> set[tuple[object, ...]]:
    tag_keys = set(TAG_KEYS[measurement])
    rows = set()
    for row in server.points(f'SELECT * FROM "{measurement}" GROUP BY *', db):
        tags = tuple(sorted((k, v) for k, v in row.items() if k in tag_keys and v))
        fields = tuple(sorted((k, v) for k, v in row.items()
                              if k not in tag_keys and k != "time" and v is not None))  # fmt: skip
        rows.add((row["time"], tags, fields))
    return rows


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------ real influxd


async def test_virtual_session_round_trips_exactly(influxd: InfluxServer, influx_db: str) -> None:
    records = session_records()
    outbox = FakeOutbox(records)
    target = InfluxTarget(url=influxd.url, database=influx_db, batch_lines=150)
    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0)
        await delivery.flush()
    assert outbox.left() == 0
    assert not outbox.dead
    assert outbox.marks == sorted(outbox.marks)
    assert delivery.progress.delivered == len(records)
    expected = expected_rows(records)
    measurements = {s[0] for s in influxd.query("SHOW MEASUREMENTS", influx_db)["results"][0]
                    ["series"][0]["values"]}  # fmt: skip
    assert measurements == set(expected)
    for measurement, rows in expected.items():
        assert stored_rows(influxd, influx_db, measurement) == rows, measurement
    # the server's field types are the schema's (floats even for integral-looking values)
    result = influxd.query("SHOW FIELD KEYS", influx_db)["results"][0]["series"]
    for series in result:
        for key, kind in series["values"]:
            table = FIELD_TYPES[series["name"]]
            if key in table:
                assert kind == table[key].value, (series["name"], key)
            else:
                assert kind in ("float", "string", "boolean"), (series["name"], key)
    tags = influxd.query('SHOW TAG VALUES WITH KEY = "athlete"', influx_db)["results"][0]
    assert {v for s in tags["series"] for _, v in s["values"]} == {ATHLETE}


async def test_outage_mid_delivery_then_exact_in_order_delivery(
    influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    """influxd stops while records keep arriving in the (real) store; after the restart the
    backlog drains in order: every point exactly once, none missing."""
    n = 3000
    records: list[Record] = [
        Metric(athlete=ATHLETE, time_utc=at(i * 0.1), time_mono_s=i * 0.1,
               group=MetricGroup.HEART, values={"heart_rate_bpm": 100.0 + i / 100})
        for i in range(n)
    ]  # fmt: skip
    target = InfluxTarget(url=influxd.url, database=influx_db, batch_lines=100)
    with SessionStore.open(tmp_path / "sessions.db") as store:
        sid = store.create_session(ATHLETE, T0, "virtual")
        stop = asyncio.Event()
        async with InfluxWriter(target) as writer:
            delivery = OutboxDelivery(store, writer, batch_age_s=0.05, poll_interval_s=0.02,
                                      backoff_initial_s=0.05, backoff_max_s=0.3,
                                      rng=random.Random(1))  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                tg.create_task(delivery.run(stop), name="influx-delivery")
                store.write(sid, records[:1000])
                await wait_for(lambda: delivery.progress.delivered >= 300, 10, "first batches")
                await asyncio.to_thread(influxd.stop)
                store.write(sid, records[1000:2000])
                await wait_for(lambda: delivery.progress.failures >= 2, 10, "failed attempts")
                assert delivery.progress.state is DeliveryState.RETRYING
                assert store.backlog("influx") > 0
                store.write(sid, records[2000:])
                await asyncio.to_thread(influxd.start)
                await wait_for(lambda: store.backlog("influx") == 0, 20, "backlog drained")
                stop.set()
        assert delivery.progress.failures == 0
        assert delivery.progress.backlog == 0
        assert store.dead_letters("influx") == []
    rows = influxd.points("SELECT heart_rate_bpm FROM heart", influx_db)
    assert len(rows) == n
    assert [r["time"] for r in rows] == [unix_ms(r.time_utc) for r in records]
    assert [r["heart_rate_bpm"] for r in rows] == [r.values["heart_rate_bpm"] for r in records]
    count = influxd.query("SELECT COUNT(heart_rate_bpm) FROM heart", influx_db)
    assert count["results"][0]["series"][0]["values"][0][1] == n


@pytest.mark.parametrize("outbox_kind", ["fake", "store"])
async def test_field_type_conflict_is_dead_lettered_and_the_rest_arrives(
    influxd: InfluxServer, influx_db: str, tmp_path: Path, outbox_kind: str
) -> None:
    # an older writer made event.detail a float; our string detail now conflicts
    assert influxd.write(influx_db, f"event,athlete=old detail=1.5 {unix_ms(T0) - 1000}")[0] == 204
    good = [Metric(athlete=ATHLETE, time_utc=at(i), time_mono_s=float(i), group=MetricGroup.HEART,
                   values={"heart_rate_bpm": 120.0 + i}) for i in range(60)]  # fmt: skip
    bad = Metric(athlete=ATHLETE, time_utc=at(30.5), time_mono_s=30.5, group=MetricGroup.EVENT,
                 values={"event": "hr_rejected", "detail": "jump"})
    records: list[Record] = [*good[:30], bad, *good[30:]]
    target = InfluxTarget(url=influxd.url, database=influx_db)
    async with InfluxWriter(target) as writer:
        if outbox_kind == "fake":
            outbox = FakeOutbox(records)
            delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0)
            await delivery.flush()
            assert len(outbox.dead) == 1
            items, message = outbox.dead[0]
            assert outbox.left() == 0
        else:
            with SessionStore.open(tmp_path / "s.db") as store:
                store.write(store.create_session(ATHLETE, T0, "virtual"), records)
                delivery = OutboxDelivery(store, writer, batch_age_s=0.0)
                await delivery.flush()
                dead = store.dead_letters("influx")
                assert len(dead) == 1
                items, message = dead[0].items(), dead[0].message
                assert store.backlog("influx") == 0
    assert [i.record for i in items] == [bad]
    assert "field type conflict" in message
    assert delivery.progress.dead_lettered == 1
    rows = influxd.points("SELECT heart_rate_bpm FROM heart", influx_db)
    assert [r["heart_rate_bpm"] for r in rows] == [120.0 + i for i in range(60)]


async def test_missing_database_is_retried_not_dead_lettered(
    influxd: InfluxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="outputs.influx")
    db = f"late_{time.monotonic_ns()}"
    outbox = FakeOutbox(session_records(5))
    target = InfluxTarget(url=influxd.url, database=db)
    async with InfluxWriter(target) as writer:
        result = await writer.deliver(["heart,athlete=x v=1.0 1000"])
        assert result.outcome.kind is OutcomeKind.CONFIG
        assert "create the database" in result.outcome.message
        stop = asyncio.Event()
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0, backoff_initial_s=0.05,
                                  backoff_max_s=0.1)  # fmt: skip
        task = asyncio.create_task(delivery.run(stop))
        await wait_for(lambda: delivery.progress.failures >= 2, 5, "failures")
        assert "create the database" in (delivery.progress.last_error or "")
        influxd.create_database(db)
        await wait_for(lambda: outbox.left() == 0, 5, "delivery after CREATE")
        stop.set()
        await task
    assert not outbox.dead
    assert any("create the database" in r.getMessage() for r in caplog.records)
    assert any("resumed after" in r.getMessage() for r in caplog.records)


async def test_connection_refused_is_retryable() -> None:
    target = InfluxTarget(url=f"http://127.0.0.1:{free_port()}", database="d", timeout_s=2)
    async with InfluxWriter(target) as writer:
        result = await writer.deliver(["heart,athlete=x v=1.0 1000"])
    assert result.outcome.kind is OutcomeKind.RETRY
    assert result.status is None
    assert "connection refused" in result.outcome.message
    assert "is InfluxDB running" in result.outcome.message


# ------------------------------------------------------------------------------ v2 (fake server)


async def test_v2_write_request_shape(
    fake_influx: Callable[..., RecordingFakeInflux],
) -> None:
    fake = fake_influx()
    target = InfluxTarget(url=fake.url, mode="v2", org="my org", bucket="runs", token="tok")
    lines = ["heart,athlete=Zoë heart_rate_bpm=150.0 1714545000000"] * 3
    async with InfluxWriter(target) as writer:
        result = await writer.deliver(lines)
    assert result.ok
    assert result.status == 204
    (request,) = fake.requests
    assert request["path"] == "/api/v2/write"
    assert request["query"] == {"org": "my org", "bucket": "runs", "precision": "ms"}
    headers = request["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == "Token tok"
    assert headers["Content-Encoding"] == "gzip"
    body = request["body"]
    assert isinstance(body, bytes)
    assert gzip.decompress(body).decode() == "\n".join(lines) + "\n"


async def test_auth_failure_names_the_environment_variables(
    fake_influx: Callable[..., RecordingFakeInflux],
) -> None:
    fake = fake_influx((401, {"Content-Type": "application/json"},
                        b'{"code":"unauthorized","message":"unauthorized access"}'))  # fmt: skip
    target = InfluxTarget(url=fake.url, mode="v2", org="o", bucket="b", token="wrong")
    outbox = FakeOutbox(session_records(2))
    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0)
        with pytest.raises(InfluxAuthError) as caught:
            await delivery.run()
    text = str(caught.value)
    for var in ("STRIDEWATCH_INFLUX_TOKEN", "STRIDEWATCH_INFLUX_USER",
                "STRIDEWATCH_INFLUX_PASSWORD"):  # fmt: skip
        assert var in text
    assert "unauthorized access" in text
    assert "HTTP 401" in text
    assert "wrong" not in text
    assert caught.value.status == 401
    assert delivery.progress.state is DeliveryState.FAILED
    assert outbox.left() == len(outbox.items)  # nothing lost, nothing dead-lettered
    assert not outbox.dead


async def test_retry_after_is_honoured(fake_influx: Callable[..., RecordingFakeInflux]) -> None:
    fake = fake_influx((429, {"Retry-After": "1"}, b'{"message":"slow down"}'), (204, {}, b""))
    target = InfluxTarget(url=fake.url, database="d", username="u", password="p")
    outbox = FakeOutbox(session_records(2))
    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0, backoff_initial_s=0.01,
                                  backoff_max_s=0.01)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        await wait_for(lambda: outbox.left() == 0, 5, "delivery after Retry-After")
        stop.set()
        await task
    first, second = fake.requests
    assert delivery.last_retry_delay_s is not None
    assert delivery.last_retry_delay_s >= 1.0  # the server's Retry-After, not the 10 ms backoff
    assert first["body"] == second["body"]  # the same batch, again
    assert first["path"] == "/write"
    assert first["query"] == {"db": "d", "precision": "ms"}
    assert first["headers"]["Authorization"] == "Basic dTpw"  # type: ignore[index]
