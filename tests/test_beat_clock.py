"""Beat clock: RR intervals placed on the time line, lost frames detected."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ingest.beat_clock import BeatClock


def _frames(beats: list[float], period: float) -> list[tuple[float, list[float]]]:
    """Group true beat times into frames sent every ``period`` s with the RR since last frame."""
    frames: list[tuple[float, list[float]]] = []
    prev_beat = 0.0
    i = 0
    t = period
    while i < len(beats):
        rr: list[float] = []
        while i < len(beats) and beats[i] <= t:
            rr.append(beats[i] - prev_beat)
            prev_beat = beats[i]
            i += 1
        frames.append((t, rr))
        t += period
    return frames


def test_first_frame_is_back_dated_from_arrival() -> None:
    clock = BeatClock()
    placed = clock.place(100.0, [0.8, 0.7])
    assert placed.beat_times_s == (99.3, 100.0)
    assert placed.gap_s is None


def test_frames_without_rr_are_normal() -> None:
    clock = BeatClock()
    clock.place(10.0, [1.2])
    assert clock.place(11.0, []).beat_times_s == ()
    placed = clock.place(12.0, [1.3])
    assert placed.gap_s is None
    assert placed.beat_times_s == (11.3,)


def test_chain_is_pulled_back_when_it_runs_ahead_of_arrival() -> None:
    clock = BeatClock()
    clock.place(10.0, [1.0])
    placed = clock.place(10.5, [1.0])  # would put the beat at 11.0, after its own arrival
    assert placed.beat_times_s == (10.5,)
    assert placed.gap_s is None


def test_lost_frames_are_a_gap_and_the_chain_is_reanchored() -> None:
    clock = BeatClock()
    clock.place(10.0, [0.5, 0.5])
    placed = clock.place(15.0, [0.5])  # frames for 10..14.5 s never arrived
    assert placed.gap_s is not None
    assert math.isclose(placed.gap_s, 4.5)
    assert placed.beat_times_s == (15.0,)


@given(
    rr=st.lists(st.floats(min_value=0.3, max_value=1.6), min_size=5, max_size=300),
    lag=st.floats(min_value=0.0, max_value=0.05),
)
def test_continuous_stream_has_no_gap_and_exact_intervals(rr: list[float], lag: float) -> None:
    """With every frame delivered, spacing between placed beats equals the RR exactly."""
    beats: list[float] = []
    t = 0.0
    for x in rr:
        t += x
        beats.append(t)
    clock = BeatClock()
    placed: list[float] = []
    for arrival, frame_rr in _frames(beats, 1.0):
        result = clock.place(arrival + lag, frame_rr)
        assert result.gap_s is None
        assert all(b <= arrival + lag + 1e-9 for b in result.beat_times_s)
        placed.extend(result.beat_times_s)
    assert len(placed) == len(rr)
    for i in range(1, len(placed)):
        # Pull-backs can only shorten the first placed intervals while the anchor converges.
        assert placed[i] - placed[i - 1] <= rr[i] + 1e-9
    # Every beat is within one frame period (plus the delivery lag) of its true time.
    assert all(abs(p - b) <= 1.0 + lag + 1e-9 for p, b in zip(placed, beats, strict=True))


def test_dropping_three_seconds_of_frames_is_detected() -> None:
    beats = [0.5 * (i + 1) for i in range(60)]  # 120 bpm for 30 s
    frames = _frames(beats, 1.0)
    kept = frames[:10] + frames[13:]
    clock = BeatClock()
    gaps = [g for a, rr in kept if (g := clock.place(a, rr).gap_s) is not None]
    assert len(gaps) == 1
    assert 2.5 <= gaps[0] <= 3.5
