"""The post-run report: a virtual morning 5 km stored end to end, then reported.

The store is filled as the live app fills it (tests/report_fixtures.py): bumble GATT servers →
bleak backend → collector → Pipeline → SessionStore. Checks are against the workout's known
shape and against independent computations from the stored metrics.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_fixtures import EPOCH, store_no_rr_session, store_virtual_session

from outputs.errors import UnknownSessionError
from outputs.store import SessionStore
from processing.records import MetricGroup
from stridewatch.report import (
    MAX_HOLD_S,
    MAX_POINTS,
    MIN_SPLIT_M,
    MOVING_SPEED_MPS,
    SCHEMA_VERSION,
    build_report,
    build_timeseries,
)
from stridewatch.report_html import CSP, PLOT_IDS, render_html
from stridewatch.report_render import render_report
from stridewatch.report_text import render_text

NO_RR_ATHLETE = "No-RR <Runner> & \"Co\""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path_factory.mktemp("report") / "store.db") as s:
        yield s


@pytest.fixture(scope="module")
def morning(store: SessionStore) -> str:
    return store_virtual_session(store, "morning-5k")


@pytest.fixture(scope="module")
def no_rr(store: SessionStore) -> str:
    return store_no_rr_session(store, athlete=NO_RR_ATHLETE)


@pytest.fixture(scope="module")
def report(store: SessionStore, morning: str) -> dict[str, Any]:
    return build_report(store, morning)


def _first_reading_mono(store: SessionStore, session_id: str) -> float:
    return next(store.readings(session_id)).time_mono_s


# ------------------------------------------------------------------------------ morning 5 km


def test_session_header_distance_and_duration(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    s = report["session"]
    assert report["schema_version"] == SCHEMA_VERSION
    assert s["id"] == morning
    assert s["athlete"] == "athlete-1"
    assert s["source"] == "virtual"
    first = next(store.readings(morning))
    assert s["start"] == first.time_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert s["distance_m"] == pytest.approx(5000.0, rel=0.01)
    # 1 min stand + 4 km at 6 km/h (40 min) + 1 km at ~3:45 /km.
    assert 43 * 60 < s["duration_s"] < 47 * 60
    assert s["moving_time_s"] < s["duration_s"]


def test_segments_walk_run_walk(report: dict[str, Any]) -> None:
    kinds = [seg["kind"] for seg in report["segments"]]
    if kinds and kinds[0] == "stand":
        kinds = kinds[1:]
    assert kinds == ["walk", "run", "walk"]
    run = next(seg for seg in report["segments"] if seg["kind"] == "run")
    assert run["start_m"] == pytest.approx(2000.0, abs=20.0)
    assert run["end_m"] == pytest.approx(3000.0, abs=20.0)
    assert 200.0 < run["avg_pace_s_per_km"] < 250.0  # 4:00 → 3:30 /km
    ends = [seg["end_s"] for seg in report["segments"]]
    starts = [seg["start_s"] for seg in report["segments"]]
    assert starts == sorted(starts)
    assert all(a <= b + 1e-9 for a, b in zip(ends[:-1], starts[1:], strict=True))
    assert starts[0] >= 0.0
    assert ends[-1] <= report["session"]["duration_s"] + 1e-6


def test_five_full_splits_and_the_tiny_partial_one_is_omitted(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    splits = report["splits"]
    assert [s["km"] for s in splits] == [1, 2, 3, 4, 5]
    assert all(s["distance_m"] == pytest.approx(1000.0, abs=1.0) for s in splits)
    stored = list(store.metrics(morning, MetricGroup.SPLIT))
    # The pipeline's last split is a few decimetres: omitted (< MIN_SPLIT_M), as documented.
    assert len(stored) == 6
    last_m = stored[-1].values["distance_m"]
    assert isinstance(last_m, float)
    assert last_m < MIN_SPLIT_M
    t0 = _first_reading_mono(store, morning)
    for ours, theirs in zip(splits, stored, strict=False):
        assert ours["start_s"] == pytest.approx(theirs.values["start_s"] - t0)  # type: ignore[operator]
        assert ours["end_s"] - ours["start_s"] == pytest.approx(ours["duration_s"])
    assert splits[2]["pace_s_per_km"] < 250.0 < min(
        s["pace_s_per_km"] for i, s in enumerate(splits) if i != 2
    )


def test_heart_rate_and_zones(report: dict[str, Any]) -> None:
    hr = report["heart_rate"]
    assert 80.0 < hr["avg_bpm"] < 140.0
    assert 150.0 < hr["max_bpm"] < 200.0
    assert len(hr["time_in_zones_s"]) == 5
    assert sum(hr["time_in_zones_s"]) == pytest.approx(report["session"]["duration_s"], rel=0.03)
    assert hr["trimp"] > 0.0
    assert hr["zone_lower_bounds_bpm"] == sorted(hr["zone_lower_bounds_bpm"])


def test_whole_session_hrv_is_present_and_finite(report: dict[str, Any]) -> None:
    hrv = report["hrv"]
    for key in ("rmssd_ms", "sdnn_ms", "pnn50_pct", "dfa_alpha1", "artifact_pct"):
        assert isinstance(hrv[key], float), key
        assert math.isfinite(hrv[key]), key
    assert 0.0 < hrv["rmssd_ms"] < 200.0
    assert 0.3 < hrv["dfa_alpha1"] < 1.8
    assert hrv["artifact_pct"] < 3.0
    assert hrv["clean_beats"] >= 50


def test_whole_session_rmssd_matches_a_direct_computation(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    rr = [m.values["clean_rr_ms"] for m in store.metrics(morning, MetricGroup.RR)]
    if any(v is None for v in rr):
        pytest.fail("the virtual session without artifacts should have only clean beats")
    x = np.asarray(rr, dtype=np.float64)
    assert report["hrv"]["rmssd_ms"] == pytest.approx(float(np.sqrt(np.mean(np.diff(x) ** 2))))
    assert report["hrv"]["sdnn_ms"] == pytest.approx(float(np.std(x, ddof=1)))


def _independent_cadence(store: SessionStore, session_id: str) -> float:
    """Time-weighted cadence over moving time, written out plainly (the documented rule)."""
    gait = list(store.metrics(session_id, MetricGroup.GAIT))
    weighted = seconds = 0.0
    for here, after in itertools.pairwise(gait):
        speed, cadence = here.values["speed_mps"], here.values["cadence_spm"]
        assert isinstance(cadence, float | int | None)
        moving = (isinstance(speed, float) and speed >= MOVING_SPEED_MPS) or (
            cadence is not None and cadence > 0
        )
        if moving and cadence is not None:
            dt = min(after.time_mono_s - here.time_mono_s, MAX_HOLD_S)
            weighted += cadence * dt
            seconds += dt
    return weighted / seconds


def test_cadence_is_plausible_and_matches_an_independent_computation(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    avg = report["cadence"]["avg_spm"]
    # 4 km walking at ~122 spm and 1 km running at ~180 spm.
    assert 115.0 < avg < 140.0
    assert avg == pytest.approx(_independent_cadence(store, morning), abs=1.0)
    pace = report["pace"]["avg_s_per_km"]
    assert pace == pytest.approx(report["session"]["moving_time_s"] / 5.0, rel=0.02)


def test_alerts_equal_the_stores(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    stored = list(store.alerts(morning))
    t0 = _first_reading_mono(store, morning)
    expected = [
        {"id": a.id, "kind": str(a.kind), "severity": str(a.severity),
         "time_s": pytest.approx(a.time_mono_s - t0), "value": a.value,
         "threshold": a.threshold, "message": a.message}
        for a in stored
    ]  # fmt: skip
    assert [{k: v for k, v in a.items() if k != "time_utc"} for a in report["alerts"]] == expected


def test_readiness_and_thresholds(
    store: SessionStore, morning: str, report: dict[str, Any]
) -> None:
    r = report["readiness"]
    assert r["resting_rmssd_ms"] == store.session_summary(morning)["resting_rmssd_ms"]
    assert r["baseline_rmssd_ms"] is None  # no earlier session of athlete-1
    assert r["status"] == r["live_status"] == "no_baseline_yet"
    a1 = report["alpha1_thresholds"]
    assert set(a1) >= {"hr_at_075_bpm", "hr_at_050_bpm", "r2", "reason"}


def test_json_is_strict_and_round_trips(
    store: SessionStore, morning: str, no_rr: str, report: dict[str, Any]
) -> None:
    for session_id in (morning, no_rr):
        text = json.dumps(build_report(store, session_id), allow_nan=False)
        assert json.loads(text) == build_report(store, session_id)
    assert json.loads(render_report(store, morning, "json")) == report


def test_timeseries_are_downsampled_and_aligned(store: SessionStore, morning: str) -> None:
    series = build_timeseries(store, morning)
    for group, keys in {
        "hr": ["hr_bpm"],
        "rr": ["rr_ms"],
        "hrv": ["rmssd_60s_ms", "dfa_alpha1"],
        "gait": ["cadence_spm", "step_length_m", "speed_mps", "pace_s_per_km", "distance_m"],
    }.items():
        t = series[f"{group}_t_s"]
        assert 100 < t.size <= MAX_POINTS
        assert bool(np.all(np.diff(t) > 0))
        for key in keys:
            assert series[key].shape == t.shape, key
    assert float(np.nanmax(series["distance_m"])) == pytest.approx(5000.0, rel=0.01)


def test_text_report_contains_the_key_numbers(report: dict[str, Any]) -> None:
    text = render_text(report)
    assert "athlete-1" in text
    assert f"{report['session']['distance_m'] / 1000:.2f} km" in text
    assert f"{report['cadence']['avg_spm']:.0f} spm" in text
    assert f"RMSSD {report['hrv']['rmssd_ms']:.1f} ms" in text
    assert f"avg {report['heart_rate']['avg_bpm']:.0f} bpm" in text
    for split in report["splits"]:
        minutes, secs = divmod(round(split["pace_s_per_km"]), 60)
        assert f"{minutes}:{secs:02d} /km" in text
    for alert in report["alerts"]:
        assert alert["message"] in text
    # Aligned columns: every row of the splits table is as wide as its header.
    block = text.split("\nSplits\n")[1].split("\n\n")[0].splitlines()
    assert len(block) == 6
    assert len({len(line) for line in block}) == 1


# ------------------------------------------------------------------------------ no RR


def test_session_without_rr_has_null_hrv(store: SessionStore, no_rr: str) -> None:
    report = build_report(store, no_rr)
    assert all(report["hrv"][k] is None for k in
               ("rmssd_ms", "sdnn_ms", "pnn50_pct", "dfa_alpha1", "artifact_pct"))  # fmt: skip
    assert report["hrv"]["dfa_reason"] == "no_rr"
    assert report["readiness"]["resting_rmssd_ms"] is None
    assert report["readiness"]["status"] is None
    assert report["heart_rate"]["avg_bpm"] is not None
    assert report["cadence"]["avg_spm"] == pytest.approx(170.0)
    assert report["pace"]["avg_s_per_km"] == pytest.approx(1000.0 / 3.0, rel=0.01)
    assert report["session"]["moving_time_s"] == pytest.approx(600.0 - 30.5, abs=1.0)
    text = render_text(report)
    assert "RMSSD -," in text


def test_html_escapes_user_text_and_is_self_contained(store: SessionStore, no_rr: str) -> None:
    page = render_report(store, no_rr, "html")
    assert NO_RR_ATHLETE not in page
    assert "No-RR &lt;Runner&gt; &amp; &quot;Co&quot;" in page
    assert f'content="{CSP}"' in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!data:)[a-z]+:""", page, re.IGNORECASE)
    for forbidden in ("<script", "@import", "url(", "<link"):
        assert forbidden not in page
    for plot_id in PLOT_IDS:
        assert re.search(rf'<img id="{plot_id}" src="data:image/png;base64,[A-Za-z0-9+/=]+" '
                         r'alt="[^"]+">', page), plot_id  # fmt: skip
    assert "no RR intervals in this session" not in page  # text lives inside the PNGs


