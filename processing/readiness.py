"""HRV readiness: today's resting RMSSD against the athlete's own rolling baseline.

Method (the approach popularised by HRV4Training and the research behind it): RMSSD is
roughly log-normal and its day-to-day changes are multiplicative, so the baseline is the mean
of ``ln RMSSD`` over the recent past sessions, reported back in milliseconds as
``exp(mean ln RMSSD)`` (a geometric mean). Today's value is compared by its ratio to that
baseline: below ``low_ratio`` (0.75 by default, a drop of more than ~0.29 in ln units, well
outside the usual ±0.5 SD day-to-day band) is "low"; above ``1 / low_ratio`` is "high"
(unusually high values can also signal fatigue, so they are reported, not celebrated).

The baseline uses up to the last ``max_sessions`` (30) past sessions and needs at least
``min_sessions`` (3): one or two mornings are not a baseline.

References:
    Plews, D. J., Laursen, P. B., Kilding, A. E. & Buchheit, M. (2012). Heart rate
    variability in elite triathletes: is variation in variability the key to effective
    training? *Eur J Appl Physiol* 112, 3729–3741 (ln rMSSD, rolling 7-day mean).
    Plews, D. J., Laursen, P. B., Stanley, J., Kilding, A. E. & Buchheit, M. (2013).
    Training adaptation and heart rate variability in elite endurance athletes: opening
    the door to effective monitoring. *Sports Med* 43, 773–781.
    Altini, M. & Plews, D. (2021). What is behind changes in resting heart rate and heart
    rate variability? *Sensors* 21(23), 7932 (HRV4Training's baseline and normal range).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from typing import Final, Literal

from processing.records import SegmentKind

__all__ = ["ReadinessResult", "ReadinessStatus", "WarmupRmssd", "assess_readiness"]

ReadinessStatus = Literal["no_baseline_yet", "normal", "low", "high"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReadinessResult:
    """Today's resting HRV against the athlete's baseline."""

    today_rmssd_ms: float
    """Today's resting (warm-up) RMSSD, milliseconds."""
    baseline_rmssd_ms: float | None
    """Geometric mean of the past sessions' resting RMSSD, ms; None without enough history."""
    ratio: float | None
    """``today / baseline``; None without a baseline."""
    status: ReadinessStatus
    message: str
    """One human sentence with the numbers."""


def assess_readiness(
    today_rmssd_ms: float,
    past_resting_rmssd_ms: Sequence[float],
    low_ratio: float = 0.75,
    *,
    max_sessions: int = 30,
    min_sessions: int = 3,
) -> ReadinessResult:
    """Compare today's resting RMSSD (ms) with the past sessions' (ms, oldest first).

    Past values that are not finite and positive are ignored.

    >>> assess_readiness(50.0, []).status
    'no_baseline_yet'
    >>> r = assess_readiness(19.0, [48.0, 52.0, 50.0, 50.0])
    >>> r.status, round(r.baseline_rmssd_ms, 1), round(r.ratio, 2)
    ('low', 50.0, 0.38)
    >>> r.message
    'Resting HRV is low: RMSSD 19 ms, 38 % of your baseline 50 ms.'

    Raises:
        ValueError: ``today_rmssd_ms`` not finite and positive, or ``low_ratio`` not in (0, 1).
    """
    if not (math.isfinite(today_rmssd_ms) and today_rmssd_ms > 0):
        raise ValueError(f"today_rmssd_ms must be finite and > 0, got {today_rmssd_ms}")
    if not 0 < low_ratio < 1:
        raise ValueError(f"low_ratio must be in (0, 1), got {low_ratio}")
    past = [v for v in past_resting_rmssd_ms if math.isfinite(v) and v > 0][-max_sessions:]
    if len(past) < max(1, min_sessions):
        return ReadinessResult(
            today_rmssd_ms=today_rmssd_ms,
            baseline_rmssd_ms=None,
            ratio=None,
            status="no_baseline_yet",
            message=(
                f"Resting RMSSD {today_rmssd_ms:.0f} ms; no baseline yet "
                f"({len(past)} of {min_sessions} sessions needed)."
            ),
        )
    baseline = math.exp(math.fsum(math.log(v) for v in past) / len(past))
    ratio = today_rmssd_ms / baseline
    status: ReadinessStatus
    if ratio < low_ratio:
        status = "low"
    elif ratio > 1.0 / low_ratio:
        status = "high"
    else:
        status = "normal"
    word = {"low": "is low", "high": "is unusually high", "normal": "is normal"}[status]
    return ReadinessResult(
        today_rmssd_ms=today_rmssd_ms,
        baseline_rmssd_ms=baseline,
        ratio=ratio,
        status=status,
        message=(
            f"Resting HRV {word}: RMSSD {today_rmssd_ms:.0f} ms, {100 * ratio:.0f} % of your "
            f"baseline {baseline:.0f} ms."
        ),
    )


