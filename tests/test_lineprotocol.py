"""Line-protocol schema and encoding: escaping tables, field types, and round trips through a
real influxd (hypothesis: arbitrary athlete names, messages and field keys come back exact)."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from influx_server import InfluxServer

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
from outputs.lineprotocol import (
    FIELD_TYPES,
    TAG_KEYS,
    FieldType,
    encode_point,
    escape_measurement,
    escape_string_field,
    escape_tag,
    format_field_value,
    format_line,
    unix_ms,
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
T0_MS = 1714545000123


# ------------------------------------------------------------------------------ escaping tables


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("heart", "heart"),
        ("my heart", "my\\ heart"),
        ("a,b", "a\\,b"),
        ("a=b", "a=b"),  # not special in a measurement
        ('a"b', 'a"b'),
        ("Zoë", "Zoë"),
        ("end\\", "end/"),
        ("a\\b", "a\\b"),
    ],
)
def test_escape_measurement(raw: str, escaped: str) -> None:
    assert escape_measurement(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Ana", "Ana"),
        ("Ana María", "Ana\\ María"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        (" lead", "\\ lead"),
        ('quo"te', 'quo"te'),  # quotes are literal in tags and keys
        ("Юлия 李", "Юлия\\ 李"),
        ("a\\b", "a\\b"),  # a lone backslash is literal
        ("a\\\\b", "a\\\\b"),
        ("trail\\", "trail/"),  # cannot end a tag value: replaced
        ("a\\,b", "a/\\,b"),  # would read as an escaped comma: replaced
        ("a\\\\ b", "a//\\ b"),  # the whole run before a special character
        ("two\nlines", "two\\ lines"),
        ("crlf\r\nx", "crlf\\ x"),
    ],
)
def test_escape_tag_keys_values_and_field_keys(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("end\\", '"end\\\\"'),
        ("a,b=c d", '"a,b=c d"'),  # nothing else is escaped in a string field
        ("two\nlines", '"two\nlines"'),
        ("", '""'),
        ("Zoë 🏃", '"Zoë 🏃"'),
    ],
)
def test_escape_string_field(raw: str, quoted: str) -> None:
    assert escape_string_field(raw) == quoted


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        (FieldType.FLOAT, 150, "150.0"),  # integral numbers stay floats
        (FieldType.FLOAT, 0.1, "0.1"),
        (FieldType.FLOAT, 1e-05, "1e-05"),
        (FieldType.FLOAT, -2.5e16, "-2.5e+16"),
        (FieldType.FLOAT, math.nan, None),
        (FieldType.FLOAT, math.inf, None),
        (FieldType.FLOAT, -math.inf, None),
        (FieldType.FLOAT, None, None),
        (FieldType.FLOAT, True, None),  # a bool is not a number here
        (FieldType.FLOAT, "1.5", None),  # never retyped
        (FieldType.INTEGER, 7, "7i"),
        (FieldType.INTEGER, 7.0, "7i"),
        (FieldType.INTEGER, 7.5, None),
        (FieldType.INTEGER, 2**63, None),
        (FieldType.INTEGER, -(2**63), "-9223372036854775808i"),
        (FieldType.INTEGER, False, None),
        (FieldType.BOOLEAN, True, "true"),
        (FieldType.BOOLEAN, False, "false"),
        (FieldType.BOOLEAN, 1, None),
        (FieldType.STRING, "x", '"x"'),
        (FieldType.STRING, 1.0, None),
    ],
)
def test_field_values_keep_their_type(kind: FieldType, value: object, text: str | None) -> None:
    assert format_field_value(kind, value) == text  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ records → lines


def hr_reading(**kw: object) -> HeartRateReading:
    base: dict[str, object] = {
        "athlete": "Zoë", "sensor": "C0:FF:EE:00:00:01", "time_utc": T0, "time_mono_s": 100.0,
        "heart_rate_bpm": 142, "rr_intervals_s": (), "beat_times_mono_s": (),
        "contact": Contact.DETECTED, "energy_kj": None, "raw": b"\x10\x8e",
    }  # fmt: skip
    base.update(kw)
    return HeartRateReading(**base)  # type: ignore[arg-type]


def test_metric_is_one_line_tagged_by_athlete_only() -> None:
    m = Metric(
        athlete="Ana María", time_utc=T0, time_mono_s=1.0, group=MetricGroup.HEART,
        values={"heart_rate_bpm": 150, "zone": 3, "rise_30s_bpm": None, "contact": "detected",
                "sensor": "AA:BB"},
    )  # fmt: skip
    assert encode_point(m) == [
        f'heart,athlete=Ana\\ María heart_rate_bpm=150.0,zone=3.0,contact="detected",'
        f'sensor="AA:BB" {T0_MS}'
    ]


def test_unknown_metric_fields_typed_by_the_fallback_rule() -> None:
    m = Metric(
        athlete="a", time_utc=T0, time_mono_s=1.0, group=MetricGroup.SPLIT,
        values={"km": 2, "pace_s_per_km": 251.5, "partial": False, "note": "hi", "gone": None},
    )  # fmt: skip
    assert encode_point(m) == [f'split,athlete=a km=2.0,pace_s_per_km=251.5,partial=false,'
                               f'note="hi" {T0_MS}']  # fmt: skip


def test_non_finite_fields_are_dropped_and_an_empty_point_is_skipped() -> None:
    m = Metric(athlete="a", time_utc=T0, time_mono_s=1.0, group=MetricGroup.HRV,
               values={"dfa_alpha1": math.nan, "rmssd_60s_ms": math.inf, "artifact_pct": 0.0})
    assert encode_point(m) == [f"hrv,athlete=a artifact_pct=0.0 {T0_MS}"]
    empty = Metric(athlete="a", time_utc=T0, time_mono_s=1.0, group=MetricGroup.HRV,
                   values={"dfa_alpha1": math.nan, "sdnn_60s_ms": None})
    assert encode_point(empty) == []


def test_session_counters_are_integers() -> None:
    m = Metric(athlete="a", time_utc=T0, time_mono_s=1.0, group=MetricGroup.SESSION,
               values={"final": True, "beats": 5321, "hr_rejected": 0, "trimp": 41})
    assert encode_point(m) == [f"session,athlete=a final=true,beats=5321i,hr_rejected=0i,"
                               f"trimp=41.0 {T0_MS}"]  # fmt: skip


def test_heart_rate_reading_gives_hr_raw_and_one_rr_raw_line_per_beat() -> None:
    r = hr_reading(
        rr_intervals_s=(800 / 1024, 790 / 1024), beat_times_mono_s=(98.5, 99.2715),
        energy_kj=12,
    )  # fmt: skip
    lines = encode_point(r)
    tags = "athlete=Zoë,sensor=C0:FF:EE:00:00:01"
    assert lines[0] == (
        f'hr_raw,{tags} heart_rate_bpm=142i,contact="detected",energy_kj=12i,rr_count=2i {T0_MS}'
    )
    # beat time = time_utc - (time_mono_s - beat_time), floored to ms
    assert lines[1] == f"rr_raw,{tags} rr_ms={800 / 1024 * 1000.0!r} {T0_MS - 1500}"
    assert lines[2] == f"rr_raw,{tags} rr_ms={790 / 1024 * 1000.0!r} {T0_MS - 729}"
    assert len(lines) == 3


def test_other_readings() -> None:
    common = {"athlete": "Zoë", "sensor": "FP", "time_utc": T0, "time_mono_s": 5.0}
    stride = StrideReading(**common, speed_mps=3.5, cadence_per_min=88, stride_length_m=None,
                           total_distance_m=1234.5, running=True, raw=b"")  # type: ignore[arg-type]
    assert encode_point(stride) == [
        f"stride_raw,athlete=Zoë,sensor=FP speed_mps=3.5,cadence_per_min=88i,"
        f"total_distance_m=1234.5,running=true {T0_MS}"
    ]
    battery = BatteryReading(**common, level_pct=9, raw=b"\x09")  # type: ignore[arg-type]
    assert encode_point(battery) == [f"battery,athlete=Zoë,sensor=FP level_pct=9i {T0_MS}"]
    link = LinkEvent(**common, state=LinkState.DISCONNECTED)  # type: ignore[arg-type]
    assert encode_point(link) == [f'link,athlete=Zoë,sensor=FP state="disconnected" {T0_MS}']
    info = SensorInfo(**common, name="HRM", kind=SensorKind.FOOTPOD, model="Stryd")  # type: ignore[arg-type]
    assert encode_point(info) == [
        f'sensor_info,athlete=Zoë,sensor=FP name="HRM",kind="footpod",model="Stryd" {T0_MS}'
    ]


def test_alert_and_segment() -> None:
    alert = Alert(id="Zoë-hr_surge-1", athlete="Zoë", time_utc=T0, time_mono_s=1.0,
                  kind=AlertKind.HR_SURGE, severity=Severity.WARNING, value=24.0, threshold=20.0,
                  message='HR +24 bpm in 30 s ("surge")')  # fmt: skip
    assert encode_point(alert) == [
        f'alert,athlete=Zoë,kind=hr_surge,severity=warning id="Zoë-hr_surge-1",value=24.0,'
        f'threshold=20.0,message="HR +24 bpm in 30 s (\\"surge\\")" {T0_MS}'
    ]
    summary = SegmentSummary(duration_s=240.0, distance_m=1000.0, avg_speed_mps=4.1667,
                             avg_pace_s_per_km=240.0, avg_hr_bpm=None, max_hr_bpm=None,
                             avg_cadence_spm=182.0, avg_step_length_m=1.37)  # fmt: skip
    seg = Segment(athlete="Zoë", kind=SegmentKind.RUN, start_utc=T0,
                  end_utc=T0 + timedelta(seconds=240), start_mono_s=0.0, end_mono_s=240.0,
                  start_m=2000.0, end_m=3000.0, summary=summary)  # fmt: skip
    assert encode_point(seg) == [
        f"segment,athlete=Zoë,kind=run start_m=2000.0,end_m=3000.0,end_unix_ms={T0_MS + 240000}i,"
        f"duration_s=240.0,distance_m=1000.0,avg_speed_mps=4.1667,avg_pace_s_per_km=240.0,"
        f"avg_cadence_spm=182.0,avg_step_length_m=1.37 {T0_MS}"
    ]


def test_naive_time_and_foreign_objects_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        unix_ms(datetime(2024, 1, 1))
    with pytest.raises(TypeError, match="not a stridewatch record"):
        encode_point("heart 1")  # type: ignore[arg-type]


def test_timestamps_are_floored_milliseconds() -> None:
    assert unix_ms(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0
    assert unix_ms(datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)) == -1
    assert unix_ms(T0) == T0_MS


def test_schema_table_is_consistent() -> None:
    assert set(TAG_KEYS) == set(FIELD_TYPES)
    for measurement, tags in TAG_KEYS.items():
        assert list(tags) == sorted(tags)
        assert "session" not in tags
        assert "session_id" not in tags
        assert not set(tags) & set(FIELD_TYPES[measurement]), measurement
    # a field name used in several measurements keeps one type across them too (dashboards
    # join them by name)
    types: dict[str, set[FieldType]] = {}
    for fields in FIELD_TYPES.values():
        for key, kind in fields.items():
            types.setdefault(key, set()).add(kind)
    mixed = {k: v for k, v in types.items() if len(v) > 1}
    assert mixed == {"heart_rate_bpm": {FieldType.FLOAT, FieldType.INTEGER}}  # hr_raw: wire int


# ------------------------------------------------------------------------------ real influxd


def expected_tag(text: str) -> str:
    """What the server reads back for a tag value or key (documented lossy cases)."""
    text = re.sub(r"\r\n|\n|\r|\t|\x00", " ", text)
    return re.sub(r"\\+(?=[, =]|$)", lambda m: "/" * len(m.group()), text)


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from([*' ,="\\\n\r\t=#{}é李🏃', "\x00"]),
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
    ),
    min_size=1,
    max_size=20,
)
_TIMES = itertools.count(1)


@pytest.fixture(scope="module")
def roundtrip_db(influxd: InfluxServer) -> str:
    influxd.start()
    influxd.create_database("lineprotocol_roundtrip")
    return "lineprotocol_roundtrip"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(athlete=TEXT, message=TEXT, alert_id=st.text(max_size=10))
@example(athlete="\t", message="\t", alert_id="")
@example(athlete="a\x00b", message="x", alert_id="\x00")
def test_alert_text_round_trips_through_influxd(
    influxd: InfluxServer, roundtrip_db: str, athlete: str, message: str, alert_id: str
) -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(milliseconds=next(_TIMES))
    alert = Alert(id=alert_id, athlete=athlete, time_utc=when, time_mono_s=0.0,
                  kind=AlertKind.NO_CONTACT, severity=Severity.INFO, value=1.5, threshold=None,
                  message=message)  # fmt: skip
    lines = encode_point(alert)
    status, body = influxd.write(roundtrip_db, "\n".join(lines))
    assert status == 204, (lines, body)
    rows = influxd.points(f"SELECT * FROM alert WHERE time = {unix_ms(when)}ms", roundtrip_db)
    assert len(rows) == 1
    row = rows[0]
    tag = expected_tag(athlete)
    assert (row["athlete"] or None) == (tag or None)  # an all-whitespace name stays a tag
    assert row["message"] == message
    assert row["id"] == alert_id
    assert row["value"] == 1.5
    assert row["kind"] == "no_contact"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(TEXT, min_size=1, max_size=4, unique_by=expected_tag))
@example(keys=["\t"])  # failed a fresh clone's CI: influxd skipped the tab, stored under ""
@example(keys=["\tk", "k\x00v"])
def test_field_keys_round_trip_through_influxd(
    influxd: InfluxServer, roundtrip_db: str, keys: list[str]
) -> None:
    keys = [k for k in keys if expected_tag(k) not in ("time", "athlete")]
    when = datetime(2024, 2, 1, tzinfo=UTC) + timedelta(milliseconds=next(_TIMES))
    values = {key: float(i) + 0.25 for i, key in enumerate(keys)}
    line = format_line("event", {"athlete": "fk"}, values, unix_ms(when))
    if line is None:
        return
    status, body = influxd.write(roundtrip_db, line)
    assert status == 204, (line, body)
    result = influxd.query(f"SELECT * FROM event WHERE time = {unix_ms(when)}ms", roundtrip_db)
    series = result["results"][0]["series"][0]
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    for key, value in values.items():
        assert row[expected_tag(key)] == value
