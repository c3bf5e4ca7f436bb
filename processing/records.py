"""Output records of processing: metric samples, alerts, segments.

Frozen, slotted dataclasses; units in names. Times are event times taken from the readings
(``time_mono_s`` for intervals, ``time_utc`` for labels): processing never reads a clock.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime

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
