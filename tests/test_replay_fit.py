"""FIT replay against the devices' own session summaries, on real files (tests/data/SOURCES.md).

Every file in tests/data/fit is a running activity with heart rate and running cadence in its
``record`` messages. The reader is right when simple statistics of its readings agree with what
the device wrote in its ``session`` message:

* distance: last minus first ``total_distance_m`` of the session vs ``total_distance``, 1 %;
* heart rate: time-weighted mean over timer-running time vs ``avg_heart_rate`` (1 bpm), max
  vs ``max_heart_rate`` (1 bpm). Garmin's smart recording writes a record every 1–7 s, so the
  sample mean is off by up to 2 bpm (multisession); each value holds until the next record;
* cadence: time-weighted mean in steps/min over timer-running time, zero-cadence samples
  included (what Garmin averages: excluding them is 1.8 spm off on mornindew), vs
  ``2 × (avg_running_cadence + avg_fractional_cadence)``, 1 spm; files without the fractional
  field hold a truncated integer (strides/min), so ours is in [device, device + 2 + 1).
"""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path

import fitdecode
import numpy as np
import pytest

from ingest.errors import ReplayError
from ingest.records import HeartRateReading, LinkEvent, LinkState, SensorInfo, StrideReading
from ingest.replay import (
    FIT_CADENCE_UNIT,
    FIT_HR_SENSOR,
    FIT_POD_SENSOR,
    Activity,
    read_activity_file,
    read_fit,
)

DATA = Path(__file__).parent / "data"
FIT = DATA / "fit"

# file, sessions, device has avg HR, device cadence has the fractional part
RUNS = [
    ("fr630-with-lth.fit", 1, True, True),  # Forerunner 630, 1 s recording, hrv messages
    ("fenix3-with-empty-runscribe.fit", 1, True, True),  # fēnix 3, hrv, 6 timer pauses
    ("fr920xt-with-runscribe-plus.fit", 1, True, True),  # treadmill, developer fields
    ("fr70-intervals.fit", 1, True, False),  # session message first, compressed timestamps
    ("multisession.fit", 2, True, True),  # two sessions, distance continues across them
    ("time-jump.fit", 1, True, True),  # clock jumps +20 days mid-run
    ("mornindew-broken.fit", 1, True, True),  # valid for fitdecode (see test below)
    ("fenix2.fit", 1, False, False),  # events written at the end of the file
    ("developer-types-sample.fit", 1, False, False),  # Stryd, developer fields
]


def _running_s(a: float, b: float, pauses: tuple[tuple[float, float], ...]) -> float:
    """Seconds of [a, b) with the timer running."""
    d = b - a
    for stop, start in pauses:
        lo, hi = max(a, stop), min(b, start)
        if hi > lo:
            d -= hi - lo
    return max(d, 0.0)


def _time_weighted(samples: list[tuple[float, float]], act: Activity) -> float:
    """Each value holds until the next sample; only timer-running time counts."""
    num = den = 0.0
    for (t, v), (t2, _) in itertools.pairwise(samples):
        w = _running_s(t, t2, act.pauses_mono_s)
        num += w * v
        den += w
    return num / den


def _activities(name: str) -> list[Activity]:
    return read_fit(FIT / name, athlete="ann")


@pytest.mark.parametrize(("name", "sessions", "has_hr", "fractional"), RUNS)
def test_readings_agree_with_device_summary(
    name: str, sessions: int, has_hr: bool, fractional: bool
) -> None:
    activities = _activities(name)
    assert len(activities) == sessions
    for act in activities:
        s = act.summary
        assert s is not None
        assert act.sport == "running"
        strides = [r for r in act.readings if isinstance(r, StrideReading)]
        hr = [r for r in act.readings if isinstance(r, HeartRateReading)]
        assert strides
        assert hr

        distances = [r.total_distance_m for r in strides if r.total_distance_m is not None]
        assert s.total_distance_m is not None
        assert distances[-1] - distances[0] == pytest.approx(s.total_distance_m, rel=0.01)

        if has_hr:
            assert s.avg_heart_rate_bpm is not None
            assert s.max_heart_rate_bpm is not None
            avg = _time_weighted([(r.time_mono_s, r.heart_rate_bpm) for r in hr], act)
            assert abs(avg - s.avg_heart_rate_bpm) <= 1.0
            assert abs(max(r.heart_rate_bpm for r in hr) - s.max_heart_rate_bpm) <= 1

        cadence = _time_weighted([(r.time_mono_s, r.cadence_per_min) for r in strides], act)
        assert s.avg_cadence_spm is not None
        if fractional:
            assert abs(cadence - s.avg_cadence_spm) <= 1.0
        else:
            assert s.avg_cadence_spm <= cadence < s.avg_cadence_spm + 3.0

        timer_s = sum(
            _running_s(a.time_mono_s, b.time_mono_s, act.pauses_mono_s)
            for a, b in itertools.pairwise(hr)
        )
        assert s.total_timer_time_s is not None
        assert timer_s == pytest.approx(s.total_timer_time_s, abs=10.0)


