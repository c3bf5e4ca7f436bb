"""Output records of processing: metric samples, alerts, segments.

Frozen, slotted dataclasses; units in names. Times are event times taken from the readings
(``time_mono_s`` for intervals, ``time_utc`` for labels): processing never reads a clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, TypeGuard, cast

MetricValue = float | int | str | bool | None


class MetricGroup(enum.StrEnum):
    """Groups of metrics that are produced together (one InfluxDB measurement, one MQTT topic)."""

    HEART = "heart"  # per HR frame: HR, contact, source sensor, zone, rise rate
    RR = "rr"  # per beat: RR, clean/artifact
    HRV = "hrv"  # per beat (at most 1 Hz): RMSSD/SDNN/pNN50 60 s and 5 min, DFA α1, coverage
    GAIT = "gait"  # per footpod frame: cadence_spm, step/stride length, speed, pace, distance
    SESSION = "session"  # segment kind, TRIMP, time in zones (about 1 Hz); totals at the end
    SPLIT = "split"  # one per km (and the last partial km at the end)
    ACCELERATION = "acceleration"  # one per acceleration from standstill
    EVENT = "event"  # source switches and data-quality events (rejected HR, late readings)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """A sample of a group of metrics at one event time."""

    athlete: str
    time_utc: datetime
    time_mono_s: float
    group: MetricGroup
    values: Mapping[str, MetricValue]
    """Field name (with unit) → value; None where the value is not defined now."""


def is_session_totals(record: object) -> TypeGuard[Metric]:
    """Whether ``record`` is a session's final SESSION metric (its totals, ``final``: the
    session ended): after it the athlete is offline until their next session."""
    return (type(record) is Metric and record.group is MetricGroup.SESSION
            and record.values.get("final") is True)


def slot_setters(cls: type, *names: str) -> tuple[Callable[[object, object], None], ...]:
    """The ``__set__`` of each named slot of the slotted class ``cls``, in order.

    A frozen dataclass's generated ``__init__`` assigns every field with
    ``object.__setattr__`` and parses keyword arguments; setting the slots through their
    descriptors on ``object.__new__(cls)`` builds the very same object at about 40 % of the
    cost. For output records made on every reading (see :func:`new_metric`)."""
    return tuple(cast(Callable[[object, object], None], cls.__dict__[n].__set__) for n in names)


_METRIC_FIELDS: Final = ("athlete", "time_utc", "time_mono_s", "group", "values")
assert tuple(f.name for f in dataclasses.fields(Metric)) == _METRIC_FIELDS  # new_metric sets all
_new = object.__new__
_m_athlete, _m_utc, _m_mono, _m_group, _m_values = slot_setters(Metric, *_METRIC_FIELDS)


def new_metric(
    athlete: str,
    time_utc: datetime,
    time_mono_s: float,
    group: MetricGroup,
    values: Mapping[str, MetricValue],
) -> Metric:
    """``Metric(athlete=athlete, time_utc=time_utc, ...)``: the same frozen object (equal, same
    type and fields), built without the dataclass ``__init__`` (:func:`slot_setters`). The
    pipeline makes two or three metrics per reading.

    >>> from datetime import UTC
    >>> utc = datetime(2026, 1, 1, tzinfo=UTC)
    >>> m = new_metric("ana", utc, 1.5, MetricGroup.RR, {"rr_ms": 800.0})
    >>> m == Metric(athlete="ana", time_utc=utc, time_mono_s=1.5, group=MetricGroup.RR,
    ...             values={"rr_ms": 800.0})
    True
    """
    m = _new(Metric)
    _m_athlete(m, athlete)
    _m_utc(m, time_utc)
    _m_mono(m, time_mono_s)
    _m_group(m, group)
    _m_values(m, values)
    return m


class AlertKind(enum.StrEnum):
    HR_SURGE = "hr_surge"
    HR_CEILING = "hr_ceiling"
    EARLY_SURGE = "early_surge"
    LOW_READINESS = "low_readiness"
    SENSOR_LOST = "sensor_lost"
    NO_CONTACT = "no_contact"
    LOW_BATTERY = "low_battery"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """An alert raised by the reading that crossed its threshold.

    ``id`` is unique and deterministic (athlete, kind, sequence), so consumers de-duplicate
    redeliveries.
    """

    id: str
    athlete: str
    time_utc: datetime
    time_mono_s: float
    kind: AlertKind
    severity: Severity
    value: float | None
    threshold: float | None
    message: str


class SegmentKind(enum.StrEnum):
    STAND = "stand"
    WALK = "walk"
    RUN = "run"
    SPRINT = "sprint"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SegmentSummary:
    """What happened in one segment. None where the data has no such value."""

    duration_s: float
    distance_m: float
    avg_speed_mps: float | None
    avg_pace_s_per_km: float | None
    avg_hr_bpm: float | None
    max_hr_bpm: float | None
    avg_cadence_spm: float | None
    avg_step_length_m: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """A closed stand/walk/run/sprint segment."""

    athlete: str
    kind: SegmentKind
    start_utc: datetime
    end_utc: datetime
    start_mono_s: float
    end_mono_s: float
    start_m: float
    end_m: float
    summary: SegmentSummary


ProcessingOutput = Metric | Alert | Segment
