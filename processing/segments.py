"""Stand / walk / run / sprint segments of a session, with hysteresis and back-dated switches.

Kinds come from speed (DESIGN.md "Metrics": segments with hysteresis). Boundaries, m/s:

* stand | walk at 0.5 (± 0.1 hysteresis),
* walk | run at 2.3 (8.3 km/h, ± 0.15): power walking at 6-7 km/h stays walking,
* run | sprint at 5.5 (19.8 km/h, ± 0.2).

To cross a boundary upward the speed must exceed it by the hysteresis margin, downward it
must fall below it by the margin (margins relative to the kind being left).

Cadence is not used: walking and running overlap in speed only around 2-2.5 m/s, and the
speed bands above already give the kinds the runner asks about (DESIGN.md "Who it is for").

Switching. When the speed leaves the current kind's band (the *departure*), the samples are
held as pending. The switch is confirmed once one candidate kind has lasted its minimum
duration: stand 3 s (a shorter stop, like turning round at the end of a start-practice
walk-back, is no stand), walk and run 5 s, sprint 2 s (a 30 m start is only ~3.5 s above
5.5 m/s). The new segment is **back-dated** past the decision to where the change began: from
the departure reading, back over the readings in which speed was already moving monotonically
toward the new kind (each earlier reading at least 0.02 m/s further from it), at most 5 s and
never before the current segment's start. So a boundary sits where the athlete started to
speed up or slow down, not where a threshold was crossed (on ``morning-5k`` the run → walk
boundary would otherwise lag the deceleration by ~10 m). The sums of the back-dated readings
move with them (a small ring buffer of the last readings keeps their contributions). A step
change between two readings is dated to the earlier one. Kinds passed through more briefly than
their minimum are absorbed into the kind that follows: a start from standstill (walk, run
speeds for ~2 s) belongs to the sprint, the deceleration after it to the walk. If the speed
returns to the current kind before any candidate is confirmed, the pending samples go back into
the current segment.

Summaries use running sums: duration and distance from the boundaries; average speed is
distance/duration; average HR is time-weighted; average cadence is time-weighted over the
moving time (cadence > 0); average step length is step-weighted (``Σ L·c·dt / Σ c·dt``, which
equals distance/steps). Each interval between two readings is weighted with the earlier
reading's values and at most 5 s (a link gap is not given the weight of its whole length).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from datetime import datetime
from math import isfinite
from typing import Final, NamedTuple

from processing.records import Segment, SegmentKind, SegmentSummary

__all__ = ["SegmentTracker"]

_ORDER: Final = (SegmentKind.STAND, SegmentKind.WALK, SegmentKind.RUN, SegmentKind.SPRINT)
BOUNDARIES_MPS: Final = (0.5, 2.3, 5.5)
"""Speed boundaries between consecutive kinds in ``_ORDER``, m/s."""
HYSTERESIS_MPS: Final = (0.1, 0.15, 0.2)
"""Margin around each boundary, m/s."""
MIN_DURATION_S: Final = {
    SegmentKind.STAND: 3.0,
    SegmentKind.WALK: 5.0,
    SegmentKind.RUN: 5.0,
    SegmentKind.SPRINT: 2.0,
}
"""How long a candidate kind must last before the switch is confirmed, seconds."""
BACKDATE_MAX_S: Final = 5.0
"""A boundary is back-dated at most this far before the departure reading, seconds."""
BACKDATE_STEP_MPS: Final = 0.02
"""Each back-dated reading must be this much further from the new kind's speed, m/s."""
_HISTORY: Final = 32  # readings kept for back-dating: BACKDATE_MAX_S at up to 6 Hz
MAX_WEIGHT_S: Final = 5.0
"""Longest interval weight given to one reading in the averages, seconds."""
_STANDING_MPS: Final = 0.3


def _thresholds(current: SegmentKind | None) -> tuple[float, ...]:
    """Speeds (m/s) at or above which each boundary of ``_ORDER`` counts as crossed, seen from
    ``current``: up by the margin from below, down by it from above (increasing, as every
    margin is far smaller than the gap between boundaries)."""
    level = _ORDER.index(current) if current is not None else None
    return tuple(
        b if level is None else b + h if level <= i else b - h
        for i, (b, h) in enumerate(zip(BOUNDARIES_MPS, HYSTERESIS_MPS, strict=True))
    )


