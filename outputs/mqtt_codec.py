"""MQTT topics and payloads of stridewatch (pure: no I/O, nothing async).

Topics (``<athlete>`` escaped by :func:`escape_topic_level`)::

    stridewatch/v1/<athlete>/metrics   Metric groups heart, gait, session, split,
                                       acceleration, event (payload has a "group" key)  QoS 0
    stridewatch/v1/<athlete>/rr        Metric group rr (one per beat)                   QoS 0
    stridewatch/v1/<athlete>/hrv       Metric group hrv                                 QoS 0
    stridewatch/v1/<athlete>/segment   closed Segments (rare, kept: QoS 1)              QoS 1
    stridewatch/v1/<athlete>/alert     Alerts, with their ``id`` for de-duplication     QoS 1
    stridewatch/v1/<athlete>/status    "online" / "offline" (retained; Last Will)       QoS 1
    stridewatch/v1/<athlete>/readings  raw Readings from remote collectors              QoS 1

None of them is retained except ``status``.

Payloads are compact JSON (``separators=(",", ":")``) with units in the keys. Times are ISO 8601
UTC with a ``Z`` (``"t":"2026-05-01T06:30:00.123456Z"``) plus the monotonic event time
``t_mono_s`` so a consumer can rebuild the record exactly. Non-finite floats become ``null``
(strict JSON). Example (``metrics``)::

    {"t":"2026-05-01T06:30:00Z","t_mono_s":12.5,"group":"heart","heart_rate_bpm":151,...}

``readings`` carries :func:`ingest.records.record_to_json` (a ``type`` tag, every field, raw
characteristic bytes as hex), so :func:`decode_reading` rebuilds the exact Reading.

Athlete escaping (one topic level; MQTT forbids ``+``, ``#`` in names, ``/`` separates levels,
NUL is not allowed and control characters should not be used): the characters
``%``, ``+``, ``#``, ``/``, U+0000–U+001F and U+007F–U+009F are percent-encoded as their UTF-8
bytes (``%25``, ``%2B``, ``%23``, ``%2F``, ``%00`` …); everything else, including non-ASCII
letters, is kept as UTF-8. The mapping is injective and :func:`unescape_topic_level` inverts it.
An empty athlete name is refused (it would make an empty topic level).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from ingest.records import (
    RECORD_TYPES,
    Contact,
    LinkState,
    Reading,
    SensorKind,
    record_to_json,
)
from outputs.errors import RecordCodecError
from processing.records import (
    Alert,
    AlertKind,
    Metric,
    MetricGroup,
    MetricValue,
    ProcessingOutput,
    Segment,
    SegmentKind,
    SegmentSummary,
    Severity,
)

TOPIC_ROOT: Final = "stridewatch/v1"
TopicKind = Literal["metrics", "rr", "hrv", "segment", "alert", "status", "readings"]
TOPIC_KINDS: Final[tuple[TopicKind, ...]] = get_args(TopicKind)

STATUS_ONLINE: Final = b"online"
STATUS_OFFLINE: Final = b"offline"

HA_DISCOVERY_PREFIX: Final = "homeassistant"

_ESCAPED = re.compile(r"[%+#/\x00-\x1f\x7f-\x9f]")
_PERCENT = re.compile(r"(?:%[0-9A-F]{2})+")


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One MQTT message ready to publish."""

    topic: str
    payload: bytes
    qos: Literal[0, 1]
    retain: bool = False


# --- topics -------------------------------------------------------------------------------


def escape_topic_level(name: str) -> str:
    """``name`` as one MQTT topic level (see the module docstring for the mapping).

    >>> escape_topic_level("Ana/B+#1 Ñ")
    'Ana%2FB%2B%231 Ñ'
    """
    if not name:
        raise RecordCodecError("topic", "the athlete name is empty (an empty topic level)")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordCodecError("topic", f"athlete name is not valid UTF-8: {name!r}") from exc
    return _ESCAPED.sub(
        lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), name
    )


def unescape_topic_level(level: str) -> str:
    """Inverse of :func:`escape_topic_level`.

    >>> unescape_topic_level("Ana%2FB%2B%231 Ñ")
    'Ana/B+#1 Ñ'
    """
    try:
        return _PERCENT.sub(
            lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8"), level
        )
    except UnicodeDecodeError as exc:
        raise RecordCodecError("topic", f"bad percent escape in topic level {level!r}") from exc


@functools.lru_cache(maxsize=4096)
def topic_for(athlete: str, kind: TopicKind) -> str:
    """``stridewatch/v1/<escaped athlete>/<kind>`` (cached: one lookup per message)."""
    return f"{TOPIC_ROOT}/{escape_topic_level(athlete)}/{kind}"


