"""SegmentTracker: kinds, hysteresis, minimum durations, back-dated boundaries, summaries."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gait import CadenceMode, LengthMode, footpod_readings, trace

from processing.gait import GaitTracker
from processing.records import Segment, SegmentKind
from processing.segments import SegmentTracker, classify

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
BOUNDARY_TOLERANCE_M = 20.0


def run_speeds(speeds: list[float], dt: float = 0.5, hr: float | None = 120.0) -> list[Segment]:
    """Feed a speed profile (distance integrated) and finish; cadence 0 when standing."""
    seg = SegmentTracker("ana")
    out: list[Segment] = []
    d = 0.0
    prev = speeds[0] if speeds else 0.0
    for i, v in enumerate(speeds):
        t = i * dt
        d += 0.5 * (prev + v) * dt if i else 0.0
        prev = v
        out += seg.update(
            t, T0 + timedelta(seconds=t), speed_mps=v, distance_m=d, heart_rate_bpm=hr,
            cadence_spm=(120.0 if v < 2.3 else 170.0) if v > 0.3 else 0.0,
            step_length_m=v * 60 / (120.0 if v < 2.3 else 170.0) if v > 0.3 else None,
        )  # fmt: skip
    t_end = (len(speeds) - 1) * dt
    out += seg.finish(t_end, T0 + timedelta(seconds=t_end))
    return out


def virtual_segments(
    workout: str, cadence: CadenceMode = "steps", length: LengthMode = "step"
) -> list[Segment]:
    tr = trace(workout)
    g = GaitTracker()
    seg = SegmentTracker("ana")
    out: list[Segment] = []
    r = None
    for r, _ in footpod_readings(tr, cadence=cadence, length=length):
        s = g.update(r)
        out += seg.update(
            r.time_mono_s, r.time_utc, speed_mps=s.speed_mps, distance_m=s.distance_m,
            heart_rate_bpm=tr.sample_at(r.time_mono_s).hr_bpm, cadence_spm=s.cadence_spm,
            step_length_m=s.step_length_m,
        )  # fmt: skip
    assert r is not None
    return out + seg.finish(r.time_mono_s, r.time_utc)


def test_classify_hysteresis() -> None:
    assert classify(0.55, None) == SegmentKind.WALK
    assert classify(0.55, SegmentKind.STAND) == SegmentKind.STAND
    assert classify(0.45, SegmentKind.WALK) == SegmentKind.WALK
    assert classify(0.35, SegmentKind.WALK) == SegmentKind.STAND
    assert classify(5.6, SegmentKind.RUN) == SegmentKind.RUN
    assert classify(5.8, SegmentKind.RUN) == SegmentKind.SPRINT
    assert classify(5.4, SegmentKind.SPRINT) == SegmentKind.SPRINT
    assert classify(7.0, SegmentKind.STAND) == SegmentKind.SPRINT


@pytest.mark.parametrize(("cadence", "length"), [("steps", "step"), ("strides", None)])
def test_morning_5k_boundaries_within_20_m(cadence: CadenceMode, length: LengthMode) -> None:
    truth = trace("morning-5k").truth.segments
    ours = virtual_segments("morning-5k", cadence, length)
    assert [s.kind.value for s in ours] == [t.kind for t in truth]
    for s, t in zip(ours, truth, strict=True):
        assert abs(s.start_m - t.start_m) <= BOUNDARY_TOLERANCE_M
        assert abs(s.end_m - t.end_m) <= BOUNDARY_TOLERANCE_M
        assert abs(s.start_mono_s - t.start_s) <= 5.0
    walk, run = ours[1], ours[2]
    assert abs(run.start_m - 2000.0) <= BOUNDARY_TOLERANCE_M
    assert abs(run.end_m - 3000.0) <= BOUNDARY_TOLERANCE_M
    assert walk.summary.avg_speed_mps == pytest.approx(6 / 3.6, rel=0.01)
    assert walk.summary.avg_pace_s_per_km == pytest.approx(600, rel=0.01)
    assert walk.summary.avg_cadence_spm == pytest.approx(122, abs=2)
    assert walk.summary.avg_step_length_m == pytest.approx(0.82, abs=0.02)
    assert run.summary.avg_pace_s_per_km is not None
    assert 210 < run.summary.avg_pace_s_per_km < 240  # 4:00 → 3:30 /km
    run_max, run_avg, walk_avg = (
        run.summary.max_hr_bpm,
        run.summary.avg_hr_bpm,
        walk.summary.avg_hr_bpm,
    )
    assert run_max is not None
    assert run_avg is not None
    assert walk_avg is not None
    assert run_max > run_avg > walk_avg
    stand = ours[0].summary
    assert stand.avg_cadence_spm is None
    assert stand.avg_pace_s_per_km is None
    # Segments tile the session: each starts where the previous ended.
    for a, b in itertools.pairwise(ours):
        assert (a.end_mono_s, a.end_m, a.end_utc) == (b.start_mono_s, b.start_m, b.start_utc)


def test_start_practice_finds_the_sprints() -> None:
    truth = trace("start-practice").truth.segments
    ours = virtual_segments("start-practice", "strides", "step")
    assert [s.kind.value for s in ours] == [t.kind for t in truth]
    sprints = [s for s in ours if s.kind == SegmentKind.SPRINT]
    assert len(sprints) == 6
    for s, t in zip(ours, truth, strict=True):
        assert abs(s.start_m - t.start_m) <= BOUNDARY_TOLERANCE_M
        assert abs(s.end_m - t.end_m) <= BOUNDARY_TOLERANCE_M
    for s in sprints:
        assert s.summary.distance_m == pytest.approx(30, abs=5)


def test_short_stop_is_no_stand() -> None:
    """A 2 s stop (turning round) stays inside the walk: stands need 3 s."""
    speeds = [1.5] * 40 + [0.0] * 4 + [1.5] * 40
    out = run_speeds(speeds)
    assert [s.kind for s in out] == [SegmentKind.WALK]
    assert out[0].summary.duration_s == pytest.approx(41.5)


def test_long_stop_is_a_stand_back_dated() -> None:
    speeds = [1.5] * 40 + [0.0] * 20 + [1.5] * 40
    out = run_speeds(speeds)
    assert [s.kind for s in out] == [SegmentKind.WALK, SegmentKind.STAND, SegmentKind.WALK]
    # The walk ends at the last walking reading (19.5 s), where the speed began to fall.
    assert out[0].end_mono_s == pytest.approx(19.5)
    assert out[1].end_mono_s == pytest.approx(29.5)
    assert out[1].summary.distance_m == pytest.approx(0.375)


def test_brief_excursion_returns_to_current_kind() -> None:
    """A 3 s burst to run speed inside a walk (shorter than the run minimum) stays walk."""
    speeds = [1.6] * 30 + [3.0] * 6 + [1.6] * 30
    out = run_speeds(speeds)
    assert [s.kind for s in out] == [SegmentKind.WALK]
    s = out[0].summary
    assert s.duration_s == pytest.approx(32.5)
    assert s.avg_hr_bpm == pytest.approx(120.0)


def test_noise_around_threshold_does_not_flap() -> None:
    speeds = [2.3 + (0.1 if i % 2 else -0.1) for i in range(200)]
    out = run_speeds(speeds)
    assert len(out) == 1


def test_summary_without_hr() -> None:
    out = run_speeds([3.0] * 30, hr=None)
    assert out[0].summary.avg_hr_bpm is None
    assert out[0].summary.max_hr_bpm is None
    assert out[0].summary.avg_cadence_spm == pytest.approx(170.0)


def test_finish_without_readings_and_current() -> None:
    seg = SegmentTracker("ana")
    assert seg.current is None
    assert seg.finish(0.0, T0) == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
            st.one_of(st.floats(min_value=0, max_value=12), st.sampled_from([math.nan, -1.0])),
            st.one_of(st.none(), st.floats(min_value=30, max_value=220)),
            st.one_of(st.none(), st.just(0.0), st.floats(min_value=50, max_value=250)),
        ),
        max_size=80,
    )
)
def test_never_nan_or_crash(rows: list[tuple[float, float, float | None, float | None]]) -> None:
    seg = SegmentTracker("ana")
    t, d = 0.0, 0.0
    out: list[Segment] = []
    for dt, v, hr, cad in rows:
        t += dt
        d += (v if math.isfinite(v) and v > 0 else 0.0) * dt
        out += seg.update(t, T0, speed_mps=v, distance_m=d, heart_rate_bpm=hr,
                          cadence_spm=cad, step_length_m=1.0)  # fmt: skip
    out += seg.finish(t, T0)
    for s in out:
        for x in (s.start_m, s.end_m, s.summary.duration_s, s.summary.distance_m,
                  s.summary.avg_speed_mps, s.summary.avg_hr_bpm, s.summary.avg_cadence_spm,
                  s.summary.avg_step_length_m, s.summary.avg_pace_s_per_km):  # fmt: skip
            assert x is None or math.isfinite(x)
        assert s.end_mono_s >= s.start_mono_s
    for a, b in itertools.pairwise(out):
        assert a.end_mono_s == b.start_mono_s
