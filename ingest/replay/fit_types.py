"""The data types of FIT import (:class:`Activity`, ...) and helpers shared by the file readers;
see :mod:`ingest.replay.fit` for what they mean."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final, Literal

from ingest.records import HeartRateReading, Reading, SensorInfo, SensorKind, StrideReading
from ingest.replay.fit_decode import Msg, integer, num, spm, text
from ingest.replay.fit_totals import RecordTotals

CadenceUnit = Literal["steps", "strides"]
"""What a cadence value counts (same literals as processing's ``CadenceUnit``)."""
SourceFormat = Literal["fit", "csv", "rr_text"]

FIT_CADENCE_UNIT: Final[CadenceUnit] = "steps"
"""File sources convert FIT's strides/min, so their footpod readings are in steps/min."""
FIT_HR_SENSOR: Final = "fit:hr"
FIT_POD_SENSOR: Final = "fit:pod"

RR_GAP_S: Final = 2.5
"""Re-anchor the beat chain when it falls this far behind a record's time. Records are 1 s
apart in files with ``hrv``; the accumulated RR drift is under 1 s per 15 minutes on the test
files, so 2.5 s only triggers on beats that were not recorded."""

FOOT_SPORTS: Final = frozenset({"running", "walking", "hiking", "generic", "training"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """The device that recorded the file (FIT ``file_id`` / creator ``device_info``)."""

    manufacturer: str | None = None
    product: str | None = None
    serial_number: int | None = None
    software_version: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FitSummary:
    """What the device wrote in its ``session`` message; None where the field is absent.

    FIT running cadence is strides/min; the ``*_cadence_spm`` fields are steps/min (× 2,
    fractional part included).
    """

    start_utc: datetime | None
    end_utc: datetime | None
    """The session message's timestamp (when the device closed the session)."""
    sport: str | None
    sub_sport: str | None
    total_distance_m: float | None
    total_elapsed_time_s: float | None
    """Start to end, pauses included."""
    total_timer_time_s: float | None
    """Time with the timer running (pauses excluded)."""
    avg_heart_rate_bpm: int | None
    max_heart_rate_bpm: int | None
    avg_cadence_spm: float | None
    """2 × (avg_running_cadence + avg_fractional_cadence), steps/min. When the file has no
    fractional part the device's integer strides/min was truncated: up to 2 spm low."""
    max_cadence_spm: float | None
    avg_speed_mps: float | None
    max_speed_mps: float | None
    total_ascent_m: float | None
    total_descent_m: float | None
    total_calories_kcal: float | None
    num_laps: int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """One recorded session, as Readings in time order plus what the file said about it."""

    athlete: str
    source_format: SourceFormat
    source_path: str
    session_index: int
    """Zero-based index of the session in its file (always 0 for CSV and RR text)."""
    start_utc: datetime
    """``time_mono_s == 0`` is this instant."""
    sport: str | None
    device: DeviceInfo | None
    readings: tuple[Reading, ...]
    """Time order (``time_mono_s`` non-decreasing)."""
    summary: FitSummary | None
    """The device's own session summary (FIT only)."""
    pauses_mono_s: tuple[tuple[float, float], ...] = ()
    """Timer pauses (stop, start) in monotonic seconds; a pause still open at the end is
    closed at the last reading."""
    notes: tuple[str, ...] = ()
    """Corrections the reader made (clock jumps, clamps, damage, missing summary), for the
    user."""
    totals: RecordTotals | None = None
    """FIT only: the session's figures recomputed from its records (devices' rules)."""

    def cadence_overrides(self) -> dict[str, CadenceUnit]:
        """Processing's cadence-unit override for each footpod sensor of this activity."""
        pods = {r.sensor for r in self.readings if isinstance(r, StrideReading)}
        return dict.fromkeys(sorted(pods), FIT_CADENCE_UNIT)


def device_of(messages: list[Msg]) -> DeviceInfo | None:
    file_id = next((m.values for m in messages if m.name == "file_id"), None)
    creator = next(
        (
            m.values
            for m in messages
            if m.name == "device_info" and m.values.get("device_index") == "creator"
        ),
        {},
    )
    if file_id is None:
        return None
    product = file_id.get("garmin_product") or file_id.get("product") or file_id.get(
        "product_name"
    )
    return DeviceInfo(
        manufacturer=text(file_id.get("manufacturer")),
        product=text(product),
        serial_number=integer(file_id.get("serial_number")),
        software_version=text(creator.get("software_version")),
    )


def summary_of(session: Mapping[str, Any]) -> FitSummary:
    speed = session.get("enhanced_avg_speed")
    max_speed = session.get("enhanced_max_speed")
    return FitSummary(
        start_utc=session.get("start_time"),
        end_utc=session.get("timestamp"),
        sport=text(session.get("sport")),
        sub_sport=text(session.get("sub_sport")),
        total_distance_m=num(session.get("total_distance")),
        total_elapsed_time_s=num(session.get("total_elapsed_time")),
        total_timer_time_s=num(session.get("total_timer_time")),
        avg_heart_rate_bpm=integer(session.get("avg_heart_rate")),
        max_heart_rate_bpm=integer(session.get("max_heart_rate")),
        avg_cadence_spm=spm(
            session.get("avg_running_cadence"), session.get("avg_fractional_cadence")
        ),
        max_cadence_spm=spm(
            session.get("max_running_cadence"), session.get("max_fractional_cadence")
        ),
        avg_speed_mps=num(speed if speed is not None else session.get("avg_speed")),
        max_speed_mps=num(max_speed if max_speed is not None else session.get("max_speed")),
        total_ascent_m=num(session.get("total_ascent")),
        total_descent_m=num(session.get("total_descent")),
        total_calories_kcal=num(session.get("total_calories")),
        num_laps=integer(session.get("num_laps")),
    )


class BeatChain:
    """Accumulates RR groups into beat times, re-anchoring at recording gaps (module doc).

    Shared by the file readers of this package (not exported).

    >>> chain = BeatChain()
    >>> chain.place(10.0, [0.5, 0.5])
    ((9.5, 10.0), None)
    >>> chain.place(11.0, [0.75])
    ((10.75,), None)
    >>> chain.place(20.0, [1.0])
    ((20.0,), 8.25)
    """

    def __init__(self) -> None:
        self._last: float | None = None

    def place(self, anchor_s: float, rr_s: list[float]) -> tuple[tuple[float, ...], float | None]:
        total = math.fsum(rr_s)
        gap: float | None = None
        if self._last is None:
            t = anchor_s - total
        else:
            behind = anchor_s - (self._last + total)
            if behind > RR_GAP_S:
                gap = behind
                t = anchor_s - total
            else:
                t = self._last
        times: list[float] = []
        for rr in rr_s:
            t += rr
            times.append(t)
        self._last = times[-1]
        return tuple(times), gap


def with_sensor_info(
    readings: list[Reading], athlete: str, device: DeviceInfo | None, source: str = "FIT file"
) -> Iterator[Reading]:
    """The readings with one SensorInfo before the first reading of each sensor."""
    seen: set[str] = set()
    maker = device.manufacturer if device else None
    model = device.product if device else None
    for r in readings:
        if r.sensor not in seen and isinstance(r, HeartRateReading | StrideReading):
            seen.add(r.sensor)
            kind = SensorKind.HEART_RATE if isinstance(r, HeartRateReading) else SensorKind.FOOTPOD
            what = "heart rate" if kind is SensorKind.HEART_RATE else "speed and cadence"
            yield SensorInfo(
                athlete=athlete, sensor=r.sensor, time_utc=r.time_utc, time_mono_s=r.time_mono_s,
                name=f"{model or source} {what}", kind=kind, manufacturer=maker, model=model,
                firmware=device.software_version if device else None,
            )
        yield r
