"""One FIT session → :class:`~ingest.replay.fit.Activity` (readings, pauses, totals, notes).

See :mod:`ingest.replay.fit` for what becomes what and :mod:`ingest.replay.fit_totals` for the
figures recomputed from the records.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ingest.errors import ReplayError
from ingest.records import Contact, HeartRateReading, LinkEvent, LinkState, Reading, StrideReading
from ingest.replay.fit_decode import Msg, integer, num, session_end_s, spm, text
from ingest.replay.fit_timeline import Timeline, timer_pauses
from ingest.replay.fit_totals import (
    MAX_HOLD_S,
    RESET_DROP_M,
    DistanceLine,
    Sample,
    compute_totals,
    counts_standing_zero_cadence,
)
from ingest.replay.fit_types import (
    FIT_HR_SENSOR,
    FIT_POD_SENSOR,
    FOOT_SPORTS,
    Activity,
    BeatChain,
    DeviceInfo,
    summary_of,
    with_sensor_info,
)


def _rr_values(values: Mapping[str, Any]) -> list[float]:
    raw = values.get("time")
    if raw is None:
        return []
    items = raw if isinstance(raw, tuple | list) else (raw,)
    return [float(v) for v in items if isinstance(v, int | float)]


def _distances(times: list[float], raw: list[float | None]) -> tuple[list[float | None], list[str]]:
    """Corrected record distances, interpolated in time where a record has none, never
    decreasing (what the readings carry), plus notes."""
    line = DistanceLine()
    corrected: list[float | None] = [None if d is None else line.add(d) for d in raw]
    known = [i for i, d in enumerate(corrected) if d is not None]
    notes: list[str] = []
    if line.corrections:
        notes.append(f"record distance went back {line.corrections} times by up to 100 m: "
                     "GPS corrections, the later distance is kept")
    if line.resets:
        notes.append(f"record distance reset {line.resets} times: counting continued")
    if known and len(known) < len(raw):
        notes.append(f"distance on {len(known)} of {len(raw)} records: interpolated in time")
    out: list[float | None] = list(corrected)
    for a, b in itertools.pairwise(known):
        da, db = corrected[a], corrected[b]
        assert da is not None
        assert db is not None
        span = times[b] - times[a]
        for i in range(a + 1, b):
            frac = (times[i] - times[a]) / span if span > 0 else 0.0
            out[i] = da + frac * (db - da)
    if known:
        for i in range(known[-1] + 1, len(out)):
            out[i] = corrected[known[-1]]
    top: float | None = None
    for i, d in enumerate(out):
        if d is not None:
            top = d if top is None else max(top, d)
            out[i] = top
    return out, notes


def _baseline(first: float | None, previous: float | None) -> float:
    """Distance covered in the session before its first record: the first record's distance
    minus where counting stood at the session start (the previous leg's last distance when the
    file keeps counting, else 0 after a reset or at the file start)."""
    if first is None:
        return 0.0
    if previous is not None and previous <= first:
        return first - previous
    return first if first <= RESET_DROP_M else 0.0


def _end_s(session: Mapping[str, Any] | None, start: datetime, timeline: Timeline,
           times: list[float]) -> float:
    """Seconds from the start to the session end: the later of the device's elapsed time and
    its session timestamp (fr25: 33 s of timer running after ``start + elapsed``), else the
    last record."""
    candidates = [times[-1]] if times and session is None else []
    elapsed = session_end_s(session, start)
    if elapsed is not None:
        candidates.append(elapsed)
    end = session.get("timestamp") if session else None
    if isinstance(end, datetime) and end > start:
        candidates.append(timeline.mono_of(end.astimezone(UTC)))
    if not candidates and times:
        candidates.append(times[-1])
    return max(candidates, default=0.0)


def _missing_totals(session: Mapping[str, Any] | None, samples: list[Sample]) -> list[str]:
    if session is None:
        return ["no session message: every figure is computed from the records"]
    missing = [name for name, key in (("distance", "total_distance"),
                                      ("timer time", "total_timer_time"))
               if session.get(key) is None]
    if session.get("avg_heart_rate") is None and any(s.heart_rate_bpm for s in samples):
        missing.append("average heart rate")
    if (session.get("avg_running_cadence") is None and session.get("avg_cadence") is None
            and any(s.cadence_spm for s in samples)):
        missing.append("average cadence")
    if not missing:
        return []
    return [f"the device's session has no {', '.join(missing)}: computed from the records"]


def build_session(
    path: str,
    athlete: str,
    index: int,
    session: Mapping[str, Any] | None,
    messages: list[Msg],
    device: DeviceInfo | None,
    file_notes: list[str],
    prev_distance_m: float | None = None,
) -> Activity:
    """The session's Activity; ``prev_distance_m`` is the last record distance of the session
    before it in the file (multisport files that keep counting across legs)."""
    records = [m for m in messages if m.name == "record"]
    dated = [m for m in records if isinstance(m.values.get("timestamp"), datetime)]
    start = session.get("start_time") if session else None
    if not isinstance(start, datetime):
        start = dated[0].values["timestamp"] if dated else None
    if not isinstance(start, datetime):
        raise ReplayError(path, f"session {index} has no timestamps")
    start = start.astimezone(UTC)
    sport = text(session.get("sport")) if session else None
    foot_sport = sport is None or sport in FOOT_SPORTS
    pauses = timer_pauses(messages)
    timeline = Timeline(start, pauses)

    times = [timeline.mono(m.values["timestamp"].astimezone(UTC)) for m in dated]
    place = {id(m): i for i, m in enumerate(dated)}
    distance, notes = _distances(times, [num(m.values.get("distance")) for m in dated])

    chain = BeatChain()
    out: list[Reading] = []
    samples: list[Sample] = []
    last_hr: int | None = None  # index in ``out`` of the latest heart-rate reading
    anchor: tuple[datetime, float] | None = None  # time of the latest record
    pending: list[float] = []

    def flush() -> None:
        nonlocal pending
        if not pending or last_hr is None or anchor is None:
            return
        beat_times, gap = chain.place(anchor[1], pending)
        reading = out[last_hr]
        assert isinstance(reading, HeartRateReading)
        out[last_hr] = dataclasses.replace(
            reading,
            rr_intervals_s=reading.rr_intervals_s + tuple(pending),
            beat_times_mono_s=reading.beat_times_mono_s + beat_times,
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
            continue
        if m.name != "record" or id(m) not in place:
            continue
        i = place[id(m)]
        flush()
        utc, t = v["timestamp"].astimezone(UTC), times[i]
        anchor = (utc, t)
        hr = integer(v.get("heart_rate"))
        if hr is not None and hr > 0:
            out.append(HeartRateReading(
                athlete=athlete, sensor=FIT_HR_SENSOR, time_utc=utc, time_mono_s=t,
                heart_rate_bpm=hr, rr_intervals_s=(), beat_times_mono_s=(),
                contact=Contact.UNSUPPORTED, energy_kj=None, raw=b"",
            ))
            last_hr = len(out) - 1
        speed = num(v.get("enhanced_speed"))
        if speed is None:
            speed = num(v.get("speed"))
        cadence = spm(v.get("cadence"), v.get("fractional_cadence"))
        samples.append(Sample(t, hr, cadence, speed))
        if not foot_sport or (speed is None and cadence is None and distance[i] is None):
            continue
        if speed is None:
            here, before = distance[i], distance[i - 1] if i else None
            dt = t - times[i - 1] if i else 0.0
            ok = here is not None and before is not None and 0.0 < dt <= MAX_HOLD_S
            speed = (here - before) / dt if ok and here is not None and before is not None else 0.0
        step_mm = num(v.get("step_length"))
        out.append(StrideReading(
            athlete=athlete, sensor=FIT_POD_SENSOR, time_utc=utc, time_mono_s=t,
            speed_mps=speed, cadence_per_min=round(cadence) if cadence is not None else 0,
            stride_length_m=None if step_mm is None else step_mm / 1000.0,
            total_distance_m=distance[i],
            running={"running": True, "walking": False}.get(str(v.get("activity_type"))),
            raw=b"",
        ))
    flush()
    if pending:
        notes.append(f"{len(pending)} RR intervals before any heart-rate record were dropped")
    if len(dated) < len(records):
        notes.append(f"{len(records) - len(dated)} record messages without a timestamp "
                     "were skipped")
    if not foot_sport:
        notes.append(f"sport {sport!r} is not on foot: no stride readings")
    if foot_sport and samples and not any(s.cadence_spm for s in samples):
        notes.append("the records carry no cadence (no footpod or wrist cadence)")
    notes.extend(_missing_totals(session, samples))
    end_s = _end_s(session, start, timeline, times)
    known = [d for d in distance if d is not None]
    first = next((d for m in dated if (d := num(m.values.get("distance"))) is not None), None)
    base = _baseline(first, prev_distance_m)
    totals = compute_totals(
        samples,
        end_s=end_s,
        pauses=timeline.pauses_mono(end_s),
        distance_m=known[-1] - known[0] + base if known else None,
        standing_zero_counts=counts_standing_zero_cadence(device.manufacturer if device else None),
    )
    out.sort(key=lambda r: r.time_mono_s)  # stable: RR_GAP stays after its reading
    return Activity(
        athlete=athlete,
        source_format="fit",
        source_path=path,
        session_index=index,
        start_utc=start,
        sport=sport,
        device=device,
        readings=tuple(with_sensor_info(out, athlete, device)),
        summary=summary_of(session) if session else None,
        pauses_mono_s=tuple(timeline.pauses_mono()),
        notes=tuple(file_notes + timeline.notes + notes),
        totals=totals,
    )