def test_html_of_the_morning_has_every_section(report: dict[str, Any], store: SessionStore,
                                               morning: str) -> None:  # fmt: skip
    page = render_html(report, build_timeseries(store, morning))
    for section in ("summary", "readiness", "plots", "splits", "segments", "accelerations",
                    "alerts"):  # fmt: skip
        assert f'<section id="{section}">' in page
    assert report["alerts"][0]["message"] in page if report["alerts"] else True
    assert len(page) < 1_000_000


# ------------------------------------------------------------------------------ baseline, errors


def test_baseline_is_the_geometric_mean_of_earlier_sessions_only(tmp_path: Path) -> None:
    with SessionStore.open(tmp_path / "s.db") as s:
        athlete = "Zoë"
        for days, rmssd in ((-3, 40.0), (-2, 50.0), (-1, 62.5), (+1, 5.0)):
            sid = s.create_session(athlete, EPOCH + timedelta(days=days), "ble")
            s.set_session_summary(sid, "resting_rmssd_ms", rmssd)
        today = store_no_rr_session(s, athlete=athlete, duration_s=120)
        s.set_session_summary(today, "resting_rmssd_ms", 30.0)
        r = build_report(s, today)["readiness"]
    assert r["baseline_sessions"] == 3
    assert r["baseline_rmssd_ms"] == pytest.approx(math.exp(np.mean(np.log([40, 50, 62.5]))))
    assert r["resting_rmssd_ms"] == 30.0
    assert r["status"] == "low"  # 30 / 50 = 60 % < 75 %


def test_unknown_session_and_format(store: SessionStore, morning: str) -> None:
    with pytest.raises(UnknownSessionError):
        build_report(store, "no-such-session")
    with pytest.raises(ValueError, match="unknown report format"):
        render_report(store, morning, "pdf")  # type: ignore[arg-type]
