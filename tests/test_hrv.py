"""RollingHrv against neurokit2's hrv_time and a numpy batch oracle over every prefix."""

from __future__ import annotations

import math
from pathlib import Path

import neurokit2 as nk  # test-only reference (pyproject [test]): a missing one fails
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.hrv import HrvStats, RollingHrv

DATA = Path(__file__).parent / "data"


def _load_ms(name: str) -> np.ndarray:
    """Real RR intervals (tests/data/SOURCES.md) as whole milliseconds."""
    return np.round(np.loadtxt(DATA / name) * 1000.0).astype(np.int64)


def _oracle(rr_ms: np.ndarray, window_s: float) -> dict[str, float]:
    """Batch numpy reference over the whole window (no artifacts)."""
    x = rr_ms / 1000.0 * 1000.0
    d = np.diff(x)
    return {
        "rmssd_ms": float(np.sqrt(np.mean(d**2))),
        "sdnn_ms": float(np.std(x, ddof=1)),
        "pnn50_pct": float(np.sum(np.abs(d) > 50) / (len(d) + 1) * 100),
        "mean_rr_ms": float(np.mean(x)),
        "coverage": min(float(np.sum(x)) / 1000.0 / window_s, 1.0),
    }


def _feed(rr_ms: np.ndarray, window_s: float) -> tuple[RollingHrv, np.ndarray]:
    hrv = RollingHrv(window_s)
    times = np.cumsum(rr_ms) / 1000.0
    for t, rr in zip(times.tolist(), rr_ms.tolist(), strict=True):
        hrv.update(t, rr / 1000.0, artifact=False)
    return hrv, times


@pytest.mark.parametrize("name", ["fr630_rr_s.txt", "fenix3_rr_s.txt"])
@pytest.mark.parametrize("window_s", [60.0, 300.0])
def test_matches_neurokit2_hrv_time_on_real_rr(name: str, window_s: float) -> None:
    rr_ms = _load_ms(name)
    rng = np.random.default_rng(0)
    worst = 0.0
    for end in sorted(rng.choice(np.arange(400, len(rr_ms)), size=6, replace=False)):
        hrv, times = _feed(rr_ms[: end + 1], window_s)
        window = rr_ms[: end + 1][times > times[-1] - window_s]
        peaks = np.concatenate([[0], np.cumsum(window)])
        ref = nk.hrv_time(peaks, sampling_rate=1000)
        stats = hrv.get()
        assert stats is not None
        assert stats.beats == len(window)
        for ours, theirs in (
            (stats.rmssd_ms, ref["HRV_RMSSD"].iloc[0]),
            (stats.sdnn_ms, ref["HRV_SDNN"].iloc[0]),
            (stats.pnn50_pct, ref["HRV_pNN50"].iloc[0]),
            (stats.mean_rr_ms, ref["HRV_MeanNN"].iloc[0]),
        ):
            assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)
            if theirs:
                worst = max(worst, abs(ours - theirs) / abs(theirs))
    assert worst < 1e-9  # observed ~1e-14: the same arithmetic as neurokit2


@settings(max_examples=60, deadline=None)
@given(
    rr_ms=st.lists(st.integers(min_value=300, max_value=1500), min_size=2, max_size=400),
    window_s=st.sampled_from([5.0, 20.0, 60.0]),
)
def test_rolling_equals_batch_oracle_on_every_prefix(rr_ms: list[int], window_s: float) -> None:
    hrv = RollingHrv(window_s)
    arr = np.asarray(rr_ms, dtype=np.int64)
    times = np.cumsum(arr) / 1000.0
    for i, (t, rr) in enumerate(zip(times.tolist(), rr_ms, strict=True)):
        hrv.update(t, rr / 1000.0, artifact=False)
        window = arr[: i + 1][times[: i + 1] > t - window_s]
        stats = hrv.get()
        if len(window) < 2:
            assert stats is None
            continue
        assert stats is not None
        ref = _oracle(window, window_s)
        for key, value in ref.items():
            assert getattr(stats, key) == pytest.approx(value, rel=1e-9, abs=1e-9), key
        assert stats.beats == len(window)
        assert stats.artifact_pct == 0.0


def test_successive_differences_skip_artifacts_and_gaps() -> None:
    hrv = RollingHrv(60.0)
    hrv.update(1.0, 1.0, artifact=False)
    hrv.update(2.0, 1.0, artifact=False)
    hrv.update(3.2, 1.2, artifact=True)  # excluded, and so are both differences around it
    hrv.update(4.0, 0.8, artifact=False)
    hrv.update(5.1, 1.1, artifact=False)
    hrv.update(9.0, 1.0, artifact=False)  # 3.9 s after the previous beat: a gap, no difference
    stats = hrv.get()
    assert stats is not None
    # differences: 1000→1000 and 800→1100 only
    assert stats.rmssd_ms == pytest.approx(math.sqrt((0.0 + 300.0**2) / 2))
    assert stats.pnn50_pct == pytest.approx(100.0 * 1 / 5)
    assert stats.beats == 5
    assert stats.artifact_pct == pytest.approx(100.0 / 6)
    assert stats.coverage == pytest.approx(4.9 / 60.0)


def test_difference_leaves_with_its_first_beat() -> None:
    hrv = RollingHrv(2.5)
    for t, rr in ((1.0, 1.0), (2.0, 1.0), (2.5, 0.5), (3.5, 1.0)):
        hrv.update(t, rr, artifact=False)
    # window (1.0, 3.5]: beats at 2.0, 2.5, 3.5 → differences -500, +500
    assert hrv.get() == HrvStats(
        rmssd_ms=500.0,
        sdnn_ms=pytest.approx(np.std([1000, 500, 1000], ddof=1)),
        pnn50_pct=pytest.approx(200.0 / 3),
        mean_rr_ms=pytest.approx(2500.0 / 3),
        beats=3,
        artifact_pct=0.0,
        coverage=1.0,
    )


def test_none_until_two_clean_beats_and_rejects_time_going_back() -> None:
    hrv = RollingHrv(60.0)
    assert hrv.get() is None
    hrv.update(1.0, 1.0, artifact=False)
    assert hrv.get() is None
    with pytest.raises(ValueError, match="non-decreasing"):
        hrv.update(0.5, 0.5, artifact=False)
    with pytest.raises(ValueError, match="positive"):
        RollingHrv(0.0)


def test_long_run_stays_accurate() -> None:
    rng = np.random.default_rng(5)
    rr_ms = np.round(600 + 40 * rng.standard_normal(20_000)).astype(np.int64)
    hrv, times = _feed(rr_ms, 60.0)
    window = rr_ms[times > times[-1] - 60.0]
    stats = hrv.get()
    assert stats is not None
    ref = _oracle(window, 60.0)
    assert stats.sdnn_ms == pytest.approx(ref["sdnn_ms"], rel=1e-12)
    assert stats.rmssd_ms == pytest.approx(ref["rmssd_ms"], rel=1e-12)
