"""CSV and RR-interval text sources: round trips, unit detection, errors with line numbers."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import ReplayError
from ingest.records import HeartRateReading, LinkEvent, SensorInfo, StrideReading
from ingest.replay import (
    CSV_HR_SENSOR,
    CSV_POD_SENSOR,
    RR_HR_SENSOR,
    detect_rr_unit,
    parse_rr_text,
    read_activity_file,
    read_csv,
    read_rr_text,
    sniff_format,
)

DATA = Path(__file__).parent / "data"
START = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)

# --------------------------------------------------------------------------------- CSV

GOOD_CSV = """\
# morning 5k, exported by hand
time,heart_rate_bpm,rr_ms,speed_mps,cadence_spm,step_length_m,distance_m
2024-05-01T06:30:00Z,92,650;655,1.70,118,0.86,0.0
2024-05-01T06:30:01Z,93,640,1.72,119,0.87,1.7
2024-05-01T06:30:02Z,95,,,,,
2024-05-01T06:30:03Z,,,3.90,176,1.33,5.6
"""


def _write(tmp_path: Path, text: str, name: str = "run.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_round_trip(tmp_path: Path) -> None:
    act = read_csv(_write(tmp_path, GOOD_CSV), athlete="ann")
    assert act.source_format == "csv"
    assert act.summary is None
    assert act.start_utc == START
    hr = [r for r in act.readings if isinstance(r, HeartRateReading)]
    pod = [r for r in act.readings if isinstance(r, StrideReading)]
    infos = [r for r in act.readings if isinstance(r, SensorInfo)]
    assert [r.heart_rate_bpm for r in hr] == [92, 93, 95]
    assert [r.time_mono_s for r in hr] == [0.0, 1.0, 2.0]
    assert hr[0].rr_intervals_s == (0.65, 0.655)
    assert hr[0].beat_times_mono_s == pytest.approx((-0.655, 0.0))
    assert hr[1].beat_times_mono_s == pytest.approx((0.64,))
    assert hr[2].rr_intervals_s == ()
    assert all(r.sensor == CSV_HR_SENSOR for r in hr)
    assert [(r.speed_mps, r.cadence_per_min, r.stride_length_m, r.total_distance_m)
            for r in pod] == [(1.70, 118, 0.86, 0.0), (1.72, 119, 0.87, 1.7),
                              (3.90, 176, 1.33, 5.6)]
    assert pod[-1].time_utc == START + timedelta(seconds=3)
    assert all(r.sensor == CSV_POD_SENSOR for r in pod)
    assert sorted(i.sensor for i in infos) == [CSV_HR_SENSOR, CSV_POD_SENSOR]
    assert act.cadence_overrides() == {CSV_POD_SENSOR: "steps"}


def test_csv_seconds_from_start_needs_start_utc(tmp_path: Path) -> None:
    path = _write(tmp_path, "time,heart_rate_bpm\n0,120\n1.5,121\n")
    act = read_csv(path, athlete="ann", start_utc=START)
    assert [r.time_utc for r in act.readings if isinstance(r, HeartRateReading)] == [
        START, START + timedelta(seconds=1.5)]
    with pytest.raises(ReplayError, match="--start") as caught:
        read_csv(path, athlete="ann")
    assert caught.value.line == 2


def test_csv_rr_gap_is_reported(tmp_path: Path) -> None:
    text = "time,heart_rate_bpm,rr_ms\n0,60,1000\n1,60,1000\n30,60,1000\n"
    act = read_csv(_write(tmp_path, text), athlete="ann", start_utc=START)
    events = [r for r in act.readings if isinstance(r, LinkEvent)]
    assert len(events) == 1
    assert events[0].time_mono_s == 30.0
    assert "28.0 s" in events[0].detail


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", None, "header row is required"),
        ("heart_rate_bpm\n120\n", 1, "no 'time' column"),
        ("time,heartrate\n0,120\n", 1, "unknown column(s) ['heartrate']"),
        ("time,heart_rate_bpm\n", 1, "no data rows"),
        ("# c\ntime,heart_rate_bpm\n2024-05-01T06:30:00Z,abc\n", 3, "is not a number"),
        ("time,heart_rate_bpm\n2024-05-01T06:30:00,120\n", 2, "no UTC offset"),
        ("time,heart_rate_bpm\nyesterday,120\n", 2, "neither ISO 8601 nor seconds"),
        ("time,heart_rate_bpm\n2024-05-01T06:30:05Z,120\n2024-05-01T06:30:04Z,121\n", 3,
         "time goes backwards"),
        ("time,heart_rate_bpm\n2024-05-01T06:30:05Z,120\n7,121\n", 3, "mixes ISO 8601"),
        ("time,heart_rate_bpm\n2024-05-01T06:30:00Z,120,7\n", 2, "3 cells, the header has 2"),
        ("time,heart_rate_bpm\n2024-05-01T06:30:00Z,400\n", 2, "not a whole number in 1–300"),
        ("time,rr_ms\n2024-05-01T06:30:00Z,800\n", 2, "needs heart_rate_bpm"),
        ("time,heart_rate_bpm,rr_ms\n2024-05-01T06:30:00Z,80,800,810\n", 2, "4 cells"),
        ("time,heart_rate_bpm,rr_ms\n2024-05-01T06:30:00Z,80,0.8\n", 2, "plausible RR in ms"),
        ("time,speed_mps\n2024-05-01T06:30:00Z,3.0\n", 2, "go together"),
        ("time,speed_mps,cadence_spm\n2024-05-01T06:30:00Z,-1,170\n", 2, "finite number ≥ 0"),
    ],
)
def test_csv_errors_name_the_line(
    tmp_path: Path, text: str, line: int | None, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ReplayError) as caught:
        read_csv(path, athlete="ann", start_utc=START)
    err = caught.value
    assert words in err.reason
    assert err.line == line
    assert str(path) in str(err)
    if line is not None:
        assert f"line {line}" in str(err)


# --------------------------------------------------------------------------- RR text


def test_rr_text_real_export_round_trip() -> None:
    """tests/data/fr630_rr_s.txt (seconds, real artifacts such as 6.201 s kept)."""
    path = DATA / "fr630_rr_s.txt"
    expected = np.loadtxt(path)
    act = read_rr_text(path, athlete="ann", start_utc=START)
    hr = [r for r in act.readings if isinstance(r, HeartRateReading)]
    assert [x for r in hr for x in r.rr_intervals_s] == expected.tolist()
    beats = [t for r in hr for t in r.beat_times_mono_s]
    assert beats == pytest.approx(np.cumsum(expected).tolist())
    assert [r.time_mono_s for r in hr] == beats
    assert all(r.sensor == RR_HR_SENSOR for r in hr)
    assert hr[10].heart_rate_bpm == round(60 / np.mean(expected[6:11]))
    assert hr[0].time_utc == START + timedelta(seconds=float(expected[0]))


def test_rr_text_milliseconds_and_separators(tmp_path: Path) -> None:
    path = _write(tmp_path, "# polar export\n812, 790;805\n\n 799\t801\n", "rr.txt")
    rr, unit = parse_rr_text(path.read_text(), path=str(path))
    assert unit == "ms"
    assert rr == pytest.approx((0.812, 0.79, 0.805, 0.799, 0.801))
    (act,) = read_activity_file(path, athlete="ann", start_utc=START)
    assert act.source_format == "rr_text"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", None, "no RR intervals"),
        ("800\n810\nabc\n", 3, "'abc' is not a number"),
        ("800\n810\n0.8\n805\n", 3, "looks like seconds in a file of milliseconds"),
        ("0.8\n0.81\n812\n", 3, "looks like milliseconds in a file of seconds"),
        ("0.8\n0.81\n0.05\n", 3, "implausible"),
        ("800\n810\n12000\n", 3, "implausible"),
        ("800\n810\n-805\n", 3, "implausible"),
        ("800\nnan\n", 2, "not a finite number"),
    ],
)
def test_rr_text_errors_name_the_line(text: str, line: int | None, words: str) -> None:
    with pytest.raises(ReplayError) as caught:
        parse_rr_text(text, path="rr.txt")
    assert words in caught.value.reason
    assert caught.value.line == line


def test_rr_text_without_start_ends_at_its_modification_time(tmp_path: Path) -> None:
    path = _write(tmp_path, "800\n810\n", "rr.txt")
    os.utime(path, (START.timestamp() + 100, START.timestamp() + 100))
    (act,) = read_activity_file(path, athlete="ann")
    assert act.start_utc == START + timedelta(seconds=100 - 1.61)
    assert any("modification time" in note and "--start" in note for note in act.notes)


plausible_s = st.floats(min_value=0.25, max_value=2.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(rr=st.lists(plausible_s, min_size=1, max_size=60), as_ms=st.booleans(),
       whole_ms=st.booleans())
def test_unit_detection_property(rr: list[float], as_ms: bool, whole_ms: bool) -> None:
    """Any plausible series (30–240 bpm) is detected in the unit it was written in and reads
    back to the same seconds, whether milliseconds are whole or fractional."""
    values = [round(x * 1000) if whole_ms else x * 1000 for x in rr] if as_ms else rr
    assert detect_rr_unit(values) == ("ms" if as_ms else "s")
    text = "\n".join(repr(v) for v in values)
    parsed, unit = parse_rr_text(text)
    assert unit == ("ms" if as_ms else "s")
    expected = [v / 1000 for v in values] if as_ms else rr
    assert parsed == pytest.approx(expected, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(rr=st.lists(plausible_s, min_size=3, max_size=40), data=st.data())
def test_one_value_in_the_other_unit_is_rejected_property(
    rr: list[float], data: st.DataObject
) -> None:
    """A file of milliseconds with one value in seconds (or the reverse) never imports."""
    ms = [x * 1000 for x in rr]
    i = data.draw(st.integers(min_value=0, max_value=len(rr) - 1))
    mixed = [*ms[:i], rr[i], *ms[i + 1:]]
    with pytest.raises(ReplayError, match="mixed units") as caught:
        parse_rr_text("\n".join(repr(v) for v in mixed))
    assert caught.value.line == i + 1


# ---------------------------------------------------------------------------- detect


def test_sniff_by_extension_and_content(tmp_path: Path) -> None:
    assert sniff_format(_write(tmp_path, GOOD_CSV, "run.csv")) == "csv"
    assert sniff_format(_write(tmp_path, GOOD_CSV, "export")) == "csv"
    assert sniff_format(_write(tmp_path, "800\n810\n", "export2")) == "rr_text"
    assert sniff_format(_write(tmp_path, "800\n", "x.RR")) == "rr_text"


def test_unsupported_format_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "track.gpx"
    path.write_text("<gpx></gpx>")
    with pytest.raises(ReplayError) as caught:
        read_activity_file(path, athlete="ann")
    message = str(caught.value)
    assert "unsupported file format" in message
    for name in ("FIT", "CSV", "RR intervals"):
        assert name in message
