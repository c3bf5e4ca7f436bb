"""The schema of stridewatch's InfluxDB points: measurement names, tag keys and the one fixed
type of every field (``docs/influxdb.md`` has the table). Pure data; the encoding is in
:mod:`outputs.lineprotocol.encode`."""


from __future__ import annotations

import enum

from ingest.records import (
    Reading,
)
from processing.records import MetricGroup, ProcessingOutput

Record = Reading | ProcessingOutput
"""Everything an output handles (the same union as ``outputs.codec.Record``)."""



class FieldType(enum.StrEnum):
    """The InfluxDB type of a field; fixed per (measurement, field) forever."""

    FLOAT = "float"
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"


F = FieldType.FLOAT
I = FieldType.INTEGER  # noqa: E741 - the line-protocol suffix, used only in the table below
S = FieldType.STRING
B = FieldType.BOOLEAN

# Measurement names.
HEART = "heart"
RR = "rr"
HRV = "hrv"
GAIT = "gait"
SESSION = "session"
SPLIT = "split"
ACCELERATION = "acceleration"
EVENT = "event"
SEGMENT = "segment"
ALERT = "alert"
HR_RAW = "hr_raw"
RR_RAW = "rr_raw"
STRIDE_RAW = "stride_raw"
BATTERY = "battery"
LINK = "link"
SENSOR_INFO = "sensor_info"

METRIC_MEASUREMENTS: dict[MetricGroup, str] = {group: group.value for group in MetricGroup}
"""Metric group → measurement (the group's name)."""

FIELD_TYPES: dict[str, dict[str, FieldType]] = {
    HEART: {"heart_rate_bpm": F, "zone": F, "rise_30s_bpm": F, "contact": S, "sensor": S},
    RR: {"rr_ms": F, "clean_rr_ms": F, "artifact": S},
    HRV: {
        **{
            f"{stat}_{window}_{unit}": F
            for window in ("60s", "300s")
            for stat, unit in (("rmssd", "ms"), ("sdnn", "ms"), ("pnn50", "pct"))
        },
        "coverage_60s": F,
        "coverage_300s": F,
        "dfa_alpha1": F,
        "dfa_reason": S,
        "alpha1_zone": S,
        "artifact_pct": F,
    },
    GAIT: {
        "cadence_spm": F,
        "step_length_m": F,
        "stride_length_m": F,
        "speed_mps": F,
        "pace_s_per_km": F,
        "distance_m": F,
        "running": B,
        "cadence_unit": S,
        "segment": S,
    },
    SESSION: {
        "segment": S,
        "trimp": F,
        **{f"zone{z}_s": F for z in range(1, 6)},
        "final": B,
        "avg_hr_bpm": F,
        "max_hr_bpm": F,
        "distance_m": F,
        "resting_rmssd_ms": F,
        "readiness": S,
        "early_rise_bpm": F,
        "decoupling_pct": F,
        "hr_at_alpha1_075_bpm": F,
        "hr_at_alpha1_050_bpm": F,
        "speed_at_alpha1_075_mps": F,
        "speed_at_alpha1_050_mps": F,
        "alpha1_fit_r2": F,
        "alpha1_fit_reason": S,
        "hr_rejected": I,
        "late_dropped": I,
        "beats": I,
    },
    SPLIT: {},  # fields follow the Split dataclass; typed by the fallback rule
    ACCELERATION: {},  # fields follow the Acceleration dataclass; typed by the fallback rule
    EVENT: {"event": S, "sensor": S, "to_sensor": S, "detail": S},
    SEGMENT: {
        "start_m": F,
        "end_m": F,
        "end_unix_ms": I,
        "duration_s": F,
        "distance_m": F,
        "avg_speed_mps": F,
        "avg_pace_s_per_km": F,
        "avg_hr_bpm": F,
        "max_hr_bpm": F,
        "avg_cadence_spm": F,
        "avg_step_length_m": F,
    },
    ALERT: {"id": S, "value": F, "threshold": F, "message": S},
    HR_RAW: {"heart_rate_bpm": I, "contact": S, "energy_kj": I, "rr_count": I},
    RR_RAW: {"rr_ms": F},
    STRIDE_RAW: {
        "speed_mps": F,
        "cadence_per_min": I,
        "stride_length_m": F,
        "total_distance_m": F,
        "running": B,
    },
    BATTERY: {"level_pct": I},
    LINK: {"state": S, "detail": S},
    SENSOR_INFO: {
        "name": S,
        "kind": S,
        "manufacturer": S,
        "model": S,
        "firmware": S,
        "body_sensor_location": S,
    },
}
"""Measurement → field → type. Metric fields missing here are typed by :func:`fallback_type`."""

TAG_KEYS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(METRIC_MEASUREMENTS.values(), ("athlete",)),
    SEGMENT: ("athlete", "kind"),
    ALERT: ("athlete", "kind", "severity"),
    **dict.fromkeys(
        (HR_RAW, RR_RAW, STRIDE_RAW, BATTERY, LINK, SENSOR_INFO), ("athlete", "sensor")
    ),
}
"""Measurement → its tag keys (sorted, as the server stores them)."""
