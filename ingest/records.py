"""Records: the contract between ingest, processing and outputs.

Frozen, slotted dataclasses with units in the field names. Every reading carries

* ``athlete`` and ``sensor`` (the sensor's address, unique per collector),
* ``time_utc``: when the notification arrived, UTC (for storage and display),
* ``time_mono_s``: the same instant on the monotonic clock in seconds (for intervals; immune
  to wall-clock jumps),
* ``raw``: the characteristic value exactly as received, so every record can be replayed.

Values are as the sensor sent them. In particular ``StrideReading.cadence_per_min`` is the
footpod's number, which some devices count in steps/min and others in strides/min (one foot);
processing decides which and outputs ``cadence_spm`` (steps/min).
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any


class Contact(enum.StrEnum):
    """Skin contact as reported in Heart Rate Measurement flags bits 1–2.

    ``UNSUPPORTED`` (bit 2 clear): the strap does not report contact. ``NOT_DETECTED``
    (bit 2 set, bit 1 clear) is *no* contact: the value is likely stale or noise.
    """

    DETECTED = "detected"
    NOT_DETECTED = "not_detected"
    UNSUPPORTED = "unsupported"


class SensorKind(enum.StrEnum):
    """What a sensor measures, by the GATT service it exposes."""

    HEART_RATE = "heart_rate"  # Heart Rate Service 0x180D
    FOOTPOD = "footpod"  # Running Speed and Cadence Service 0x1814


class LinkState(enum.StrEnum):
    """Link and data-quality events of one sensor."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECT_FAILED = "connect_failed"
    SILENT = "silent"  # connected but no notification within the watchdog time
    NO_CONTACT = "no_contact"  # strap reports skin contact lost
    CONTACT = "contact"  # skin contact regained
    RR_GAP = "rr_gap"  # RR intervals lost (frames missing): the beat clock was re-anchored
    BAD_FRAME = "bad_frame"  # a frame that could not be decoded (counted and skipped)
    # The Bluetooth adapter went away (dongle pulled, controller reset or crash, bluetoothd
    # restarted): the session stays open and every sensor reconnects once it is back.
    ADAPTER_LOST = "adapter_lost"
    ADAPTER_BACK = "adapter_back"
    # The collector ended the athlete's session on purpose (the workout is over, --seconds
    # passed, Ctrl-C): a remote `run` or a scale-out worker closes the session (final totals,
    # last split, open segment) and the athlete's next reading starts a new one. See
    # :func:`session_end`.
    SESSION_END = "session_end"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Stamped:
    athlete: str
    """Athlete the sensor belongs to (from the sensor mapping)."""
    sensor: str
    """Sensor address (or a stable identifier for replayed and remote sources)."""
    time_utc: datetime
    """Arrival time, timezone-aware UTC."""
    time_mono_s: float
    """Arrival time on the monotonic clock, seconds."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateReading(_Stamped):
    """One Heart Rate Measurement (0x2A37) notification."""

    heart_rate_bpm: int
    """Heart rate, beats per minute, as sent."""
    rr_intervals_s: tuple[float, ...]
    """RR intervals in seconds (wire ticks / 1024, exact), oldest first; 0..9 per frame."""
    beat_times_mono_s: tuple[float, ...]
    """Reconstructed monotonic time of the beat that ends each RR interval (see beat clock)."""
    contact: Contact
    energy_kj: int | None
    """Energy expended since reset, kJ (saturates at 65535); None when the frame has none."""
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StrideReading(_Stamped):
    """One RSC Measurement (0x2A53) notification."""

    speed_mps: float
    """Instantaneous speed, m/s (wire: 1/256 m/s)."""
    cadence_per_min: int
    """Cadence as sent (steps/min or strides/min depending on the device)."""
    stride_length_m: float | None
    """The sensor's "stride length" field, metres (wire: 1/100 m); None when absent."""
    total_distance_m: float | None
    """Total distance since the sensor's reset, metres (wire: 1/10 m); None when absent."""
    running: bool | None
    """Walking (False) / running (True); None when the sensor does not support the bit."""
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatteryReading(_Stamped):
    """Battery Level (0x2A19)."""

    level_pct: int
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LinkEvent(_Stamped):
    """A change of link or data-quality state; never carries an invented measurement."""

    state: LinkState
    detail: str = ""
    raw: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SensorInfo(_Stamped):
    """What a sensor told us about itself on connect."""

    name: str
    kind: SensorKind
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    body_sensor_location: str | None = None
    rsc_features: tuple[str, ...] | None = None
    """Names of the RSC Feature (0x2A54) bits that are set; None for non-footpods."""


Reading = HeartRateReading | StrideReading | BatteryReading | LinkEvent | SensorInfo
"""Everything a source yields."""

RECORD_TYPES: dict[type[Any], str] = {
    HeartRateReading: "heart_rate",
    StrideReading: "stride",
    BatteryReading: "battery",
    LinkEvent: "link",
    SensorInfo: "sensor",
}
"""The ``type`` tag of each record in JSON output."""


def session_end(last: Reading) -> LinkEvent:
    """The end of ``last.athlete``'s session, stamped with the times of ``last``, their
    newest record: the session ends where its data ends (what ``finish()`` at the end of a
    local run uses). Processing takes an end even when it is stamped late."""
    return LinkEvent(athlete=last.athlete, sensor=last.sensor, time_utc=last.time_utc,
                     time_mono_s=last.time_mono_s, state=LinkState.SESSION_END)


def is_session_end(record: Reading) -> bool:
    """Whether ``record`` is a :func:`session_end`."""
    return type(record) is LinkEvent and record.state is LinkState.SESSION_END


def record_to_json(record: Reading) -> dict[str, Any]:
    """A JSON-ready dict: ``type`` tag, field names as keys, time as ISO 8601, raw as hex."""
    out: dict[str, Any] = {"type": RECORD_TYPES[type(record)]}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = list(value)
        out[field.name] = value
    return out
