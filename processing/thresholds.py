"""Ventilatory-threshold estimates of one session from DFA α1.

DFA α1 of the RR series falls with exercise intensity: ≈ 1 at easy effort, crossing 0.75 near
the first ventilatory threshold (VT1, the aerobic threshold) and 0.5 near the second (VT2)
(Rogers et al. 2021; Rogers, Giles, Draper, Mourot & Gronwald 2021). Over a session with a
range of intensities, α1 is close to linear in HR, so the HR (and speed) at which the fitted
line crosses 0.75 and 0.5 estimates HR (speed) at VT1 and VT2.

:class:`Alpha1Thresholds` fits α1 = a + b·HR by ordinary least squares from running sums
(O(1) per sample, constant memory; the sums are kept relative to the first sample's HR so the
cancellation in ``Σx² − (Σx)²/n`` stays harmless), and separately α1 = a + b·speed. Only
samples with HR in ``[min_hr_bpm, max_hr_bpm]`` (100–220 bpm: below 100 bpm the runner is
standing or walking, where α1 sits on its plateau near 1 and carries no threshold
information) and α1 in ``(0, 2]`` are used; speed samples need ``speed > 0.5 m/s``.

The estimate is null, with a ``reason``, when the data cannot support it:

* ``too_few_samples``: fewer than ``min_samples`` (60, about a minute at 1/s);
* ``narrow_hr_range``: observed HR range below ``min_hr_range_bpm`` (15 bpm), the slope
  would be noise;
* ``alpha1_not_falling``: slope ≥ 0 (α1 must fall as HR rises);
* ``poor_fit``: r² below ``min_r2`` (0.3);
* ``extrapolation``: a threshold HR more than ``max_extrapolation_bpm`` (10 bpm) outside the
  observed HR range (an easy run says little about VT2). When only the 0.5 (VT2) crossing is
  too far out, the 0.75 one is kept and the reason is ``vt2_extrapolation``.

The speed fit has the same checks (range ≥ 0.5 m/s, extrapolation ≤ 0.3 m/s) and its own
``speed_reason``; speeds are None without speed data.

References:
    Rogers, B., Giles, D., Draper, N., Hoos, O. & Gronwald, T. (2021). A new detection method
    defining the aerobic threshold for endurance exercise and training prescription based
    on fractal correlation properties of heart rate variability. *Front Physiol* 11, 596567.
    Rogers, B., Giles, D., Draper, N., Mourot, L. & Gronwald, T. (2021). Detection of the
    anaerobic threshold in endurance sports: validation of a new method using correlation
    properties of heart rate variability. *J Funct Morphol Kinesiol* 6(2), 38.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

__all__ = ["ALPHA1_VT1", "ALPHA1_VT2", "Alpha1Thresholds", "ThresholdEstimate"]

ALPHA1_VT1: Final = 0.75
"""DFA α1 at the first ventilatory (aerobic) threshold (Rogers et al. 2021)."""
ALPHA1_VT2: Final = 0.5
"""DFA α1 at the second ventilatory (anaerobic) threshold (Rogers et al. 2021)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdEstimate:
    """HR and speed at DFA α1 = 0.75 (VT1) and 0.5 (VT2) for one session."""

    hr_at_075_bpm: float | None
    """HR where the fitted α1 line crosses 0.75 (bpm)."""
    hr_at_050_bpm: float | None
    """HR where it crosses 0.5 (bpm)."""
    speed_at_075_mps: float | None
    """Speed where the α1-vs-speed line crosses 0.75 (m/s); None without speed."""
    speed_at_050_mps: float | None
    """Speed where it crosses 0.5 (m/s)."""
    r2: float | None
    """Coefficient of determination of the α1-vs-HR fit."""
    n: int
    """Samples used in the HR fit."""
    reason: str | None
    """Why an HR value is None (see the module docstring); None when both are given."""
    speed_reason: str | None = None
    """Why a speed value is None."""


@dataclasses.dataclass(slots=True)
class _Fit:
    """Running sums of a simple linear regression y = a + b·x, x relative to ``shift``."""

    shift: float | None = None
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    syy: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, x: float, y: float) -> None:
        if self.shift is None:
            self.shift = x
        u = x - self.shift
        self.n += 1
        self.sx += u
        self.sy += y
        self.sxx += u * u
        self.sxy += u * y
        self.syy += y * y
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)

    def solve(self) -> tuple[float, float, float] | None:
        """(intercept in original x, slope, r²); None when degenerate."""
        n = self.n
        if n < 2 or self.shift is None:
            return None
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        cxy = self.sxy - self.sx * self.sy / n
        if vx <= 0 or vy <= 0:
            return None
        slope = cxy / vx
        intercept = self.sy / n - slope * self.sx / n - slope * self.shift
        r2 = min(1.0, max(0.0, cxy * cxy / (vx * vy)))
        return intercept, slope, r2