def topic_filter(kind: TopicKind, athlete: str | None = None) -> str:
    """Subscription filter for one kind: every athlete (``+``) or one athlete."""
    level = "+" if athlete is None else escape_topic_level(athlete)
    return f"{TOPIC_ROOT}/{level}/{kind}"


def shared_filter(group: str, topic: str) -> str:
    """``$share/<group>/<topic>``: one of the group's subscribers gets each message."""
    if not group or any(c in group for c in "/+#\x00"):
        raise ValueError(f"shared subscription group must be non-empty without / + #: {group!r}")
    return f"$share/{group}/{topic}"


def parse_topic(topic: str) -> tuple[str, TopicKind]:
    """``(athlete, kind)`` of a stridewatch topic; :class:`RecordCodecError` otherwise."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[3] not in TOPIC_KINDS:
        raise RecordCodecError("topic", f"not a stridewatch topic: {topic!r}")
    kind: TopicKind = parts[3]  # narrowed by the check above
    return unescape_topic_level(parts[2]), kind


# --- payload helpers ----------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise RecordCodecError("time", f"naive datetime {value!r} (records are aware UTC)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise RecordCodecError("time", f"expected an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordCodecError("time", f"bad ISO 8601 time {value!r}") from exc
    if parsed.tzinfo is None:
        raise RecordCodecError("time", f"time without a UTC offset: {value!r}")
    return parsed


def _finite(value: MetricValue) -> MetricValue:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# One encoder for every payload: json.dumps with non-default options builds a new encoder per
# call, a measurable share of the publish path (benchmarks/bench_mqtt.py).
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps(data: Mapping[str, Any]) -> bytes:
    try:
        return _ENCODER.encode(data).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RecordCodecError("json", f"cannot serialise: {exc}") from exc


def _loads(payload: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordCodecError("json", f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RecordCodecError("json", f"payload is not a JSON object: {type(data).__name__}")
    return data


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordCodecError(what, f"expected a number, got {value!r}")
    return float(value)


# --- processing outputs -------------------------------------------------------------------

_METRIC_TOPICS: Final[dict[MetricGroup, TopicKind]] = {
    MetricGroup.RR: "rr",
    MetricGroup.HRV: "hrv",
}
"""Groups with a topic of their own; every other group goes to ``metrics`` with a group key."""

_METRIC_RESERVED: Final = frozenset({"t", "t_mono_s", "group"})


def encode_metric(metric: Metric) -> OutgoingMessage:
    """A Metric on ``metrics`` (with ``group``), ``rr`` or ``hrv``; QoS 0, not retained."""
    if not _METRIC_RESERVED.isdisjoint(metric.values):
        clash = sorted(_METRIC_RESERVED & set(metric.values))
        raise RecordCodecError("metric", f"value names {clash} are reserved keys")
    kind = _METRIC_TOPICS.get(metric.group, "metrics")
    data: dict[str, Any] = {"t": format_time(metric.time_utc), "t_mono_s": metric.time_mono_s}
    if kind == "metrics":
        data["group"] = metric.group.value
    for k, v in metric.values.items():
        data[k] = None if isinstance(v, float) and not math.isfinite(v) else v  # _finite()
    return OutgoingMessage(topic_for(metric.athlete, kind), _dumps(data), 0)


def encode_alert(alert: Alert) -> OutgoingMessage:
    """An Alert on ``alert`` with its ``id``; QoS 1, not retained."""
    data = {
        "id": alert.id,
        "t": format_time(alert.time_utc),
        "t_mono_s": alert.time_mono_s,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "value": _finite(alert.value),
        "threshold": _finite(alert.threshold),
        "message": alert.message,
    }
    return OutgoingMessage(topic_for(alert.athlete, "alert"), _dumps(data), 1)


def encode_segment(segment: Segment) -> OutgoingMessage:
    """A closed Segment on ``segment``; QoS 1 (rare and worth keeping), not retained."""
    data: dict[str, Any] = {
        "t": format_time(segment.end_utc),
        "kind": segment.kind.value,
        "start_utc": format_time(segment.start_utc),
        "end_utc": format_time(segment.end_utc),
        "start_mono_s": segment.start_mono_s,
        "end_mono_s": segment.end_mono_s,
        "start_m": _finite(segment.start_m),
        "end_m": _finite(segment.end_m),
        "summary": {f.name: _finite(getattr(segment.summary, f.name))
                    for f in dataclasses.fields(SegmentSummary)},
    }
    return OutgoingMessage(topic_for(segment.athlete, "segment"), _dumps(data), 1)


def encode_output(record: ProcessingOutput) -> OutgoingMessage:
    """Dispatch on the record type."""
    match record:
        case Metric():
            return encode_metric(record)
        case Alert():
            return encode_alert(record)
        case Segment():
            return encode_segment(record)
    raise RecordCodecError(type(record).__name__, "not a processing output")  # pragma: no cover


def encode_status(athlete: str, *, online: bool) -> OutgoingMessage:
    """``online``/``offline`` on ``status``: QoS 1, retained (the Last Will is ``offline``)."""
    payload = STATUS_ONLINE if online else STATUS_OFFLINE
    return OutgoingMessage(topic_for(athlete, "status"), payload, 1, retain=True)


def decode_metric(athlete: str, kind: TopicKind, payload: bytes | str) -> Metric:
    """Inverse of :func:`encode_metric` (non-finite values come back as ``None``)."""
    data = _loads(payload)
    try:
        t = parse_time(data.pop("t"))
        mono = _number(data.pop("t_mono_s"), "metric")
        group = MetricGroup(data.pop("group")) if kind == "metrics" else MetricGroup(kind)
    except (KeyError, ValueError) as exc:
        raise RecordCodecError("metric", f"bad metric payload: {exc}") from exc
    for key, value in data.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise RecordCodecError("metric", f"value {key!r} is not a scalar: {value!r}")
    return Metric(athlete=athlete, time_utc=t, time_mono_s=mono, group=group, values=data)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def decode_alert(athlete: str, payload: bytes | str) -> Alert:
    """Inverse of :func:`encode_alert`."""
    data = _loads(payload)
    try:
        return Alert(
            id=str(data["id"]),
            athlete=athlete,
            time_utc=parse_time(data["t"]),
            time_mono_s=_number(data["t_mono_s"], "alert"),
            kind=AlertKind(data["kind"]),
            severity=Severity(data["severity"]),
            value=_optional_number(data["value"], "alert"),
            threshold=_optional_number(data["threshold"], "alert"),
            message=str(data["message"]),
        )
    except (KeyError, ValueError) as exc:
        raise RecordCodecError("alert", f"bad alert payload: {exc}") from exc


def decode_segment(athlete: str, payload: bytes | str) -> Segment:
    """Inverse of :func:`encode_segment`."""
    data = _loads(payload)
    try:
        summary = data["summary"]
        return Segment(
            athlete=athlete,
            kind=SegmentKind(data["kind"]),
            start_utc=parse_time(data["start_utc"]),
            end_utc=parse_time(data["end_utc"]),
            start_mono_s=_number(data["start_mono_s"], "segment"),
            end_mono_s=_number(data["end_mono_s"], "segment"),
            start_m=_number(data["start_m"], "segment"),
            end_m=_number(data["end_m"], "segment"),
            summary=SegmentSummary(**{f.name: summary[f.name]
                                      for f in dataclasses.fields(SegmentSummary)}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordCodecError("segment", f"bad segment payload: {exc}") from exc


# --- readings (remote collectors) ---------------------------------------------------------


def encode_reading(reading: Reading) -> OutgoingMessage:
    """A Reading on ``readings`` as :func:`record_to_json`; QoS 1 (see outputs.mqtt_source)."""
    return OutgoingMessage(topic_for(reading.athlete, "readings"),
                           _dumps(record_to_json(reading)), 1)


def _dec_str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def _dec_int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _dec_float(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {v!r}")
    return float(v)


def _dec_bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected true/false, got {v!r}")
    return v


def _dec_bytes(v: object) -> bytes:
    return bytes.fromhex(_dec_str(v))


def _optional(conv: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda v: None if v is None else conv(v)


def _tuple_of(conv: Callable[[object], Any]) -> Callable[[object], Any]:
    def dec(v: object) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise TypeError(f"expected an array, got {v!r}")
        return tuple(conv(x) for x in v)

    return dec


_READING_FIELD_DECODERS: Final[dict[str, Callable[[object], Any]]] = {
    "str": _dec_str,
    "int": _dec_int,
    "float": _dec_float,
    "bytes": _dec_bytes,
    "datetime": parse_time,
    "Contact": lambda v: Contact(_dec_str(v)),
    "LinkState": lambda v: LinkState(_dec_str(v)),
    "SensorKind": lambda v: SensorKind(_dec_str(v)),
    "tuple[float, ...]": _tuple_of(_dec_float),
    "int | None": _optional(_dec_int),
    "float | None": _optional(_dec_float),
    "bool | None": _optional(_dec_bool),
    "str | None": _optional(_dec_str),
    "tuple[str, ...] | None": _optional(_tuple_of(_dec_str)),
}
"""Decoder per field annotation of the reading dataclasses (annotations are strings)."""

_READING_CLASSES: Final[dict[str, type[Any]]] = {tag: cls for cls, tag in RECORD_TYPES.items()}
_READING_FIELDS: Final[dict[str, tuple[tuple[str, Callable[[object], Any]], ...]]] = {
    tag: tuple((f.name, _READING_FIELD_DECODERS[str(f.type)]) for f in dataclasses.fields(cls))
    for tag, cls in _READING_CLASSES.items()
}
# A KeyError above at import means a reading gained a field type this decoder does not know.


def decode_reading(payload: bytes | str) -> Reading:
    """Rebuild the exact Reading from a ``readings`` payload; :class:`RecordCodecError` if bad.

    Keys that are missing take the dataclass default when there is one (an older writer);
    unknown keys are ignored (a newer writer).
    """
    data = _loads(payload)
    tag = data.get("type")
    if not isinstance(tag, str) or tag not in _READING_CLASSES:
        raise RecordCodecError("reading", f"unknown reading type {tag!r}")
    kwargs: dict[str, Any] = {}
    for name, dec in _READING_FIELDS[tag]:
        if name not in data:
            continue  # the dataclass default applies, or the constructor says what is missing
        try:
            kwargs[name] = dec(data[name])
        except (TypeError, ValueError) as exc:
            raise RecordCodecError(tag, f"field {name!r}: {exc}") from exc
    try:
        reading: Reading = _READING_CLASSES[tag](**kwargs)
    except TypeError as exc:
        raise RecordCodecError(tag, f"incomplete reading: {exc}") from exc
    return reading


# --- consumers ----------------------------------------------------------------------------

SinkRecord = Reading | Metric | Alert | Segment
"""What :func:`decode_message` returns."""


def decode_message(topic: str, payload: bytes | str) -> SinkRecord:
    """Decode any stridewatch data message by its topic (``status`` is not a record)."""
    athlete, kind = parse_topic(topic)
    match kind:
        case "readings":
            return decode_reading(payload)
        case "alert":
            return decode_alert(athlete, payload)
        case "segment":
            return decode_segment(athlete, payload)
        case "status":
            raise RecordCodecError("status", "status messages are not records")
        case _:
            return decode_metric(athlete, kind, payload)


# --- Home Assistant MQTT discovery --------------------------------------------------------

HA_SENSORS: Final[tuple[tuple[str, str, TopicKind, str, str | None], ...]] = (
    # (object suffix, name, topic kind, JSON key, unit)
    ("heart_rate", "Heart rate", "metrics", "heart_rate_bpm", "bpm"),
    ("cadence", "Cadence", "metrics", "cadence_spm", "steps/min"),
    ("pace", "Pace", "metrics", "pace_s_per_km", "s/km"),
    ("last_alert", "Last alert", "alert", "message", None),
)
"""Sensors announced to Home Assistant. The metrics topic carries several groups, so each
template keeps the sensor's state when a message lacks its key."""


