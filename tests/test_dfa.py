"""DFA α1: batch reference vs neurokit2, incremental vs batch, suppression, zones."""

from __future__ import annotations

import math
from pathlib import Path

import neurokit2 as nk  # test-only reference (pyproject [test]): a missing one fails
import numpy as np
import pytest

from processing.dfa import RollingDfa, dfa_alpha1_batch, zone_for_alpha1

DATA = Path(__file__).parent / "data"
SCALES = np.arange(4, 17)


def _nk_alpha1(rr_s: np.ndarray) -> float:
    value, _ = nk.fractal_dfa(rr_s * 1000.0, scale=SCALES)
    return float(value)


def _two_minute_windows(rr_s: np.ndarray, step: int) -> list[np.ndarray]:
    times = np.cumsum(rr_s)
    windows = []
    for end in range(300, len(rr_s), step):
        windows.append(rr_s[: end + 1][times[: end + 1] > times[end] - 120.0])
    return windows


@pytest.mark.parametrize("name", ["fr630_rr_s.txt", "fenix3_rr_s.txt"])
def test_batch_matches_neurokit2_on_real_rr(name: str) -> None:
    rr_s = np.loadtxt(DATA / name)
    rr_s = rr_s[(rr_s >= 0.25) & (rr_s <= 2.5)]
    errors = []
    for window in _two_minute_windows(rr_s, step=250):
        ours = dfa_alpha1_batch(window)
        errors.append(abs(ours - _nk_alpha1(window)))
        assert 0.0 < ours < 2.0
    assert len(errors) >= 7
    assert max(errors) < 0.01  # observed < 1e-14: same definition


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / noise.std()


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [("white", 0.35, 0.65), ("pink", 0.8, 1.25), ("brown", 1.3, 1.7)],
)
def test_synthetic_series_match_neurokit2_and_theory(kind: str, low: float, high: float) -> None:
    rng = np.random.default_rng(42)
    for _ in range(3):
        if kind == "white":
            noise = rng.standard_normal(1000)
        elif kind == "pink":
            noise = _pink(1000, rng)
        else:
            noise = np.cumsum(rng.standard_normal(1000))
            noise /= noise.std()
        rr_s = 0.7 + 0.03 * noise
        ours = dfa_alpha1_batch(rr_s)
        assert ours == pytest.approx(_nk_alpha1(rr_s), abs=0.01)
        assert low < ours < high


def test_incremental_equals_batch_on_every_window() -> None:
    rr_s = np.loadtxt(DATA / "fenix3_rr_s.txt")[:2500]
    rr_s = rr_s[(rr_s >= 0.25) & (rr_s <= 2.5)]
    rng = np.random.default_rng(11)
    artifact = rng.random(rr_s.size) < 0.005
    dfa = RollingDfa(120.0, update_interval_s=0.0)
    times = np.cumsum(rr_s)
    checked = 0
    for i, (t, rr) in enumerate(zip(times.tolist(), rr_s.tolist(), strict=True)):
        dfa.update(t, rr, bool(artifact[i]))
        result = dfa.get()
        in_window = times[: i + 1] > t - 120.0
        clean = rr_s[: i + 1][in_window & ~artifact[: i + 1]]
        assert result.beats == clean.size
        assert result.time_s == t
        if result.alpha1 is None or i % 20:
            continue
        assert result.alpha1 == pytest.approx(dfa_alpha1_batch(clean), abs=1e-9)
        checked += 1
    assert checked > 80


def test_live_value_refreshes_once_per_second_of_event_time() -> None:
    rng = np.random.default_rng(3)
    rr_s = 0.4 + 0.01 * rng.standard_normal(1000)
    dfa = RollingDfa(120.0)
    times = np.cumsum(rr_s)
    computed = set()
    for t, rr in zip(times.tolist(), rr_s.tolist(), strict=True):
        dfa.update(t, rr, artifact=False)
        result = dfa.get()
        assert result.time_s is not None
        assert 0.0 <= t - result.time_s < 1.0
        computed.add(result.time_s)
    # one value per interval of at least 1 s: with 0.4 s beats, every third beat
    assert times[-1] / 1.3 < len(computed) <= times[-1] + 1
    last = dfa.get()
    assert last.time_s is not None
    assert last.alpha1 is not None
    window = rr_s[(times > last.time_s - 120.0) & (times <= last.time_s)]
    assert last.alpha1 == pytest.approx(dfa_alpha1_batch(window), abs=1e-9)


