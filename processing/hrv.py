"""Rolling time-domain heart-rate variability over a window of event time.

Definitions (Task Force of the ESC and NASPE, 1996), over the *clean* RR intervals ``RR_i``
(milliseconds) whose beat time lies in the window ``(t_last − window_s, t_last]``:

* ``mean_rr_ms = mean(RR)``.
* ``sdnn_ms = sqrt(Σ (RR_i − mean)² / (N − 1))``: sample standard deviation, ddof = 1, as
  ``neurokit2.hrv_time`` (``np.nanstd(rri, ddof=1)``).
* ``rmssd_ms = sqrt(mean(ΔRR²))`` over the successive differences ``ΔRR``.
* ``pnn50_pct = 100 × #(|ΔRR| > 50 ms) / N``: strictly greater than 50 ms, divided by the
  number of clean intervals N (the Task Force's "total number of NN intervals"). This is
  exactly neurokit2's ``nn50 / (len(diff_rri) + 1) * 100`` when nothing is excluded.

Successive differences are taken only between *consecutive* clean beats: the previous beat
was clean and the time between the two beats is less than 1.5 × the current interval (no
beat lost in between). A difference across an artifact or a gap would mix two unrelated
intervals and is excluded; so the window holds N clean intervals and at most N − 1
differences. Both beats of a difference must be in the window.

``artifact_pct`` is ``100 × artifact beats / all beats`` in the window and ``coverage`` is
``Σ clean RR / window_s`` capped at 1 (how much of the window the clean beats explain).

The update is O(1) amortised: running sums are updated when a beat enters and reverted when
it leaves (river's ``update``/``revert`` contract). For numerical stability the sums of RR are
kept relative to a shift close to the mean, and all sums are recomputed exactly
(``math.fsum``) from the window whenever as many beats have entered as the window holds, so
rounding never accumulates beyond one window's worth (relative error ~1e-13 against a batch
computation).

Reference:
    Task Force of the European Society of Cardiology and the North American Society of
    Pacing and Electrophysiology (1996). Heart rate variability: standards of measurement,
    physiological interpretation and clinical use. *Circulation* 93(5), 1043–1065.
"""

from __future__ import annotations

import dataclasses
import math
from array import array

from processing.compaction import COMPACT_DIVISOR, COMPACT_MIN, compact
from processing.records import slot_setters
from processing.rr_cleaning import MIN_RR_S

__all__ = ["HrvStats", "RollingHrv"]

_NN50_MS = 50.0  # pNN50 threshold (strict >)
_MAX_CONSECUTIVE_GAP = 1.5  # beats further apart than 1.5 × RR are not consecutive


def _consecutive(prev_time_s: float, prev_rr_s: float, time_s: float, rr_s: float) -> bool:
    """Whether two beats (artifacts have a NaN interval) give a successive difference: both
    clean and no beat lost between them. Evaluated the same way when a difference enters and
    when it leaves, so the running sums revert exactly what they added."""
    both_clean = prev_rr_s == prev_rr_s and rr_s == rr_s  # not NaN
    return both_clean and time_s - prev_time_s < _MAX_CONSECUTIVE_GAP * rr_s


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HrvStats:
    """Time-domain HRV of one window (see the module docstring for the formulas)."""

    rmssd_ms: float
    """Root mean square of successive differences, milliseconds."""
    sdnn_ms: float
    """Sample standard deviation (ddof = 1) of the clean intervals, milliseconds."""
    pnn50_pct: float
    """Successive differences > 50 ms per clean interval, percent."""
    mean_rr_ms: float
    """Mean clean interval, milliseconds."""
    beats: int
    """Clean intervals in the window."""
    artifact_pct: float
    """Artifact beats among all beats in the window, percent."""
    coverage: float
    """Sum of the clean intervals over the window length, 0..1."""


