"""Gait of one footpod: cadence in steps/min, step and stride length, speed, pace, distance.

Definitions (DESIGN.md "Metrics", "Protocol facts", RSC Measurement 0x2A53):

* A **step** is foot strike to the next foot strike (either foot). What the runner and most
  watches call "stride" is this one step. A **stride** is two steps (foot strike to the next
  strike of the *same* foot), so ``stride_length_m == 2 × step_length_m`` always.
* ``cadence_spm`` is steps per minute (both feet), whatever the footpod counts.
* ``speed ≈ cadence × length / 60`` for a matching pair (steps/min with step length, or
  strides/min with stride length: both give the same speed).

Convention detection (per sensor)
---------------------------------
The RSC cadence field is "1/min" and devices differ: some send steps/min (~150-200 running,
~110-130 walking), others strides/min of one foot (half that). The "stride length" field holds
either one step or a full stride. Each *moving* sample (speed ≥ 0.5 m/s, cadence > 0) may vote:

1. **Ratio vote** (only when a length is sent): ``k = speed·60 / (cadence·length)``.
   ``k ≈ 1`` (0.8-1.25): the pair matches (steps+step or strides+stride), which says nothing
   about steps vs strides. ``k ≈ 0.5`` (0.4-0.625): cadence in steps with a full-stride length
   (the only physical way to get 0.5), which is also a vote for *steps*. ``k ≈ 2`` (1.6-2.5):
   cadence in strides with a one-step length, a vote for *strides*. Other k: no vote.
2. **Range vote** (always): under each hypothesis the cadence in steps/min is ``s = c`` or
   ``2c`` and the implied step length ``L = speed·60/s``. A hypothesis is plausible when
   70 ≤ s ≤ 240 steps/min and ``0.30 + 0.15·v ≤ L ≤ 0.55 + 0.28·v`` metres at speed ``v`` m/s
   (walking at 1.67 m/s: 0.55-1.02 m; running at 3 m/s: 0.75-1.39 m; sprinting at 6 m/s:
   1.2-2.23 m). The band is narrower than a factor of two at every speed, so the true and the
   doubled/halved hypotheses are never both plausible. Exactly one plausible hypothesis votes;
   none or both (first steps from standstill, odd samples): no vote.

The cadence unit is locked once 10 votes are in and one side has ≥ 80 % of them, or at
20 votes by simple majority (ties go to steps, the more common convention). The meaning of the
length field (step or stride) is locked the same way from the ratio votes: a matching pair
means the length is in the cadence's unit, ``k ≈ 0.5`` means a stride, ``k ≈ 2`` a step.
Until locked, the current leader is used (steps, and a matching length, with no evidence) and
``GaitSample.cadence_unit`` is None. A configured override (``AthleteSettings.cadence_unit``)
wins over detection for the cadence; the length field is still classified by the ratio. With
no length field, the ranges alone decide and step length is derived as ``speed·60/cadence``.

Distance
--------
``distance_m`` is the session distance from the tracker's first reading. With the sensor's
``total_distance_m`` (uint32, 1/10 m) each interval adds the difference of totals; a total
lower than the previous one is either the counter wrapping (previous total within 1 km of the
wrap value 429,496,729.5 m: add across the wrap) or a sensor reset (keep accumulating from the
new origin: the new total is what was covered since the reset). A difference that is not
physically possible (negative, or more than 15 m/s × Δt + 10 m) is not trusted: that interval
is integrated from speed instead. Without a total, distance is the trapezoid integral of speed
over event time. A link gap (no reading for > 5 s) is integrated with the mean of the speeds at
both ends (which the trapezoid is), unless the sensor's total covers it. Speeds that are not
finite, negative or above 15 m/s are treated as 0 (garbage).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final, Literal

from ingest.records import StrideReading
from processing.records import slot_setters

__all__ = ["CadenceUnit", "GaitSample", "GaitTracker", "LengthUnit"]

CadenceUnit = Literal["steps", "strides"]
LengthUnit = Literal["step", "stride"]

MAX_SPEED_MPS: Final = 15.0
"""Above this a speed is garbage (the world record 100 m is ~12.4 m/s at its peak)."""
STANDING_MPS: Final = 0.3
"""Below this speed there is no pace (the athlete stands)."""
MOVING_MPS: Final = 0.5
"""Samples at or above this speed (with cadence > 0) take part in the convention vote."""
LINK_GAP_S: Final = 5.0
"""A reading interval longer than this is a link gap (documented; handled by the trapezoid)."""
WRAP_M: Final = 0x1_0000_0000 / 10.0
"""The RSC total distance (uint32, 1/10 m) wraps here: 429,496,729.6 m (max value + 0.1 m)."""
_WRAP_MARGIN_M: Final = 1000.0
_DISTANCE_SLACK_M: Final = 10.0
_MIN_VOTES: Final = 10
_MAJORITY_SHARE: Final = 0.8
_MAX_VOTES: Final = 20
_STEPS_MIN_SPM: Final = 70.0
_STEPS_MAX_SPM: Final = 240.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GaitSample:
    """Gait at one footpod reading. Lengths and cadence are always in the named unit."""

    time_mono_s: float
    """Event time of the reading (monotonic clock), seconds."""
    cadence_spm: float
    """Cadence, steps per minute (both feet)."""
    step_length_m: float | None
    """One step, foot strike to the next foot strike (the runner's "stride"), metres; None when
    standing or unknown."""
    stride_length_m: float | None
    """A full stride (two steps), metres; ``2 × step_length_m``."""
    speed_mps: float
    """Speed, m/s (0 for garbage values)."""
    pace_s_per_km: float | None
    """Pace, seconds per km; None below 0.3 m/s (standing)."""
    distance_m: float
    """Distance since the tracker's first reading, metres."""
    running: bool | None
    """The sensor's walking/running bit; None when the sensor does not support it."""
    cadence_unit: CadenceUnit | None
    """The footpod's cadence convention (override or locked detection); None until decided."""


_GAIT_FIELDS: Final = (
    "time_mono_s",
    "cadence_spm",
    "step_length_m",
    "stride_length_m",
    "speed_mps",
    "pace_s_per_km",
    "distance_m",
    "running",
    "cadence_unit",
)
assert tuple(f.name for f in dataclasses.fields(GaitSample)) == _GAIT_FIELDS
_new = object.__new__
(
    _set_time,
    _set_cadence,
    _set_step,
    _set_stride,
    _set_speed,
    _set_pace,
    _set_distance,
    _set_running,
    _set_unit,
) = slot_setters(GaitSample, *_GAIT_FIELDS)


def _gait_sample(
    time_mono_s: float,
    cadence_spm: float,
    step_length_m: float | None,
    stride_length_m: float | None,
    speed_mps: float,
    pace_s_per_km: float | None,
    distance_m: float,
    running: bool | None,
    cadence_unit: CadenceUnit | None,
) -> GaitSample:
    """``GaitSample(...)`` with these fields, without the dataclass ``__init__`` (one per
    footpod reading; see :func:`processing.records.slot_setters`)."""
    g = _new(GaitSample)
    _set_time(g, time_mono_s)
    _set_cadence(g, cadence_spm)
    _set_step(g, step_length_m)
    _set_stride(g, stride_length_m)
    _set_speed(g, speed_mps)
    _set_pace(g, pace_s_per_km)
    _set_distance(g, distance_m)
    _set_running(g, running)
    _set_unit(g, cadence_unit)
    return g


class _Vote:
    """A two-way vote that locks (see the module docstring for the rule)."""

    __slots__ = ("a", "b", "locked")

    def __init__(self) -> None:
        self.a = 0
        self.b = 0
        self.locked: bool | None = None  # True: a won, False: b won

    def add(self, for_a: bool) -> None:
        if self.locked is not None:
            return
        if for_a:
            self.a += 1
        else:
            self.b += 1
        n = self.a + self.b
        clear = n >= _MIN_VOTES and max(self.a, self.b) >= _MAJORITY_SHARE * n
        if clear or n >= _MAX_VOTES:
            self.locked = self.a >= self.b

    def leader(self) -> bool:
        """a (True) or b (False): the locked result, else the leader; a on a tie."""
        return self.locked if self.locked is not None else self.a >= self.b


def _plausible(steps_per_min: float, speed_mps: float) -> bool:
    """Is this cadence (steps/min) plausible for a human moving at this speed?"""
    if not _STEPS_MIN_SPM <= steps_per_min <= _STEPS_MAX_SPM:
        return False
    step_m = speed_mps * 60.0 / steps_per_min
    return 0.30 + 0.15 * speed_mps <= step_m <= 0.55 + 0.28 * speed_mps


class GaitTracker:
    """Per-footpod gait: detects the cadence/length convention and tracks distance.

    Args:
        cadence_override: the configured cadence unit of this sensor; wins over detection.

    >>> from datetime import UTC, datetime
    >>> def r(t, speed, cadence, length, total):
    ...     return StrideReading(athlete="a", sensor="pod", time_utc=datetime.now(UTC),
    ...         time_mono_s=t, speed_mps=speed, cadence_per_min=cadence, stride_length_m=length,
    ...         total_distance_m=total, running=True, raw=b"")
    >>> g = GaitTracker()  # a footpod sending strides/min and stride length
    >>> samples = [g.update(r(t / 2, 3.0, 83, 2.17, 100.0 + 1.5 * t)) for t in range(12)]
    >>> s = samples[-1]
    >>> s.cadence_unit, s.cadence_spm, s.step_length_m, s.stride_length_m, s.distance_m
    ('strides', 166.0, 1.085, 2.17, 16.5)
    """

    def __init__(self, cadence_override: CadenceUnit | None = None) -> None:
        self._override: CadenceUnit | None = cadence_override
        self._unit_vote = _Vote()  # a: steps, b: strides
        self._match_vote = _Vote()  # a: length is in the cadence's unit, b: mixed pair
        self._time_s: float | None = None
        self._speed_mps = 0.0
        self._total_m: float | None = None
        self._distance_m = 0.0

    @property
    def cadence_unit(self) -> CadenceUnit | None:
        """The cadence convention: the override, or the locked detection; None until then."""
        if self._override is not None:
            return self._override
        if self._unit_vote.locked is None:
            return None
        return "steps" if self._unit_vote.locked else "strides"

    @property
    def length_unit(self) -> LengthUnit | None:
        """What the sensor's "stride length" field holds, once locked; None until then."""
        if self._match_vote.locked is None or self.cadence_unit is None:
            return None
        return self._length_unit(self.cadence_unit, self._match_vote.locked)

    @property
    def distance_m(self) -> float:
        """Session distance so far, metres."""
        return self._distance_m

    @staticmethod
    def _length_unit(unit: CadenceUnit, matching: bool) -> LengthUnit:
        if matching:
            return "step" if unit == "steps" else "stride"
        return "stride" if unit == "steps" else "step"

    def update(self, r: StrideReading) -> GaitSample:
        """Take one RSC reading; return the gait at its event time."""
        speed = r.speed_mps
        if not (math.isfinite(speed) and 0.0 <= speed <= MAX_SPEED_MPS):
            speed = 0.0
        cadence = float(r.cadence_per_min)
        if not (math.isfinite(cadence) and cadence > 0.0):
            cadence = 0.0
        length = r.stride_length_m
        if length is not None and not (math.isfinite(length) and length > 0.0):
            length = None

        self._vote(speed, cadence, length)
        self._advance_distance(r.time_mono_s, speed, r.total_distance_m)

        unit = self._override or ("steps" if self._unit_vote.leader() else "strides")
        cadence_spm = cadence if unit == "steps" else 2.0 * cadence
        step_m: float | None = None
        moving = speed >= STANDING_MPS
        if moving:
            if length is not None:
                field_unit = self._length_unit(unit, self._match_vote.leader())
                step_m = length if field_unit == "step" else length / 2.0
            elif cadence_spm > 0.0:
                step_m = speed * 60.0 / cadence_spm
        return _gait_sample(
            r.time_mono_s,
            cadence_spm,
            step_m,
            None if step_m is None else 2.0 * step_m,
            speed,
            1000.0 / speed if moving else None,
            self._distance_m,
            r.running,
            self.cadence_unit,
        )

    def _vote(self, speed: float, cadence: float, length: float | None) -> None:
        if speed < MOVING_MPS or cadence <= 0.0:
            return
        # A locked vote ignores further votes: once both are locked there is nothing to test.
        open_votes = self._unit_vote.locked is None or self._match_vote.locked is None
        if length is not None and open_votes:
            k = speed * 60.0 / (cadence * length)
            if 0.8 <= k <= 1.25:
                self._match_vote.add(True)
            elif 0.4 <= k <= 0.625:
                self._match_vote.add(False)
                self._unit_vote.add(True)  # steps/min with a full-stride length
            elif 1.6 <= k <= 2.5:
                self._match_vote.add(False)
                self._unit_vote.add(False)  # strides/min with a one-step length
        if self._unit_vote.locked is None:
            as_steps = _plausible(cadence, speed)
            as_strides = _plausible(2.0 * cadence, speed)
            if as_steps != as_strides:
                self._unit_vote.add(as_steps)

    def _advance_distance(self, t: float, speed: float, total: float | None) -> None:
        if total is not None and not (math.isfinite(total) and total >= 0.0):
            total = None
        if not math.isfinite(t):
            return
        prev_t, prev_total = self._time_s, self._total_m
        if prev_t is not None and t < prev_t:
            return  # out of order: no interval; keep the latest state
        self._total_m = total
        self._time_s = t
        prev_speed, self._speed_mps = self._speed_mps, speed
        if prev_t is None:
            return
        dt = t - prev_t
        delta: float | None = None
        if total is not None and prev_total is not None:
            if total >= prev_total:
                delta = total - prev_total
            elif prev_total >= WRAP_M - _WRAP_MARGIN_M:
                delta = total + WRAP_M - prev_total  # uint32 wrap
            else:
                delta = total  # sensor reset: distance since the new origin
            if delta > MAX_SPEED_MPS * dt + _DISTANCE_SLACK_M:
                delta = None  # impossible jump: not trusted
        if delta is None:
            # Trapezoid; across a link gap this is the mean of the speeds at both ends.
            delta = 0.5 * (prev_speed + speed) * dt
        self._distance_m += delta
