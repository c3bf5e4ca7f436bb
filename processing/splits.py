"""Per-kilometre splits of a session (DESIGN.md "Metrics": per-km splits).

Split ``n`` (1-based) runs from the session distance ``(n − 1) km`` to ``n km``, measured from the
first reading's distance. The crossing time of each kilometre is interpolated linearly in
distance between the two readings around it, so split times do not depend on the reading rate.
``pace_s_per_km`` is duration per km of the split's distance (for a full split, its duration).

Averages are time-weighted: each interval between two readings carries the mean of the values
at its ends (only the end that is known, if one is None), split proportionally at a km
crossing, with the weight of one interval capped at 5 s so a link gap does not dominate.
Cadence averages over moving time only (cadence > 0), as watches do by default.

An interval that crosses several kilometres (only after a long link gap) yields one split per
kilometre: the first is returned by that ``update``, the others by the following calls (or by
:meth:`SplitTracker.flush`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from math import isfinite
from typing import Final

__all__ = ["Split", "SplitTracker"]

SPLIT_M: Final = 1000.0
"""Split length, metres."""
MIN_PACE_DISTANCE_M: Final = 1.0
"""A (partial) split shorter than this has no pace (it would be noise or overflow)."""
MAX_WEIGHT_S: Final = 5.0
"""Longest weight one interval gets in the averages, seconds."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """One kilometre (or the last, partial one)."""

    index: int
    """1-based kilometre number."""
    start_s: float
    """Event time (monotonic, s) at which the split began."""
    end_s: float
    """Event time (monotonic, s) at which it ended (interpolated km crossing)."""
    duration_s: float
    """``end_s − start_s``, seconds."""
    distance_m: float
    """1000 m, or less for the last partial split."""
    pace_s_per_km: float | None
    """Seconds per km; None for a (partial) split shorter than 1 m."""
    avg_hr_bpm: float | None
    """Time-weighted heart rate, bpm; None without HR."""
    avg_cadence_spm: float | None
    """Time-weighted cadence over moving time, steps/min; None without cadence."""


def _mean(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return 0.5 * (a + b)


def _moving(cadence_spm: float | None) -> float | None:
    return cadence_spm if cadence_spm is not None and cadence_spm > 0.0 else None


class SplitTracker:
    """Emits a :class:`Split` each time the session distance passes a whole kilometre.

    >>> sp = SplitTracker()
    >>> out = [sp.update(t, 4.0 * t, 150.0, 170.0) for t in range(0, 301, 2)]  # 4 m/s
    >>> [(s.index, s.end_s, s.pace_s_per_km) for s in out if s]
    [(1, 250.0, 250.0)]
    >>> last = sp.finish()
    >>> last.index, last.distance_m, last.pace_s_per_km
    (2, 200.0, 250.0)
    """

    def __init__(self) -> None:
        self._origin_m: float | None = None
        self._last: tuple[float, float, float | None, float | None] | None = None
        self._index = 1
        self._start_s = 0.0
        self._hr = (0.0, 0.0)  # (weight s, sum)
        self._cad = (0.0, 0.0)
        self._queue: deque[Split] = deque()

    def update(
        self,
        time_mono_s: float,
        distance_m: float,
        heart_rate_bpm: float | None,
        cadence_spm: float | None,
    ) -> Split | None:
        """Take one reading (event time s, session distance m); return a finished split."""
        if isfinite(time_mono_s) and isfinite(distance_m):
            self._advance(
                time_mono_s,
                distance_m,
                # None unless finite
                heart_rate_bpm if heart_rate_bpm is not None and isfinite(heart_rate_bpm) else None,
                cadence_spm if cadence_spm is not None and isfinite(cadence_spm) else None,
            )
        return self._queue.popleft() if self._queue else None

    def flush(self) -> list[Split]:
        """Finished splits not yet returned (only after an interval crossing several km)."""
        out = list(self._queue)
        self._queue.clear()
        return out

    def finish(self) -> Split | None:
        """The last, partial split (None if nothing was covered since the last km)."""
        if self._last is None or self._origin_m is None:
            return None
        t, d = self._last[0], self._last[1]
        covered = d - self._origin_m - (self._index - 1) * SPLIT_M
        if covered <= 0.0:
            return None
        return self._make(t, covered)

    def _advance(self, t: float, d: float, hr: float | None, cad: float | None) -> None:
        if self._last is None or self._origin_m is None:
            self._origin_m = d
            self._start_s = t
            self._last = (t, d, hr, cad)
            return
        t0, d0, hr0, cad0 = self._last
        if t < t0:
            return  # out of order
        if d0 > d:  # max(d, d0)
            d = d0
        dt = t - t0
        scale = (MAX_WEIGHT_S if dt > MAX_WEIGHT_S else dt) / dt if dt > 0.0 else 0.0
        hr_mid = _mean(hr0, hr)
        cad_mid = _mean(_moving(cad0), _moving(cad))
        seg_t = t0  # start of the not-yet-attributed part of the interval
        while d - self._origin_m >= self._index * SPLIT_M and d > d0:
            mark = self._origin_m + self._index * SPLIT_M
            t_cross = t0 + (mark - d0) / (d - d0) * dt
            self._weigh(hr_mid, cad_mid, (t_cross - seg_t) * scale)
            self._queue.append(self._make(t_cross, SPLIT_M))
            self._index += 1
            self._start_s = t_cross
            self._hr = (0.0, 0.0)
            self._cad = (0.0, 0.0)
            seg_t = t_cross
        w = (t - seg_t) * scale
        if w > 0.0:  # self._weigh(hr_mid, cad_mid, w), inline: once per reading
            if hr_mid is not None:
                hr_w, hr_sum = self._hr
                self._hr = (hr_w + w, hr_sum + w * hr_mid)
            if cad_mid is not None and cad_mid > 0.0:
                cad_w, cad_sum = self._cad
                self._cad = (cad_w + w, cad_sum + w * cad_mid)
        self._last = (t, d, hr, cad)

    def _weigh(self, hr: float | None, cad: float | None, w: float) -> None:
        if w <= 0.0:
            return
        if hr is not None:
            self._hr = (self._hr[0] + w, self._hr[1] + w * hr)
        if cad is not None and cad > 0.0:
            self._cad = (self._cad[0] + w, self._cad[1] + w * cad)

    def _make(self, end_s: float, distance_m: float) -> Split:
        duration = end_s - self._start_s
        return Split(
            index=self._index,
            start_s=self._start_s,
            end_s=end_s,
            duration_s=duration,
            distance_m=distance_m,
            pace_s_per_km=(
                1000.0 * duration / distance_m if distance_m >= MIN_PACE_DISTANCE_M else None
            ),
            avg_hr_bpm=self._hr[1] / self._hr[0] if self._hr[0] > 0.0 else None,
            avg_cadence_spm=self._cad[1] / self._cad[0] if self._cad[0] > 0.0 else None,
        )
