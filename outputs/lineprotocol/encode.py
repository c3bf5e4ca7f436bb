"""Line-protocol encoding (pure): escaping, field values and one record → its lines, by the
schema of :mod:`outputs.lineprotocol.schema`."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from ingest.records import (
    BatteryReading,
    HeartRateReading,
    LinkEvent,
    SensorInfo,
    StrideReading,
)
from outputs.lineprotocol.schema import (
    ALERT,
    BATTERY,
    FIELD_TYPES,
    HR_RAW,
    LINK,
    METRIC_MEASUREMENTS,
    RR_RAW,
    SEGMENT,
    SENSOR_INFO,
    STRIDE_RAW,
    B,
    F,
    FieldType,
    Record,
    S,
)
from processing.records import Alert, Metric, MetricValue, Segment

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


# ------------------------------------------------------------------------------ escaping


# Characters line protocol cannot carry in a key or tag value: line breaks end the line, and
# influxd 1.x skips a tab where a key starts and cuts a key at NUL, then answers 204 having
# stored the value under another key (issue #10: a silent change of data). All become a space.
_UNCARRIED = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\x00": " "})


def _no_line_breaks(text: str) -> str:
    if "\r\n" in text:
        text = text.replace("\r\n", " ")
    return text.translate(_UNCARRIED)


def escape_measurement(name: str) -> str:
    """Escape a measurement name: comma and space.

    >>> escape_measurement("my heart,rate")
    'my\\\\ heart\\\\,rate'
    """
    return _escape(name, ", ")


def escape_tag(text: str) -> str:
    """Escape a tag key, tag value or field key: comma, equals sign, space.

    Backslashes are literal in line protocol, except that the server reads one before a comma,
    equals sign or space as an escape and refuses one at the end of a key or tag value. Such a
    backslash (one that ends the text or stands right before a character that is escaped) is
    replaced by a slash: ``C:\\`` is written as ``C:/``. Line breaks, tabs and NUL become
    spaces.

    >>> escape_tag("a b,c=d")
    'a\\\\ b\\\\,c\\\\=d'
    >>> escape_tag("C:\\\\temp\\\\")
    'C:\\\\temp/'
    """
    return _escape(text, ", =")


def _escape(text: str, specials: str) -> str:
    text = _no_line_breaks(text)
    if "\\" in text:
        text = _unrepresentable_backslashes(text, specials)
    for char in specials:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text


def _unrepresentable_backslashes(text: str, specials: str) -> str:
    chars = list(text)
    follower_special = True  # the end of the text counts as a separator
    for i in range(len(chars) - 1, -1, -1):
        if chars[i] == "\\":
            if follower_special:
                chars[i] = "/"
        else:
            follower_special = chars[i] in specials
    return "".join(chars)


def escape_string_field(text: str) -> str:
    r"""Quote a string field value: backslash and double quote escaped.

    >>> escape_string_field('say "hi" \\o/')
    '"say \\"hi\\" \\\\o/"'
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------ fields


def fallback_type(value: MetricValue) -> FieldType | None:
    """The type of a field the schema table does not know, from its Python value.

    ``bool`` → boolean; ``int`` and ``float`` → float (integral-looking numbers included, so a
    field never flips between integer and float); ``str`` → string; ``None`` → no field.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return B
    if isinstance(value, int | float):
        return F
    if isinstance(value, str):
        return S
    return None


def field_type(measurement: str, key: str, value: MetricValue) -> FieldType | None:
    """The type ``key`` has in ``measurement``: the table's, else :func:`fallback_type`."""
    known = FIELD_TYPES.get(measurement, {}).get(key)
    return known if known is not None else fallback_type(value)


def format_field_value(kind: FieldType, value: MetricValue) -> str | None:
    """``value`` written as ``kind``; None when it cannot be (dropped, never retyped).

    >>> format_field_value(FieldType.FLOAT, 3)
    '3.0'
    >>> format_field_value(FieldType.INTEGER, 3), format_field_value(FieldType.INTEGER, 2.5)
    ('3i', None)
    >>> format_field_value(FieldType.FLOAT, float("nan")) is None
    True
    """
    if value is None:
        return None
    if kind is FieldType.STRING:
        return escape_string_field(value) if isinstance(value, str) else None
    if kind is FieldType.BOOLEAN:
        return ("true" if value else "false") if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind is FieldType.FLOAT:
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    # INTEGER
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    return f"{value}i" if _INT64_MIN <= value <= _INT64_MAX else None


# ------------------------------------------------------------------------------ lines


