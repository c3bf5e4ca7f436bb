"""Tests of the virtual athlete model and the packaged workouts.

The model is the ground truth every later stage is tested against, so these tests pin down what
the brief promises: exact distances and segments, the gait identity, the sprint-start numbers,
the HR-surge behaviour on normal and low-HRV days, the HRV numbers and the artifacts.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.virtual.athlete import AthleteTrace, simulate, surge_time_s
from ingest.virtual.athlete_params import AthleteParams
from ingest.virtual.time_grid import DT_S
from ingest.virtual.workouts import (
    UnknownWorkoutError,
    Workout,
    WorkoutError,
    load_workout,
    workout_from_toml,
    workout_names,
)

REQUIRED = ("morning-5k", "start-practice", "easy-8k", "tempo-8k")
ARRAYS = (
    "time_s",
    "speed_mps",
    "cadence_spm",
    "step_length_m",
    "distance_m",
    "hr_bpm",
    "running",
    "beat_times_s",
    "rr_s",
)

# A lab session: 10 min at each intensity, long enough for steady HR and stable HRV statistics.
LAB_TOML = """
name = "lab"
[[phase]]
kind = "stand"
duration_s = 600
[[phase]]
kind = "walk"
duration_s = 600
speed_kmh = 6
[[phase]]
kind = "run"
duration_s = 600
pace_min_per_km = "4:40"
[[phase]]
kind = "run"
duration_s = 600
pace_min_per_km = "4:10"
[[phase]]
kind = "run"
duration_s = 600
pace_min_per_km = "3:30"
[[phase]]
kind = "run"
duration_s = 600
speed_mps = 5.6
"""
LAB_STEP_S = 600.0


@cache
def trace(name: str, seed: int = 0, low_hrv: bool = False, rate: float = 0.0) -> AthleteTrace:
    workout = workout_from_toml(LAB_TOML, name="lab") if name == "lab" else load_workout(name)
    return simulate(workout, seed=seed, low_hrv=low_hrv, artifact_rate=rate)


def at(tr: AthleteTrace, t: float) -> int:
    """Grid index of time ``t`` (s)."""
    return round(t / tr.dt_s)


def rmssd_ms(rr_s: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(rr_s) ** 2)) * 1000.0)


def dfa_alpha1(rr_s: np.ndarray) -> float:
    """Reference DFA α1: boxes of 4-16 beats, linear detrending, log-log slope."""
    y = np.cumsum(rr_s - rr_s.mean())
    sizes = np.arange(4, 17)
    fluctuation = []
    for n in sizes:
        boxes = y[: len(y) // n * n].reshape(-1, n)
        x = np.arange(n)
        coef = np.polyfit(x, boxes.T, 1)
        fit = np.outer(coef[0], x) + coef[1][:, None]
        fluctuation.append(np.sqrt(np.mean((boxes - fit) ** 2)))
    return float(np.polyfit(np.log(sizes), np.log(fluctuation), 1)[0])


def mean_alpha1(rr_s: np.ndarray, window: int = 120) -> float:
    """α1 averaged over 2-minute-like windows of ``window`` beats, as processing computes it."""
    return float(
        np.mean([dfa_alpha1(rr_s[i : i + window]) for i in range(0, len(rr_s) - window, window)])
    )


# ---------------------------------------------------------------- workouts


def test_required_workouts_are_packaged() -> None:
    assert set(REQUIRED) <= set(workout_names())
    assert workout_names() == sorted(workout_names())


@pytest.mark.parametrize("name", REQUIRED)
def test_packaged_workouts_load(name: str) -> None:
    workout = load_workout(name)
    assert isinstance(workout, Workout)
    assert workout.name == name
    assert workout.description
    assert workout.phases


def test_unknown_workout_lists_valid_names() -> None:
    with pytest.raises(UnknownWorkoutError) as info:
        load_workout("marathon")
    assert isinstance(info.value, ValueError)
    assert info.value.valid == tuple(workout_names())
    message = str(info.value)
    assert "'marathon'" in message
    for name in REQUIRED:
        assert name in message


def test_morning_5k_definition() -> None:
    phases = load_workout("morning-5k").phases
    assert [p.kind for p in phases] == ["stand", "walk", "run", "walk"]
    walk, run = phases[1], phases[2]
    assert walk.distance_m == 2000
    assert walk.speed_start_mps == pytest.approx(6 / 3.6)
    assert run.distance_m == 1000
    assert run.speed_start_mps == pytest.approx(1000 / 240)  # 4:00 /km
    assert run.speed_end_mps == pytest.approx(1000 / 210)  # 3:30 /km
    assert run.target_speed_mps(0.5) == pytest.approx((1000 / 240 + 1000 / 210) / 2)


def _toml(phase: str) -> str:
    return f"[[phase]]\n{phase}\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("[[phase]\n", "invalid TOML", id="bad-toml"),
        pytest.param("description = 'x'\n", "needs at least one [[phase]]", id="no-phases"),
        pytest.param("laps = 3\n" + _toml('kind = "stand"\nduration_s = 1'), "unknown keys",
                     id="unknown-top-key"),
        pytest.param(_toml('kind = "jog"\nduration_s = 1'), "kind must be one of", id="kind"),
        pytest.param(_toml('kind = "walk"\nspeed_kmh = 5'), "exactly one of duration_s",
                     id="no-length"),
        pytest.param(_toml('kind = "walk"\nduration_s = 5\ndistance_m = 5\nspeed_kmh = 5'),
                     "exactly one of duration_s", id="both-lengths"),
        pytest.param(_toml('kind = "walk"\ndistance_m = -5\nspeed_kmh = 5'), "positive number",
                     id="negative-distance"),
        pytest.param(_toml('kind = "stand"\nduration_s = 5\nspeed_kmh = 5'),
                     "a stand phase takes only duration_s", id="stand-speed"),
        pytest.param(_toml('kind = "walk"\ndistance_m = 5'), "exactly one of speed_mps",
                     id="no-speed"),
        pytest.param(_toml('kind = "walk"\ndistance_m = 5\nspeed_kmh = 5\nspeed_mps = 1'),
                     "exactly one of speed_mps", id="two-speeds"),
        pytest.param(_toml('kind = "run"\ndistance_m = 5\npace_min_per_km = "4.30"'),
                     "pace must look like '4:30'", id="pace-format"),
        pytest.param(_toml('kind = "run"\ndistance_m = 5\npace_min_per_km = "4:75"'),
                     "seconds must be < 60", id="pace-seconds"),
        pytest.param(_toml('kind = "run"\ndistance_m = 5\nspeed_kmh = [10, 12, 14]'),
                     "[start, end]", id="ramp-length"),
        pytest.param(_toml('kind = "run"\ndistance_m = 5\nspeed_mps = 15'),
                     "outside", id="speed-range"),
        pytest.param(_toml('kind = "sprint"\ndistance_m = 30\naccelerate = true'),
                     "needs peak_speed_mps", id="accelerate-no-peak"),
        pytest.param(_toml('kind = "sprint"\ndistance_m = 30\naccelerate = true\nspeed_mps = 6'),
                     "takes peak_speed_mps", id="accelerate-speed"),
        pytest.param(_toml('kind = "run"\ndistance_m = 30\nspeed_mps = 4\npeak_speed_mps = 6'),
                     "only for accelerate", id="peak-without-accelerate"),
        pytest.param(_toml('kind = "run"\ndistance_m = 30\nspeed_mps = 4\naccelerate = 1'),
                     "true or false", id="accelerate-type"),
    ],
)  # fmt: skip
def test_invalid_workouts_raise_clear_errors(text: str, fragment: str) -> None:
    with pytest.raises(WorkoutError) as info:
        workout_from_toml(text, name="bad")
    assert isinstance(info.value, ValueError)
    assert info.value.workout == "bad"
    assert fragment in str(info.value)
    assert str(info.value).startswith("workout 'bad'")


def test_phase_errors_name_the_phase() -> None:
    text = _toml('kind = "stand"\nduration_s = 5') + _toml('kind = "walk"\ndistance_m = 5')
    with pytest.raises(WorkoutError, match=r"workout 'bad', phase 1: ") as info:
        workout_from_toml(text, name="bad")
    assert info.value.phase == 1


def test_declared_name_must_match() -> None:
    with pytest.raises(WorkoutError, match="declares name 'other'"):
        workout_from_toml("name = 'other'\n" + _toml('kind = "stand"\nduration_s = 5'), name="x")


@pytest.mark.parametrize(
    ("value", "mps"),
    [('"4:00"', 1000 / 240), ("4.5", 1000 / 270), ('"3:30"', 1000 / 210)],
)
def test_pace_units(value: str, mps: float) -> None:
    workout = workout_from_toml(
        _toml(f'kind = "run"\ndistance_m = 5\npace_min_per_km = {value}'), name="p"
    )
    assert workout.phases[0].speed_start_mps == pytest.approx(mps)


# ---------------------------------------------------------------- determinism and arrays


def _assert_identical(a: AthleteTrace, b: AthleteTrace) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.truth == b.truth


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), low_hrv=st.booleans())
def test_same_seed_same_trace(seed: int, low_hrv: bool) -> None:
    workout = load_workout("start-practice")
    a = simulate(workout, seed=seed, low_hrv=low_hrv, artifact_rate=0.02)
    b = simulate(workout, seed=seed, low_hrv=low_hrv, artifact_rate=0.02)
    _assert_identical(a, b)


def test_different_seeds_differ_in_beats_only() -> None:
    a, b = trace("morning-5k", seed=1), trace("morning-5k", seed=2)
    assert not np.array_equal(a.rr_s[:50], b.rr_s[:50])
    # The workout, not the seed, decides speed, gait and HR.
    np.testing.assert_array_equal(a.speed_mps, b.speed_mps)
    np.testing.assert_array_equal(a.hr_bpm, b.hr_bpm)


def test_grid_and_read_only_arrays() -> None:
    tr = trace("morning-5k")
    assert tr.dt_s == DT_S == 0.25
    n = len(tr.time_s)
    np.testing.assert_array_equal(tr.time_s, np.arange(n) * DT_S)
    for name in ARRAYS[:7]:
        assert len(getattr(tr, name)) == n, name
    for name in ARRAYS:
        assert not getattr(tr, name).flags.writeable, name
    assert tr.running.dtype == np.bool_


def test_distance_is_integrated_speed() -> None:
    tr = trace("easy-8k")
    steps = np.diff(tr.distance_m)
    np.testing.assert_allclose(steps, (tr.speed_mps[1:] + tr.speed_mps[:-1]) / 2 * DT_S)
    assert tr.distance_m[0] == 0.0
    assert np.all(steps >= 0)


# ---------------------------------------------------------------- distance and segments


def test_morning_5k_distance_and_segments() -> None:
    truth = trace("morning-5k").truth
    assert truth.distance_m == pytest.approx(5000, rel=0.005)
    kinds = [s.kind for s in truth.segments]
    assert kinds == ["stand", "walk", "run", "walk"]
    stand, walk, run, back = truth.segments
    assert (stand.start_s, stand.end_s) == (0.0, 60.0)
    assert stand.end_m == 0.0
    assert run.start_m == pytest.approx(2000, abs=2)
    assert run.end_m == pytest.approx(3000, abs=4)
    assert back.end_m == pytest.approx(5000, abs=6)
    # Segments tile the session without gaps.
    for prev, nxt in zip(truth.segments, truth.segments[1:], strict=False):
        assert (prev.end_s, prev.end_m) == (nxt.start_s, nxt.start_m)
    assert truth.segments[-1].end_s == truth.duration_s
    # 2 km at 6 km/h is 20 min; 1 km at ~3:45 /km is ~225 s.
    assert walk.end_s - walk.start_s == pytest.approx(1200, abs=5)
    assert run.end_s - run.start_s == pytest.approx(225, abs=5)


def test_same_kind_phases_are_merged() -> None:
    # easy-8k has a jog-in and a steady phase, both "run": one segment of 8.5 km.
    truth = trace("easy-8k").truth
    assert [s.kind for s in truth.segments] == ["stand", "walk", "run", "walk"]
    run = truth.segments[2]
    assert run.end_m - run.start_m == pytest.approx(8500, abs=5)


def test_start_practice_segments() -> None:
    truth = trace("start-practice").truth
    kinds = [s.kind for s in truth.segments]
    assert kinds == ["stand"] + ["sprint", "walk", "stand"] * 6


# ---------------------------------------------------------------- gait


@pytest.mark.parametrize("name", REQUIRED)
def test_speed_is_cadence_times_step_length(name: str) -> None:
    tr = trace(name)
    np.testing.assert_allclose(
        tr.speed_mps, tr.cadence_spm / 60.0 * tr.step_length_m, rtol=1e-12, atol=0
    )
    moving = tr.speed_mps > 0
    assert np.all((tr.cadence_spm > 0) == moving)
    assert np.all(tr.step_length_m[~moving] == 0)
    assert not np.any(tr.running[~moving])


def test_walking_and_running_gait() -> None:
    tr = trace("lab")
    walk = at(tr, 1.9 * LAB_STEP_S)  # steady 6 km/h walk
    assert tr.speed_mps[walk] == pytest.approx(6 / 3.6, rel=1e-3)
    assert 120 <= tr.cadence_spm[walk] <= 125
    assert tr.step_length_m[walk] == pytest.approx(0.82, abs=0.02)
    assert not tr.running[walk]
    cadences = [tr.cadence_spm[at(tr, (i + 0.9) * LAB_STEP_S)] for i in range(2, 6)]
    assert all(tr.running[at(tr, (i + 0.9) * LAB_STEP_S)] for i in range(2, 6))
    assert cadences == sorted(cadences)
    assert 165 <= cadences[0] <= 178  # 4:40 /km
    assert cadences[-1] <= 200  # 5.6 m/s steady, below the sprint limiter


def test_start_practice_accelerations() -> None:
    tr = trace("start-practice")
    accelerations = tr.truth.accelerations
    assert len(accelerations) == 6
    sprints = [s for s in tr.truth.segments if s.kind == "sprint"]
    for acc, seg in zip(accelerations, sprints, strict=True):
        assert (acc.start_s, acc.start_m) == (seg.start_s, seg.start_m)
        assert tr.speed_mps[at(tr, acc.start_s)] == 0.0  # from standstill
        assert acc.peak_step_length_m > 1.70
        assert 205 <= acc.peak_cadence_spm <= 215
        assert acc.peak_speed_mps == pytest.approx(6.0, abs=0.3)
        assert 2.0 <= acc.time_to_90pct_s <= 4.0
        assert 6.0 <= acc.distance_to_90pct_m <= 15.0
        assert 15 <= acc.steps <= 30  # 30 m in steps of 0.9-1.76 m
        # Cadence saturates while step length keeps growing: the runner's "limiter".
        k0 = at(tr, seg.start_s)
        k1 = at(tr, seg.end_s)
        late = slice(k0 + (k1 - k0) // 2, k1 + 1)
        assert np.ptp(tr.cadence_spm[late]) < 6
        assert tr.step_length_m[k1] > tr.step_length_m[k0 + (k1 - k0) // 2]
        # At 90 % of peak the athlete is where the truth says.
        k90 = at(tr, acc.start_s + acc.time_to_90pct_s)
        assert tr.distance_m[k90] - acc.start_m == pytest.approx(acc.distance_to_90pct_m, abs=2)


# ---------------------------------------------------------------- heart rate


def test_hr_levels_by_intensity() -> None:
    tr = trace("lab")

    def hr_end(i: int) -> float:
        return float(tr.hr_bpm[at(tr, (i + 1) * LAB_STEP_S) - 1])

    assert hr_end(0) == pytest.approx(55, abs=0.5)  # standing: resting HR
    assert 100 <= hr_end(1) <= 110  # walking 6 km/h
    assert 150 <= hr_end(2) <= 165  # 4:40 /km
    assert hr_end(2) < hr_end(3) < hr_end(4)  # tempo 4:10 /km, then 3:30 /km
    assert hr_end(4) >= 175
    assert tr.hr_bpm.max() <= 190


def test_hr_recovers_more_slowly_than_it_rises() -> None:
    tr = trace("morning-5k")
    run = tr.truth.segments[2]
    k_end = at(tr, run.end_s)
    drop_60s = tr.hr_bpm[k_end] - tr.hr_bpm[k_end + at(tr, 60)]
    assert 15 < drop_60s < 50
    assert tr.hr_bpm[-1] == pytest.approx(105, abs=3)  # back to the walking level


@pytest.mark.parametrize("name", REQUIRED)
def test_no_surge_on_normal_days(name: str) -> None:
    tr = trace(name)
    assert tr.truth.surge_time_s is None
    rises = tr.hr_bpm[at(tr, 30) :] - tr.hr_bpm[: -at(tr, 30)]
    assert rises.max() <= 16  # a +20 bpm / 30 s detector has a margin


def test_low_hrv_surge_right_after_the_run_starts() -> None:
    tr = trace("morning-5k", low_hrv=True)
    run = tr.truth.segments[2]
    surge = tr.truth.surge_time_s
    assert surge is not None
    assert 0 < surge - run.start_s < 20
    assert run.start_m == pytest.approx(2000, abs=2)
    # Clearly crossed: within 30 s of the start HR is up by far more than 20 bpm.
    k = at(tr, run.start_s)
    assert tr.hr_bpm[k + at(tr, 30)] - tr.hr_bpm[k] > 35
    # ...and it is the run start, not the walk, that surges.
    assert surge_time_s(tr.time_s[:k], tr.hr_bpm[:k]) is None


def test_surge_time_matches_brute_force() -> None:
    tr = trace("morning-5k", low_hrv=True)
    window = at(tr, 30)
    expected = next(
        float(tr.time_s[k])
        for k in range(len(tr.hr_bpm))
        if tr.hr_bpm[k] - tr.hr_bpm[max(0, k - window) : k + 1].min() >= 20
    )
    assert tr.truth.surge_time_s == expected


# ---------------------------------------------------------------- beats and HRV


@pytest.mark.parametrize("name", REQUIRED)
def test_rr_consistent_with_beat_times(name: str) -> None:
    tr = trace(name, rate=0.02)
    beats, rr = tr.beat_times_s, tr.rr_s
    assert len(beats) == len(rr)
    np.testing.assert_array_equal(rr[1:], np.diff(beats))
    assert beats[0] > 0
    assert beats[0] - rr[0] <= 0  # the implied previous beat precedes the session
    assert beats[-1] <= tr.truth.duration_s
    assert np.all(rr > 0)
    true_rr = trace(name).rr_s  # same seed, no artifacts
    assert np.all(true_rr > 60 / 200)
    assert np.all(true_rr < 60 / 40)


def test_beats_follow_model_hr() -> None:
    tr = trace("lab")
    for i in range(6):
        t0, t1 = (i + 0.5) * LAB_STEP_S, (i + 1) * LAB_STEP_S
        idx = tr.beats_between(t0, t1)
        beat_hr = 60.0 / float(np.mean(tr.rr_s[idx]))
        assert beat_hr == pytest.approx(tr.hr_bpm[at(tr, t1) - 1], rel=0.03)


def test_beats_between() -> None:
    tr = trace("start-practice")
    b = tr.beat_times_s
    idx = tr.beats_between(float(b[10]), float(b[20]))
    np.testing.assert_array_equal(idx, np.arange(11, 21))
    assert tr.beats_between(5.0, 5.0).size == 0
    assert tr.beats_between(10.0, 5.0).size == 0
    everything = tr.beats_between(-1.0, tr.truth.duration_s)
    assert len(everything) == len(b)


def test_resting_rmssd_normal_vs_low_hrv() -> None:
    normal = [trace("morning-5k", seed=s).truth.resting_rmssd_ms for s in range(4)]
    low = [trace("morning-5k", seed=s, low_hrv=True).truth.resting_rmssd_ms for s in range(4)]
    assert all(35 <= v <= 65 for v in normal), normal
    assert all(12 <= v <= 26 for v in low), low
    assert max(low) < min(normal)


def test_resting_rmssd_is_measured_over_the_initial_stand() -> None:
    tr = trace("easy-8k", seed=3)
    idx = tr.beats_between(0.0, tr.truth.segments[0].end_s)  # no artifacts: rr_s is true
    assert rmssd_ms(tr.rr_s[idx]) == pytest.approx(tr.truth.resting_rmssd_ms)


def test_rmssd_and_dfa_alpha1_fall_with_intensity() -> None:
    tr = trace("lab")
    rmssd, alpha1 = [], []
    for i in range(6):
        idx = tr.beats_between((i + 0.4) * LAB_STEP_S, (i + 1) * LAB_STEP_S)
        rmssd.append(rmssd_ms(tr.rr_s[idx]))
        alpha1.append(mean_alpha1(tr.rr_s[idx]))
    assert rmssd == sorted(rmssd, reverse=True)
    assert 40 <= rmssd[0] <= 60
    assert rmssd[-1] < 6  # a few ms near maximal intensity
    assert alpha1[0] == pytest.approx(1.0, abs=0.15)  # rest
    assert alpha1[1] == pytest.approx(1.0, abs=0.15)  # walking
    assert alpha1[2] > 0.7  # easy run: around the aerobic threshold
    assert alpha1[-1] == pytest.approx(0.5, abs=0.12)  # near maximal intensity


# ---------------------------------------------------------------- artifacts


def test_no_artifacts_by_default() -> None:
    assert trace("easy-8k").truth.artifact_beat_indices == ()


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_artifacts_at_the_requested_rate(rate: float) -> None:
    clean = trace("tempo-8k", seed=7)
    dirty = trace("tempo-8k", seed=7, rate=rate)
    indices = dirty.truth.artifact_beat_indices
    n = len(clean.beat_times_s)
    expected = rate * n
    assert abs(len(indices) - expected) < 4 * math.sqrt(expected) + 0.1 * expected
    assert list(indices) == sorted(set(indices))
    assert all(0 < i < len(dirty.beat_times_s) for i in indices)

    clean_times = clean.beat_times_s
    clean_set = set(clean_times.tolist())
    artifact_set = set(indices)
    extra = missed = 0
    for i in indices:
        t = float(dirty.beat_times_s[i])
        if t in clean_set:  # a missed beat: RR i spans two true intervals
            missed += 1
            j = int(np.searchsorted(clean_times, t))
            assert dirty.rr_s[i] == pytest.approx(clean_times[j] - clean_times[j - 2])
        else:  # an extra beat splits one true interval into two short ones
            extra += 1
            j = int(np.searchsorted(clean_times, t))  # the true beat after the extra one
            true_rr = clean_times[j] - clean_times[j - 1]
            assert dirty.rr_s[i] + dirty.rr_s[i + 1] == pytest.approx(true_rr)
            assert 0.3 * true_rr <= dirty.rr_s[i] <= 0.7 * true_rr
    # Every other beat is a true beat, and nothing else changed.
    others = [b for k, b in enumerate(dirty.beat_times_s.tolist()) if k not in artifact_set]
    assert set(others) <= clean_set
    assert len(dirty.beat_times_s) == n + extra - missed
    assert extra > 0
    assert missed > 0


# ---------------------------------------------------------------- sample_at and validation


def test_sample_at_grid_points_and_between() -> None:
    tr = trace("morning-5k")
    k = at(tr, 1300.0)  # inside the run
    s = tr.sample_at(float(tr.time_s[k]))
    assert s.time_s == tr.time_s[k]
    assert s.speed_mps == tr.speed_mps[k]
    assert s.cadence_spm == tr.cadence_spm[k]
    assert s.step_length_m == pytest.approx(tr.step_length_m[k], rel=1e-12)
    assert s.distance_m == tr.distance_m[k]
    assert s.hr_bpm == tr.hr_bpm[k]
    assert s.running is True

    mid = tr.sample_at(float(tr.time_s[k]) + DT_S / 2)
    assert mid.speed_mps == pytest.approx((tr.speed_mps[k] + tr.speed_mps[k + 1]) / 2)
    assert mid.speed_mps == pytest.approx(mid.cadence_spm / 60 * mid.step_length_m, rel=1e-12)


def test_sample_at_clamps_and_rejects_nan() -> None:
    tr = trace("start-practice")
    start = tr.sample_at(-5.0)
    assert (start.time_s, start.speed_mps, start.cadence_spm, start.step_length_m) == (0, 0, 0, 0)
    end = tr.sample_at(1e9)
    assert end.time_s == tr.truth.duration_s
    assert end.distance_m == tr.truth.distance_m
    with pytest.raises(ValueError, match="finite"):
        tr.sample_at(math.nan)


def test_rejects_bad_artifact_rate() -> None:
    with pytest.raises(ValueError, match="artifact_rate"):
        simulate(load_workout("start-practice"), artifact_rate=0.5)


@pytest.mark.parametrize(
    "change",
    [{"resting_hr_bpm": 200.0}, {"hr_tau_up_s": 0.0}, {"alpha1_knee_hrr": 0.99}],
)
def test_rejects_bad_params(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        dataclasses.replace(AthleteParams(), **change)


def test_params_change_the_athlete() -> None:
    workout = load_workout("morning-5k")
    fit = simulate(workout, params=AthleteParams(resting_hr_bpm=45.0, max_hr_bpm=195.0))
    assert fit.hr_bpm[0] == 45.0
    assert fit.hr_bpm.max() > trace("morning-5k").hr_bpm.max()
