"""RrCleaner on real RR with injected artifacts; no NaN/inf from garbage anywhere."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.dfa import RollingDfa
from processing.hrv import RollingHrv
from processing.rr_cleaning import ArtifactKind, ArtifactWindow, CleanBeat, RrCleaner

DATA = Path(__file__).parent / "data"


def _clean_stretches(name: str, min_len: int = 150) -> list[np.ndarray]:
    """Stretches of real RR with no successive change above 15 %: clean by a simple rule that
    is independent of the cleaner."""
    rr = np.loadtxt(DATA / name)
    bad = np.flatnonzero(np.abs(np.diff(rr)) / rr[1:] > 0.15) + 1
    edges = [0, *bad.tolist(), len(rr)]
    return [rr[a:b] for a, b in itertools.pairwise(edges) if b - a >= min_len]


def _stretches() -> list[np.ndarray]:
    return _clean_stretches("fr630_rr_s.txt") + _clean_stretches("fenix3_rr_s.txt")


def test_few_false_positives_on_clean_real_rr() -> None:
    beats = flagged = 0
    for stretch in _stretches():
        cleaner = RrCleaner()
        for rr in stretch.tolist():
            beat = cleaner.update(rr)
            assert beat.rr_s == rr or beat.artifact is not None
        beats += cleaner.beats_seen
        flagged += cleaner.artifacts_seen
    assert beats > 3000
    assert flagged / beats <= 0.001


def _inject(
    stretch: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[list[float], set[int]]:
    """Every ~25 beats one artifact; returns the series and the indices that must be flagged."""
    out: list[float] = []
    expected: set[int] = set()
    i = 0
    rr = stretch.tolist()
    while i < len(rr):
        if i > 20 and i % 25 == 0 and i + 1 < len(rr):
            if kind == "missed":
                expected.add(len(out))
                out.append(rr[i] + rr[i + 1])
                i += 2
                continue
            if kind == "extra":
                split = rng.uniform(0.3, 0.7)
                expected.update((len(out), len(out) + 1))
                out.extend((rr[i] * split, rr[i] * (1 - split)))
                i += 1
                continue
            if kind == "ectopic":
                early = rng.uniform(0.25, 0.4) * rr[i]
                expected.update((len(out), len(out) + 1))
                out.extend((rr[i] - early, rr[i + 1] + early))
                i += 2
                continue
        out.append(rr[i])
        i += 1
    return out, expected


@pytest.mark.parametrize("kind", ["missed", "extra", "ectopic"])
def test_detects_injected_artifacts_in_real_rr(kind: str) -> None:
    rng = np.random.default_rng(4)
    hits = total = false_positives = clean_total = 0
    kinds: dict[ArtifactKind | None, int] = {}
    for stretch in _stretches():
        series, expected = _inject(stretch, kind, rng)
        cleaner = RrCleaner()
        beats = [cleaner.update(rr) for rr in series]
        for j, beat in enumerate(beats):
            if j in expected:
                total += 1
                hits += beat.artifact is not None
                kinds[beat.artifact] = kinds.get(beat.artifact, 0) + 1
            else:
                clean_total += 1
                false_positives += beat.artifact is not None
    assert total > 100
    assert hits / total >= 0.9
    assert false_positives / clean_total < 0.01
    assert kinds.get(ArtifactKind(kind), 0) > 0


def test_corrections_keep_time() -> None:
    cleaner = RrCleaner()
    for _ in range(10):
        cleaner.update(0.8)
    missed = cleaner.update(1.6)
    assert missed == CleanBeat(rr_s=0.8, artifact=ArtifactKind.MISSED, raw_rr_s=1.6, beats=2)
    early, late = cleaner.update(0.55), cleaner.update(1.05)  # premature + compensatory pause
    assert early.artifact is late.artifact is ArtifactKind.ECTOPIC
    assert early.rr_s is not None
    assert late.rr_s is not None
    assert early.rr_s + late.rr_s == pytest.approx(1.6)
    first, second = cleaner.update(0.3), cleaner.update(0.5)  # extra detection
    assert second == CleanBeat(rr_s=None, artifact=ArtifactKind.EXTRA, raw_rr_s=0.5, beats=0)
    assert first.rr_s == pytest.approx(0.8)
    assert cleaner.counts()[ArtifactKind.ECTOPIC] == 3
    assert cleaner.artifacts_seen == 5


@pytest.mark.parametrize("raw", [0.0, -1.0, 0.2, 2.6, math.nan, math.inf, -math.inf])
def test_out_of_range_is_dropped(raw: float) -> None:
    beat = RrCleaner().update(raw)
    assert beat.artifact is ArtifactKind.OUT_OF_RANGE
    assert beat.rr_s is None
    assert beat.beats == 0


def test_follows_a_genuine_step_in_heart_rate() -> None:
    cleaner = RrCleaner()
    for _ in range(30):
        cleaner.update(0.6)
    beats = [cleaner.update(0.45) for _ in range(30)]  # 100 → 133 bpm at once
    assert sum(b.artifact is not None for b in beats) <= 6
    assert all(b.artifact is None for b in beats[-20:])


def test_artifact_window() -> None:
    window = ArtifactWindow(10.0)
    assert window.get() is None
    for i in range(20):
        window.update(float(i), artifact=i % 4 == 0)
    assert window.get() == pytest.approx(100.0 * 2 / 10)  # beats 10..19: 12 and 16
    with pytest.raises(ValueError, match="positive"):
        ArtifactWindow(-1.0)


garbage = st.one_of(
    st.floats(min_value=0.3, max_value=1.5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.5, 1e-9, 3.0, 1e300, 0.25, 2.5]),
)


@settings(max_examples=80, deadline=None)
@given(
    raw=st.lists(garbage, min_size=1, max_size=300),
    gaps=st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=300),
)
def test_garbage_never_produces_nan_or_inf(raw: list[float], gaps: list[float]) -> None:
    cleaner = RrCleaner()
    hrv60, hrv300 = RollingHrv(60.0), RollingHrv(300.0)
    dfa = RollingDfa(120.0, update_interval_s=0.0, min_beats=17)
    t = 0.0
    for i, value in enumerate(raw):
        beat = cleaner.update(value)
        assert beat.rr_s is None or (math.isfinite(beat.rr_s) and beat.rr_s > 0)
        t += gaps[i % len(gaps)]
        rr = beat.rr_s if beat.rr_s is not None else value
        for stat in (hrv60, hrv300, dfa):
            stat.update(t, rr, beat.artifact is not None)
        for stats in (hrv60.get(), hrv300.get()):
            if stats is not None:
                for field in ("rmssd_ms", "sdnn_ms", "pnn50_pct", "mean_rr_ms", "artifact_pct"):
                    assert math.isfinite(getattr(stats, field)), field
                assert 0.0 <= stats.coverage <= 1.0
        result = dfa.get()
        assert result.alpha1 is None or math.isfinite(result.alpha1)
        assert math.isfinite(result.artifact_pct)
    assert math.isfinite(cleaner.artifact_pct)