@pytest.mark.parametrize("name", [r[0] for r in RUNS])
def test_readings_are_well_formed(name: str) -> None:
    for act in _activities(name):
        times = [r.time_mono_s for r in act.readings]
        assert times == sorted(times)
        assert act.readings[0].time_mono_s >= 0.0
        assert all(r.time_utc.utcoffset() is not None for r in act.readings)
        assert all(r.athlete == "ann" for r in act.readings)
        infos = [r for r in act.readings if isinstance(r, SensorInfo)]
        assert sorted(i.sensor for i in infos) == [FIT_HR_SENSOR, FIT_POD_SENSOR]
        assert act.cadence_overrides() == {FIT_POD_SENSOR: FIT_CADENCE_UNIT}
        for r in act.readings:
            if isinstance(r, StrideReading):
                assert r.raw == b""
                assert r.sensor == FIT_POD_SENSOR
                assert 0 <= r.cadence_per_min < 260  # steps/min, never strides
                assert r.stride_length_m is None or r.stride_length_m < 2.5


def _raw_hrv(path: Path) -> list[float]:
    """Every value of every ``hrv`` message's ``time`` array, None (0xFFFF) left out."""
    out: list[float] = []
    with fitdecode.FitReader(path) as reader:
        for frame in reader:
            if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name == "hrv":
                out.extend(v for v in frame.get_value("time") if v is not None)
    return out


@pytest.mark.parametrize(
    ("name", "exported", "gaps"),
    [
        ("fr630-with-lth.fit", "fr630_rr_s.txt", 0),
        ("fenix3-with-empty-runscribe.fit", "fenix3_rr_s.txt", 3),
    ],
)
def test_rr_series_equals_raw_hrv_messages(name: str, exported: str, gaps: int) -> None:
    (act,) = _activities(name)
    hr = [r for r in act.readings if isinstance(r, HeartRateReading)]
    rr = [x for r in hr for x in r.rr_intervals_s]
    assert rr == _raw_hrv(FIT / name)  # exact, in order
    assert rr == np.loadtxt(DATA / exported).tolist()

    beats = np.array([t for r in hr for t in r.beat_times_mono_s])
    assert len(beats) == len(rr)
    assert np.all(np.diff(beats) > 0)
    # Accumulated: between re-anchors each beat is the previous beat plus its RR.
    steps = np.diff(beats) - np.array(rr[1:])
    assert np.sum(np.abs(steps) > 1e-9) == gaps
    rr_gaps = [
        r for r in act.readings if isinstance(r, LinkEvent) and r.state is LinkState.RR_GAP
    ]
    assert len(rr_gaps) == gaps
    # Beats stay within a few seconds of the record they are attached to, except the RR the
    # watch kept writing during a timer pause: no record there, so they ride on the last record
    # before the pause and their beat times lie inside the pause.
    pause_starts = {stop for stop, _ in act.pauses_mono_s}
    lag = [
        r.time_mono_s - r.beat_times_mono_s[-1]
        for r in hr
        if r.rr_intervals_s and r.time_mono_s not in pause_starts
    ]
    assert max(abs(x) for x in lag) < 3.0


def test_multisession_gives_one_activity_per_session() -> None:
    first, second = _activities("multisession.fit")
    assert (first.session_index, second.session_index) == (0, 1)
    assert first.start_utc.isoformat() == "2015-05-23T10:52:35+00:00"
    assert second.start_utc.isoformat() == "2015-05-23T12:31:29+00:00"
    assert first.readings[-1].time_utc < second.readings[0].time_utc
    assert second.readings[0].time_mono_s == 0.0
    assert first.summary is not None
    assert second.summary is not None
    assert first.summary.total_distance_m == pytest.approx(4110.73)
    assert second.summary.total_distance_m == pytest.approx(3745.72)


