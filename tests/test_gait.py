"""GaitTracker: convention detection, lengths, pace, distance (reset, wrap, gaps, integration)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import StrideReading
from ingest.virtual.athlete import AthleteTrace, simulate
from ingest.virtual.workouts import load_workout
from processing.gait import WRAP_M, GaitSample, GaitTracker

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
CadenceMode = Literal["steps", "strides"]
LengthMode = Literal["step", "stride", None]


def reading(
    t: float,
    speed: float,
    cadence: int,
    length: float | None = None,
    total: float | None = None,
    running: bool | None = None,
) -> StrideReading:
    """A StrideReading with the given values, as a footpod's decoder would produce it."""
    return StrideReading(
        athlete="ana",
        sensor="pod",
        time_utc=T0 + timedelta(seconds=t),
        time_mono_s=t,
        speed_mps=speed,
        cadence_per_min=cadence,
        stride_length_m=length,
        total_distance_m=total,
        running=running,
        raw=b"",
    )


@cache
def trace(name: str) -> AthleteTrace:
    return simulate(load_workout(name))


def footpod_readings(
    tr: AthleteTrace,
    *,
    cadence: CadenceMode = "steps",
    length: LengthMode = "step",
    total: bool = True,
    rate_hz: float = 2.0,
) -> Iterator[tuple[StrideReading, float]]:
    """The model's trace as a footpod sends it (wire resolutions), with the true cadence.

    Speed 1/256 m/s, cadence uint8 rounded (steps or strides/min), length 1/100 m (one step or a
    full stride), total distance 1/10 m, at ``rate_hz``.
    """
    n = int(tr.duration_s * rate_hz) + 1
    for i in range(n):
        t = i / rate_hz
        s = tr.sample_at(t)
        c = s.cadence_spm if cadence == "steps" else s.cadence_spm / 2
        if length is None:
            ln = None
        else:
            ln = round((s.step_length_m if length == "step" else 2 * s.step_length_m) * 100) / 100
        yield (
            reading(
                t,
                round(s.speed_mps * 256) / 256,
                min(255, round(c)),
                ln,
                round(s.distance_m * 10) / 10 if total else None,
                s.running,
            ),
            s.cadence_spm,
        )


def run_pod(
    readings: Iterator[tuple[StrideReading, float]], g: GaitTracker
) -> list[tuple[GaitSample, float]]:
    return [(g.update(r), true_spm) for r, true_spm in readings]


# --- convention detection on the virtual athlete -----------------------------------------


@pytest.mark.parametrize(
    ("cadence", "length"),
    [
        ("steps", "step"),  # matching pair
        ("steps", "stride"),  # mixed: k ≈ 0.5
        ("strides", "stride"),  # matching pair
        ("strides", "step"),  # mixed: k ≈ 2
        ("steps", None),  # ranges only
        ("strides", None),
    ],
)
@pytest.mark.parametrize("workout", ["morning-5k", "start-practice"])
def test_every_convention_gives_steps_per_minute(
    workout: str, cadence: CadenceMode, length: LengthMode
) -> None:
    g = GaitTracker()
    out = run_pod(footpod_readings(trace(workout), cadence=cadence, length=length), g)
    assert g.cadence_unit == cadence
    expected_length = None if length is None else length
    assert g.length_unit == expected_length
    locked = [i for i, (s, _) in enumerate(out) if s.cadence_unit is not None]
    assert locked, "never locked"
    moving_before_lock = sum(1 for s, _ in out[: locked[0]] if s.speed_mps >= 0.5)
    assert moving_before_lock <= 20
    for s, true_spm in out[locked[0] :]:
        assert s.cadence_unit == cadence
        assert abs(s.cadence_spm - true_spm) <= 1.0 + 1e-9
        if s.step_length_m is not None and true_spm > 0:
            true_step = s.speed_mps * 60 / true_spm
            assert s.stride_length_m == pytest.approx(2 * s.step_length_m)
            assert s.step_length_m == pytest.approx(true_step, rel=0.05, abs=0.02)


def test_steps_and_strides_pods_agree_within_one_spm() -> None:
    tr = trace("morning-5k")
    a = run_pod(footpod_readings(tr, cadence="steps", length="stride"), GaitTracker())
    b = run_pod(footpod_readings(tr, cadence="strides", length="stride"), GaitTracker())
    # From the first moving sample on (before the lock the leader is already right here).
    diffs = [abs(x.cadence_spm - y.cadence_spm) for (x, _), (y, _) in zip(a, b, strict=True)
             if x.speed_mps > 0.5]  # fmt: skip
    assert max(diffs) <= 1.5  # each within 1 spm of the truth (strides round to 2 spm)
    assert sum(diffs) / len(diffs) <= 0.6


def test_override_wins_over_detection() -> None:
    tr = trace("morning-5k")
    g = GaitTracker(cadence_override="steps")  # wrong on purpose: the pod sends strides/min
    out = run_pod(footpod_readings(tr, cadence="strides", length="stride"), g)
    assert g.cadence_unit == "steps"
    assert all(s.cadence_unit == "steps" for s, _ in out)
    walking = [s for s, t in out if 100 < t < 140]
    assert all(50 <= s.cadence_spm <= 70 for s in walking)  # taken as sent: half of ~122
    assert g.length_unit == "step"  # matching pair under the override's unit


def test_override_strides_doubles_from_first_sample() -> None:
    g = GaitTracker(cadence_override="strides")
    s = g.update(reading(0.0, 3.0, 83, 2.17))
    assert (s.cadence_spm, s.cadence_unit) == (166.0, "strides")
    assert s.step_length_m == pytest.approx(1.085)


