"""Heart-rate streams: quality gate, time in zones, TRIMP, decoupling and rate of rise.

Every class here is a pure streaming state machine on event time (``time_mono_s`` of the
readings, seconds): no clock, no I/O, bounded state. They consume the HR the strap *sent*
(an integer in beats per minute), one value per Heart Rate Measurement frame (~1 Hz).

Gaps: a stretch between two accepted readings longer than :data:`MAX_GAP_S` (5 s) is a gap
(the strap dropped, the runner took it off). Time-integrated metrics (zones, TRIMP) do not
count it: a gap is a gap, never an invented value (DESIGN.md "Protocol facts").
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from collections import deque
from typing import Final, Literal

from ingest.records import Contact
from processing.settings import AthleteSettings

__all__ = [
    "MAX_GAP_S",
    "Decoupling",
    "HrQuality",
    "HrVerdict",
    "RejectReason",
    "RiseRate",
    "Trimp",
    "ZoneTimer",
]

MAX_GAP_S: Final = 5.0
"""Longest interval between two accepted HR readings that still counts as continuous (s).
Straps send ~1 Hz; 5 s tolerates a few lost frames but not a dropped link."""

RejectReason = Literal["above_max", "impossible_jump", "no_contact", "stale", "zero"]
_REASONS: Final[tuple[RejectReason, ...]] = (
    "zero",
    "no_contact",
    "above_max",
    "stale",
    "impossible_jump",
)


@dataclasses.dataclass(frozen=True, slots=True)
class HrVerdict:
    """Outcome of :meth:`HrQuality.check` for one HR value."""

    accepted: bool
    """True when the value may be used for metrics and alerts."""
    reason: RejectReason | None = None
    """Why it was rejected; None when accepted."""


_ACCEPTED: Final = HrVerdict(True)


class HrQuality:
    """Decides whether an HR value from a strap may be used for metrics.

    Rules, checked in this order (the first that matches is the reason, and is counted):

    1. ``zero``: HR 0 means the sensor has no value (Heart Rate Service sends 0 while it
       locks on). Never a measurement.
    2. ``no_contact``: the strap reports contact supported but not detected
       (:attr:`Contact.NOT_DETECTED`): the value is stale or noise (Polar H10 keeps sending
       one when unclipped).
    3. ``above_max``: HR above ``max_hr_bpm + hr_margin_bpm`` (200 bpm by default).
    4. ``stale``: the same HR value repeated exactly, every frame carrying no RR interval,
       for ``stale_s`` (20 s) or longer: an unworn strap replaying its last value. A real
       heart produces RR intervals (one per beat, so a ≥ 25 bpm heart puts one in almost
       every 1-s frame) and its HR wobbles. The rule needs ``rr_count``: with ``None``
       (caller does not know) it is not applied, because a steady effort can legitimately
       hold one integer HR for minutes.
    5. ``impossible_jump``: a change from the last *accepted* value of more than
       ``max_jump_bpm`` (30 bpm) per ``jump_window_s`` (1 s) of elapsed time, i.e. the
       allowance is ``30 bpm × max(1, Δt / 1 s)``. Rejected values do not move the
       reference, so a spike is dropped alone; the allowance grows with the time since the
       last accepted value, which lets a genuine new level (or a wrong first value) be
       accepted after a few seconds, and after a gap of a few seconds any plausible value is
       accepted (recovery after a gap).

    ``counts`` holds the rejections per reason, ``accepted`` the accepted values.

    >>> q = HrQuality(AthleteSettings())
    >>> q.check(0.0, 120, Contact.DETECTED).accepted
    True
    >>> q.check(1.0, 165, Contact.DETECTED).reason
    'impossible_jump'
    >>> q.check(2.0, 0, Contact.DETECTED).reason
    'zero'
    >>> q.counts["impossible_jump"], q.accepted
    (1, 1)
    """

    def __init__(
        self,
        settings: AthleteSettings,
        *,
        max_jump_bpm: float = 30.0,
        jump_window_s: float = 1.0,
        stale_s: float = 20.0,
    ) -> None:
        self._limit_bpm = settings.max_hr_bpm + settings.hr_margin_bpm
        self._max_jump_bpm = max_jump_bpm
        self._jump_window_s = jump_window_s
        self._stale_s = stale_s
        self._last_t: float | None = None
        self._last_hr: float | None = None
        self._stale_value: float | None = None
        self._stale_since: float | None = None
        self.counts: dict[RejectReason, int] = dict.fromkeys(_REASONS, 0)
        """Rejected values per reason."""
        self.accepted = 0
        """Accepted values."""

    def check(
        self,
        time_mono_s: float,
        hr_bpm: float,
        contact: Contact = Contact.UNSUPPORTED,
        *,
        rr_count: int | None = None,
    ) -> HrVerdict:
        """Verdict on ``hr_bpm`` (bpm) received at ``time_mono_s`` (s).

        Args:
            time_mono_s: event time of the reading (s).
            hr_bpm: the HR the sensor sent (bpm).
            contact: skin contact from the frame's flags.
            rr_count: number of RR intervals in the frame, if known (enables the stale rule).
        """
        reason = self._reason(time_mono_s, hr_bpm, contact, rr_count)
        if reason is not None:
            self.counts[reason] += 1
            return HrVerdict(False, reason)
        self.accepted += 1
        self._last_t = time_mono_s
        self._last_hr = hr_bpm
        return _ACCEPTED

    def _reason(
        self, t: float, hr: float, contact: Contact, rr_count: int | None
    ) -> RejectReason | None:
        if not math.isfinite(hr) or hr <= 0:
            return "zero"
        if contact is Contact.NOT_DETECTED:
            return "no_contact"
        if hr > self._limit_bpm:
            return "above_max"
        if self._is_stale(t, hr, rr_count):
            return "stale"
        if self._last_t is not None and self._last_hr is not None:
            dt = max(0.0, t - self._last_t)
            allowed = self._max_jump_bpm * max(1.0, dt / self._jump_window_s)
            if abs(hr - self._last_hr) > allowed:
                return "impossible_jump"
        return None

    def _is_stale(self, t: float, hr: float, rr_count: int | None) -> bool:
        if rr_count is None or rr_count > 0 or hr != self._stale_value:
            self._stale_value = hr if rr_count == 0 else None
            self._stale_since = t if rr_count == 0 else None
            return False
        return self._stale_since is not None and t - self._stale_since >= self._stale_s


class ZoneTimer:
    """Time spent in HR zones 1..5 (s), from accepted HR readings.

    Each interval between two consecutive readings is credited to the zone of the *earlier*
    reading (the value held until the next one arrived). Intervals longer than
    :data:`MAX_GAP_S` are gaps and not counted; readings at an earlier or equal time add
    nothing. Zones are :meth:`AthleteSettings.zone_of` (by % of max HR).

    >>> z = ZoneTimer(AthleteSettings())
    >>> for t, hr in [(0, 100), (1, 100), (2, 175), (3, 175), (20, 175)]:
    ...     z.update(t, hr)
    >>> z.seconds  # 2 s at 100 bpm (zone 1), 1 s at 175 bpm (zone 5), a 17-s gap
    (2.0, 0.0, 0.0, 0.0, 1.0)
    """

    def __init__(self, settings: AthleteSettings, *, max_gap_s: float = MAX_GAP_S) -> None:
        self._settings = settings
        self._max_gap_s = max_gap_s
        self._seconds = [0.0] * 5
        self._last_t: float | None = None
        self._last_zone = 1

    def update(self, time_mono_s: float, hr_bpm: float) -> None:
        """Add one accepted HR reading (bpm) at ``time_mono_s`` (s)."""
        if self._last_t is not None:
            dt = time_mono_s - self._last_t
            if dt <= 0:
                return
            if dt <= self._max_gap_s:
                self._seconds[self._last_zone - 1] += dt
        self._last_t = time_mono_s
        self._last_zone = self._settings.zone_of(hr_bpm)

    @property
    def seconds(self) -> tuple[float, float, float, float, float]:
        """Seconds in zones 1..5."""
        s = self._seconds
        return (s[0], s[1], s[2], s[3], s[4])

    def get(self) -> tuple[float, float, float, float, float]:
        """Same as :attr:`seconds`."""
        return self.seconds


class Trimp:
    """Banister's training impulse (TRIMP), accumulated live.

    ``TRIMP = Σ Δt_min × HRr × 0.64 × e^(b × HRr)`` with the heart-rate reserve fraction
    ``HRr = (HR − HR_rest) / (HR_max − HR_rest)`` clamped to [0, 1] and ``b = 1.92`` for men,
    ``1.67`` for women. Like :class:`ZoneTimer`, each interval (minutes) uses the HR of its
    earlier reading and gaps longer than :data:`MAX_GAP_S` are not counted. Dimensionless
    ("TRIMP units"); about 50 for 30 minutes at 150 bpm with HR_rest 55, HR_max 190.

    Hand value: HRr = 95/135 = 0.703704; 0.64 × e^(1.92 × 0.703704) = 0.64 × 3.862 = 2.4717;
    × 0.703704 × 30 min = 52.18.

    >>> trimp = Trimp(AthleteSettings(max_hr_bpm=190, resting_hr_bpm=55, sex="male"))
    >>> for t in range(30 * 60 + 1):
    ...     trimp.update(float(t), 150)
    >>> round(trimp.value, 2)
    52.18

    References:
        Banister, E. W. (1991). Modeling elite athletic performance. In MacDougall, Wenger &
        Green (eds.), *Physiological Testing of the High-Performance Athlete*, 403–424.
        Morton, R. H., Fitz-Clarke, J. R. & Banister, E. W. (1990). Modeling human
        performance in running. *J Appl Physiol* 69(3), 1171–1177.
    """

    def __init__(self, settings: AthleteSettings, *, max_gap_s: float = MAX_GAP_S) -> None:
        self._rest = settings.resting_hr_bpm
        self._reserve = settings.max_hr_bpm - settings.resting_hr_bpm
        self._b = 1.92 if settings.sex == "male" else 1.67
        self._max_gap_s = max_gap_s
        self._value = 0.0
        self._last_t: float | None = None
        self._last_weight = 0.0  # HRr × 0.64 e^(b HRr) of the last reading

    def update(self, time_mono_s: float, hr_bpm: float) -> None:
        """Add one accepted HR reading (bpm) at ``time_mono_s`` (s)."""
        if self._last_t is not None:
            dt = time_mono_s - self._last_t
            if dt <= 0:
                return
            if dt <= self._max_gap_s:
                self._value += dt / 60.0 * self._last_weight
        hrr = min(1.0, max(0.0, (hr_bpm - self._rest) / self._reserve))
        self._last_weight = hrr * 0.64 * math.exp(self._b * hrr)
        self._last_t = time_mono_s

    @property
    def value(self) -> float:
        """Accumulated TRIMP (dimensionless)."""
        return self._value

    def get(self) -> float:
        """Same as :attr:`value`."""
        return self._value


class Decoupling:
    """Aerobic decoupling (HR–pace, "Pa:Hr") of one run segment, in percent.

    ``EF = mean speed / mean HR`` (efficiency factor, m/s per bpm) over each half of the
    segment's *duration*; ``decoupling = (EF1 − EF2) / EF1 × 100``. Positive: HR drifted up
    (or pace down) in the second half; below ~5 % is usually read as aerobically coupled
    (Friel, *The Triathlete's Training Bible*; TrainingPeaks "Pa:Hr").

    Live and bounded: samples go into consecutive time buckets of ``bucket_s`` (10 s) event
    time holding a count and the sums of speed and HR. The segment's length is only known at
    the end, so :meth:`result` splits the buckets at the midpoint; the bucket holding the
    midpoint is divided in proportion to the time on either side (samples assumed uniform
    within it). At most ``max_buckets`` (256, i.e. 42 min at 10 s) are kept, 24 bytes each
    in one flat array: when full, neighbouring buckets are merged in pairs and the bucket
    length doubles, so any run length fits in 6 KB with the midpoint resolved to 1/256 of the
    run or better (issue #4: bounded per-athlete state).
    Means are per sample (HR readings arrive at a steady ~1 Hz).

    :meth:`result` is None when the segment is shorter than ``min_duration_s`` (600 s: the
    first minutes are dominated by the HR on-transient, so a short run says nothing about
    decoupling), or when a half has no samples or no HR.

    >>> d = Decoupling(min_duration_s=0)
    >>> for t in range(1201):  # 20 min; midpoint at 600 s
    ...     d.update(float(t), 3.5, 150.0 if t < 600 else 156.0)
    >>> round(d.result(), 2)  # EF 3.5/150 then 3.5/156: HR drifted up 4 %
    3.85
    """

    def __init__(
        self,
        *,
        bucket_s: float = 10.0,
        max_buckets: int = 256,
        min_duration_s: float = 600.0,
    ) -> None:
        if bucket_s <= 0 or max_buckets < 2:
            raise ValueError("bucket_s must be > 0 and max_buckets >= 2")
        self._bucket_s = bucket_s
        self._max_buckets = max_buckets
        self._min_duration_s = min_duration_s
        self._t0: float | None = None
        self._t_last = 0.0
        # per bucket, flat: count, Σ speed (m/s), Σ HR (bpm)
        self._buckets = array("d")

    def update(self, time_mono_s: float, speed_mps: float | None, hr_bpm: float) -> None:
        """Add one sample: speed (m/s) and HR (bpm) at ``time_mono_s`` (s).

        Samples with a missing or non-finite value, or earlier than the segment start, are
        ignored.
        """
        if speed_mps is None or not (math.isfinite(speed_mps) and math.isfinite(hr_bpm)):
            return
        if self._t0 is None:
            self._t0 = time_mono_s
        elapsed = time_mono_s - self._t0
        if elapsed < 0:
            return
        self._t_last = max(self._t_last, elapsed)
        k = int(elapsed // self._bucket_s)
        while k >= self._max_buckets:
            self._merge()
            k = int(elapsed // self._bucket_s)
        b = self._buckets
        if len(b) <= 3 * k:
            b.frombytes(bytes(8 * (3 * k + 3 - len(b))))  # zero buckets up to k (8 bytes each)
        b[3 * k] += 1.0
        b[3 * k + 1] += speed_mps
        b[3 * k + 2] += hr_bpm

    @property
    def buckets(self) -> int:
        """Buckets in use (at most ``max_buckets``)."""
        return len(self._buckets) // 3

    def _merge(self) -> None:
        b = self._buckets
        merged = array("d")
        for i in range(0, len(b), 6):
            pair = b[i : i + 6]
            merged.extend(
                pair[j] + (pair[j + 3] if len(pair) > j + 3 else 0.0) for j in range(3)
            )
        self._buckets = merged
        self._bucket_s *= 2.0

    def result(self) -> float | None:
        """Decoupling of the segment so far, percent; None when not meaningful (see above)."""
        if self._t0 is None or self._t_last < self._min_duration_s or self._t_last <= 0:
            return None
        mid = self._t_last / 2.0
        first = [0.0, 0.0, 0.0]
        second = [0.0, 0.0, 0.0]
        buckets = self._buckets
        for k in range(len(buckets) // 3):
            start = k * self._bucket_s
            share = min(1.0, max(0.0, (mid - start) / self._bucket_s))
            for j in range(3):
                value = buckets[3 * k + j]
                first[j] += value * share
                second[j] += value * (1.0 - share)
        if first[0] <= 0 or second[0] <= 0 or first[2] <= 0 or second[2] <= 0:
            return None
        ef1 = first[1] / first[2]  # (Σ speed / n) / (Σ HR / n)
        ef2 = second[1] / second[2]
        if ef1 <= 0:
            return None
        value = (ef1 - ef2) / ef1 * 100.0
        return value if math.isfinite(value) else None

    def get(self) -> float | None:
        """Same as :meth:`result`."""
        return self.result()


class RiseRate:
    """HR rise over a trailing window: ``HR now − min HR in [t − window_s, t]`` (bpm).

    A monotonic deque holds the candidates for the window minimum (times with strictly
    increasing HR), so each update is O(1) amortised. This is the quantity of the HR-surge
    alert (+20 bpm within 30 s, DESIGN.md "Alerts") and of the model's ground truth
    (``ingest.virtual.athlete.surge_time_s``). Times that run backwards are clamped to the
    latest seen. The deque never holds more than ``max_len`` (4096) entries; with integer HR
    values it holds at most one per distinct value (< 256) anyway.

    >>> r = RiseRate(30.0)
    >>> [r.update(t, hr) for t, hr in [(0, 100), (10, 95), (20, 110), (41, 118)]]
    [0.0, 0.0, 15.0, 8.0]
    """

    def __init__(self, window_s: float = 30.0, *, max_len: int = 4096) -> None:
        self.window_s = window_s
        self._max_len = max_len
        self._q: deque[tuple[float, float]] = deque()
        self._last_t = -math.inf
        self._rise = 0.0

    def update(self, time_mono_s: float, hr_bpm: float) -> float:
        """Add an accepted HR reading (bpm) at ``time_mono_s`` (s); returns the rise (bpm)."""
        t = max(time_mono_s, self._last_t)
        self._last_t = t
        q = self._q
        while q and q[-1][1] >= hr_bpm:
            q.pop()
        q.append((t, hr_bpm))
        horizon = t - self.window_s - 1e-9
        while q[0][0] < horizon:
            q.popleft()
        if len(q) > self._max_len:
            q.popleft()
        self._rise = float(hr_bpm - q[0][1])
        return self._rise

    def get(self) -> float:
        """The rise (bpm) at the last update; 0 before any."""
        return self._rise

    def window_min_bpm(self) -> float | None:
        """Lowest HR in the window at the last update (bpm); None before any."""
        return self._q[0][1] if self._q else None