def test_time_jump_keeps_monotonic_time_and_says_so() -> None:
    (act,) = _activities("time-jump.fit")
    assert act.summary is not None
    assert act.summary.total_elapsed_time_s is not None
    utc = [r.time_utc for r in act.readings]
    assert (utc[-1] - utc[0]).days == 20  # what the file says
    # The monotonic line ignores the jump: it ends at the device's elapsed time.
    assert act.readings[-1].time_mono_s == pytest.approx(act.summary.total_elapsed_time_s,
                                                          abs=5.0)
    assert any("clock jumped 1746563 s forward" in n for n in act.notes)


def test_pauses_come_from_timer_events_even_at_the_end_of_the_file() -> None:
    (act,) = _activities("fenix2.fit")  # fēnix 2 writes every event after the records
    pauses = [p for p in act.pauses_mono_s if p[1] > p[0]]
    assert pauses == [pytest.approx((396.0, 630.0))]
    # No clock correction; the only note says the device's session has no average HR.
    assert act.notes == ("the device's session has no average heart rate: computed from the "
                         "records",)


def test_summary_fields() -> None:
    (act,) = _activities("fr630-with-lth.fit")
    s = act.summary
    assert s is not None
    assert s.avg_cadence_spm == pytest.approx(2 * (79 + 0.0390625))
    assert (s.avg_heart_rate_bpm, s.max_heart_rate_bpm) == (157, 173)
    assert s.total_elapsed_time_s == pytest.approx(819.227)
    assert s.total_ascent_m == 22
    assert act.device is not None
    assert (act.device.manufacturer, act.device.product) == ("garmin", "fr630")
    strides = [r for r in act.readings if isinstance(r, StrideReading)]
    moving = [r for r in strides if r.speed_mps > 2.0 and r.stride_length_m]
    # FIT step_length is one step: speed ≈ steps/min × step length / 60.
    ratio = np.median([r.speed_mps * 60 / (r.cadence_per_min * r.stride_length_m)
                       for r in moving if r.stride_length_m])
    assert ratio == pytest.approx(1.0, abs=0.1)


def test_mornindew_broken_is_valid_for_fitdecode() -> None:
    """It broke tormoder/fit's decoder (developer fields, its issue #41), not the FIT rules:
    both CRCs match, so it imports, and agrees with its summary (test above)."""
    (act,) = _activities("mornindew-broken.fit")
    assert len([r for r in act.readings if isinstance(r, StrideReading)]) == 6874


# ------------------------------------------------------------------------ damaged files

FR630 = (FIT / "fr630-with-lth.fit").read_bytes()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.mark.parametrize(
    ("data", "words", "offset"),
    [
        pytest.param(FR630[: len(FR630) // 2], "file truncated", 21203, id="truncated"),
        pytest.param(_flip(FR630, len(FR630) // 2), "CRC check failed", 42420, id="bit-rot"),
        pytest.param(_flip(FR630, 12), "CRC check failed", 0, id="header-crc"),
        pytest.param(FR630 + b"\x00\x01\x02", "bad FIT header", 42422, id="trailing-junk"),
        pytest.param(b"not a FIT file, just some text here", "bad FIT header", 0, id="not-fit"),
        pytest.param(b"", "empty file", None, id="empty"),
    ],
)
def test_damaged_file_raises_with_path_reason_and_place(
    tmp_path: Path, data: bytes, words: str, offset: int | None
) -> None:
    path = tmp_path / "damaged.fit"
    path.write_bytes(data)
    with pytest.raises(ReplayError) as caught:
        read_fit(path, athlete="ann")
    err = caught.value
    assert err.path == str(path)
    assert words in err.reason
    assert err.offset == offset
    assert str(path) in str(err)
    assert words in str(err)
    if offset is not None:
        assert f"byte {offset}" in str(err)


def test_damage_found_at_the_very_end_still_returns_nothing(tmp_path: Path) -> None:
    """The CRC is only checked after the last message: the reader has decoded everything
    (1711 frames) and still raises instead of returning what it read."""
    path = tmp_path / "bitrot.fit"
    path.write_bytes(_flip(FR630, 100))
    with pytest.raises(ReplayError) as caught:
        read_fit(path, athlete="ann")
    assert caught.value.record_no == 1711  # zero-based: the CRC footer after 1711 frames
    assert "FIT record 1711" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read file"):
        read_fit(tmp_path / "nope.fit", athlete="ann")


def test_detect_reads_fit_by_content_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "download.bin"
    path.write_bytes(FR630)
    (act,) = read_activity_file(path, athlete="ann")
    assert act.source_format == "fit"
    assert len(io.BytesIO(FR630).getvalue()) == 42422
    assert math.isclose(act.readings[-1].time_mono_s, 820.0, abs_tol=1.0)