def test_noisy_votes_still_lock_right() -> None:
    """A few odd samples (k garbage, cadence implausible) do not flip the vote."""
    g = GaitTracker()
    for i in range(30):
        if i % 5 == 0:
            g.update(reading(i / 2, 3.0, 250, 0.3))  # garbage
        else:
            g.update(reading(i / 2, 3.0, 83, 2.17))  # strides + stride
    assert g.cadence_unit == "strides"
    assert g.length_unit == "stride"


def test_standing_has_no_pace_or_length() -> None:
    g = GaitTracker()
    s = g.update(reading(0.0, 0.0, 0, 0.0, 12.3, False))
    assert s.pace_s_per_km is None
    assert s.step_length_m is None
    assert s.stride_length_m is None
    assert s.cadence_spm == 0.0
    assert s.distance_m == 0.0
    assert s.running is False
    s = g.update(reading(0.5, 0.25, 0))
    assert s.pace_s_per_km is None
    s = g.update(reading(1.0, 4.0, 170))
    assert s.pace_s_per_km == 250.0
    assert s.step_length_m == pytest.approx(4.0 * 60 / 170)  # derived without a length


# --- distance -------------------------------------------------------------------------------


def test_distance_from_total_with_reset() -> None:
    g = GaitTracker()
    totals = [500.0, 502.0, 504.0, 506.0, 0.0, 2.0, 4.0]  # sensor reset after 506 m
    out = [g.update(reading(i, 2.0, 120, None, d)) for i, d in enumerate(totals)]
    assert [s.distance_m for s in out] == [0.0, 2.0, 4.0, 6.0, 6.0, 8.0, 10.0]


def test_distance_from_total_reset_mid_interval_counts_new_origin() -> None:
    g = GaitTracker()
    for i, d in enumerate([100.0, 102.0, 1.5]):  # reset, then 1.5 m already covered
        s = g.update(reading(i, 2.0, 120, None, d))
    assert s.distance_m == pytest.approx(3.5)


def test_distance_wraps_uint32() -> None:
    g = GaitTracker()
    top = 429_496_729.5  # 0xFFFFFFFF / 10
    totals = [top - 3.0, top - 1.0, top, 0.9, 2.9]
    out = [g.update(reading(i, 2.0, 120, None, d)) for i, d in enumerate(totals)]
    assert [round(s.distance_m, 6) for s in out] == [0.0, 2.0, 3.0, 4.0, 6.0]
    assert pytest.approx(top + 0.1) == WRAP_M


def test_distance_integrated_trapezoid_without_total() -> None:
    g = GaitTracker()
    for t, v in [(0.0, 0.0), (1.0, 2.0), (2.0, 4.0), (2.5, 4.0)]:
        s = g.update(reading(t, v, 150 if v else 0))
    assert s.distance_m == pytest.approx(1.0 + 3.0 + 2.0)


def test_link_gap_integrated_with_mean_of_end_speeds() -> None:
    g = GaitTracker()
    g.update(reading(0.0, 3.0, 170))
    s = g.update(reading(20.0, 4.0, 180))  # 20 s gap
    assert s.distance_m == pytest.approx(70.0)


def test_link_gap_covered_by_total() -> None:
    g = GaitTracker()
    g.update(reading(0.0, 3.0, 170, None, 1000.0))
    s = g.update(reading(20.0, 4.0, 180, None, 1065.0))
    assert s.distance_m == pytest.approx(65.0)


def test_impossible_total_jump_falls_back_to_speed() -> None:
    g = GaitTracker()
    g.update(reading(0.0, 3.0, 170, None, 1000.0))
    s = g.update(reading(1.0, 3.0, 170, None, 90_000.0))  # a garbage total
    assert s.distance_m == pytest.approx(3.0)
    s = g.update(reading(2.0, 3.0, 170, None, 90_003.0))  # continues from the new origin
    assert s.distance_m == pytest.approx(6.0)


@pytest.mark.parametrize("total", [True, False])
def test_total_distance_on_morning_5k_within_1pct(total: bool) -> None:
    tr = trace("morning-5k")
    g = GaitTracker()
    out = run_pod(footpod_readings(tr, cadence="strides", length="step", total=total), g)
    err = abs(out[-1][0].distance_m - tr.truth.distance_m) / tr.truth.distance_m
    assert err < 0.01
    assert err < 0.001  # in fact far better


# --- robustness (property) ------------------------------------------------------------------

_finite_or_garbage = st.one_of(
    st.floats(min_value=0, max_value=300, allow_nan=False),
    st.sampled_from([0.0, float("nan"), float("inf"), -1.0, 255.99]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=30.0, allow_nan=False),  # time step incl. gaps
            _finite_or_garbage,  # speed
            st.integers(min_value=0, max_value=255),  # cadence
            st.one_of(st.none(), _finite_or_garbage),  # length
            st.one_of(st.none(), st.floats(min_value=0, max_value=WRAP_M), st.just(float("nan"))),
        ),
        max_size=60,
    ),
    st.sampled_from([None, "steps", "strides"]),
)
def test_never_nan_or_crash(
    steps: list[tuple[float, float, int, float | None, float | None]],
    override: Literal["steps", "strides"] | None,
) -> None:
    g = GaitTracker(cadence_override=override)
    t = 0.0
    prev = 0.0
    for dt, v, c, ln, tot in steps:
        t += dt
        s = g.update(reading(t, v, c, ln, tot))
        values = [s.cadence_spm, s.speed_mps, s.distance_m, s.step_length_m, s.stride_length_m,
                  s.pace_s_per_km]  # fmt: skip
        assert all(x is None or math.isfinite(x) for x in values)
        assert s.distance_m >= prev  # never goes backwards
        prev = s.distance_m