_STATS_FIELDS = (
    "rmssd_ms", "sdnn_ms", "pnn50_pct", "mean_rr_ms", "beats", "artifact_pct", "coverage"
)
assert tuple(f.name for f in dataclasses.fields(HrvStats)) == _STATS_FIELDS
_new = object.__new__
_set_rmssd, _set_sdnn, _set_pnn50, _set_mean, _set_beats, _set_artifact_pct, _set_coverage = (
    slot_setters(HrvStats, *_STATS_FIELDS)
)


class RollingHrv:
    """RMSSD, SDNN, pNN50 and mean RR over a sliding window of event time.

    Args:
        window_s: window length, seconds of event time (60 s live, 300 s for the
            Task Force short-term recording).
        max_beats: bound on the beats kept; defaults to one beat per 0.25 s of window. When
            full, the oldest beat leaves early.

    Example:
        >>> hrv = RollingHrv(window_s=60.0)
        >>> t = 0.0
        >>> for rr in (0.80, 0.86, 0.78, 0.84):
        ...     t += rr
        ...     hrv.update(t, rr, artifact=False)
        >>> stats = hrv.get()
        >>> round(stats.rmssd_ms, 3), round(stats.sdnn_ms, 3), stats.pnn50_pct
        (67.33, 36.515, 75.0)
        >>> stats.mean_rr_ms, stats.beats, stats.artifact_pct
        (820.0, 4, 0.0)
    """

    def __init__(self, window_s: float = 60.0, *, max_beats: int | None = None) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        self._window_s = window_s
        self._max_beats = max_beats or math.ceil(window_s / MIN_RR_S) + 1
        # The window's beats, oldest first, from index ``_head`` on: event time (s) and
        # interval (s; NaN: artifact), 16 bytes a beat (see processing.compaction).
        self._times = array("d")
        self._rr_s = array("d")
        self._head = 0
        self._last_time_s = -math.inf
        self._n_artifacts = 0
        self._n_clean = 0
        self._shift_ms = 0.0  # RR sums are kept relative to this value
        self._sum_rr = 0.0  # Σ (RR − shift), ms
        self._sum_rr2 = 0.0  # Σ (RR − shift)², ms²
        self._n_diff = 0
        self._sum_d2 = 0.0  # Σ ΔRR², ms²
        self._nn50 = 0
        self._since_rebuild = 0

    @property
    def window_s(self) -> float:
        """Window length, seconds."""
        return self._window_s

    def update(self, beat_time_s: float, rr_s: float, artifact: bool) -> None:
        """Add one beat.

        Args:
            beat_time_s: event time of the beat that ends the interval, seconds; must not
                decrease.
            rr_s: the (cleaned) interval, seconds. A non-finite or non-positive value is
                counted as an artifact.
            artifact: True when the beat was flagged (it counts in ``artifact_pct`` only).
        """
        if not math.isfinite(beat_time_s) or beat_time_s < self._last_time_s:
            raise ValueError(
                f"beat_time_s must be finite and non-decreasing, got {beat_time_s} after "
                f"{self._last_time_s}"
            )
        clean = not artifact and math.isfinite(rr_s) and rr_s > 0.0
        times, rrs = self._times, self._rr_s
        if clean and len(times) > self._head:
            prev_rr_s = rrs[-1]
            if prev_rr_s == prev_rr_s and beat_time_s - times[-1] < _MAX_CONSECUTIVE_GAP * rr_s:
                diff_ms = rr_s * 1000.0 - prev_rr_s * 1000.0  # the difference enters: hot path
                self._n_diff += 1
                self._sum_d2 += diff_ms * diff_ms
                if abs(diff_ms) > _NN50_MS:
                    self._nn50 += 1
        times.append(beat_time_s)
        rrs.append(rr_s if clean else math.nan)
        self._last_time_s = beat_time_s
        if not clean:
            self._n_artifacts += 1
        else:
            rr_ms = rr_s * 1000.0
            if self._n_clean == 0:
                self._shift_ms = rr_ms
            self._n_clean += 1
            x = rr_ms - self._shift_ms
            self._sum_rr += x
            self._sum_rr2 += x * x
        horizon = beat_time_s - self._window_s
        limit = len(times) - self._max_beats
        while self._head < limit or times[self._head] <= horizon:
            self._evict()
        self._since_rebuild += 1
        if self._since_rebuild >= 16 and self._since_rebuild >= len(times) - self._head:
            self._rebuild()

    def _evict(self) -> None:
        """Revert the oldest beat and the difference to its successor."""
        times, rrs = self._times, self._rr_s
        head = self._head
        time_s = times[head]
        rr_s = rrs[head]
        head += 1
        if head >= COMPACT_MIN and head * COMPACT_DIVISOR >= len(times):
            head = compact(head, times, rrs)
        self._head = head
        if rr_s != rr_s:  # NaN: an artifact
            self._n_artifacts -= 1
            return
        if head < len(times):
            next_rr_s = rrs[head]
            # the difference to the next beat leaves (as _consecutive() decides): hot path
            if next_rr_s == next_rr_s and times[head] - time_s < _MAX_CONSECUTIVE_GAP * next_rr_s:
                diff_ms = next_rr_s * 1000.0 - rr_s * 1000.0
                self._n_diff -= 1
                self._sum_d2 -= diff_ms * diff_ms
                if abs(diff_ms) > _NN50_MS:
                    self._nn50 -= 1
        self._n_clean -= 1
        if self._n_clean == 0:
            self._sum_rr = self._sum_rr2 = 0.0
            return
        x = rr_s * 1000.0 - self._shift_ms
        self._sum_rr -= x
        self._sum_rr2 -= x * x

    def _rebuild(self) -> None:
        """Recompute every sum exactly from the window, re-centring the shift on the mean."""
        self._since_rebuild = 0
        times = self._times[self._head :].tolist()
        rrs = self._rr_s[self._head :].tolist()
        rr = [r * 1000.0 for r in rrs if r == r]
        diffs = [
            rrs[i] * 1000.0 - rrs[i - 1] * 1000.0
            for i in range(1, len(rrs))
            if _consecutive(times[i - 1], rrs[i - 1], times[i], rrs[i])
        ]
        self._shift_ms = math.fsum(rr) / len(rr) if rr else 0.0
        self._sum_rr = math.fsum(x - self._shift_ms for x in rr)
        self._sum_rr2 = math.fsum((x - self._shift_ms) ** 2 for x in rr)
        self._sum_d2 = math.fsum(d * d for d in diffs)
        self._n_diff = len(diffs)
        self._nn50 = sum(1 for d in diffs if abs(d) > _NN50_MS)

    def get(self) -> HrvStats | None:
        """Statistics of the current window; None with fewer than 2 clean intervals or no
        successive difference."""
        n = self._n_clean
        if n < 2 or self._n_diff < 1:
            return None
        mean_dev = self._sum_rr / n
        var = max(self._sum_rr2 - mean_dev * self._sum_rr, 0.0) / (n - 1)
        mean_rr_ms = self._shift_ms + mean_dev
        total = n + self._n_artifacts
        # HrvStats(rmssd_ms=..., ...) without the dataclass __init__ (twice a second per
        # athlete; see processing.records.slot_setters)
        stats = _new(HrvStats)
        _set_rmssd(stats, math.sqrt(max(self._sum_d2, 0.0) / self._n_diff))
        _set_sdnn(stats, math.sqrt(var))
        _set_pnn50(stats, 100.0 * self._nn50 / n)
        _set_mean(stats, mean_rr_ms)
        _set_beats(stats, n)
        _set_artifact_pct(stats, 100.0 * self._n_artifacts / total)
        _set_coverage(stats, min(mean_rr_ms * n / 1000.0 / self._window_s, 1.0))
        return stats
