"""Accelerations from standstill: time to speed, peak cadence, peak step length.

What the runner practises in start drills (DESIGN.md "Who it is for": step length above 1.70 m
with cadence stuck near 210 steps/min at about 6 m/s). Thresholds:

* **Standstill**: speed < 0.5 m/s for ≥ 1 s (first to last still reading).
* **Start**: the first reading at ≥ 0.5 m/s after a standstill opens a candidate. Its start
  time is where the speed line through the first two moving readings extrapolates to 0 m/s,
  clamped between the last still reading and the first moving one (at 2 Hz the last still
  reading can be up to 0.5 s before the athlete moved); ``start_m`` is the distance at the last
  still reading.
* **End**: the first of: speed below 50 % of the peak so far; a run-out of 3 s without the
  speed rising by 1 % (the athlete holds speed); 20 s after the start; or a link gap > 5 s
  (ends at the reading before the gap).
* **Counted** only if the peak reaches 4 m/s (14.4 km/h): a walk-off is no acceleration.

Fields: ``time_to_90pct_s`` and ``distance_to_90pct_m`` are measured from the start to the
first time speed reaches 90 % of the peak, interpolated linearly between readings (as the
virtual athlete's ground truth). ``steps`` integrates cadence (trapezoid) from the start to the
peak speed. Peaks of cadence and step length are over the whole acceleration (start to end);
``peak_stride_length_m`` is ``2 × peak_step_length_m`` (a stride is two steps).

State is bounded: the readings of the current acceleration (at most 20 s) in a ring buffer.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Final

__all__ = ["Acceleration", "AccelerationDetector"]

STILL_MPS: Final = 0.5
"""Below this speed the athlete stands, m/s."""
STILL_MIN_S: Final = 1.0
"""A standstill must last this long before a start counts, seconds."""
MIN_PEAK_MPS: Final = 4.0
"""An acceleration must reach this peak speed, m/s."""
END_FRACTION: Final = 0.5
"""It ends when speed falls below this fraction of the peak."""
RUN_OUT_S: Final = 3.0
"""... or when speed has not risen by RISE_FRACTION for this long, seconds."""
RISE_FRACTION: Final = 0.01
MAX_DURATION_S: Final = 20.0
"""... or this long after the start, seconds."""
MAX_GAP_S: Final = 5.0
"""... or at a link gap longer than this, seconds."""
_BUFFER: Final = 512


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Acceleration:
    """One acceleration from standstill (see the module docstring for definitions)."""

    start_s: float
    """Event time (monotonic) of the start, seconds."""
    start_m: float
    """Session distance at the start, metres."""
    time_to_90pct_s: float
    """From the start to 90 % of the peak speed, seconds."""
    distance_to_90pct_m: float
    """Distance covered by then, metres."""
    peak_speed_mps: float
    """Highest speed, m/s."""
    peak_cadence_spm: float | None
    """Highest cadence, steps/min; None without cadence."""
    peak_step_length_m: float | None
    """Longest step (foot strike to foot strike), metres; None without step length."""
    peak_stride_length_m: float | None
    """Longest stride (two steps), metres: ``2 × peak_step_length_m``."""
    steps: float
    """Steps from the start to the peak speed (integrated cadence)."""
    end_s: float
    """Event time (monotonic) at which the acceleration was over, seconds."""


@dataclasses.dataclass(slots=True)
class _Active:
    start_s: float
    start_m: float
    samples: deque[tuple[float, float, float]]  # (t, d, v) from the start
    last_cadence: float
    steps: float = 0.0
    steps_at_peak: float = 0.0
    peak_mps: float = 0.0
    rise_ref_mps: float = 0.0
    rise_time_s: float = 0.0
    peak_cadence: float | None = None
    peak_step: float | None = None
    start_fixed: bool = False


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class AccelerationDetector:
    """Finds accelerations from standstill in one athlete's gait stream.

    >>> det = AccelerationDetector()
    >>> found = []
    >>> for i in range(60):  # 3 s standing, then v = 6 (1 - exp(-t/1.3)) for 5 s, then 2 m/s
    ...     t = i / 4
    ...     run = max(0.0, t - 3.0)
    ...     v = 6 * (1 - math.exp(-run / 1.3)) if t <= 8 else 2.0
    ...     d = 6 * (run - 1.3 * (1 - math.exp(-run / 1.3)))
    ...     a = det.update(t, d, v, 200.0 if v else 0.0, v * 60 / 200 if v else None)
    ...     found += [a] if a else []
    >>> a = found[0]
    >>> a.start_s, round(a.time_to_90pct_s, 1), round(a.peak_speed_mps, 2), a.peak_cadence_spm
    (3.0, 2.8, 5.87, 200.0)
    """

    def __init__(self) -> None:
        self._still_since: float | None = None
        self._last_still: tuple[float, float, float] | None = None  # (t, d, v)
        self._last_t: float | None = None
        self._active: _Active | None = None

    def update(
        self,
        time_mono_s: float,
        distance_m: float,
        speed_mps: float,
        cadence_spm: float | None,
        step_length_m: float | None,
    ) -> Acceleration | None:
        """Take one gait reading; return an acceleration that this reading finished."""
        if not (math.isfinite(time_mono_s) and math.isfinite(distance_m)):
            return None
        last_t = self._last_t
        if last_t is not None and time_mono_s < last_t:
            return None  # out of order
        v = speed_mps if math.isfinite(speed_mps) and speed_mps > 0.0 else 0.0
        gap = last_t is not None and time_mono_s - last_t > MAX_GAP_S
        self._last_t = time_mono_s
        act = self._active
        moving = v >= STILL_MPS
        if act is None and moving and self._last_still is None and self._still_since is None:
            return None  # moving, no standstill before it: nothing to do (as _track_still)
        cadence = _finite(cadence_spm)
        step = _finite(step_length_m)

        result: Acceleration | None = None
        if act is not None:
            if gap:
                result = self._end(act.samples[-1][0])
            else:
                result = self._extend(act, time_mono_s, distance_m, v, cadence, step)
                if self._active is not None:
                    return None  # still accelerating
        if gap:
            self._still_since = None
            self._last_still = None
        self._track_still(time_mono_s, distance_m, v, cadence, step)
        return result

    def finish(self) -> Acceleration | None:
        """End an open acceleration at the last reading (end of the session)."""
        if self._active is None:
            return None
        return self._end(self._active.samples[-1][0])

    def _track_still(
        self, t: float, d: float, v: float, cadence: float | None, step: float | None
    ) -> None:
        if v < STILL_MPS:
            if self._still_since is None:
                self._still_since = t
            self._last_still = (t, d, v)
            return
        still = self._last_still
        since = self._still_since
        self._still_since = None
        self._last_still = None
        if still is None or since is None or still[0] - since < STILL_MIN_S:
            return
        act = _Active(
            start_s=still[0],
            start_m=still[1],
            samples=deque([still], maxlen=_BUFFER),
            last_cadence=0.0,
        )
        self._active = act
        self._extend(act, t, d, v, cadence, step)

    def _extend(
        self,
        act: _Active,
        t: float,
        d: float,
        v: float,
        cadence: float | None,
        step: float | None,
    ) -> Acceleration | None:
        prev_t, _, prev_v = act.samples[-1]
        if not act.start_fixed and len(act.samples) == 2:
            # Second moving reading: extrapolate the speed line through both to 0 m/s.
            t1, v1 = prev_t, prev_v
            if v > v1 and t > t1:
                t0 = t1 - v1 * (t - t1) / (v - v1)
                act.start_s = min(max(t0, act.samples[0][0]), t1)
            act.samples[0] = (act.start_s, act.samples[0][1], 0.0)
            act.start_fixed = True
            # Re-integrate the first interval from the corrected start.
            act.steps = 0.5 * act.last_cadence * (t1 - act.start_s) / 60.0
            if act.peak_mps == v1:
                act.steps_at_peak = act.steps
        c = cadence if cadence is not None and cadence > 0.0 else 0.0
        base_t = act.start_s if len(act.samples) == 1 else prev_t
        base_c = 0.0 if len(act.samples) == 1 else act.last_cadence
        act.steps += 0.5 * (base_c + c) * max(0.0, t - base_t) / 60.0
        act.last_cadence = c
        act.samples.append((t, max(d, act.samples[-1][1]), v))
        if cadence is not None and cadence > 0.0:
            peak_c = act.peak_cadence
            act.peak_cadence = cadence if peak_c is None else max(peak_c, cadence)
        if step is not None and step > 0.0:
            act.peak_step = step if act.peak_step is None else max(act.peak_step, step)
        if v > act.peak_mps:
            act.peak_mps = v
            act.steps_at_peak = act.steps
        if v >= act.rise_ref_mps * (1.0 + RISE_FRACTION):
            act.rise_ref_mps = v
            act.rise_time_s = t
        if (
            v < END_FRACTION * act.peak_mps
            or t - act.rise_time_s >= RUN_OUT_S
            or t - act.start_s >= MAX_DURATION_S
        ):
            return self._end(t)
        return None

    def _end(self, end_s: float) -> Acceleration | None:
        act = self._active
        self._active = None
        if act is None or act.peak_mps < MIN_PEAK_MPS:
            return None
        target = 0.9 * act.peak_mps
        t90, d90 = act.start_s, act.start_m
        prev: tuple[float, float, float] | None = None
        for sample in act.samples:
            if sample[2] >= target:
                if prev is None:
                    t90, d90 = sample[0], sample[1]
                else:
                    f = (target - prev[2]) / (sample[2] - prev[2])
                    t90 = prev[0] + f * (sample[0] - prev[0])
                    d90 = prev[1] + f * (sample[1] - prev[1])
                break
            prev = sample
        return Acceleration(
            start_s=act.start_s,
            start_m=act.start_m,
            time_to_90pct_s=t90 - act.start_s,
            distance_to_90pct_m=d90 - act.start_m,
            peak_speed_mps=act.peak_mps,
            peak_cadence_spm=act.peak_cadence,
            peak_step_length_m=act.peak_step,
            peak_stride_length_m=None if act.peak_step is None else 2.0 * act.peak_step,
            steps=act.steps_at_peak,
            end_s=end_s,
        )