def test_suppressed_when_artifacts_reach_3_percent() -> None:
    rng = np.random.default_rng(8)
    dfa = RollingDfa(120.0, update_interval_s=0.0)
    t = 0.0
    for i in range(600):
        rr = 0.5 + 0.02 * rng.standard_normal()
        t += rr
        dfa.update(t, rr, artifact=i % 40 == 0)  # 2.5 %
    ok = dfa.get()
    assert ok.alpha1 is not None
    assert ok.reason is None
    assert 2.0 < ok.artifact_pct < 3.0
    for i in range(240):
        rr = 0.5 + 0.02 * rng.standard_normal()
        t += rr
        dfa.update(t, rr, artifact=i % 25 == 0)  # 4 %
    bad = dfa.get()
    assert bad.alpha1 is None
    assert bad.artifact_pct >= 3.0
    assert bad.reason is not None
    assert bad.reason.startswith("artifacts")


def test_suppressed_with_too_few_beats_and_flat_signal() -> None:
    dfa = RollingDfa(120.0, update_interval_s=0.0)
    assert dfa.get().reason == "no beats yet"
    t = 0.0
    for _ in range(40):
        t += 0.5
        dfa.update(t, 0.5, artifact=False)
    assert dfa.get().alpha1 is None
    assert dfa.get().reason == "too few beats (40 < 50)"
    for _ in range(200):
        t += 0.5
        dfa.update(t, 0.5, artifact=False)
    flat = dfa.get()
    assert flat.alpha1 is None
    assert flat.reason is not None
    assert flat.reason.startswith("flat signal")
    assert math.isnan(dfa_alpha1_batch(np.full(100, 0.5)))


def test_bounded_state() -> None:
    dfa = RollingDfa(120.0, update_interval_s=0.0, max_beats=100)
    rng = np.random.default_rng(2)
    t = 0.0
    for rr in (0.3 + 0.01 * rng.standard_normal(1000)).tolist():
        t += rr
        dfa.update(t, rr, artifact=False)
    assert dfa.get().beats == 100


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 17"):
        dfa_alpha1_batch(np.full(10, 0.5))
    with pytest.raises(ValueError, match="min_beats"):
        RollingDfa(min_beats=10)
    dfa = RollingDfa()
    dfa.update(5.0, 0.5, artifact=False)
    with pytest.raises(ValueError, match="non-decreasing"):
        dfa.update(4.0, 0.5, artifact=False)


@pytest.mark.parametrize(
    ("alpha1", "zone"),
    [
        (1.2, "aerobic"),
        (0.76, "aerobic"),
        (0.75, "transition"),
        (0.5, "transition"),
        (0.49, "anaerobic"),
        (-0.1, "anaerobic"),
    ],
)
def test_zone_for_alpha1(alpha1: float, zone: str) -> None:
    assert zone_for_alpha1(alpha1) == zone


def test_zone_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        zone_for_alpha1(math.nan)


@pytest.mark.parametrize("interval_s", [0.7, 3.0, 20.0])
def test_running_sums_equal_batch_over_a_long_session_with_gaps(interval_s: float) -> None:
    """The per-(size, alignment) running sums stay exact across many windows, batched syncs
    of many entering/leaving boxes, a pause longer than the window, and artifacts."""
    rng = np.random.default_rng(int(interval_s * 10))
    rr_s = np.clip(0.45 + np.cumsum(0.004 * rng.standard_normal(2400)) % 0.3, 0.3, 1.2)
    times = np.cumsum(rr_s)
    times[1200:] += 400.0  # the strap is off for 400 s: every beat leaves the window
    artifact = rng.random(rr_s.size) < 0.004
    dfa = RollingDfa(120.0, update_interval_s=interval_s)
    checked = computes = 0
    last_checked = None
    for i, (t, rr) in enumerate(zip(times.tolist(), rr_s.tolist(), strict=True)):
        dfa.update(t, rr, bool(artifact[i]))
        result = dfa.get()
        if result.alpha1 is None or result.time_s != t or result.time_s == last_checked:
            continue
        last_checked = t
        computes += 1
        if computes % 7:
            continue
        in_window = (times[: i + 1] > t - 120.0) & ~artifact[: i + 1]
        assert result.alpha1 == pytest.approx(dfa_alpha1_batch(rr_s[: i + 1][in_window]),
                                              abs=1e-9)
        checked += 1
    assert checked > 4
