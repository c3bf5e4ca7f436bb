"""HRV readiness and DFA α1 thresholds (processing/readiness.py, processing/thresholds.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.virtual.athlete import simulate
from ingest.virtual.workouts import load_workout
from processing.hrv import RollingHrv
from processing.readiness import WarmupRmssd, assess_readiness
from processing.records import SegmentKind
from processing.thresholds import Alpha1Thresholds

# ------------------------------------------------------------------ assess_readiness


def test_readiness_no_baseline_yet() -> None:
    for past in ([], [50.0], [50.0, 52.0], [math.nan, 0.0, 50.0, -3.0]):
        r = assess_readiness(40.0, past)
        assert (r.status, r.baseline_rmssd_ms, r.ratio) == ("no_baseline_yet", None, None)
        assert r.today_rmssd_ms == 40.0
        assert "no baseline yet" in r.message


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (50.0, "normal"),
        (38.0, "normal"),
        (37.0, "low"),
        (19.0, "low"),
        (66.0, "normal"),
        (67.0, "high"),
    ],
)
def test_readiness_status(today: float, status: str) -> None:
    r = assess_readiness(today, [50.0] * 10)  # baseline exactly 50 ms
    assert r.status == status
    assert r.baseline_rmssd_ms == pytest.approx(50.0)
    assert r.ratio == pytest.approx(today / 50.0)


def test_readiness_baseline_is_geometric_mean_of_last_30() -> None:
    past = [10.0] * 5 + [40.0, 60.0] * 15  # the first five fall out of the window
    r = assess_readiness(45.0, past)
    assert r.baseline_rmssd_ms == pytest.approx(math.sqrt(40.0 * 60.0))
    r2 = assess_readiness(45.0, past, low_ratio=0.9)
    assert r2.status == "normal"  # 45 / 49 = 0.92


def test_readiness_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="today_rmssd_ms"):
        assess_readiness(math.nan, [50.0] * 5)
    with pytest.raises(ValueError, match="low_ratio"):
        assess_readiness(40.0, [50.0] * 5, low_ratio=1.5)


# ------------------------------------------------------------------ WarmupRmssd


def test_warmup_stand_then_walk() -> None:
    w = WarmupRmssd()
    out = [
        w.update(float(t), None if t < 48 else 50.0 + (t % 2), SegmentKind.STAND) for t in range(60)
    ]
    assert out == [None] * 60
    assert w.update(60.0, 20.0, SegmentKind.WALK) == 50.5
    assert w.done
    assert w.update(61.0, 20.0, SegmentKind.WALK) is None


def test_warmup_walk_until_run_or_timeout() -> None:
    w = WarmupRmssd()
    for t in range(10):
        assert w.update(float(t), 14.0 + t, SegmentKind.WALK) is None
    assert w.update(10.0, 30.0, SegmentKind.RUN) == 18.5  # median of 14..23
    w2 = WarmupRmssd(max_s=180.0)
    values = [w2.update(float(t), 40.0, SegmentKind.STAND) for t in range(181)]
    assert values[-1] == 40.0
    assert values.count(40.0) == 1
    # segment never known (no footpod): the warm-up is the first 90 s
    w3 = WarmupRmssd()
    values = [w3.update(float(t), 40.0 if t <= 80 else 10.0, None) for t in range(91)]
    assert values[-1] == 40.0
    assert values.count(40.0) == 1


def test_warmup_without_enough_samples_gives_nothing() -> None:
    w = WarmupRmssd()
    for t in range(3):
        w.update(float(t), 50.0, SegmentKind.STAND)
    assert w.update(3.0, 50.0, SegmentKind.RUN) is None
    assert w.done


@pytest.mark.parametrize("with_segments", [True, False])
@pytest.mark.parametrize(("low_hrv", "expected_ms"), [(False, 50.0), (True, 19.0)])
def test_warmup_on_the_virtual_athlete(
    low_hrv: bool, expected_ms: float, with_segments: bool
) -> None:
    """The model's beats through a 60-s RollingHrv (as the pipeline does, at ~1 Hz, with a
    coverage ≥ 0.8 gate) and WarmupRmssd with the truth segments (or none, as without a
    footpod): about 50 ms normal, 19 ms on a low-HRV day."""
    trace = simulate(load_workout("morning-5k"), low_hrv=low_hrv, seed=3)
    segments = trace.truth.segments
    hrv = RollingHrv(60.0)
    warm = WarmupRmssd()
    last_emit = -math.inf
    result = None
    for beat_t, rr in zip(trace.beat_times_s.tolist(), trace.rr_s.tolist(), strict=True):
        hrv.update(beat_t, rr, artifact=False)
        if beat_t - last_emit < 1.0:
            continue
        last_emit = beat_t
        stats = hrv.get()
        rmssd = stats.rmssd_ms if stats is not None and stats.coverage >= 0.8 else None
        kind = (
            next(SegmentKind(s.kind) for s in segments if s.start_s <= beat_t <= s.end_s)
            if with_segments
            else None
        )
        result = warm.update(beat_t, rmssd, kind)
        if result is not None:
            break
    assert result is not None
    assert result == pytest.approx(expected_ms, rel=0.15)
    today = assess_readiness(result, [50.0, 48.0, 53.0, 51.0])
    assert today.status == ("low" if low_hrv else "normal")


# ------------------------------------------------------------------ Alpha1Thresholds


def test_thresholds_exact_on_a_known_line() -> None:
    th = Alpha1Thresholds()
    # α1 = 2.85 − 0.0125·HR: 0.75 at 168 bpm, 0.5 at 188 bpm; speed = HR / 45 m/s
    for i in range(300):
        hr = 130 + (i % 61)  # 130..190 bpm
        th.update(hr, hr / 45, 2.85 - 0.0125 * hr)
    e = th.estimate()
    assert e.reason is None
    assert e.speed_reason is None
    assert e.hr_at_075_bpm == pytest.approx(168.0, abs=1e-9)
    assert e.hr_at_050_bpm == pytest.approx(188.0, abs=1e-9)
    assert e.speed_at_075_mps == pytest.approx(168 / 45, abs=1e-9)
    assert e.speed_at_050_mps == pytest.approx(188 / 45, abs=1e-9)
    assert e.r2 == pytest.approx(1.0)
    assert e.n == 300


def test_thresholds_with_noise_and_out_of_range_samples() -> None:
    rng = np.random.default_rng(1)
    th = Alpha1Thresholds()
    for _ in range(2000):
        hr = float(rng.uniform(120, 185))
        th.update(hr, None, 2.85 - 0.0125 * hr + float(rng.normal(0, 0.05)))
    for hr in (60.0, 80.0, 99.0):  # standing/walking: ignored
        th.update(hr, None, 0.1)
    th.update(150.0, None, math.nan)
    e = th.estimate()
    assert e.n == 2000
    assert e.hr_at_075_bpm == pytest.approx(168.0, abs=1.5)
    assert e.hr_at_050_bpm == pytest.approx(188.0, abs=2.5)
    assert (e.speed_at_075_mps, e.speed_at_050_mps, e.speed_reason) == (None, None, "no_speed")


def _line(n: int, hr_lo: float, hr_hi: float, slope: float, at150: float) -> Alpha1Thresholds:
    th = Alpha1Thresholds()
    for i in range(n):
        hr = hr_lo + (hr_hi - hr_lo) * (i % 20) / 19
        th.update(hr, None, at150 + slope * (hr - 150))
    return th


@pytest.mark.parametrize(
    ("th", "reason"),
    [
        (_line(59, 130, 180, -0.01, 0.8), "too_few_samples"),
        (_line(100, 150, 164, -0.01, 0.8), "narrow_hr_range"),
        (_line(100, 130, 180, +0.01, 0.8), "alpha1_not_falling"),
        (_line(100, 110, 130, -0.005, 1.2), "extrapolation"),  # 0.75 at 240 bpm
    ],
)
def test_thresholds_null_cases(th: Alpha1Thresholds, reason: str) -> None:
    e = th.estimate()
    assert e.reason == reason
    assert e.hr_at_075_bpm is None
    assert e.hr_at_050_bpm is None


def test_thresholds_poor_fit_and_flat() -> None:
    rng = np.random.default_rng(2)
    th = Alpha1Thresholds()
    for _ in range(500):
        th.update(float(rng.uniform(120, 180)), None, float(rng.uniform(0.4, 1.2)))
    assert th.estimate().reason in ("poor_fit", "alpha1_not_falling")
    flat = _line(100, 130, 180, 0.0, 0.8)
    assert flat.estimate().reason == "alpha1_not_falling"


def test_thresholds_keep_vt1_when_only_vt2_is_extrapolated() -> None:
    th = _line(200, 120, 160, -0.01, 0.93)  # 0.75 at 168 (≤ 160 + 10), 0.5 at 193
    e = th.estimate()
    assert e.reason == "vt2_extrapolation"
    assert e.hr_at_075_bpm == pytest.approx(168.0)
    assert e.hr_at_050_bpm is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=300,
    )
)
def test_thresholds_never_non_finite(samples: list[tuple[float, float | None, float]]) -> None:
    th = Alpha1Thresholds(min_samples=2)
    for hr, speed, a1 in samples:
        th.update(hr, speed, a1)
    e = th.estimate()
    for v in (e.hr_at_075_bpm, e.hr_at_050_bpm, e.speed_at_075_mps, e.speed_at_050_mps, e.r2):
        assert v is None or math.isfinite(v)