def _crossings(
    fit: _Fit, min_n: int, min_range: float, min_r2: float, max_extra: float
) -> tuple[float | None, float | None, float | None, str | None]:
    """(x at 0.75, x at 0.5, r², reason)."""
    if fit.n < min_n:
        return None, None, None, "too_few_samples"
    if fit.hi - fit.lo < min_range:
        return None, None, None, "narrow_range"
    solved = fit.solve()
    if solved is None:
        return None, None, None, "alpha1_not_falling"
    a, b, r2 = solved
    if b >= 0:
        return None, None, r2, "alpha1_not_falling"
    if r2 < min_r2:
        return None, None, r2, "poor_fit"
    x75 = (ALPHA1_VT1 - a) / b
    x50 = (ALPHA1_VT2 - a) / b

    def inside(x: float) -> bool:
        return math.isfinite(x) and fit.lo - max_extra <= x <= fit.hi + max_extra

    if not inside(x75):
        return None, None, r2, "extrapolation"
    if not inside(x50):
        return x75, None, r2, "vt2_extrapolation"
    return x75, x50, r2, None


class Alpha1Thresholds:
    """Session estimate of HR/speed at α1 0.75 and 0.5 (see the module docstring).

    >>> th = Alpha1Thresholds()
    >>> for i in range(100):  # α1 = 2.25 − 0.01·HR on 120..169 bpm: 0.75 at 150, 0.5 at 175
    ...     hr = 120 + i % 50
    ...     th.update(hr, hr / 40, 2.25 - 0.01 * hr)
    >>> e = th.estimate()
    >>> round(e.hr_at_075_bpm, 6), round(e.hr_at_050_bpm, 6), round(e.speed_at_075_mps, 6)
    (150.0, 175.0, 3.75)
    >>> Alpha1Thresholds().estimate().reason
    'too_few_samples'
    """

    def __init__(
        self,
        *,
        min_samples: int = 60,
        min_hr_bpm: float = 100.0,
        max_hr_bpm: float = 220.0,
        min_hr_range_bpm: float = 15.0,
        min_r2: float = 0.3,
        max_extrapolation_bpm: float = 10.0,
        min_speed_mps: float = 0.5,
        min_speed_range_mps: float = 0.5,
        max_extrapolation_mps: float = 0.3,
    ) -> None:
        self._min_n = min_samples
        self._hr_lo = min_hr_bpm
        self._hr_hi = max_hr_bpm
        self._min_hr_range = min_hr_range_bpm
        self._min_r2 = min_r2
        self._max_extra_bpm = max_extrapolation_bpm
        self._min_speed = min_speed_mps
        self._min_speed_range = min_speed_range_mps
        self._max_extra_mps = max_extrapolation_mps
        self._hr = _Fit()
        self._speed = _Fit()

    def update(self, hr_bpm: float, speed_mps: float | None, alpha1: float) -> None:
        """One sample (about 1/s while α1 is valid): HR (bpm), speed (m/s) or None, α1."""
        if not (math.isfinite(hr_bpm) and math.isfinite(alpha1) and 0 < alpha1 <= 2):
            return
        if not self._hr_lo <= hr_bpm <= self._hr_hi:
            return
        self._hr.add(hr_bpm, alpha1)
        if speed_mps is not None and math.isfinite(speed_mps) and speed_mps > self._min_speed:
            self._speed.add(speed_mps, alpha1)

    add = update
    """Alias of :meth:`update`."""

    @property
    def n(self) -> int:
        """Samples in the HR fit."""
        return self._hr.n

    def estimate(self) -> ThresholdEstimate:
        """The thresholds from the samples so far (pure)."""
        hr75, hr50, r2, reason = _crossings(
            self._hr, self._min_n, self._min_hr_range, self._min_r2, self._max_extra_bpm
        )
        if reason == "narrow_range":
            reason = "narrow_hr_range"
        speed_reason: str | None
        if self._speed.n == 0:
            s75, s50, speed_reason = None, None, "no_speed"
        else:
            s75, s50, _, speed_reason = _crossings(
                self._speed, self._min_n, self._min_speed_range, self._min_r2, self._max_extra_mps
            )
            if speed_reason == "narrow_range":
                speed_reason = "narrow_speed_range"
        return ThresholdEstimate(
            hr_at_075_bpm=hr75,
            hr_at_050_bpm=hr50,
            speed_at_075_mps=s75,
            speed_at_050_mps=s50,
            r2=r2,
            n=self._hr.n,
            reason=reason,
            speed_reason=speed_reason,
        )