_THRESHOLDS: Final = {kind: _thresholds(kind) for kind in (None, *_ORDER)}
assert all(list(t) == sorted(t) for t in _THRESHOLDS.values())  # classify() relies on it


def classify(speed_mps: float, current: SegmentKind | None) -> SegmentKind:
    """The kind at this speed, with hysteresis relative to ``current``.

    >>> classify(2.4, SegmentKind.WALK), classify(2.5, SegmentKind.WALK)
    (<SegmentKind.WALK: 'walk'>, <SegmentKind.RUN: 'run'>)
    >>> classify(2.2, SegmentKind.RUN), classify(2.1, SegmentKind.RUN)
    (<SegmentKind.RUN: 'run'>, <SegmentKind.WALK: 'walk'>)
    """
    stand_walk, walk_run, run_sprint = _THRESHOLDS[current]
    if speed_mps >= run_sprint:
        return SegmentKind.SPRINT
    if speed_mps >= walk_run:
        return SegmentKind.RUN
    if speed_mps >= stand_walk:
        return SegmentKind.WALK
    return SegmentKind.STAND


@dataclasses.dataclass(slots=True)
class _Sums:
    """Running sums of one (possibly pending) stretch."""

    hr_w: float = 0.0
    hr_sum: float = 0.0
    hr_max: float | None = None
    cad_w: float = 0.0
    cad_sum: float = 0.0
    step_w: float = 0.0
    step_sum: float = 0.0

    def add(self, other: _Sums) -> None:
        self.hr_w += other.hr_w
        self.hr_sum += other.hr_sum
        self.cad_w += other.cad_w
        self.cad_sum += other.cad_sum
        self.step_w += other.step_w
        self.step_sum += other.step_sum
        if other.hr_max is not None:
            self.hr_max = other.hr_max if self.hr_max is None else max(self.hr_max, other.hr_max)

    def sub(self, other: _Sums) -> None:
        """Remove an interval's sums (its max cannot be removed; it stays)."""
        self.hr_w -= other.hr_w
        self.hr_sum -= other.hr_sum
        self.cad_w -= other.cad_w
        self.cad_sum -= other.cad_sum
        self.step_w -= other.step_w
        self.step_sum -= other.step_sum


# The per-reading records below are NamedTuples: immutable like a frozen dataclass, and
# several times cheaper to create (one of each per footpod reading; issue #4 throughput).
class _Point(NamedTuple):
    time_mono_s: float
    time_utc: datetime
    distance_m: float


class _Recent(NamedTuple):
    """A recent reading and the sums of the interval that ended at it."""

    point: _Point
    speed_mps: float
    hr_bpm: float | None
    contribution: _Sums


class _Last(NamedTuple):
    """The previous reading: its values weight the interval up to the next one."""

    time_mono_s: float
    distance_m: float
    hr_bpm: float | None
    cadence_spm: float | None
    step_length_m: float | None


