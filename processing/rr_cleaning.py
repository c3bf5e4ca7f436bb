"""Streaming RR-interval artifact detection and correction.

A chest strap reports one RR interval per detected heartbeat. Missed R waves (a beat not
detected: the interval spans two beats), extra detections (noise seen as a beat: one interval
split in two), ectopic (premature) beats and outright garbage all distort HRV, DFA α1 most of
all. :class:`RrCleaner` classifies every incoming interval immediately, with no look-ahead, so
the live view is never delayed by a beat.

Method (a simplified, causal form of Lipponen & Tarvainen 2019):

* The reference ``m`` is the median of the last ``median_beats`` (default 11) *reference*
  values: accepted intervals and ectopic intervals as they came, missed/extra beats as
  corrected. Median, not mean, so isolated artifacts do not move it; raw ectopic values are
  kept so that a genuine step change in heart rate moves the median within ~6 beats instead
  of being rejected for ever.
* Until 3 reference values exist, every in-range interval is accepted (warm-up).
* Classification of an interval ``rr`` (thresholds relative to ``m``, defaults in brackets):

  1. ``out_of_range``: not finite or outside [0.25 s, 2.5 s] (240–24 bpm). Dropped.
  2. If the previous interval was *short* (``a``):

     - ``extra``: ``a + rr ≈ m`` (within ``pair_tol`` = 0.25·m): ``rr`` ends at a spurious
       detection. Dropped: the corrected value already given to ``a`` stands for the merged
       interval. When ``a`` itself was too short to be in range (< 0.25 s, dropped), ``rr``
       becomes the merged interval ``a + rr`` instead.
     - ``ectopic`` (compensatory pause): ``rr > m`` and ``a + rr ≈ 2·m``: the long half of a
       short-long pair. Corrected so the pair keeps its sum: ``a + rr − m``.

  3. ``ectopic`` (short): ``rr < (1 − short_frac)·m`` (short_frac = 0.2, the classic
     20 % rule of Malik et al. 1989). Corrected to ``m``; remembered as ``a`` for rule 2.
  4. ``missed``: ``rr ≈ k·m`` for k = 2 or 3 (within ``missed_tol`` = 0.25·m): k − 1 beats
     were not detected. Split into k equal intervals ``rr / k`` (``CleanBeat.beats == k``).
  5. ``ectopic`` (long): ``rr > (1 + long_frac)·m`` (long_frac = 0.2). Corrected to ``m``.
  6. otherwise accepted unchanged.

Every interval is returned as a :class:`CleanBeat` that keeps the raw value. State is bounded
(the median buffer and one pending value).

References:
    Lipponen, J. A. & Tarvainen, M. P. (2019). A robust algorithm for heart rate variability
    time series artefact correction using novel beat classification. *Journal of Medical
    Engineering & Technology* 43(3), 173–181.

    Malik, M., Cripps, T., Farrell, T. & Camm, A. J. (1989). Prognostic value of heart rate
    variability after myocardial infarction. *Medical & Biological Engineering & Computing*
    27, 603–611 (the 20 % rule).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import deque

__all__ = [
    "MAX_RR_S",
    "MIN_RR_S",
    "ArtifactKind",
    "ArtifactWindow",
    "CleanBeat",
    "RrCleaner",
]

MIN_RR_S = 0.25
"""Shortest plausible RR interval, seconds (240 bpm)."""
MAX_RR_S = 2.5
"""Longest plausible RR interval, seconds (24 bpm)."""
_WARMUP_BEATS = 3  # reference values needed before a median is trusted


class ArtifactKind(enum.StrEnum):
    """Why an RR interval was corrected or dropped."""

    MISSED = "missed"  # one or two beats not detected: interval ≈ k × median
    EXTRA = "extra"  # a spurious detection split one interval in two
    ECTOPIC = "ectopic"  # premature beat, its compensatory pause, or an isolated outlier
    OUT_OF_RANGE = "out_of_range"  # not finite, < 0.25 s or > 2.5 s


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CleanBeat:
    """One RR interval after artifact classification."""

    rr_s: float | None
    """Accepted or corrected interval, seconds; None when the interval was dropped. For a
    missed beat this is the length of each of the ``beats`` equal intervals."""
    artifact: ArtifactKind | None
    """The artifact found, None for a clean interval."""
    raw_rr_s: float
    """The interval as received, seconds."""
    beats: int = 1
    """Number of output intervals of length ``rr_s`` this raw interval stands for: 1, 0 when
    dropped, 2 or 3 for a missed-beat split."""


class RrCleaner:
    """Causal RR artifact detector and corrector (see the module docstring for the rules).

    Args:
        median_beats: length of the running-median reference buffer.
        short_frac: an interval shorter than ``(1 - short_frac)·median`` is short (ectopic).
        long_frac: an interval longer than ``(1 + long_frac)·median`` is long.
        missed_tol: tolerance of ``rr ≈ k·median`` (missed beats), fraction of the median.
        pair_tol: tolerance of the extra-beat and compensatory-pause sums, fraction of the
            median.

    Attributes:
        beats_seen: intervals passed to :meth:`update`.
        artifacts_seen: intervals classified as an artifact.

    Example:
        >>> cleaner = RrCleaner()
        >>> for rr in (0.80, 0.81, 0.79, 0.80):
        ...     _ = cleaner.update(rr)
        >>> cleaner.update(1.60)  # one beat missed
        CleanBeat(rr_s=0.8, artifact=<ArtifactKind.MISSED: 'missed'>, raw_rr_s=1.6, beats=2)
        >>> cleaner.update(0.30).artifact  # short: a premature beat or half of an extra one
        <ArtifactKind.ECTOPIC: 'ectopic'>
        >>> cleaner.update(0.50).artifact  # 0.30 + 0.50 ≈ 0.80: a spurious detection
        <ArtifactKind.EXTRA: 'extra'>
        >>> cleaner.update(0.0).artifact
        <ArtifactKind.OUT_OF_RANGE: 'out_of_range'>
        >>> cleaner.beats_seen, cleaner.artifacts_seen, round(cleaner.artifact_pct, 1)
        (8, 4, 50.0)
    """

    def __init__(
        self,
        *,
        median_beats: int = 11,
        short_frac: float = 0.2,
        long_frac: float = 0.2,
        missed_tol: float = 0.25,
        pair_tol: float = 0.25,
    ) -> None:
        if median_beats < _WARMUP_BEATS:
            raise ValueError(f"median_beats must be at least {_WARMUP_BEATS}, got {median_beats}")
        for name, value in (
            ("short_frac", short_frac),
            ("long_frac", long_frac),
            ("missed_tol", missed_tol),
            ("pair_tol", pair_tol),
        ):
            if not 0.0 < value < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {value}")
        self._reference: deque[float] = deque(maxlen=median_beats)
        self._short_frac = short_frac
        self._long_frac = long_frac
        self._missed_tol = missed_tol
        self._pair_tol = pair_tol
        self._pending_short_s: float | None = None
        self._pending_fix_s = 0.0
        self.beats_seen = 0
        self.artifacts_seen = 0
        self._by_kind = dict.fromkeys(ArtifactKind, 0)

    @property
    def artifact_pct(self) -> float:
        """Share of all intervals seen that were artifacts, percent (0 before any beat)."""
        return 100.0 * self.artifacts_seen / self.beats_seen if self.beats_seen else 0.0

    def counts(self) -> dict[ArtifactKind, int]:
        """Artifacts seen so far, per kind (a copy)."""
        return dict(self._by_kind)

    def median_s(self) -> float | None:
        """Current reference median, seconds; None during warm-up."""
        if len(self._reference) < _WARMUP_BEATS:
            return None
        ordered = sorted(self._reference)
        mid = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[mid]
        return 0.5 * (ordered[mid - 1] + ordered[mid])

    def update(self, rr_s: float) -> CleanBeat:
        """Classify one RR interval (seconds) and return it cleaned."""
        beat = self._classify(rr_s)
        self.beats_seen += 1
        if beat.artifact is not None:
            self.artifacts_seen += 1
            self._by_kind[beat.artifact] += 1
        return beat

    def _classify(self, rr: float) -> CleanBeat:
        pending, pending_fix = self._pending_short_s, self._pending_fix_s
        self._pending_short_s = None
        if not (math.isfinite(rr) and MIN_RR_S <= rr <= MAX_RR_S):
            if math.isfinite(rr) and 0.0 < rr < MIN_RR_S:
                # Too short to be a beat, but maybe the first half of an extra detection.
                self._pending_short_s, self._pending_fix_s = rr, 0.0
            return CleanBeat(rr_s=None, artifact=ArtifactKind.OUT_OF_RANGE, raw_rr_s=rr, beats=0)
        m = self.median_s()
        if m is None:
            self._reference.append(rr)
            return CleanBeat(rr_s=rr, artifact=None, raw_rr_s=rr)
        if pending is not None:
            pair = pending + rr
            if abs(pair - m) <= self._pair_tol * m:
                self._reference.append(pair)
                if pending_fix > 0.0:  # the first half was already given a corrected value
                    return CleanBeat(rr_s=None, artifact=ArtifactKind.EXTRA, raw_rr_s=rr, beats=0)
                return CleanBeat(rr_s=pair, artifact=ArtifactKind.EXTRA, raw_rr_s=rr)
            if rr > m and abs(pair - 2.0 * m) <= self._pair_tol * m:
                self._reference.append(rr)
                fixed = pair - pending_fix
                return CleanBeat(rr_s=fixed, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
        if rr < (1.0 - self._short_frac) * m:
            self._reference.append(rr)
            self._pending_short_s, self._pending_fix_s = rr, m
            return CleanBeat(rr_s=m, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
        if rr > (1.0 + self._long_frac) * m:
            k = round(rr / m)
            if k in (2, 3) and abs(rr - k * m) <= self._missed_tol * m:
                self._reference.append(rr / k)
                return CleanBeat(rr_s=rr / k, artifact=ArtifactKind.MISSED, raw_rr_s=rr, beats=k)
            self._reference.append(rr)
            return CleanBeat(rr_s=m, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
        self._reference.append(rr)
        return CleanBeat(rr_s=rr, artifact=None, raw_rr_s=rr)


class ArtifactWindow:
    """Artifact percentage over a sliding window of event time.

    ``get()`` is ``100 × artifact beats / all beats`` among beats whose time ``t`` satisfies
    ``t_last − window_s < t ≤ t_last``; None before the first beat. O(1) amortised per beat;
    at most ``max_beats`` beats are kept (the oldest are dropped first).

    Example:
        >>> window = ArtifactWindow(window_s=10.0)
        >>> window.update(1.0, artifact=False)
        >>> window.update(2.0, artifact=True)
        >>> window.get()
        50.0
        >>> window.update(12.5, artifact=False)  # the beats at 1.0 s and 2.0 s leave
        >>> window.get()
        0.0
    """

    def __init__(self, window_s: float = 120.0, *, max_beats: int | None = None) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        self._window_s = window_s
        self._max_beats = max_beats or math.ceil(window_s / MIN_RR_S) + 1
        self._beats: deque[tuple[float, bool]] = deque()
        self._artifacts = 0

    def update(self, beat_time_s: float, *, artifact: bool) -> None:
        """Add one beat at ``beat_time_s`` (event time, seconds, non-decreasing)."""
        if len(self._beats) >= self._max_beats:
            self._evict()
        self._beats.append((beat_time_s, artifact))
        self._artifacts += artifact
        horizon = beat_time_s - self._window_s
        while self._beats and self._beats[0][0] <= horizon:
            self._evict()

    def _evict(self) -> None:
        _, was_artifact = self._beats.popleft()
        self._artifacts -= was_artifact

    def get(self) -> float | None:
        """Artifact share in the window, percent; None when the window is empty."""
        if not self._beats:
            return None
        return 100.0 * self._artifacts / len(self._beats)
