"""DFA α1: short-term fractal scaling exponent of the RR series.

Definition (Peng et al. 1995, as computed by ``neurokit2.fractal_dfa(rr_ms, scale=range(4, 17))``
with its defaults, which :func:`dfa_alpha1_batch` reproduces and the tests check):

1. ``x``: the clean RR intervals in milliseconds, in beat order (N of them).
2. Profile ``y_k = Σ_{i ≤ k} (x_i − mean(x))`` (integrated, mean removed).
3. For each box size ``s`` in 4..16 beats: boxes of ``s`` beats starting at
   ``0, s//2, 2·(s//2), …`` while the start is ``< N − s`` (50 % overlap; like neurokit2 the
   last possible start ``N − s`` itself is not used).
4. In each box, least-squares straight line (order 1 detrending) against ``0..s−1``; the
   box's variance is the mean squared residual (``np.var`` of the residual, ddof = 0). Boxes
   with variance ≤ 1e-8 ms² (a perfectly linear stretch, e.g. constant quantised RR) are
   left out, as neurokit2 does.
5. ``F(s) = sqrt(mean of the box variances)`` (root mean square fluctuation, q = 2).
6. ``α1`` is the least-squares slope of ``log2 F(s)`` against ``log2 s`` (the base of the
   logarithm does not change the slope).

Interpretation during exercise (Gronwald & Rogers): α1 ≈ 1 at rest and easy effort,
crossing 0.75 near the aerobic threshold and 0.5 near the anaerobic threshold; white noise
gives 0.5, Brownian noise 1.5. It needs about 2 minutes of beats and is very sensitive to
artifacts: it is suppressed when ≥ 3 % of the window's beats are artifacts.

Live policy (:class:`RollingDfa`): beats enter a bounded ring buffer in O(1). Each box's
variance depends only on its own intervals, so it is computed once (one small matrix product
for the 13 box sizes) and cached; α1 is re-derived from the cached boxes the window selects
at most once per ``update_interval_s`` (1 s) of event time, on the beat that crosses the
interval, so a reader calling :meth:`RollingDfa.get` after every beat sees a value at most
one second old. The result equals :func:`dfa_alpha1_batch` on the same window to ~1e-14.

References:
    Peng, C.-K., Havlin, S., Stanley, H. E. & Goldberger, A. L. (1995). Quantification of
    scaling exponents and crossover phenomena in nonstationary heartbeat time series.
    *Chaos* 5(1), 82–87.

    Gronwald, T., Rogers, B. & Hoos, O. (2020). Fractal correlation properties of heart rate
    variability: a new biomarker for intensity distribution in endurance exercise and
    training prescription? *Frontiers in Physiology* 11, 550572.

    Rogers, B., Giles, D., Draper, N., Hoos, O. & Gronwald, T. (2021). A new detection method
    defining the aerobic threshold for endurance exercise and training prescription based on
    fractal correlation properties of heart rate variability. *Frontiers in Physiology* 11,
    596567.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import deque

import numpy as np
import numpy.typing as npt

from processing.rr_cleaning import MIN_RR_S

__all__ = [
    "DFA_MAX_ARTIFACT_PCT",
    "DFA_SCALES",
    "DfaResult",
    "RollingDfa",
    "dfa_alpha1_batch",
    "zone_for_alpha1",
]

DFA_SCALES: tuple[int, ...] = tuple(range(4, 17))
"""Box sizes of α1, beats."""
DFA_MAX_ARTIFACT_PCT = 3.0
"""α1 is suppressed when artifacts are at least this share of the window's beats, percent."""
_MIN_BOX_VAR_MS2 = 1e-8  # neurokit2 drops boxes whose residual variance is not above this
_MIN_BEATS = max(DFA_SCALES) + 1  # neurokit2 needs the largest box to be shorter than N

FloatArray = npt.NDArray[np.float64]


def _scale_fluctuation(var: FloatArray) -> float:
    kept = var[var > _MIN_BOX_VAR_MS2]
    if kept.size == 0:
        return math.nan
    return math.sqrt(float(np.mean(kept)))


def _slope(log_scale: FloatArray, log_f: FloatArray) -> float:
    if not np.all(np.isfinite(log_f)):
        return math.nan
    xc = log_scale - log_scale.mean()
    return float(np.dot(xc, log_f - log_f.mean()) / np.dot(xc, xc))