_REST_KINDS: Final = (None, SegmentKind.STAND)


class WarmupRmssd:
    """Today's resting RMSSD, taken from the warm-up at the start of the session.

    Fed the rolling 60-s RMSSD (ms) about once per second (None when the window is not
    valid yet, e.g. coverage too low) with the current segment kind (None before the
    segmenter has decided). The warm-up is the first stretch of one activity class from the
    first update: *rest* (None or stand) or *walk*. It ends when

    * the segment changes to another class (e.g. stand → walk, walk → run), or
    * ``max_s`` (180 s) of event time have passed since the first update, or
    * ``unknown_max_s`` (90 s) have passed while the segment was never known (None: no
      footpod, so standing cannot be told from walking). 90 s covers a 60-s standing start
      plus the lag of the 60-s RMSSD window, which still mostly holds the standing beats
      ~20–30 s into a walk (on the virtual athlete the 60-s RMSSD stays within 10 % of its
      resting value until ~80 s on ``morning-5k``).

    At its end :meth:`update` returns, once, the median of the valid RMSSD samples collected
    in it (robust to a few noisy windows) if there are at least ``min_samples`` (5);
    otherwise no value can be had today. Afterwards it always returns None.

    Prefer a standing start: RMSSD falls steeply with intensity (on the virtual athlete ~50 ms
    standing but ~14 ms walking at 6 km/h), so only warm-ups of the same kind are
    comparable from day to day. At most ``max_s`` worth of samples are kept (bounded).

    >>> w = WarmupRmssd()
    >>> [w.update(float(t), 50.0 + t % 3, SegmentKind.STAND) for t in range(50, 60)][-1] is None
    True
    >>> w.update(60.0, 40.0, SegmentKind.WALK)
    51.0
    >>> w.update(61.0, 40.0, SegmentKind.WALK) is None
    True
    """

    def __init__(
        self,
        *,
        max_s: float = 180.0,
        unknown_max_s: float = 90.0,
        min_samples: int = 5,
        max_samples: int = 1024,
    ) -> None:
        self._max_s = max_s
        self._unknown_max_s = unknown_max_s
        self._segment_known = False
        self._min_samples = min_samples
        self._max_samples = max_samples
        self._t0: float | None = None
        self._rest: bool | None = None  # class of the warm-up: rest (True) or walk (False)
        self._samples: list[float] = []
        self._done = False

    @property
    def done(self) -> bool:
        """True once the warm-up has ended (with or without a value)."""
        return self._done

    def update(
        self, time_mono_s: float, rmssd_ms: float | None, segment: SegmentKind | None
    ) -> float | None:
        """Add one sample; the warm-up RMSSD (ms) the first time the warm-up has ended."""
        if self._done:
            return None
        if self._t0 is None:
            self._t0 = time_mono_s
        if segment in (SegmentKind.RUN, SegmentKind.SPRINT):
            return self._finish()
        rest = segment in _REST_KINDS
        if self._rest is None:
            self._rest = rest
        elif rest != self._rest:
            return self._finish()
        if (
            rmssd_ms is not None
            and math.isfinite(rmssd_ms)
            and rmssd_ms > 0
            and len(self._samples) < self._max_samples
        ):
            self._samples.append(rmssd_ms)
        self._segment_known = self._segment_known or segment is not None
        limit_s = self._max_s if self._segment_known else self._unknown_max_s
        if time_mono_s - self._t0 >= limit_s:
            return self._finish()
        return None

    def _finish(self) -> float | None:
        self._done = True
        samples, self._samples = self._samples, []
        if len(samples) < self._min_samples:
            return None
        return float(statistics.median(samples))
