"""Streaming RR-interval artifact detection and correction.

A chest strap reports one RR interval per detected heartbeat. Missed R waves (a beat not
detected: the interval spans two beats), extra detections (noise seen as a beat: one interval
split in two), ectopic (premature) beats and outright garbage all distort HRV, DFA α1 most of
all. :class:`RrCleaner` classifies every incoming interval immediately, with no look-ahead, so
the live view is never delayed by a beat (added delay: 0 beats).

Method: a causal form of Lipponen & Tarvainen (2019), whose thresholds adapt to the
variability of the series instead of a fixed 20 % rule (which flags 5–8 % of the beats of a
healthy person at rest, whose beat-to-beat changes often exceed 20 %):

* ``m`` is the median of the last ``median_beats`` (11, as the paper) *reference* values:
  accepted intervals and ectopic intervals as they came, missed/extra beats as corrected.
  Raw ectopic values are kept so that a genuine step change in heart rate moves the median
  within ~6 beats instead of being rejected for ever.
* ``dRR = rr − previous output interval`` and ``mRR = rr − m``, with negative ``mRR``
  doubled (the paper's asymmetry: short intervals are the likelier artifacts).
* Time-varying thresholds as in the paper: ``Th1 = α·QD(|dRR|)`` and ``Th2 = α·QD(|mRR|)``,
  ``α = 5.2``, ``QD`` the quartile deviation ``(Q3 − Q1)/2`` over a window of ``window_beats``
  (91) beats. The paper centres the window; here it holds the last 91 *accepted* beats (no
  look-ahead, and artifacts cannot inflate the thresholds during a burst of garbage). Until
  ``_MIN_WINDOW`` (20) values are in it, Malik's fixed 20 % rule stands in (warm-up). Every
  threshold is at least ``floor_frac`` (5 %) of ``m``: at low variability (a steady run at
  170 bpm, RR resolution 1 ms) α·QD alone would flag strap jitter of a few milliseconds.
* Classification of an interval ``rr`` (defaults in brackets):

  1. ``out_of_range``: not finite or outside [0.25 s, 2.5 s] (240–24 bpm). Dropped.
  2. Until 3 reference values exist, every in-range interval is accepted.
  3. If the previous interval was flagged *short* (``a``):

     - ``extra``: ``a + rr ≈ m`` (within ``pair_tol`` = 0.25·m): ``rr`` ends at a spurious
       detection. Dropped: the corrected value already given to ``a`` stands for the merged
       interval. When ``a`` itself was too short to be in range (< 0.25 s, dropped), ``rr``
       becomes the merged interval ``a + rr`` instead.
     - ``ectopic`` (compensatory pause): ``rr > m`` and ``a + rr ≈ 2·m``: the long half of a
       short-long pair. Corrected so the pair keeps its sum: ``a + rr − m``.

  4. ``missed`` (the paper's long-beat test with ``rr/2 ≈ m``, extended to 3): ``dRR > Th1``
     and ``rr ≈ k·r`` for k = 2 or 3 (within ``missed_tol`` = 0.25·r), ``r`` the median or
     the previous interval (in the fast phase of a high-HRV breathing cycle the median lags):
     k − 1 beats were not detected. Split into k equal intervals ``rr / k``
     (``CleanBeat.beats == k``).
  5. ``ectopic`` (short): ``|dRR| > Th1`` and ``2·mRR < −3·Th2`` (the paper's ``|mRR| > 3``
     in units of ``Th2``). Corrected to ``m``; remembered as ``a`` for rule 3.
  6. ``ectopic`` (long): ``|dRR| > Th1`` and ``mRR > 3·Th2``. Corrected to ``m``.
  7. otherwise accepted unchanged.

What the causal form leaves out: the paper's subspace tests ``S12`` and ``S22`` look at the
next one and two ``dRR`` values (a short beat is confirmed by the long one after it). Without
them a moderately premature beat (≲ 40 % early) at high resting HRV is left in, where the
paper would flag it; artifacts of running data (low HRV, thresholds near the 5 % floor) and
missed or extra beats are still found (tests). The paper's tests need a 2-beat delay.

Every interval is returned as a :class:`CleanBeat` that keeps the raw value. State is bounded:
the 11-value median buffer, two 91-value sorted windows and one pending value; O(log 91 + 91)
per beat (binary search and a short list move).

References:
    Lipponen, J. A. & Tarvainen, M. P. (2019). A robust algorithm for heart rate variability
    time series artefact correction using novel beat classification. *Journal of Medical
    Engineering & Technology* 43(3), 173–181.

    Malik, M., Cripps, T., Farrell, T. & Camm, A. J. (1989). Prognostic value of heart rate
    variability after myocardial infarction. *Medical & Biological Engineering & Computing*
    27, 603–611 (the 20 % rule, used during warm-up).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from array import array
from bisect import bisect_left as _bisect_left
from bisect import insort as _insort
from collections import deque

from processing.records import slot_setters

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
_MIN_WINDOW = 20  # accepted beats in the threshold windows before the thresholds are trusted
_WARMUP_FRAC = 0.2  # Malik's 20 % rule, used until then


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


_new = object.__new__
_set_rr, _set_artifact, _set_raw, _set_beats = slot_setters(
    CleanBeat, "rr_s", "artifact", "raw_rr_s", "beats"
)
assert tuple(f.name for f in dataclasses.fields(CleanBeat)) == ("rr_s", "artifact", "raw_rr_s",
                                                                 "beats")


def _accepted(rr_s: float) -> CleanBeat:
    """``CleanBeat(rr_s=rr_s, artifact=None, raw_rr_s=rr_s)``, the result of nearly every beat,
    without the dataclass ``__init__`` (see :func:`processing.records.slot_setters`)."""
    beat = _new(CleanBeat)
    _set_rr(beat, rr_s)
    _set_artifact(beat, None)
    _set_raw(beat, rr_s)
    _set_beats(beat, 1)
    return beat


class _QuartileWindow:
    """The last ``size`` values, kept sorted too: quartile deviation in O(1), update in
    O(log size + size) (a binary search and a short move).

    Both copies are ``array('d')`` (8 bytes a value: 1.5 KB for two 91-beat windows, against
    ~6 KB as lists of float objects; the per-athlete state budget is 64 KB, issue #4)."""

    __slots__ = ("_count", "_head", "_ring", "_size", "_sorted")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = array("d", bytes(8 * size))  # insertion order, a ring
        self._head = 0  # index of the oldest value once full
        self._count = 0
        self._sorted = array("d")

    def __len__(self) -> int:
        return len(self._sorted)

    def push(self, value: float) -> None:
        ordered, ring = self._sorted, self._ring
        if self._count == self._size:
            head = self._head
            del ordered[_bisect_left(ordered, ring[head])]
            ring[head] = value
            head += 1
            self._head = 0 if head == self._size else head  # (head + 1) % size
        else:
            ring[self._count] = value
            self._count += 1
        _insort(ordered, value)

    def quartile_deviation(self) -> float:
        """``(Q3 − Q1) / 2``, quantiles interpolated linearly (numpy's and pandas' default)."""
        return 0.5 * (self._quantile(0.75) - self._quantile(0.25))

    def _quantile(self, p: float) -> float:
        values = self._sorted
        pos = p * (len(values) - 1)
        lo = int(pos)
        frac = pos - lo
        if frac == 0.0:
            return values[lo]
        return values[lo] + (values[lo + 1] - values[lo]) * frac


class RrCleaner:
    """Causal RR artifact detector and corrector (see the module docstring for the rules).

    Args:
        median_beats: length of the running-median reference buffer (11).
        window_beats: accepted beats over which the quartile deviations of ``|dRR|`` and
            ``|mRR|`` are taken (91).
        alpha: threshold multiplier of the quartile deviations (5.2).
        floor_frac: no threshold is below this fraction of the median (0.05).
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
        window_beats: int = 91,
        alpha: float = 5.2,
        floor_frac: float = 0.05,
        missed_tol: float = 0.25,
        pair_tol: float = 0.25,
    ) -> None:
        if median_beats < _WARMUP_BEATS:
            raise ValueError(f"median_beats must be at least {_WARMUP_BEATS}, got {median_beats}")
        if window_beats < _MIN_WINDOW:
            raise ValueError(f"window_beats must be at least {_MIN_WINDOW}, got {window_beats}")
        if not (math.isfinite(alpha) and alpha > 0.0):
            raise ValueError(f"alpha must be a positive number, got {alpha}")
        for name, value in (
            ("floor_frac", floor_frac),
            ("missed_tol", missed_tol),
            ("pair_tol", pair_tol),
        ):
            if not 0.0 < value < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {value}")
        self._reference: deque[float] = deque(maxlen=median_beats)
        self._abs_drr = _QuartileWindow(window_beats)
        self._abs_mrr = _QuartileWindow(window_beats)
        self._alpha = alpha
        self._floor_frac = floor_frac
        self._missed_tol = missed_tol
        self._pair_tol = pair_tol
        self._prev_out_s = math.nan  # previous output interval (dRR is taken against it)
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

    def thresholds_s(self) -> tuple[float, float] | None:
        """Current ``(Th1, Th2)``, seconds, before the floor; None during warm-up."""
        if len(self._abs_mrr) < _MIN_WINDOW:
            return None
        return (
            self._alpha * self._abs_drr.quartile_deviation(),
            self._alpha * self._abs_mrr.quartile_deviation(),
        )

    def update(self, rr_s: float) -> CleanBeat:
        """Classify one RR interval (seconds) and return it cleaned."""
        beat = self._classify(rr_s)
        self.beats_seen += 1
        kind = beat.artifact
        if kind is not None:
            self.artifacts_seen += 1
            self._by_kind[kind] += 1
        return beat

    def _limits(self, m: float) -> tuple[float, float, float]:
        """``(dRR gate, short limit, long limit)``, seconds, for the median ``m``."""
        thresholds = self.thresholds_s()
        if thresholds is None:
            warm = _WARMUP_FRAC * m
            return warm, warm, warm
        th1, th2 = thresholds
        floor = self._floor_frac * m
        return max(th1, floor), max(1.5 * th2, floor), max(3.0 * th2, floor)

    def _classify(self, rr: float) -> CleanBeat:
        pending, pending_fix = self._pending_short_s, self._pending_fix_s
        self._pending_short_s = None
        reference = self._reference
        m: float | None = None  # self.median_s(), inline: once per beat
        if len(reference) >= _WARMUP_BEATS:
            ordered = sorted(reference)
            mid = len(ordered) // 2
            m = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
        if pending is not None and m is not None and math.isfinite(rr) and rr > 0.0:
            pair = pending + rr
            if abs(pair - m) <= self._pair_tol * m:  # the two halves of a split interval
                self._reference.append(pair)
                self._prev_out_s = pair
                if pending_fix > 0.0:  # the first half was already given a corrected value
                    return CleanBeat(rr_s=None, artifact=ArtifactKind.EXTRA, raw_rr_s=rr, beats=0)
                return CleanBeat(rr_s=pair, artifact=ArtifactKind.EXTRA, raw_rr_s=rr)
        if not MIN_RR_S <= rr <= MAX_RR_S:  # also when not finite (NaN compares false)
            if math.isfinite(rr) and 0.0 < rr < MIN_RR_S:
                # Too short to be a beat, but maybe the first half of an extra detection.
                self._pending_short_s, self._pending_fix_s = rr, 0.0
            return CleanBeat(rr_s=None, artifact=ArtifactKind.OUT_OF_RANGE, raw_rr_s=rr, beats=0)
        prev = self._prev_out_s
        if m is None or prev != prev:  # warm-up (prev is NaN before the first output)
            return self._accept(rr, m, prev)
        if pending is not None and rr > m and abs(pending + rr - 2.0 * m) <= self._pair_tol * m:
            self._reference.append(rr)  # compensatory pause after a premature beat
            fixed = pending + rr - pending_fix
            self._prev_out_s = fixed
            return CleanBeat(rr_s=fixed, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
        dev = rr - m
        drr = rr - prev
        floor = self._floor_frac * m
        if abs(dev) <= floor and abs(drr) <= floor:
            return self._accept(rr, m, prev)  # within every threshold's floor: no quantiles
        gate, short_limit, long_limit = self._limits(m)
        if drr > gate:
            missed = self._missed(rr, m, prev)
            if missed is not None:
                return missed
        if abs(drr) > gate:
            if -dev > short_limit:
                self._reference.append(rr)
                self._pending_short_s, self._pending_fix_s = rr, m
                self._prev_out_s = m
                return CleanBeat(rr_s=m, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
            if dev > long_limit:
                self._reference.append(rr)
                self._prev_out_s = m
                return CleanBeat(rr_s=m, artifact=ArtifactKind.ECTOPIC, raw_rr_s=rr)
        return self._accept(rr, m, prev)

    def _missed(self, rr: float, m: float, prev: float) -> CleanBeat | None:
        """Rule 4: ``rr ≈ k·r`` for k = 2, 3 and r the median or the previous interval."""
        lowest = (1.0 - self._missed_tol) * m
        # The previous interval stands in for a lagging median only when it is not short
        # itself, and no split may give intervals short against the median: otherwise one
        # undetected extra beat (two half intervals) could make every later beat "missed".
        for r in (m, prev) if prev >= lowest else (m,):
            k = round(rr / r)
            if k in (2, 3) and abs(rr - k * r) <= self._missed_tol * r and rr / k >= lowest:
                self._reference.append(rr / k)
                self._prev_out_s = rr / k
                return CleanBeat(rr_s=rr / k, artifact=ArtifactKind.MISSED, raw_rr_s=rr, beats=k)
        return None

    def _accept(self, rr: float, m: float | None, prev: float) -> CleanBeat:
        if m is not None and prev == prev:
            dev = rr - m
            self._abs_drr.push(abs(rr - prev))
            self._abs_mrr.push(-2.0 * dev if dev < 0.0 else dev)
        self._reference.append(rr)
        self._prev_out_s = rr
        return _accepted(rr)


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