def ha_object_id(athlete: str, suffix: str) -> str:
    """``stridewatch_<ascii slug>_<8 hex of the name>_<suffix>`` ([a-z0-9_] only, unique)."""
    slug = re.sub(r"[^a-z0-9]+", "_", athlete.lower()).strip("_") or "athlete"
    digest = hashlib.sha1(athlete.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"stridewatch_{slug}_{digest}_{suffix}"


def ha_discovery_messages(athlete: str) -> list[OutgoingMessage]:
    """Retained ``homeassistant/sensor/<object id>/config`` messages (QoS 1) for one athlete."""
    device_id = ha_object_id(athlete, "device")
    out = []
    for suffix, name, kind, key, unit in HA_SENSORS:
        object_id = ha_object_id(athlete, suffix)
        config: dict[str, Any] = {
            "name": name,
            "unique_id": object_id,
            "object_id": object_id,
            "state_topic": topic_for(athlete, kind),
            "value_template": (
                f"{{% if value_json.{key} is defined %}}{{{{ value_json.{key} }}}}"
                f"{{% else %}}{{{{ this.state }}}}{{% endif %}}"
            ),
            "availability_topic": topic_for(athlete, "status"),
            "payload_available": STATUS_ONLINE.decode(),
            "payload_not_available": STATUS_OFFLINE.decode(),
            "device": {
                "identifiers": [device_id],
                "name": f"stridewatch {athlete}",
                "manufacturer": "stridewatch",
            },
        }
        if unit is not None:
            config["unit_of_measurement"] = unit
            config["state_class"] = "measurement"
        out.append(OutgoingMessage(f"{HA_DISCOVERY_PREFIX}/sensor/{object_id}/config",
                                   _dumps(config), 1, retain=True))
    return out