def unix_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch (floored), from a timezone-aware datetime.

    Raises:
        ValueError: a naive datetime (records are timezone-aware UTC by contract).
    """
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}: records carry timezone-aware UTC")
    return (when - _EPOCH) // _MS


# Keys and tag values repeat on every line: their escaped forms are cached (bounded).
_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _escaped_key(key: str) -> str:
    return escape_tag(key)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """``measurement,k=v,...`` with tags sorted by key and empty values left out."""
    return escape_measurement(measurement) + "".join(
        f",{escape_tag(key)}={escape_tag(value)}"
        for key, value in sorted(tags)
        if value and key != "time"
    )


def format_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, MetricValue],
    time_ms: int,
) -> str | None:
    """One line, or None when no field has a writable value.

    Tags are written sorted by key; empty tag values are left out (the server refuses them).
    Field types come from :func:`field_type`.
    """
    table = FIELD_TYPES.get(measurement, {})
    parts: list[str] = []
    for key, value in fields.items():
        if value is None or key == "time":  # "time" is reserved: the server drops the field
            continue
        kind = table.get(key) or fallback_type(value)
        if kind is None:
            continue
        text = format_field_value(kind, value)
        if text is not None:
            parts.append(f"{_escaped_key(key)}={text}")
    if not parts:
        return None
    return f"{_series(measurement, tuple(tags.items()))} {','.join(parts)} {time_ms}"


def _append(
    out: list[str],
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, MetricValue],
    time_ms: int,
) -> None:
    line = format_line(measurement, tags, fields, time_ms)
    if line is not None:
        out.append(line)


def encode_point(record: Record) -> list[str]:
    """The line-protocol lines of one record (possibly none), in time order where it matters.

    * ``Metric`` → one line in the measurement of its group, tag ``athlete``.
    * ``Alert`` → ``alert``; ``Segment`` → ``segment`` at its start time.
    * ``HeartRateReading`` → ``hr_raw`` plus one ``rr_raw`` line per RR interval at the beat's
      time (``time_utc - (time_mono_s - beat_time)``).
    * ``StrideReading`` → ``stride_raw``; ``BatteryReading`` → ``battery``;
      ``LinkEvent`` → ``link``; ``SensorInfo`` → ``sensor_info``.

    Raises:
        ValueError: a naive ``time_utc``.
        TypeError: not a record.
    """
    out: list[str] = []
    match record:
        case Metric():
            measurement = METRIC_MEASUREMENTS[record.group]
            _append(out, measurement, {"athlete": record.athlete}, record.values,
                    unix_ms(record.time_utc))  # fmt: skip
        case Alert():
            _append(
                out,
                ALERT,
                {"athlete": record.athlete, "kind": record.kind.value,
                 "severity": record.severity.value},
                {"id": record.id, "value": record.value, "threshold": record.threshold,
                 "message": record.message},
                unix_ms(record.time_utc),
            )  # fmt: skip
        case Segment():
            s = record.summary
            _append(
                out,
                SEGMENT,
                {"athlete": record.athlete, "kind": record.kind.value},
                {
                    "start_m": record.start_m,
                    "end_m": record.end_m,
                    "end_unix_ms": unix_ms(record.end_utc),
                    "duration_s": s.duration_s,
                    "distance_m": s.distance_m,
                    "avg_speed_mps": s.avg_speed_mps,
                    "avg_pace_s_per_km": s.avg_pace_s_per_km,
                    "avg_hr_bpm": s.avg_hr_bpm,
                    "max_hr_bpm": s.max_hr_bpm,
                    "avg_cadence_spm": s.avg_cadence_spm,
                    "avg_step_length_m": s.avg_step_length_m,
                },
                unix_ms(record.start_utc),
            )
        case HeartRateReading():
            tags = {"athlete": record.athlete, "sensor": record.sensor}
            _append(
                out,
                HR_RAW,
                tags,
                {"heart_rate_bpm": record.heart_rate_bpm, "contact": record.contact.value,
                 "energy_kj": record.energy_kj, "rr_count": len(record.rr_intervals_s)},
                unix_ms(record.time_utc),
            )  # fmt: skip
            for rr_s, beat_mono in zip(
                record.rr_intervals_s, record.beat_times_mono_s, strict=False
            ):
                beat_utc = record.time_utc - timedelta(seconds=record.time_mono_s - beat_mono)
                _append(out, RR_RAW, tags, {"rr_ms": rr_s * 1000.0}, unix_ms(beat_utc))
        case StrideReading():
            _append(
                out,
                STRIDE_RAW,
                {"athlete": record.athlete, "sensor": record.sensor},
                {"speed_mps": record.speed_mps, "cadence_per_min": record.cadence_per_min,
                 "stride_length_m": record.stride_length_m,
                 "total_distance_m": record.total_distance_m, "running": record.running},
                unix_ms(record.time_utc),
            )  # fmt: skip
        case BatteryReading():
            _append(out, BATTERY, {"athlete": record.athlete, "sensor": record.sensor},
                    {"level_pct": record.level_pct}, unix_ms(record.time_utc))  # fmt: skip
        case LinkEvent():
            _append(out, LINK, {"athlete": record.athlete, "sensor": record.sensor},
                    {"state": record.state.value, "detail": record.detail or None},
                    unix_ms(record.time_utc))  # fmt: skip
        case SensorInfo():
            _append(
                out,
                SENSOR_INFO,
                {"athlete": record.athlete, "sensor": record.sensor},
                {"name": record.name, "kind": record.kind.value,
                 "manufacturer": record.manufacturer, "model": record.model,
                 "firmware": record.firmware,
                 "body_sensor_location": record.body_sensor_location},
                unix_ms(record.time_utc),
            )  # fmt: skip
        case _:
            raise TypeError(f"not a stridewatch record: {type(record).__name__}")
    return out


def encode_points(records: Iterable[Record]) -> list[str]:
    """The lines of many records, in order."""
    out: list[str] = []
    for record in records:
        out.extend(encode_point(record))
    return out
