"""SplitTracker (per-km splits) and AccelerationDetector (starts from standstill)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gait import CadenceMode, LengthMode, footpod_readings, trace

from processing.accelerations import Acceleration, AccelerationDetector
from processing.gait import GaitTracker
from processing.splits import Split, SplitTracker

# --- splits ---------------------------------------------------------------------------------


def test_split_crossing_is_interpolated() -> None:
    sp = SplitTracker()
    assert sp.update(0.0, 0.0, 100.0, 150.0) is None
    assert sp.update(100.0, 990.0, 120.0, 160.0) is None
    s = sp.update(102.0, 1010.0, 120.0, 160.0)
    assert s is not None
    assert (s.index, s.start_s, s.distance_m) == (1, 0.0, 1000.0)
    assert s.end_s == pytest.approx(101.0)
    assert s.duration_s == pytest.approx(101.0)
    assert s.pace_s_per_km == pytest.approx(101.0)
    assert s.avg_cadence_spm is not None
    assert 155.0 < s.avg_cadence_spm < 160.0
    last = sp.finish()
    assert last is not None
    assert (last.index, last.start_s, last.end_s) == (2, s.end_s, 102.0)
    assert last.distance_m == pytest.approx(10.0)
    assert last.pace_s_per_km == pytest.approx(100.0)


def test_hr_average_is_time_weighted_oracle() -> None:
    """Against a batch reference: the trapezoid mean of HR over the first km."""
    sp = SplitTracker()
    times = [0.0, 10.0, 100.0, 200.0, 250.0]  # uneven reading intervals (no gap > 5 s capped)
    hrs = [100.0, 110.0, 150.0, 130.0, 140.0]
    out: list[Split] = []
    for t, hr in zip(times, hrs, strict=True):
        s = sp.update(t, 4.0 * t, hr, None)
        out += [s] if s else []
    # Weights are capped at 5 s per interval: each interval counts min(dt, 5) s.
    weights = [5.0, 5.0, 5.0, 5.0 * (250 - 200) / 50]
    means = [105.0, 130.0, 140.0, 135.0]
    assert out[0].avg_hr_bpm == pytest.approx(
        sum(w * m for w, m in zip(weights, means, strict=True)) / sum(weights)
    )
    assert out[0].avg_cadence_spm is None


def test_long_gap_across_several_km_yields_each_split() -> None:
    sp = SplitTracker()
    sp.update(0.0, 0.0, None, 170.0)
    first = sp.update(1000.0, 3500.0, None, 170.0)  # link lost for 1000 s over 3.5 km
    assert first is not None
    assert first.index == 1
    assert first.end_s == pytest.approx(1000 / 3.5)
    second = sp.update(1001.0, 3503.0, None, 170.0)
    assert second is not None
    assert second.index == 2
    rest = sp.flush()
    assert [s.index for s in rest] == [3]
    assert sp.update(1002.0, 3506.0, None, 170.0) is None
    last = sp.finish()
    assert last is not None
    assert last.index == 4
    assert last.distance_m == pytest.approx(506.0)


def test_finish_exactly_on_a_km_and_empty() -> None:
    assert SplitTracker().finish() is None
    sp = SplitTracker()
    sp.update(0.0, 0.0, None, None)
    assert sp.update(200.0, 1000.0, None, None) is not None
    assert sp.finish() is None


def test_morning_5k_has_five_splits() -> None:
    tr = trace("morning-5k")
    g, sp = GaitTracker(), SplitTracker()
    splits: list[Split] = []
    for r, _ in footpod_readings(tr, cadence="strides", length="stride"):
        gait = g.update(r)
        x = sp.update(r.time_mono_s, gait.distance_m, tr.sample_at(r.time_mono_s).hr_bpm,
                      gait.cadence_spm)  # fmt: skip
        splits += [x] if x else []
    assert [s.index for s in splits] == [1, 2, 3, 4, 5]
    # km 3 is the run (2000-3000 m, 4:00 → 3:30 /km); the others are walking at 10:00 /km.
    assert splits[1].pace_s_per_km == pytest.approx(600.0, abs=2.0)
    assert splits[2].pace_s_per_km is not None
    assert 210 < splits[2].pace_s_per_km < 240
    assert splits[4].pace_s_per_km == pytest.approx(600.0, abs=2.0)
    # Split times match the model's own km crossings.
    for s in splits:
        k = int(tr.distance_m.searchsorted(s.index * 1000.0))
        t0, t1 = tr.time_s[k - 1], tr.time_s[k]
        d0, d1 = tr.distance_m[k - 1], tr.distance_m[k]
        t_true = t0 + (s.index * 1000.0 - d0) / (d1 - d0) * (t1 - t0)
        assert s.end_s == pytest.approx(t_true, abs=1.0)
    last = sp.finish()
    assert last is not None
    assert last.index == 6
    assert last.distance_m < 5.0


# --- accelerations --------------------------------------------------------------------------


def virtual_accelerations(
    cadence: CadenceMode, length: LengthMode, rate_hz: float = 2.0
) -> list[Acceleration]:
    tr = trace("start-practice")
    g, det = GaitTracker(), AccelerationDetector()
    out: list[Acceleration] = []
    for r, _ in footpod_readings(tr, cadence=cadence, length=length, rate_hz=rate_hz):
        s = g.update(r)
        a = det.update(r.time_mono_s, s.distance_m, s.speed_mps, s.cadence_spm, s.step_length_m)
        out += [a] if a else []
    last = det.finish()
    return out + ([last] if last else [])


@pytest.mark.parametrize(
    ("cadence", "length"),
    [("steps", "step"), ("strides", "stride"), ("strides", "step"), ("steps", None)],
)
def test_start_practice_six_accelerations_within_3pct(
    cadence: CadenceMode, length: LengthMode
) -> None:
    truth = trace("start-practice").truth.accelerations
    found = virtual_accelerations(cadence, length)
    assert len(found) == len(truth) == 6
    for a, t in zip(found, truth, strict=True):
        assert a.peak_cadence_spm is not None
        assert a.peak_step_length_m is not None
        assert a.peak_cadence_spm == pytest.approx(t.peak_cadence_spm, rel=0.03)
        assert a.peak_step_length_m == pytest.approx(t.peak_step_length_m, rel=0.03)
        assert a.peak_stride_length_m == pytest.approx(2 * a.peak_step_length_m)
        assert a.peak_speed_mps == pytest.approx(t.peak_speed_mps, rel=0.03)
        assert a.start_s == pytest.approx(t.start_s, abs=0.25)
        assert a.start_m == pytest.approx(t.start_m, abs=1.0)
        assert a.time_to_90pct_s == pytest.approx(t.time_to_90pct_s, rel=0.05)
        assert a.distance_to_90pct_m == pytest.approx(t.distance_to_90pct_m, rel=0.05)
        assert a.steps == pytest.approx(t.steps, abs=2.0)
        assert a.end_s > a.start_s + a.time_to_90pct_s
        # The runner's "limiter": steps over 1.70 m with cadence stuck near 210.
        assert a.peak_step_length_m > 1.70
        assert 205 <= a.peak_cadence_spm <= 212


def test_morning_5k_has_no_acceleration() -> None:
    tr = trace("morning-5k")
    g, det = GaitTracker(), AccelerationDetector()
    found = []
    for r, _ in footpod_readings(tr):
        s = g.update(r)
        a = det.update(r.time_mono_s, s.distance_m, s.speed_mps, s.cadence_spm, s.step_length_m)
        found += [a] if a else []
    assert found == []  # walking off from the stand never reaches 4 m/s


def _feed(det: AccelerationDetector, rows: list[tuple[float, float]]) -> list[Acceleration]:
    out = []
    d = 0.0
    prev_t, prev_v = rows[0]
    for t, v in rows:
        d += 0.5 * (prev_v + v) * (t - prev_t)
        prev_t, prev_v = t, v
        a = det.update(t, d, v, 200.0 if v > 0.5 else 0.0, v * 60 / 200 if v > 0.5 else None)
        out += [a] if a else []
    return out


def test_needs_a_standstill_first() -> None:
    # Only 0.5 s below 0.5 m/s before the rise: not a start from standstill.
    rows = [(i / 2, 1.5) for i in range(10)] + [(5.0, 0.2), (5.5, 2.0)]
    rows += [(6.0 + i / 2, min(6.0, 2.0 + i)) for i in range(10)] + [(11.0, 1.0)]
    assert _feed(AccelerationDetector(), rows) == []


def test_slow_start_is_not_an_acceleration() -> None:
    rows = [(i / 2, 0.0) for i in range(6)] + [(3.0 + i / 2, 3.0) for i in range(10)]
    rows += [(8.0, 1.0)]
    assert _feed(AccelerationDetector(), rows) == []


def test_run_out_ends_an_acceleration_held_at_speed() -> None:
    rows = [(i / 2, 0.0) for i in range(6)]
    rows += [(3.0 + i / 2, min(5.0, 1.0 + i)) for i in range(30)]  # holds 5 m/s for 13 s
    found = _feed(AccelerationDetector(), rows)
    assert len(found) == 1
    a = found[0]
    assert a.peak_speed_mps == 5.0
    assert a.end_s == pytest.approx(5.0 + 3.0)  # 3 s after the last 1 % rise (at 5.0 s)
    assert a.start_s == pytest.approx(2.5)  # extrapolated 1 → 2 m/s back to 0, clamped


def test_gap_ends_an_acceleration() -> None:
    rows = [(i / 2, 0.0) for i in range(6)] + [(3.0, 2.0), (3.5, 4.0), (4.0, 5.0)]
    rows += [(30.0, 5.0)]
    det = AccelerationDetector()
    found = _feed(det, rows)
    assert len(found) == 1
    assert found[0].end_s == 4.0
    assert det.finish() is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
            st.one_of(st.floats(min_value=0, max_value=12), st.sampled_from([math.nan, -1.0])),
            st.one_of(st.none(), st.floats(min_value=0, max_value=255)),
            st.one_of(st.none(), st.floats(min_value=0, max_value=3)),
        ),
        max_size=80,
    )
)
def test_never_nan_or_crash(rows: list[tuple[float, float, float | None, float | None]]) -> None:
    det, sp = AccelerationDetector(), SplitTracker()
    t = d = 0.0
    found: list[Acceleration] = []
    splits: list[Split] = []
    for dt, v, cad, step in rows:
        t += dt
        d += (v if math.isfinite(v) and v > 0 else 0.0) * dt * 50  # reach several km
        a = det.update(t, d, v, cad, step)
        found += [a] if a else []
        s = sp.update(t, d, cad, cad)
        splits += [s] if s else []
    last = det.finish()
    found += [last] if last else []
    for a in found:
        for x in (a.start_s, a.time_to_90pct_s, a.distance_to_90pct_m, a.peak_speed_mps,
                  a.steps, a.end_s, a.peak_cadence_spm, a.peak_step_length_m):  # fmt: skip
            assert x is None or math.isfinite(x)
        assert a.time_to_90pct_s >= 0.0
    splits += sp.flush()
    final = sp.finish()
    splits += [final] if final else []
    for s in splits:
        for y in (s.start_s, s.end_s, s.duration_s, s.distance_m, s.pace_s_per_km,
                  s.avg_hr_bpm, s.avg_cadence_spm):  # fmt: skip
            assert y is None or math.isfinite(y)
    assert [s.index for s in splits] == list(range(1, len(splits) + 1))
