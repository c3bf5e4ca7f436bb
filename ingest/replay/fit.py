"""FIT activity files as a source: the same Readings the collector yields, read in one go.

:func:`read_fit` decodes the whole file with fitdecode (CRC checked, errors raised) before it
returns anything: a damaged file raises :class:`~ingest.errors.ReplayError` naming the path,
what is wrong and where (FIT record number, byte offset), and no partial result exists.

What becomes what (FIT profile units, see DESIGN.md "Protocol facts"):

* ``record.heart_rate`` (bpm) → :class:`HeartRateReading` on sensor ``"fit:hr"``; ``contact``
  is ``UNSUPPORTED`` (FIT does not record it), ``energy_kj`` None.
* ``hrv.time`` (up to 5 RR intervals per message, seconds, 1 ms resolution; FIT's invalid
  value 0xFFFF decodes as None and is padding) → ``rr_intervals_s`` of those readings, values
  exactly as decoded. See "RR alignment" below.
* ``record.enhanced_speed`` / ``speed`` (m/s), ``cadence`` + ``fractional_cadence`` (running
  cadence: *strides*/min of one foot) → :class:`StrideReading` on sensor ``"fit:pod"`` with
  ``cadence_per_min = round(2 × (cadence + fractional_cadence))``: file sources always give
  **steps/min** (:data:`FIT_CADENCE_UNIT`), so the application sets processing's cadence
  override for these sensors (:meth:`Activity.cadence_overrides`). ``stride_length_m`` is
  ``step_length`` (mm, one step) / 1000, which pairs with steps/min; ``total_distance_m`` is
  ``distance`` (m) as recorded (in a multi-session file it keeps counting across sessions,
  like a footpod's total: processing takes differences). ``running`` is the record's
  ``activity_type`` (running → True, walking → False) when present, else None.
  Readings need both speed and cadence; records of non-foot sports (cycling, ...) give none.
* ``raw`` is ``b""``: a file reading is replayed from its source file (the importer stores
  the file and the session index), not from characteristic bytes.
* One :class:`SensorInfo` per "sensor" that produced readings, at its first reading, with the
  recording device's manufacturer and product.

Time
----
``time_utc`` is the record's timestamp as recorded (aware UTC). ``time_mono_s`` is seconds since
the session's ``start_time`` on a line that never decreases: a timestamp earlier than the one
before it (clock set back) is clamped to the previous time, and a forward step of more than
:data:`CLOCK_JUMP_S` while the timer is running (no timer stop in between, so not a pause) is a
clock jump (``time-jump.fit``: +20 days between two records 7 s apart): it advances the
monotonic line by the previous record interval instead. Each correction is listed in
:attr:`Activity.notes`. Timer pauses (``event`` timer stop → start) are not link events (the
sensors were fine); they are returned as :attr:`Activity.pauses_mono_s`.

RR alignment
------------
FIT ``hrv`` messages carry no timestamps. Garmin devices write them between ``record``
messages, each holding the beats that ended since the previous one, so the RR of the ``hrv``
messages that follow record *k* are anchored at record *k*'s time: the first group is back-dated
from its record (its last beat at the record's time), and then every beat is the previous beat
plus its RR (accumulation from the start: ``diff(beat_times) == rr`` exactly, times strictly
increasing). When the chain falls more than :data:`RR_GAP_S` behind a record's time, beats were
not recorded (e.g. during a long pause): the chain is re-anchored there and a
``LinkEvent(RR_GAP)`` is emitted, as the collector does. The RR are attached to the heart-rate
reading of that record (or the latest one before it); a group's beats may end up to about a
second after that reading's time. Groups after the last record keep accumulating. Some watches
(fēnix 3) keep writing ``hrv`` while the timer is paused, with no records: those RR ride on the
last record before the pause, and their beat times lie inside the pause (up to minutes after
the reading's own time).

Sessions
--------
A file with several ``session`` messages gives one :class:`Activity` per session. A message
belongs to the first session whose ``session`` message comes after it in the file; messages after
the last ``session`` message belong to the last session (FR70 files write the session first).
If that leaves a session without records, sessions are assigned by time instead (each record
to the latest session whose start is not after it).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import fitdecode

from ingest.errors import ReplayError
from ingest.records import (
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
    StrideReading,
)

__all__ = [
    "CLOCK_JUMP_S",
    "FIT_CADENCE_UNIT",
    "FIT_HR_SENSOR",
    "FIT_POD_SENSOR",
    "RR_GAP_S",
    "Activity",
    "CadenceUnit",
    "DeviceInfo",
    "FitSummary",
    "SourceFormat",
    "read_fit",
]

logger = logging.getLogger(__name__)

CadenceUnit = Literal["steps", "strides"]
"""What a cadence value counts (same literals as processing's ``CadenceUnit``)."""
SourceFormat = Literal["fit", "csv", "rr_text"]

FIT_CADENCE_UNIT: Final[CadenceUnit] = "steps"
"""File sources convert FIT's strides/min, so their footpod readings are in steps/min."""
FIT_HR_SENSOR: Final = "fit:hr"
FIT_POD_SENSOR: Final = "fit:pod"

CLOCK_JUMP_S: Final = 300.0
"""A forward step between records above this, with the timer running, is a clock jump.
Smart recording writes a record at least every ~10 s while the timer runs; pauses are
bracketed by timer events, so 5 minutes without either is not a real interval."""
RR_GAP_S: Final = 2.5
"""Re-anchor the beat chain when it falls this far behind a record's time. Records are 1 s
apart in files with ``hrv``; the accumulated RR drift is under 1 s per 15 minutes on the test
files, so 2.5 s only triggers on beats that were not recorded."""

_FOOT_SPORTS: Final = frozenset({"running", "walking", "hiking", "generic", "training"})
_TIMER_STOPS: Final = frozenset({"stop", "stop_all", "stop_disable", "stop_disable_all"})
_KEPT: Final = frozenset({"record", "hrv", "event", "session", "file_id", "device_info"})


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

    Used to check our processing against the device. FIT running cadence is strides/min;
    the ``*_cadence_spm`` fields are converted to steps/min (× 2, fractional part included).
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
    """Corrections the reader made (clock jumps, clamps, skipped records), for the log."""

    def cadence_overrides(self) -> dict[str, CadenceUnit]:
        """Processing's cadence-unit override for each footpod sensor of this activity."""
        pods = {r.sensor for r in self.readings if isinstance(r, StrideReading)}
        return dict.fromkeys(sorted(pods), FIT_CADENCE_UNIT)


# ----------------------------------------------------------------------------- decoding


@dataclasses.dataclass(slots=True)
class _Msg:
    name: str
    values: dict[str, Any]


def _values(frame: Any) -> dict[str, Any]:
    """Native (non-developer) fields by name; the first non-None value of a name wins."""
    out: dict[str, Any] = {}
    for field in frame.fields:
        if isinstance(field.field_def, fitdecode.types.DevFieldDefinition):
            continue
        name = field.name
        if name is not None and out.get(name) is None:
            out[name] = field.value
    return out


_OFFSET_RE: Final = re.compile(r"(?:offset: |@ )(\d+)")


def _describe(exc: Exception) -> tuple[str, int | None]:
    """What went wrong and the byte offset, from one of fitdecode's (or Python's) errors."""
    offset = getattr(exc, "offset", None)
    if not isinstance(offset, int):
        found = _OFFSET_RE.search(str(exc))
        offset = int(found.group(1)) if found else None
    match exc:
        case fitdecode.FitEOFError():
            reason = f"file truncated: {exc}"
        case fitdecode.FitCRCError():
            reason = f"CRC check failed, the file is corrupted: {exc}"
        case fitdecode.FitHeaderError():
            reason = f"bad FIT header: {exc}"
        case fitdecode.FitParseError():
            reason = f"cannot parse FIT data: {exc}"
        case _:
            reason = f"cannot decode FIT data ({type(exc).__name__}: {exc})"
    return reason, offset


def _decode(path: str) -> list[_Msg]:
    """Every kept data message of the file, in file order; raises ReplayError on damage."""
    messages: list[_Msg] = []
    frame_no = 0
    try:
        with fitdecode.FitReader(
            path,
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as reader:
            for frame in reader:
                frame_no += 1
                if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name in _KEPT:
                    messages.append(_Msg(frame.name, _values(frame)))
    except OSError as exc:
        raise ReplayError(path, f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # fitdecode raises FitError and, on garbage, plain Python errors
        reason, offset = _describe(exc)
        raise ReplayError(path, reason, offset=offset, record_no=frame_no) from exc
    if frame_no == 0:
        raise ReplayError(path, "empty file: no FIT header")
    if not any(m.name == "record" for m in messages):
        raise ReplayError(path, "no record messages: not an activity file")
    return messages


# ----------------------------------------------------------------------------- helpers


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else round(number)


def _spm(strides: Any, fractional: Any) -> float | None:
    whole = _num(strides)
    if whole is None:
        return None
    return 2.0 * (whole + (_num(fractional) or 0.0))


def _device(messages: list[_Msg]) -> DeviceInfo | None:
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
        manufacturer=_text(file_id.get("manufacturer")),
        product=_text(product),
        serial_number=_int(file_id.get("serial_number")),
        software_version=_text(creator.get("software_version")),
    )


def _summary(session: Mapping[str, Any]) -> FitSummary:
    speed = session.get("enhanced_avg_speed")
    max_speed = session.get("enhanced_max_speed")
    return FitSummary(
        start_utc=session.get("start_time"),
        end_utc=session.get("timestamp"),
        sport=_text(session.get("sport")),
        sub_sport=_text(session.get("sub_sport")),
        total_distance_m=_num(session.get("total_distance")),
        total_elapsed_time_s=_num(session.get("total_elapsed_time")),
        total_timer_time_s=_num(session.get("total_timer_time")),
        avg_heart_rate_bpm=_int(session.get("avg_heart_rate")),
        max_heart_rate_bpm=_int(session.get("max_heart_rate")),
        avg_cadence_spm=_spm(
            session.get("avg_running_cadence"), session.get("avg_fractional_cadence")
        ),
        max_cadence_spm=_spm(
            session.get("max_running_cadence"), session.get("max_fractional_cadence")
        ),
        avg_speed_mps=_num(speed if speed is not None else session.get("avg_speed")),
        max_speed_mps=_num(max_speed if max_speed is not None else session.get("max_speed")),
        total_ascent_m=_num(session.get("total_ascent")),
        total_descent_m=_num(session.get("total_descent")),
        total_calories_kcal=_num(session.get("total_calories")),
        num_laps=_int(session.get("num_laps")),
    )


def _split_sessions(messages: list[_Msg]) -> list[tuple[Mapping[str, Any] | None, list[_Msg]]]:
    """(session values or None, its messages in file order) per session; see module doc."""
    sessions = [m.values for m in messages if m.name == "session"]
    if not sessions:
        return [(None, [m for m in messages if m.name != "session"])]
    groups: list[list[_Msg]] = [[] for _ in sessions]
    k = 0
    for m in messages:
        if m.name == "session":
            k = min(k + 1, len(sessions) - 1)
        else:
            groups[k].append(m)
    if len(sessions) > 1 and any(
        not any(m.name == "record" for m in g) for g in groups
    ):
        groups = _split_by_time(messages, sessions)
    return list(zip(sessions, groups, strict=True))


def _split_by_time(messages: list[_Msg], sessions: list[dict[str, Any]]) -> list[list[_Msg]]:
    starts = [s.get("start_time") for s in sessions]
    groups: list[list[_Msg]] = [[] for _ in sessions]
    k = 0
    for m in messages:
        if m.name == "session":
            continue
        ts = m.values.get("timestamp")
        if isinstance(ts, datetime):
            k = 0
            for i, start in enumerate(starts):
                if isinstance(start, datetime) and start <= ts:
                    k = i
        groups[k].append(m)  # messages without a timestamp (hrv) follow the one before
    return groups


# ----------------------------------------------------------------------------- timeline


def _timer_pauses(messages: list[_Msg]) -> list[tuple[datetime, datetime | None]]:
    """Timer pauses (stop, start or None if never restarted) from timer events, by time.

    Some devices (fēnix 2) write every event at the end of the file, so file order says
    nothing: the events are sorted by their timestamps.
    """
    events = sorted(
        (m.values["timestamp"].astimezone(UTC), str(m.values.get("event_type")))
        for m in messages
        if m.name == "event"
        and m.values.get("event") == "timer"
        and isinstance(m.values.get("timestamp"), datetime)
    )
    pauses: list[tuple[datetime, datetime | None]] = []
    stopped: datetime | None = None
    for when, kind in events:
        if kind in _TIMER_STOPS and stopped is None:
            stopped = when
        elif kind == "start" and stopped is not None:
            pauses.append((stopped, when))
            stopped = None
    if stopped is not None:
        pauses.append((stopped, None))
    return pauses


class _Timeline:
    """Maps recorded UTC timestamps onto a never-decreasing monotonic line (module doc)."""

    def __init__(self, start_utc: datetime, pauses: list[tuple[datetime, datetime | None]]) -> None:
        self._start = start_utc
        self._pauses = pauses
        self._last_utc: datetime | None = None
        self._last_mono = 0.0
        self._last_step = 1.0
        self.anchors: list[tuple[datetime, float]] = []
        self.notes: list[str] = []

    def _paused_within(self, a: datetime, b: datetime) -> bool:
        return any(stop < b and (restart is None or restart > a) for stop, restart in self._pauses)

    def mono(self, utc: datetime) -> float:
        """Monotonic seconds of the next record's timestamp ``utc``."""
        if self._last_utc is None:
            step = (utc - self._start).total_seconds()
            if step < 0:
                self.notes.append(f"first record {utc.isoformat()} is {-step:.0f} s "
                                  "before the session start: clamped to the start")
                step = 0.0
        else:
            step = (utc - self._last_utc).total_seconds()
            if step < 0:
                self.notes.append(f"clock went back {-step:.0f} s at {utc.isoformat()}: "
                                  "clamped")
                step = 0.0
            elif step > CLOCK_JUMP_S and not self._paused_within(self._last_utc, utc):
                self.notes.append(f"clock jumped {step:.0f} s forward at {utc.isoformat()} "
                                  f"with the timer running: counted as {self._last_step:.0f} s")
                step = self._last_step
            elif 0 < step <= CLOCK_JUMP_S:
                self._last_step = step
        self._last_utc = utc
        self._last_mono += step
        self.anchors.append((utc, self._last_mono))
        return self._last_mono

    def mono_of(self, utc: datetime) -> float:
        """Monotonic seconds of any instant (timer events), interpolated between records."""
        before = [(u, m) for u, m in self.anchors if u <= utc]
        if not before:
            return max(0.0, (utc - self._start).total_seconds())
        u, m = before[-1]
        later = [mm for uu, mm in self.anchors if uu > utc]
        value = m + (utc - u).total_seconds()
        return min(value, later[0]) if later else value

    def pauses_mono(self) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        end = self._last_mono
        for stop, restart in self._pauses:
            a = self.mono_of(stop)
            b = self.mono_of(restart) if restart is not None else max(a, end)
            out.append((a, max(a, b)))
        return out


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


# ----------------------------------------------------------------------------- building


def _rr_values(values: Mapping[str, Any]) -> list[float]:
    raw = values.get("time")
    if raw is None:
        return []
    items = raw if isinstance(raw, tuple | list) else (raw,)
    return [float(v) for v in items if isinstance(v, int | float)]


def _build(
    path: str,
    athlete: str,
    index: int,
    session: Mapping[str, Any] | None,
    messages: list[_Msg],
    device: DeviceInfo | None,
) -> Activity:
    records = [m for m in messages if m.name == "record"]
    first_ts = next(
        (r.values["timestamp"] for r in records if isinstance(r.values.get("timestamp"), datetime)),
        None,
    )
    start = session.get("start_time") if session else None
    if not isinstance(start, datetime):
        start = first_ts
    if not isinstance(start, datetime):
        raise ReplayError(path, f"session {index} has no timestamps")
    start = start.astimezone(UTC)
    sport = _text(session.get("sport")) if session else None
    foot_sport = sport is None or sport in _FOOT_SPORTS

    timeline = _Timeline(start, _timer_pauses(messages))
    chain = BeatChain()
    out: list[Reading] = []
    notes: list[str] = []
    last_hr: int | None = None  # index in ``out`` of the latest heart-rate reading
    anchor: tuple[datetime, float] | None = None  # time of the latest record
    pending: list[float] = []
    skipped = 0

    def flush() -> None:
        nonlocal pending
        if not pending or last_hr is None or anchor is None:
            return
        times, gap = chain.place(anchor[1], pending)
        reading = out[last_hr]
        assert isinstance(reading, HeartRateReading)
        out[last_hr] = dataclasses.replace(
            reading,
            rr_intervals_s=reading.rr_intervals_s + tuple(pending),
            beat_times_mono_s=reading.beat_times_mono_s + times,
        )
        if gap is not None:
            out.append(LinkEvent(athlete=athlete, sensor=FIT_HR_SENSOR, time_utc=anchor[0],
                                 time_mono_s=anchor[1], state=LinkState.RR_GAP,
                                 detail=f"{gap:.1f} s of RR intervals not recorded"))
        pending = []

    for m in messages:
        v = m.values
        if m.name == "hrv":
            pending.extend(_rr_values(v))
        elif m.name == "record":
            ts = v.get("timestamp")
            if not isinstance(ts, datetime):
                skipped += 1
                continue
            flush()
            utc = ts.astimezone(UTC)
            t = timeline.mono(utc)
            anchor = (utc, t)
            hr = _int(v.get("heart_rate"))
            if hr is not None and hr > 0:
                out.append(HeartRateReading(
                    athlete=athlete, sensor=FIT_HR_SENSOR, time_utc=utc, time_mono_s=t,
                    heart_rate_bpm=hr, rr_intervals_s=(), beat_times_mono_s=(),
                    contact=Contact.UNSUPPORTED, energy_kj=None, raw=b"",
                ))
                last_hr = len(out) - 1
            speed = _num(v.get("enhanced_speed"))
            if speed is None:
                speed = _num(v.get("speed"))
            cadence = _spm(v.get("cadence"), v.get("fractional_cadence"))
            if foot_sport and speed is not None and cadence is not None:
                step_mm = _num(v.get("step_length"))
                activity_type = v.get("activity_type")
                out.append(StrideReading(
                    athlete=athlete, sensor=FIT_POD_SENSOR, time_utc=utc, time_mono_s=t,
                    speed_mps=speed, cadence_per_min=round(cadence),
                    stride_length_m=None if step_mm is None else step_mm / 1000.0,
                    total_distance_m=_num(v.get("distance")),
                    running={"running": True, "walking": False}.get(str(activity_type)),
                    raw=b"",
                ))
    flush()
    if pending:
        notes.append(f"{len(pending)} RR intervals before any heart-rate record were dropped")
    if skipped:
        notes.append(f"{skipped} record messages without a timestamp were skipped")
    if not foot_sport:
        notes.append(f"sport {sport!r} is not on foot: no stride readings")
    out.sort(key=lambda r: r.time_mono_s)  # stable: RR_GAP stays after its reading
    readings = tuple(with_sensor_info(out, athlete, device))
    return Activity(
        athlete=athlete,
        source_format="fit",
        source_path=path,
        session_index=index,
        start_utc=start,
        sport=sport,
        device=device,
        readings=readings,
        summary=_summary(session) if session else None,
        pauses_mono_s=tuple(timeline.pauses_mono()),
        notes=tuple(timeline.notes + notes),
    )


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


def read_fit(path: str | os.PathLike[str], *, athlete: str) -> list[Activity]:
    """Read a FIT activity file: one :class:`Activity` per session, in file order.

    Args:
        path: the ``.fit`` file.
        athlete: athlete the readings belong to.

    Raises:
        ReplayError: the file is missing, damaged (truncated, CRC mismatch, bad header,
            unparsable message) or holds no activity records. Nothing is returned then.
    """
    name = os.fspath(path)
    messages = _decode(name)
    device = _device(messages)
    activities = [
        _build(name, athlete, i, session, group, device)
        for i, (session, group) in enumerate(_split_sessions(messages))
    ]
    for a in activities:
        for note in a.notes:
            logger.info("%s session %d: %s", name, a.session_index, note)
    return activities
