"""Beat clock: timestamps for RR intervals, which carry none on the wire.

A Heart Rate Measurement frame lists the RR intervals that ended since the previous frame,
oldest first (0..9 of them; a frame with none is normal below ~60 bpm). The strap does not say
when the beats happened. We place them by chaining: each beat is the previous beat plus its RR.

* The chain is anchored on the first frame by back-dating from its arrival (the newest beat is
  put at the arrival time).
* A beat cannot happen after the frame that reports it arrived: when the chain runs ahead of the
  arrival time (summed RR drifts from the receiver's clock, or the first anchor was late), it is
  pulled back to the arrival. Over a session the anchor converges to the true minimum lag.
* When the newest beat of a frame is more than ``gap_threshold_s`` before its arrival, beats were
  lost (frames dropped, link down): that is an RR gap. The chain is re-anchored by back-dating
  from the arrival, and the gap's length is reported so processing never computes a successive
  difference across it.

Pure: no I/O, no clock; arrival times are passed in (monotonic seconds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

# A strap notifies about once per second with the beats since the previous frame, so the newest
# beat of a frame is normally < 1 s old on arrival. 1.2 s leaves room for BLE connection-interval
# jitter (tens of ms). A single lost frame at high HR can hide below it; longer losses cannot.
DEFAULT_GAP_THRESHOLD_S = 1.2


@dataclasses.dataclass(frozen=True, slots=True)
class PlacedBeats:
    """Beat times for one frame."""

    beat_times_s: tuple[float, ...]
    """Monotonic time of the beat ending each RR interval, same order as the frame."""
    gap_s: float | None
    """Seconds of beats judged missing before this frame; None when the chain is continuous."""


class BeatClock:
    """Places the RR intervals of successive frames of one sensor on the monotonic time line."""

    def __init__(self, gap_threshold_s: float = DEFAULT_GAP_THRESHOLD_S) -> None:
        self._gap_threshold_s = gap_threshold_s
        self._last_beat_s: float | None = None

    @property
    def last_beat_s(self) -> float | None:
        """Monotonic time of the newest placed beat, None before the first beat."""
        return self._last_beat_s

    def place(self, arrival_s: float, rr_s: Sequence[float]) -> PlacedBeats:
        """Place the RR intervals of a frame that arrived at ``arrival_s``.

        >>> clock = BeatClock()
        >>> clock.place(10.0, [0.5, 0.5]).beat_times_s
        (9.5, 10.0)
        >>> clock.place(11.0, [0.75]).beat_times_s
        (10.75,)
        >>> placed = clock.place(20.0, [1.0])
        >>> placed.gap_s, placed.beat_times_s
        (8.25, (20.0,))
        """
        if not rr_s:
            return PlacedBeats((), None)
        total = sum(rr_s)
        gap: float | None = None
        last = self._last_beat_s
        if last is None:
            start = arrival_s - total
        else:
            missing = arrival_s - (last + total)
            if missing > self._gap_threshold_s:
                gap = missing
                start = arrival_s - total
            else:
                # Never place a beat after the arrival of the frame that reports it.
                start = last - max(0.0, -missing)
        times: list[float] = []
        t = start
        for rr in rr_s:
            t += rr
            times.append(t)
        self._last_beat_s = times[-1]
        return PlacedBeats(tuple(times), gap)