_LOG2_SCALES: FloatArray = np.log2(np.asarray(DFA_SCALES, dtype=np.float64))


def dfa_alpha1_batch(rr_s: npt.ArrayLike) -> float:
    """DFA α1 of an RR series, straight from the definition (one box at a time).

    Args:
        rr_s: clean RR intervals, seconds, in beat order (at least 17).

    Returns:
        α1 (dimensionless); NaN when some box size has no box with variance (a flat series).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> round(dfa_alpha1_batch(0.8 + 0.05 * rng.standard_normal(400)), 2)  # white noise
        0.45
    """
    x = np.asarray(rr_s, dtype=np.float64) * 1000.0
    n = x.size
    if n < _MIN_BEATS:
        raise ValueError(f"DFA α1 needs at least {_MIN_BEATS} beats, got {n}")
    y = np.cumsum(x - x.mean())
    fluctuations = []
    for s in DFA_SCALES:
        t = np.arange(s, dtype=np.float64)
        var = []
        for start in range(0, n - s, s // 2):
            box = y[start : start + s]
            slope, intercept = np.polyfit(t, box, 1)
            var.append(np.var(box - (slope * t + intercept)))
        fluctuations.append(_scale_fluctuation(np.asarray(var)))
    return _slope(_LOG2_SCALES, np.log2(np.asarray(fluctuations)))


def _box_residual_operator() -> tuple[FloatArray, npt.NDArray[np.intp], FloatArray]:
    """Matrix mapping the last 16 intervals to the detrended profile of every box ending there.

    For a box of ``s`` intervals ``u`` the profile is ``L u`` (``L``: lower-triangular ones,
    a cumulative sum) and the residual of its least-squares line is ``(I − H) L u`` (``H``:
    hat matrix of ``[1, t]``). A constant added to ``u`` (such as the window mean that the
    profile removes) adds a straight line to ``L u`` that ``I − H`` removes, so a box's
    variance depends only on its own intervals and may be computed once, when its last beat
    arrives. Rows for box size ``s`` act on the last ``s`` of 16 columns.
    """
    width = max(DFA_SCALES)
    blocks = []
    for s in DFA_SCALES:
        t = np.arange(s, dtype=np.float64)
        design = np.column_stack([np.ones(s), t])
        hat = design @ np.linalg.solve(design.T @ design, design.T)
        operator = (np.eye(s) - hat) @ np.tril(np.ones((s, s)))
        block = np.zeros((s, width))
        block[:, width - s :] = operator
        blocks.append(block)
    offsets = np.cumsum([0, *DFA_SCALES[:-1]]).astype(np.intp)
    inv_s = 1.0 / np.asarray(DFA_SCALES, dtype=np.float64)
    return np.vstack(blocks), offsets, inv_s


_BOX_OPERATOR, _BOX_OFFSETS, _INV_SCALES = _box_residual_operator()
_BOX_OPERATOR_T = np.ascontiguousarray(_BOX_OPERATOR.T)
_LOG2_CENTRED = _LOG2_SCALES - _LOG2_SCALES.mean()
_LOG2_SXX = float(np.dot(_LOG2_CENTRED, _LOG2_CENTRED))


@functools.lru_cache(maxsize=64)
def _box_plan(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The boxes of a window of ``n`` intervals, in the order of the definition (step
    ``s // 2``, start < n − s): end offset from the first interval and scale index of every
    box, and where each scale's run of boxes starts."""
    ends: list[int] = []
    scale_ids: list[int] = []
    starts: list[int] = []
    for j, s in enumerate(DFA_SCALES):
        box_starts = range(0, n - s, s // 2)
        starts.append(len(ends))
        ends.extend(start + s - 1 for start in box_starts)
        scale_ids.extend([j] * len(box_starts))
    return (
        np.asarray(ends, dtype=np.intp),
        np.asarray(scale_ids, dtype=np.intp),
        np.asarray(starts, dtype=np.intp),
    )


def zone_for_alpha1(alpha1: float) -> str:
    """Intensity zone of a DFA α1 value (Rogers et al. 2021 thresholds).

    ``"aerobic"`` above 0.75 (below the aerobic threshold), ``"transition"`` from 0.5 to 0.75,
    ``"anaerobic"`` below 0.5 (above the anaerobic threshold).

    Example:
        >>> zone_for_alpha1(1.0), zone_for_alpha1(0.75), zone_for_alpha1(0.5), zone_for_alpha1(0.3)
        ('aerobic', 'transition', 'transition', 'anaerobic')
    """
    if not math.isfinite(alpha1):
        raise ValueError(f"alpha1 must be finite, got {alpha1}")
    if alpha1 > 0.75:
        return "aerobic"
    if alpha1 >= 0.5:
        return "transition"
    return "anaerobic"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DfaResult:
    """The live DFA α1 of the window at the last recomputation."""

    alpha1: float | None
    """DFA α1 (dimensionless), None when suppressed."""
    reason: str | None
    """Why ``alpha1`` is None (artifacts, too few beats, flat signal); None when valid."""
    beats: int
    """Clean beats in the window."""
    artifact_pct: float
    """Artifact beats among all beats in the window, percent."""
    time_s: float | None
    """Event time of the beat at which this value was computed; None before any beat."""


_NO_BEATS = DfaResult(alpha1=None, reason="no beats yet", beats=0, artifact_pct=0.0, time_s=None)


class RollingDfa:
    """DFA α1 over the clean beats of the last ``window_s`` seconds of event time.

    Beats flagged as artifacts are left out of the series (the clean beats around them are
    joined) and counted in ``artifact_pct``; α1 is suppressed (None with a reason) when
    ``artifact_pct ≥ 3`` or fewer than ``min_beats`` clean beats are in the window.

    Incremental scheme: a box's variance depends only on its own intervals (see
    ``_box_residual_operator``), so each box is computed once, when its last beat has arrived,
    with one small matrix product for all 13 box sizes, and kept in a ring indexed by the
    absolute index of its last beat. A recomputation only gathers the variances of the boxes
    the window's alignment selects and averages them per size: O(#boxes) with a few numpy
    calls, no per-box fitting. Recomputations happen at most once per ``update_interval_s``
    of event time. State is bounded by ``max_beats``.

    Args:
        window_s: window length, seconds (2 minutes, Gronwald & Rogers).
        update_interval_s: α1 is recomputed when at least this much event time has passed
            since the last recomputation (0: on every beat).
        min_beats: fewest clean beats for a value (at least 17, the largest box + 1).
        max_beats: ring-buffer bound; defaults to one beat per 0.25 s of window. When full,
            the oldest beat leaves early.

    Example:
        >>> rng = np.random.default_rng(7)
        >>> dfa = RollingDfa(window_s=120.0)
        >>> t = 0.0
        >>> for rr in 0.6 + 0.02 * rng.standard_normal(300):
        ...     t += rr
        ...     dfa.update(t, rr, artifact=False)
        >>> result = dfa.get()
        >>> round(result.alpha1, 2), result.reason, result.beats, result.artifact_pct
        (0.53, None, 201, 0.0)
        >>> dfa.update(t + 0.6, 0.6, artifact=True)
        >>> for _ in range(6):
        ...     t += 1.2
        ...     dfa.update(t, 1.2, artifact=True)
        >>> dfa.get().reason
        'artifacts 3.6 % >= 3 %'
    """

    def __init__(
        self,
        window_s: float = 120.0,
        *,
        update_interval_s: float = 1.0,
        min_beats: int = 50,
        max_beats: int | None = None,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        if not update_interval_s >= 0:
            raise ValueError(f"update_interval_s must be >= 0, got {update_interval_s}")
        if min_beats < _MIN_BEATS:
            raise ValueError(f"min_beats must be at least {_MIN_BEATS}, got {min_beats}")
        self._window_s = window_s
        self._interval_s = update_interval_s
        self._min_beats = min_beats
        self._max_beats = max_beats or math.ceil(window_s / MIN_RR_S) + 1
        self._times: deque[float] = deque()
        self._flags: deque[bool] = deque()  # True: clean
        self._artifacts = 0
        self._last_time_s = -math.inf
        self._computed_at_s = -math.inf
        self._result = _NO_BEATS
        # Clean intervals and box variances, in rings indexed by the absolute clean index.
        self._cap = self._max_beats + max(DFA_SCALES)
        self._x_ms = np.zeros(self._cap)
        self._box_var = np.zeros((len(DFA_SCALES), self._cap))
        self._n_total = 0  # clean intervals ever added
        self._first = 0  # absolute index of the oldest clean interval in the window
        self._boxes_done = 0  # box variances are computed for every end index below this
        width = max(DFA_SCALES)
        self._row_index = np.arange(self._cap)[:, None] + np.arange(width)[None, :]

    def update(self, beat_time_s: float, rr_s: float, artifact: bool) -> None:
        """Add one beat (event time in seconds, non-decreasing; interval in seconds).

        A non-finite or non-positive ``rr_s`` is counted as an artifact.
        """
        if not math.isfinite(beat_time_s) or beat_time_s < self._last_time_s:
            raise ValueError(
                f"beat_time_s must be finite and non-decreasing, got {beat_time_s} after "
                f"{self._last_time_s}"
            )
        self._last_time_s = beat_time_s
        clean = not artifact and math.isfinite(rr_s) and rr_s > 0.0
        if len(self._times) >= self._max_beats:
            self._evict()
        self._times.append(beat_time_s)
        self._flags.append(clean)
        if clean:
            self._x_ms[self._n_total % self._cap] = rr_s * 1000.0
            self._n_total += 1
        else:
            self._artifacts += 1
        horizon = beat_time_s - self._window_s
        while self._times and self._times[0] <= horizon:
            self._evict()
        if beat_time_s - self._computed_at_s >= self._interval_s:
            self._computed_at_s = beat_time_s
            self._result = self._compute(beat_time_s)

    def _evict(self) -> None:
        self._times.popleft()
        if self._flags.popleft():
            self._first += 1
        else:
            self._artifacts -= 1

    def _fill_boxes(self) -> None:
        """Compute the variances of all boxes ending at clean intervals added since last time."""
        width = max(DFA_SCALES)
        lo = max(self._boxes_done, self._first)
        hi = self._n_total
        self._boxes_done = hi
        if hi <= lo:
            return
        # Intervals lo-15 .. hi-1; slots before the first interval hold finite filler and only
        # feed boxes that no window ever selects.
        window = self._x_ms[np.arange(lo - width + 1, hi) % self._cap]
        rows = window[self._row_index[: hi - lo]]  # one row per box end: its last 16 intervals
        resid = (rows - window.mean()) @ _BOX_OPERATOR_T
        var = np.add.reduceat(resid * resid, _BOX_OFFSETS, axis=1) * _INV_SCALES
        self._box_var[:, np.arange(lo, hi) % self._cap] = var.T

    def _alpha1(self, n: int) -> float:
        self._fill_boxes()
        ends, scale_ids, starts = _box_plan(n)
        var = self._box_var[scale_ids, (ends + self._first) % self._cap]
        kept = var > _MIN_BOX_VAR_MS2
        count = np.add.reduceat(kept, starts)
        if not count.all():
            return math.nan
        total = np.add.reduceat(np.where(kept, var, 0.0), starts)
        log_f = 0.5 * np.log2(total / count)
        return float(np.dot(_LOG2_CENTRED, log_f) / _LOG2_SXX)

    def _compute(self, time_s: float) -> DfaResult:
        n = self._n_total - self._first
        artifact_pct = 100.0 * self._artifacts / len(self._times)
        reason: str | None = None
        alpha1: float | None = None
        if artifact_pct >= DFA_MAX_ARTIFACT_PCT:
            reason = f"artifacts {artifact_pct:.1f} % >= {DFA_MAX_ARTIFACT_PCT:g} %"
        elif n < self._min_beats:
            reason = f"too few beats ({n} < {self._min_beats})"
        else:
            value = self._alpha1(n)
            if math.isfinite(value):
                alpha1 = value
            else:
                reason = "flat signal (no RR variation within boxes)"
        return DfaResult(
            alpha1=alpha1, reason=reason, beats=n, artifact_pct=artifact_pct, time_s=time_s
        )

    def get(self) -> DfaResult:
        """The value at the last recomputation (at most ``update_interval_s`` old)."""
        return self._result
