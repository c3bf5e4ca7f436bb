"""HR quality gate, zones, TRIMP, decoupling and rise rate (processing/heart.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import Contact
from processing.heart import Decoupling, HrQuality, RiseRate, Trimp, ZoneTimer
from processing.settings import AthleteSettings

A = AthleteSettings(max_hr_bpm=190, resting_hr_bpm=55, hr_margin_bpm=10)
OK = Contact.DETECTED

# ------------------------------------------------------------------ HrQuality


def test_quality_accepts_normal_stream() -> None:
    q = HrQuality(A)
    for t in range(100):
        assert q.check(float(t), 120 + t % 5, OK, rr_count=1).accepted
    assert q.accepted == 100
    assert sum(q.counts.values()) == 0


@pytest.mark.parametrize(
    ("hr", "contact", "reason"),
    [
        (0, OK, "zero"),
        (130, Contact.NOT_DETECTED, "no_contact"),
        (201, OK, "above_max"),  # max 190 + margin 10
        (0, Contact.NOT_DETECTED, "zero"),  # first rule wins
    ],
)
def test_quality_rejections(hr: int, contact: Contact, reason: str) -> None:
    q = HrQuality(A)
    assert q.check(0.0, 120, OK).accepted
    verdict = q.check(1.0, hr, contact)
    assert (verdict.accepted, verdict.reason) == (False, reason)
    assert q.counts[reason] == 1  # type: ignore[index]


def test_quality_unsupported_contact_and_max_boundary_accepted() -> None:
    q = HrQuality(A)
    assert q.check(0.0, 180, Contact.UNSUPPORTED).accepted
    assert q.check(1.0, 200, Contact.UNSUPPORTED).accepted  # exactly max + margin


def test_quality_rejects_spike_but_keeps_reference() -> None:
    q = HrQuality(A)
    assert q.check(0.0, 120, OK).accepted
    assert q.check(1.0, 155, OK).reason == "impossible_jump"  # +35 in 1 s
    assert q.check(2.0, 122, OK).accepted  # the spike did not move the reference
    assert q.check(3.0, 152, OK).accepted  # exactly +30 in 1 s is allowed
    assert q.check(3.5, 120, OK).reason == "impossible_jump"  # -32 in 0.5 s
    assert q.counts["impossible_jump"] == 2


def test_quality_recovers_after_gap_or_wrong_reference() -> None:
    q = HrQuality(A)
    assert q.check(0.0, 100, OK).accepted
    # a real step to a new level: rejected for a moment, accepted once 40 bpm <= 30 × Δt
    assert q.check(1.0, 140, OK).reason == "impossible_jump"
    assert q.check(2.0, 140, OK).accepted  # Δt = 2 s since the last accepted value
    # after a 10-s gap any plausible value is accepted
    assert q.check(12.0, 60, OK).accepted


def test_quality_stale_unworn_strap() -> None:
    q = HrQuality(A)
    reasons = [q.check(float(t), 77, Contact.UNSUPPORTED, rr_count=0).reason for t in range(30)]
    assert reasons[:20] == [None] * 20  # t = 0..19: not yet 20 s
    assert reasons[20:] == ["stale"] * 10
    # a frame with RR (or a different value) ends it
    assert q.check(30.0, 77, Contact.UNSUPPORTED, rr_count=1).accepted
    assert q.check(31.0, 77, Contact.UNSUPPORTED, rr_count=0).accepted


def test_quality_constant_hr_with_rr_or_unknown_rr_is_not_stale() -> None:
    q = HrQuality(A)
    for t in range(120):
        assert q.check(float(t), 150, OK, rr_count=2).accepted
        assert q.check(t + 0.5, 150, OK).accepted  # rr_count unknown: rule not applied


# ------------------------------------------------------------------ ZoneTimer, Trimp


def test_zone_timer_counts_event_time_and_skips_gaps() -> None:
    z = ZoneTimer(A)  # zone bounds 114, 133, 152, 171 bpm
    samples = [(0, 100), (1, 120), (2, 140), (3, 160), (4, 180), (5, 180), (15, 100), (16, 100)]
    for t, hr in samples:
        z.update(float(t), hr)
    # each interval goes to the zone of its earlier reading; 5 → 15 is a gap, 15 → 16 zone 1
    assert z.seconds == (2.0, 1.0, 1.0, 1.0, 1.0)


def test_zone_timer_ignores_backwards_time() -> None:
    z = ZoneTimer(A)
    z.update(10.0, 100)
    z.update(9.0, 180)
    z.update(11.0, 100)
    assert z.seconds == (1.0, 0.0, 0.0, 0.0, 0.0)


def _trimp_oracle(times: list[float], hrs: list[float], sex: str) -> float:
    b = 1.92 if sex == "male" else 1.67
    total = 0.0
    for i in range(1, len(times)):
        dt = times[i] - times[i - 1]
        if 0 < dt <= 5.0:
            hrr = min(1.0, max(0.0, (hrs[i - 1] - 55) / 135))
            total += dt / 60 * hrr * 0.64 * math.exp(b * hrr)
    return total


def test_trimp_hand_value() -> None:
    tr = Trimp(A)
    for t in range(31 * 60 + 1):
        tr.update(float(t), 150)
    # 31 min at HRr 95/135: 31 × 0.703704 × 0.64 × e^(1.92 × 0.703704) = 53.92
    assert tr.value == pytest.approx(31 * (95 / 135) * 0.64 * math.exp(1.92 * 95 / 135))
    assert tr.value == pytest.approx(53.92, abs=0.01)


def test_trimp_female_and_gap() -> None:
    tr = Trimp(AthleteSettings(max_hr_bpm=190, resting_hr_bpm=55, sex="female"))
    for t in [0, 60, 61, 62]:  # the first interval is a 60-s gap
        tr.update(float(t), 190)
    assert tr.value == pytest.approx(2 / 60 * 1.0 * 0.64 * math.exp(1.67))


def test_trimp_matches_oracle_on_random_stream() -> None:
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.uniform(0.2, 7.0, 500)).tolist()
    hrs = rng.uniform(40, 200, 500).tolist()
    tr = Trimp(A)
    for t, hr in zip(times, hrs, strict=True):
        tr.update(t, hr)
    assert tr.value == pytest.approx(_trimp_oracle(times, hrs, "male"), rel=1e-12)


# ------------------------------------------------------------------ Decoupling


def test_decoupling_steady_run_is_zero_and_drift_positive() -> None:
    steady = Decoupling()
    drift = Decoupling()
    for t in range(3601):
        steady.update(float(t), 3.6, 150.0)
        drift.update(float(t), 3.6, 150.0 + 10.0 * t / 3600)  # HR drifts +10 bpm in an hour
    assert steady.result() == pytest.approx(0.0, abs=1e-12)
    res = drift.result()
    assert res is not None
    # oracle: means of each half
    hr1 = np.mean([150 + 10 * t / 3600 for t in range(1800)])
    hr2 = np.mean([150 + 10 * t / 3600 for t in range(1800, 3601)])
    assert res == pytest.approx((1 / hr1 - 1 / hr2) / (1 / hr1) * 100, abs=0.01)


def test_decoupling_short_or_empty_is_none() -> None:
    d = Decoupling()
    assert d.result() is None
    for t in range(300):
        d.update(float(t), 3.0, 150.0)
    assert d.result() is None  # < 10 min
    d.update(400.0, None, 150.0)
    d.update(401.0, math.nan, 150.0)
    assert d.result() is None


def test_decoupling_bounded_over_long_runs() -> None:
    d = Decoupling(bucket_s=10.0, max_buckets=64)
    for t in range(0, 6 * 3600, 2):
        d.update(float(t), 3.0 if t < 3 * 3600 else 2.7, 150.0)
    assert 32 <= d.buckets <= 64
    res = d.result()
    assert res == pytest.approx(10.0, abs=0.5)  # pace dropped 10 % in the second half


# ------------------------------------------------------------------ RiseRate


def _rise_oracle(times: list[float], hrs: list[float], window: float) -> list[float]:
    out = []
    for i, t in enumerate(times):
        lo = min(h for s, h in zip(times[: i + 1], hrs[: i + 1], strict=True) if s >= t - window)
        out.append(hrs[i] - lo)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 20.0), st.integers(40, 200)), min_size=1, max_size=150))
def test_rise_rate_matches_brute_force(steps: list[tuple[float, int]]) -> None:
    times = np.cumsum([dt for dt, _ in steps]).tolist()
    hrs = [float(h) for _, h in steps]
    r = RiseRate(30.0)
    got = [r.update(t, h) for t, h in zip(times, hrs, strict=True)]
    assert got == pytest.approx(_rise_oracle(times, hrs, 30.0))
    assert r.get() == got[-1]


def test_rise_rate_window_edges() -> None:
    r = RiseRate(30.0)
    assert r.update(0.0, 100) == 0.0
    assert r.update(30.0, 125) == 25.0  # t − 30 s is inside the window
    assert r.update(30.5, 125) == 0.0  # 0.0 has left; min now 125 at 30.0
    assert r.window_min_bpm() == 125
    assert r.update(29.0, 130) == 5.0  # time running backwards is clamped to 30.5


# ------------------------------------------------------------------ robustness


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 120.0, allow_nan=False),  # time step, s (gaps included)
            st.integers(0, 260),  # HR as sent
            st.sampled_from(list(Contact)),
            st.one_of(st.none(), st.integers(0, 9)),  # RR count
            st.one_of(st.none(), st.floats(-1.0, 12.0)),  # speed
        ),
        max_size=200,
    )
)
def test_random_streams_never_crash_or_produce_non_finite(
    stream: list[tuple[float, int, Contact, int | None, float | None]],
) -> None:
    q = HrQuality(A)
    z, tr, d, r = ZoneTimer(A), Trimp(A), Decoupling(min_duration_s=0), RiseRate()
    t = 1000.0
    for dt, hr, contact, rr_count, speed in stream:
        t += dt
        verdict = q.check(t, hr, contact, rr_count=rr_count)
        if not verdict.accepted:
            continue
        z.update(t, hr)
        tr.update(t, hr)
        d.update(t, speed, hr)
        assert math.isfinite(r.update(t, hr))
    assert all(math.isfinite(s) and s >= 0 for s in z.seconds)
    assert math.isfinite(tr.value)
    assert tr.value >= 0
    res = d.result()
    assert res is None or math.isfinite(res)
    assert q.accepted + sum(q.counts.values()) == len(stream)