_tuple_new: Final = tuple.__new__


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class SegmentTracker:
    """Splits one athlete's session into stand/walk/run/sprint segments.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> seg = SegmentTracker("ana")
    >>> out = []
    >>> for i in range(40):  # 10 s standing, then walking at 1.5 m/s
    ...     t = i / 2
    ...     v = 0.0 if t < 10 else 1.5
    ...     d = max(0.0, t - 10) * 1.5
    ...     out += seg.update(t, t0 + timedelta(seconds=t), speed_mps=v, distance_m=d,
    ...                       heart_rate_bpm=90.0, cadence_spm=110.0 if v else 0.0,
    ...                       step_length_m=0.82 if v else None)
    >>> [(s.kind.value, s.start_mono_s, s.end_mono_s) for s in out], seg.current
    ([('stand', 0.0, 9.5)], <SegmentKind.WALK: 'walk'>)
    >>> last = seg.finish(20.0, t0 + timedelta(seconds=20))[0]
    >>> last.kind.value, last.start_mono_s, last.summary.duration_s, last.summary.distance_m
    ('walk', 9.5, 10.5, 14.25)
    """

    def __init__(self, athlete: str) -> None:
        self._athlete = athlete
        self._reset()

    def _reset(self) -> None:
        self._current: SegmentKind | None = None
        self._start: _Point | None = None
        self._sums = _Sums()
        self._departure: _Point | None = None
        self._pending = _Sums()
        self._candidate: SegmentKind | None = None
        self._candidate_since_s = 0.0
        self._last: _Last | None = None
        self._in_pending = False  # whether the last reading went to the pending sums
        self._recent: deque[_Recent] = deque(maxlen=_HISTORY)

    @property
    def current(self) -> SegmentKind | None:
        """The confirmed kind of the open segment; None before the first reading."""
        return self._current

    def update(
        self,
        time_mono_s: float,
        time_utc: datetime,
        *,
        speed_mps: float,
        distance_m: float,
        heart_rate_bpm: float | None,
        cadence_spm: float | None,
        step_length_m: float | None,
    ) -> list[Segment]:
        """Take one reading (event time, session distance); return segments closed by it."""
        if not (isfinite(time_mono_s) and isfinite(distance_m)):
            return []
        last = self._last
        if last is not None:
            if time_mono_s < last.time_mono_s:
                return []  # out of order
            if last.distance_m > distance_m:  # max(distance_m, last.distance_m)
                distance_m = last.distance_m
        speed = speed_mps if isfinite(speed_mps) and speed_mps > 0.0 else 0.0
        # _Point(...), _Recent(...), _Last(...): what their generated __new__ does, without
        # its Python frame (three per footpod reading)
        point = _tuple_new(_Point, (time_mono_s, time_utc, distance_m))
        contribution = self._weigh_interval(time_mono_s)
        hr = heart_rate_bpm if heart_rate_bpm is not None and isfinite(heart_rate_bpm) else None
        self._recent.append(_tuple_new(_Recent, (point, speed, hr, contribution)))
        cadence = cadence_spm if cadence_spm is not None and isfinite(cadence_spm) else None
        step = step_length_m if step_length_m is not None and isfinite(step_length_m) else None
        self._last = _tuple_new(_Last, (time_mono_s, distance_m, hr, cadence, step))
        current = self._current
        if current is None:
            self._current = classify(speed, None)
            self._start = point
            self._sums = _Sums()
            self._note_hr_max(self._sums)
            return []

        candidate = self._candidate
        kind = classify(speed, candidate if candidate is not None else current)
        closed: list[Segment] = []
        if kind == current:
            if self._departure is not None:  # back before anything was confirmed
                self._sums.add(self._pending)
                self._departure = None
                self._candidate = None
            self._in_pending = False
            if hr is not None:  # _note_hr_max(self._sums), inline: the hot path
                sums = self._sums
                hr_max = sums.hr_max
                sums.hr_max = hr if hr_max is None else max(hr_max, hr)
            return closed
        if self._departure is None:
            self._pending = _Sums()
            self._departure = self._backdate(kind)
            self._candidate = kind
            self._candidate_since_s = time_mono_s
        elif kind != self._candidate:
            self._candidate = kind
            self._candidate_since_s = time_mono_s
        self._in_pending = True
        self._note_hr_max(self._pending)
        if time_mono_s - self._candidate_since_s >= MIN_DURATION_S[kind]:
            closed.append(self._close(self._departure))
            self._current = kind
            self._start = self._departure
            self._sums = self._pending
            self._pending = _Sums()
            self._departure = None
            self._candidate = None
            self._in_pending = False
        return closed

    def finish(self, time_mono_s: float, time_utc: datetime) -> list[Segment]:
        """Close the open segment at this event time (pending samples join it); then reset."""
        if self._current is None or self._last is None:
            self._reset()
            return []
        if math.isfinite(time_mono_s) and time_mono_s >= self._last.time_mono_s:
            self._weigh_interval(time_mono_s)
            end = _Point(time_mono_s, time_utc, self._last.distance_m)
        else:
            end = _Point(self._last.time_mono_s, time_utc, self._last.distance_m)
        if self._departure is not None:
            self._sums.add(self._pending)
        segment = self._close(end)
        self._reset()
        return [segment]

    def _note_hr_max(self, sums: _Sums) -> None:
        assert self._last is not None
        hr = self._last.hr_bpm
        if hr is not None:
            sums.hr_max = hr if sums.hr_max is None else max(sums.hr_max, hr)

    def _backdate(self, kind: SegmentKind) -> _Point:
        """Where the change toward ``kind`` began; moves the sums since then to pending."""
        assert self._current is not None
        assert self._start is not None
        up = _ORDER.index(kind) > _ORDER.index(self._current)
        recent = list(self._recent)
        dep = len(recent) - 1
        j = dep
        while j > 0:
            earlier, later = recent[j - 1], recent[j]
            if recent[dep].point.time_mono_s - earlier.point.time_mono_s > BACKDATE_MAX_S:
                break
            if earlier.point.time_mono_s <= self._start.time_mono_s:
                break
            step = later.speed_mps - earlier.speed_mps
            if (step if up else -step) < BACKDATE_STEP_MPS:
                break
            j -= 1
        for entry in recent[j + 1 : dep + 1]:  # intervals after the boundary change sides
            self._sums.sub(entry.contribution)
            self._pending.add(entry.contribution)
        for entry in recent[j:dep]:
            if entry.hr_bpm is not None:
                m = self._pending.hr_max
                self._pending.hr_max = entry.hr_bpm if m is None else max(m, entry.hr_bpm)
        return recent[j].point

    def _weigh_interval(self, time_mono_s: float) -> _Sums:
        """Add the interval from the previous reading to now, with the previous values; return
        what it added (the interval's own sums)."""
        sums = _Sums()
        last = self._last
        if last is None:
            return sums
        w = min(time_mono_s - last.time_mono_s, MAX_WEIGHT_S)
        if w <= 0.0:
            return sums
        # The interval's sums start at 0, so each is its term alone; added straight to the
        # open stretch's sums (the same floating-point operations as ``_Sums.add``).
        target = self._pending if self._in_pending else self._sums
        hr, cadence, step = last.hr_bpm, last.cadence_spm, last.step_length_m
        if hr is not None:
            sums.hr_w = w
            sums.hr_sum = x = w * hr
            target.hr_w += w
            target.hr_sum += x
        if cadence is not None and cadence > 0.0:
            sums.cad_w = w
            sums.cad_sum = x = w * cadence
            target.cad_w += w
            target.cad_sum += x
            if step is not None and step > 0.0:
                sums.step_w = x = w * cadence
                sums.step_sum = y = w * cadence * step
                target.step_w += x
                target.step_sum += y
        return sums

    def _close(self, end: _Point) -> Segment:
        assert self._current is not None
        assert self._start is not None
        start, s = self._start, self._sums
        duration = max(0.0, end.time_mono_s - start.time_mono_s)
        distance = max(0.0, end.distance_m - start.distance_m)
        speed = distance / duration if duration > 0.0 else None
        moving = speed is not None and speed >= _STANDING_MPS
        return Segment(
            athlete=self._athlete,
            kind=self._current,
            start_utc=start.time_utc,
            end_utc=end.time_utc,
            start_mono_s=start.time_mono_s,
            end_mono_s=end.time_mono_s,
            start_m=start.distance_m,
            end_m=end.distance_m,
            summary=SegmentSummary(
                duration_s=duration,
                distance_m=distance,
                avg_speed_mps=speed,
                avg_pace_s_per_km=1000.0 * duration / distance if moving else None,
                avg_hr_bpm=s.hr_sum / s.hr_w if s.hr_w > 1e-9 else None,
                max_hr_bpm=s.hr_max,
                avg_cadence_spm=s.cad_sum / s.cad_w if s.cad_w > 1e-9 else None,
                avg_step_length_m=s.step_sum / s.step_w if s.step_w > 1e-9 else None,
            ),
        )
