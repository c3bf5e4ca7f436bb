"""Session figures recomputed from a FIT file's records, the way the devices compute them.

Pure functions over one session's per-record samples on the monotonic line (seconds since the
session start). Rules (docs/import-formats.md, "Figures from the records"):

* **Timer time**: the session window ``[0, end]`` (end = the device's elapsed time, else the
  last record) minus the timer pauses (``event`` timer stop → start).
* **Averages are time-weighted over timer-running time**: each record's value holds until the
  next record (the last one until the session end); an interval longer than
  :data:`MAX_HOLD_S` (a recording gap) or not positive counts nothing, and only the part of an
  interval with the timer running counts. Records without the value contribute nothing.
* **Cadence** excludes zero cadence *while moving* (speed ≥ :data:`STANDING_MPS`): the sensor
  measured nothing, as every device does. Zero cadence *standing still* with the timer running
  is real; makers differ: Garmin counts it (fr920xt: 414 s standing, device 142.2 spm, 165.7
  without), others (Suunto) leave it out. :func:`counts_standing_zero_cadence` says which.
* **Distance** follows the device's corrected distance (:class:`DistanceLine`): a decrease up
  to :data:`RESET_DROP_M` is a GPS correction (the later, lower value is the distance), a
  larger drop is a counter reset (counting goes on from the new origin).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Final

MAX_HOLD_S: Final = 10.0
"""A record interval longer than this is a recording gap: excluded from averages."""
STANDING_MPS: Final = 0.5
"""Below this speed a zero cadence is standing still, not a missed measurement."""
RESET_DROP_M: Final = 100.0
"""A record distance falling by more than this is a reset; by less, a GPS correction."""
_STANDING_ZERO_MAKERS: Final = frozenset({"garmin"})


def counts_standing_zero_cadence(manufacturer: str | None) -> bool:
    """Whether the maker's session cadence counts time standing still at zero cadence."""
    return manufacturer in _STANDING_ZERO_MAKERS


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RecordTotals:
    """One session's figures from its records (rules in the module doc); None: no data."""

    distance_m: float | None
    """Corrected record distance at the end minus at the start, metres."""
    timer_time_s: float
    """Time with the timer running, seconds."""
    avg_heart_rate_bpm: float | None
    max_heart_rate_bpm: int | None
    avg_cadence_spm: float | None
    """Steps/min, time-weighted; None when the records carry no cadence."""
    heart_rate_time_s: float
    """Timer-running seconds the heart-rate average is taken over."""
    cadence_time_s: float
    """Timer-running seconds the cadence average is taken over."""
    standing_zero_cadence_counted: bool
    """Whether zero cadence while standing still counted (the maker's convention)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """What one record says, at its monotonic time."""

    t: float
    heart_rate_bpm: int | None
    cadence_spm: float | None
    speed_mps: float | None


class DistanceLine:
    """Record distances → the device's corrected, cumulative distance (module doc).

    >>> line = DistanceLine()
    >>> [line.add(d) for d in (0.0, 10.0, 7.5, 512.0, 2.0, 5.0)]
    [0.0, 10.0, 7.5, 512.0, 514.0, 517.0]
    >>> line.corrections, line.resets
    (1, 1)
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._last: float | None = None
        self.corrections = 0
        self.resets = 0

    def add(self, distance_m: float) -> float:
        if self._last is not None and distance_m < self._last:
            if self._last - distance_m > RESET_DROP_M:
                self._offset += self._last
                self.resets += 1
            else:
                self.corrections += 1
        self._last = distance_m
        return self._offset + distance_m


def running_intervals(
    end_s: float, pauses: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``[0, end_s]`` minus the pauses, as sorted disjoint intervals."""
    out: list[tuple[float, float]] = []
    t = 0.0
    for stop, start in sorted(pauses):
        stop, start = max(stop, 0.0), min(start, end_s)
        if stop > t:
            out.append((t, min(stop, end_s)))
        t = max(t, start)
        if t >= end_s:
            break
    if t < end_s:
        out.append((t, end_s))
    return [(a, b) for a, b in out if b > a]


def _running_s(a: float, b: float, running: Sequence[tuple[float, float]]) -> float:
    total = 0.0
    for lo, hi in running:
        if hi <= a:
            continue
        if lo >= b:
            break
        total += min(b, hi) - max(a, lo)
    return total


def _holds(
    samples: Sequence[Sample], end_s: float, running: Sequence[tuple[float, float]]
) -> list[float]:
    """Timer-running seconds each sample's value holds (module doc)."""
    ends = [s.t for s in samples[1:]] + [max(end_s, samples[-1].t)]
    weights: list[float] = []
    for s, t2 in zip(samples, ends, strict=True):
        d = t2 - s.t
        weights.append(_running_s(s.t, t2, running) if 0.0 < d <= MAX_HOLD_S else 0.0)
    return weights


def _mean(pairs: list[tuple[float, float]]) -> tuple[float | None, float]:
    den = math.fsum(w for w, _ in pairs)
    if den <= 0.0:
        return None, 0.0
    return math.fsum(w * v for w, v in pairs) / den, den


def compute_totals(
    samples: Sequence[Sample],
    *,
    end_s: float,
    pauses: Sequence[tuple[float, float]],
    distance_m: float | None,
    standing_zero_counts: bool,
) -> RecordTotals:
    """The session's figures from its samples (time order) and pauses; see the module doc."""
    running = running_intervals(end_s, pauses)
    timer = math.fsum(b - a for a, b in running)
    hr_pairs: list[tuple[float, float]] = []
    cad_pairs: list[tuple[float, float]] = []
    if samples:
        for s, w in zip(samples, _holds(samples, end_s, running), strict=True):
            if s.heart_rate_bpm is not None and s.heart_rate_bpm > 0:
                hr_pairs.append((w, float(s.heart_rate_bpm)))
            c = s.cadence_spm
            if c is None or c < 0.0:
                continue
            if c == 0.0:
                standing = s.speed_mps is not None and s.speed_mps < STANDING_MPS
                if not (standing and standing_zero_counts):
                    continue
            cad_pairs.append((w, c))
    hr_avg, hr_w = _mean(hr_pairs)
    cad_avg, cad_w = _mean(cad_pairs)
    has_cadence = any(v > 0.0 for _, v in cad_pairs)
    heart = [s.heart_rate_bpm for s in samples if s.heart_rate_bpm]
    return RecordTotals(
        distance_m=distance_m,
        timer_time_s=timer,
        avg_heart_rate_bpm=hr_avg,
        max_heart_rate_bpm=max(heart) if heart else None,
        avg_cadence_spm=cad_avg if has_cadence else None,
        heart_rate_time_s=hr_w,
        cadence_time_s=cad_w if has_cadence else 0.0,
        standing_zero_cadence_counted=standing_zero_counts,
    )


def record_span(samples: Sequence[Sample]) -> float:
    """Seconds from the first to the last sample (0 for fewer than two)."""
    return samples[-1].t - samples[0].t if len(samples) > 1 else 0.0


def pairwise_gaps(samples: Sequence[Sample]) -> int:
    """Record intervals longer than :data:`MAX_HOLD_S`."""
    return sum(1 for a, b in itertools.pairwise(samples) if b.t - a.t > MAX_HOLD_S)
