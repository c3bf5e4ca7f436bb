"""FIT activity files as a source: the same Readings the collector yields, read in one go.

:func:`read_fit` decodes the whole file with fitdecode (CRC checked, errors raised) before it
returns anything. A damaged file raises :class:`~ingest.errors.ReplayError` naming the path,
what is wrong, where (FIT record number, byte offset) and how much before it was readable; with
``salvage=True`` the valid prefix is imported instead and the damage is the first note
(:mod:`ingest.replay.fit_decode`). Nothing half-read is ever returned silently.

What becomes what (FIT profile units, see DESIGN.md "Protocol facts"):

* ``record.heart_rate`` (bpm) → :class:`HeartRateReading` on sensor ``"fit:hr"``; ``contact``
  is ``UNSUPPORTED`` (FIT does not record it), ``energy_kj`` None.
* ``hrv.time`` (up to 5 RR intervals per message, seconds, 1 ms resolution; FIT's invalid
  value 0xFFFF decodes as None and is padding) → ``rr_intervals_s`` of those readings, values
  exactly as decoded. See "RR alignment" below.
* Records of a sport on foot with speed, cadence or distance → :class:`StrideReading` on
  ``"fit:pod"``: ``speed_mps`` is ``enhanced_speed`` / ``speed`` (m/s; when absent, the
  distance covered since the record before over its interval, else 0);
  ``cadence_per_min = round(2 × (cadence + fractional_cadence))`` (running cadence is
  *strides*/min of one foot; file sources always give **steps/min**,
  :data:`FIT_CADENCE_UNIT`; 0 when the record has none); ``stride_length_m`` is
  ``step_length`` (mm, one step) / 1000; ``total_distance_m`` is the device's *corrected*
  distance (:class:`~ingest.replay.fit_totals.DistanceLine`: small decreases are GPS
  corrections, a drop over 100 m a reset), interpolated in time for records without
  ``distance`` and never decreasing, so a consumer that takes differences (processing) gets
  the device's distance; ``running`` is ``activity_type`` (running → True, walking → False).
* ``raw`` is ``b""``; one :class:`SensorInfo` per sensor at its first reading.
* :attr:`Activity.totals`: distance, timer time, time-weighted average HR and cadence recomputed
  from the records as the devices do (:mod:`ingest.replay.fit_totals`); :attr:`Activity.summary`
  is what the device wrote in its ``session`` message.

Time
----
``time_utc`` is the record's timestamp (aware UTC). Compressed-timestamp record headers are
resolved from the last full timestamp. An unset device clock (relative times) is dated from
``start_utc`` or the FIT epoch, with a note. ``time_mono_s`` is seconds since the session's
``start_time`` on a line that never decreases: a timestamp earlier than the one before is
clamped, and a forward step of more than :data:`CLOCK_JUMP_S` with the timer running is a clock
jump counted as the previous record interval. Timer pauses (``event`` timer stop → start) are
:attr:`Activity.pauses_mono_s`, not link events.

RR alignment
------------
FIT ``hrv`` messages carry no timestamps. Garmin devices write them between ``record``
messages, each holding the beats that ended since the previous one, so the RR of the ``hrv``
messages that follow record *k* are anchored at record *k*'s time: the first group is back-dated
from its record, then every beat is the previous beat plus its RR (``diff(beat_times) == rr``
exactly). When the chain falls more than :data:`RR_GAP_S` behind a record's time, beats were
not recorded: the chain is re-anchored and a ``LinkEvent(RR_GAP)`` is emitted. The RR go on
that record's heart-rate reading (or the latest before it); watches that write ``hrv`` during a
pause (fēnix 3) put those beats on the last reading before it.

Sessions
--------
One :class:`Activity` per ``session`` message; a multisport file gives one per leg on foot
(swim, bike and transition legs are left out, with a note). A message belongs to the first
session whose ``session`` message follows it (the last session takes the rest: the FR70 writes
its session first); if that leaves a session without records, records go to the latest session
started at or before them. A file without a ``session`` message (or one without totals) still
imports from its records, with a note.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from ingest.replay.fit_build import build_session
from ingest.replay.fit_decode import decode, normalise_clock, num, text
from ingest.replay.fit_timeline import CLOCK_JUMP_S, split_sessions
from ingest.replay.fit_totals import RecordTotals
from ingest.replay.fit_types import (
    FIT_CADENCE_UNIT,
    FIT_HR_SENSOR,
    FIT_POD_SENSOR,
    FOOT_SPORTS,
    RR_GAP_S,
    Activity,
    BeatChain,
    CadenceUnit,
    DeviceInfo,
    FitSummary,
    SourceFormat,
    device_of,
    with_sensor_info,
)

__all__ = [
    "CLOCK_JUMP_S",
    "FIT_CADENCE_UNIT",
    "FIT_HR_SENSOR",
    "FIT_POD_SENSOR",
    "RR_GAP_S",
    "Activity",
    "BeatChain",
    "CadenceUnit",
    "DeviceInfo",
    "FitSummary",
    "RecordTotals",
    "SourceFormat",
    "read_fit",
    "with_sensor_info",
]

logger = logging.getLogger(__name__)


def read_fit(
    path: str | os.PathLike[str],
    *,
    athlete: str,
    start_utc: datetime | None = None,
    salvage: bool = False,
) -> list[Activity]:
    """Read a FIT activity file: one :class:`Activity` per session on foot, in file order.

    Args:
        path: the ``.fit`` file.
        athlete: athlete the readings belong to.
        start_utc: when the device clock was not set (relative times), the first record's
            time; ignored for files with real dates.
        salvage: import the valid prefix of a damaged file (with a note) instead of raising.

    Raises:
        ReplayError: the file is missing, damaged (truncated, CRC mismatch, bad header,
            unparsable message; unless ``salvage`` and a valid prefix exists) or holds no
            activity records. Nothing is returned then.
    """
    name = os.fspath(path)
    messages, damage = decode(name, salvage=salvage)
    file_notes = ([damage] if damage else []) + normalise_clock(messages, start_utc)
    device = device_of(messages)
    sessions = split_sessions(messages)
    sports = [text(s.get("sport")) if s else None for s, _ in sessions]
    on_foot = [sport is None or sport in FOOT_SPORTS for sport in sports]
    if any(on_foot) and not all(on_foot):
        left = ", ".join(f"{i} ({sport})" for i, (sport, keep) in
                         enumerate(zip(sports, on_foot, strict=True)) if not keep)
        file_notes.append(f"multisport file: imported the legs on foot; left out sessions {left}")
    activities: list[Activity] = []
    previous: float | None = None  # last record distance of the session before
    for i, (session, group) in enumerate(sessions):
        if on_foot[i] or not any(on_foot):
            activities.append(build_session(name, athlete, i, session, group, device,
                                            file_notes, previous))
        distances = [d for m in group if m.name == "record"
                     and (d := num(m.values.get("distance"))) is not None]
        previous = distances[-1] if distances else previous
    for a in activities:
        for note in a.notes:
            logger.info("%s session %d: %s", name, a.session_index, note)
    return activities
