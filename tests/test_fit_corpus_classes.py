"""One test per class of real FIT file (tests/data/fit-corpus/SOURCES.md legend), plus two
variants *derived* from real files because the corpus has no such file: GPS distance
corrections (distance stepping back 2.5 m at 288 records of the Apple Watch run) and an unset
device clock (the FR70 file with every date made relative to power-on). Both are written into
``tmp_path`` by re-encoding only the changed fields and the file CRC (``_rewrite``)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import ReplayError
from ingest.records import HeartRateReading, StrideReading
from ingest.replay.fit import Activity, read_fit

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "fit-corpus"


def _read(name: str, **kw: object) -> list[Activity]:
    path = CORPUS / name if (CORPUS / name).exists() else DATA / "fit" / name
    return read_fit(path, athlete="ann", **kw)  # type: ignore[arg-type]


def _one(name: str) -> Activity:
    (act,) = _read(name)
    return act


# ------------------------------------------------------------------ a minimal FIT re-encoder

_CRC = [0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
        0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400]


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        for nibble in (byte & 0xF, byte >> 4):
            tmp = _CRC[crc & 0xF]
            crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC[nibble]
    return crc


def _fields(data: bytes) -> Iterator[tuple[int, int, int, int, str]]:
    """(global message, field number, byte offset, size, endian) of every data field."""
    pos, end = data[0], data[0] + int.from_bytes(data[4:8], "little")
    defs: dict[int, tuple[int, str, list[tuple[int, int]], int]] = {}
    while pos < end:
        h = data[pos]
        pos += 1
        if h & 0x80:
            local = (h >> 5) & 0x3
        elif h & 0x40:
            endian = "<" if data[pos + 1] == 0 else ">"
            gnum = struct.unpack(endian + "H", data[pos + 2:pos + 4])[0]
            n = data[pos + 4]
            flds = [(data[pos + 5 + 3 * i], data[pos + 6 + 3 * i]) for i in range(n)]
            pos += 5 + 3 * n
            dev = 0
            if h & 0x20:
                nd = data[pos]
                dev = sum(data[pos + 2 + 3 * i] for i in range(nd))
                pos += 1 + 3 * nd
            defs[h & 0xF] = (gnum, endian, flds, dev)
            continue
        else:
            local = h & 0xF
        gnum, endian, flds, dev = defs[local]
        for num, size in flds:
            yield gnum, num, pos, size, endian
            pos += size
        pos += dev


def _rewrite(src: Path, dst: Path, change: Callable[[int, int, int, int], int | None]) -> None:
    """Copy ``src`` with each uint32 field value ``v`` of (message, field, ordinal) replaced by
    ``change(message, field, ordinal, v)`` (None: unchanged), and a new file CRC."""
    data = bytearray(src.read_bytes())
    seen: dict[tuple[int, int], int] = {}
    for gnum, num, pos, size, endian in list(_fields(bytes(data))):
        if size != 4:
            continue
        k = seen.get((gnum, num), 0)
        seen[(gnum, num)] = k + 1
        value = struct.unpack(endian + "I", data[pos:pos + 4])[0]
        if value == 0xFFFFFFFF:
            continue
        new = change(gnum, num, k, value)
        if new is not None:
            data[pos:pos + 4] = struct.pack(endian + "I", new)
    body = bytes(data[:-2])
    dst.write_bytes(body + struct.pack("<H", _crc(body)))


_RECORD, _SESSION, _LAP, _FILE_ID = 20, 18, 19, 0


# ------------------------------------------------------------------------------ classes


def test_smart_recording_is_time_weighted() -> None:
    """(a) FR610 records every 1-10 s: the record mean is 171.7 bpm, the device 173."""
    act = _one("fr610-smartrec-pauses.fit")
    assert act.totals is not None
    hr = [r.heart_rate_bpm for r in act.readings if isinstance(r, HeartRateReading)]
    assert sum(hr) / len(hr) < 172.0
    assert act.totals.avg_heart_rate_bpm == pytest.approx(173.0, abs=0.5)


def test_one_second_recording() -> None:
    """(b) FR955, 1 s: every figure within the bounds, cadence to 0.1 spm."""
    act = _one("fr955-stryd-hrv.fit")
    assert act.totals is not None
    assert act.summary is not None
    assert act.totals.avg_cadence_spm == pytest.approx(166.375, abs=0.1)
    assert act.totals.timer_time_s == pytest.approx(3117.0, abs=1.0)


def test_pauses_are_not_timer_time() -> None:
    """(f) FR25: 9 stops; elapsed 2401 s, timer 1663 s; 33 s of running after start+elapsed."""
    act = _one("fr25-smartrec-pauses.fit")
    assert act.totals is not None
    assert len(act.pauses_mono_s) >= 8
    assert act.totals.timer_time_s == pytest.approx(1663.134, abs=1.0)


def test_multisport_imports_the_run_legs_only() -> None:
    """(d, g) FR910XT triathlon: swim and bike left out; the run's distance reset to 0."""
    (run,) = _read("fr910xt-triathlon.fit")
    assert (run.session_index, run.sport) == (2, "running")
    assert any("left out sessions 0 (swimming), 1 (cycling)" in n for n in run.notes)
    assert run.totals is not None
    assert run.totals.distance_m == pytest.approx(20909.8, rel=0.01)
    (run255,) = _read("fr255-triathlon-summary-first.fit")  # summary first, distance continues
    assert run255.session_index == 4
    assert run255.totals is not None
    assert run255.totals.distance_m == pytest.approx(4491.51, rel=0.001)


def test_two_run_sessions_split_at_the_device_boundary() -> None:
    """(g) FR920XT: the record at the second session's start belongs to it (2.49 m)."""
    first, second = _read("fr920xt-two-run-sessions.fit")
    assert first.totals is not None
    assert second.totals is not None
    assert first.totals.distance_m == pytest.approx(7313.34, abs=0.01)
    assert second.totals.distance_m == pytest.approx(2.49, abs=0.01)


def test_developer_fields_do_not_shadow_native_ones() -> None:
    """(h) Stryd file with developer ``Speed`` and ``Distance``: native fields are used."""
    act = _one("stryd-run-hrv.fit")
    assert act.totals is not None
    assert act.totals.distance_m == pytest.approx(8239.99, rel=0.001)


def test_hrv_messages_become_rr_intervals() -> None:
    """(i) every valid RR value of the hrv messages, in order (count from refs.json)."""
    act = _one("stryd-run-hrv.fit")
    rr = [x for r in act.readings if isinstance(r, HeartRateReading) for x in r.rr_intervals_s]
    assert len(rr) == 9350


@pytest.mark.parametrize("name", ["coros-apexpro-run.fit", "suunto9-trail-pauses.fit",
                                  "apple-watch-s3-run.fit", "ipbike-run-hrv.fit"])
def test_other_makers(name: str) -> None:
    """(j) COROS, Suunto, Apple Watch, IpBike: distance within 1 %, timer within 1 s."""
    act = _one(name)
    assert act.totals is not None
    assert act.summary is not None
    assert act.summary.total_distance_m is not None
    assert act.totals.distance_m == pytest.approx(act.summary.total_distance_m, rel=0.01)
    assert act.summary.total_timer_time_s is not None
    assert act.totals.timer_time_s == pytest.approx(act.summary.total_timer_time_s, abs=1.0)


def test_treadmill_counts_standing_zero_cadence_like_garmin() -> None:
    """(k) FR945 treadmill: 143 s standing at zero cadence count (device 165.6, 173.7 without)."""
    act = _one("fr945-treadmill-stryd.fit")
    assert act.totals is not None
    assert act.totals.standing_zero_cadence_counted
    assert act.totals.avg_cadence_spm == pytest.approx(165.64, abs=1.0)


def test_old_device_without_cadence_still_has_distance() -> None:
    """(l) FR910XT 2012, no footpod: 9.84 km (was 0 m); cadence None, said in a note."""
    act = _one("fr910xt-run-smartrec.fit")
    assert act.totals is not None
    assert act.totals.distance_m == pytest.approx(9843.26, rel=0.01)
    assert act.totals.avg_cadence_spm is None
    strides = [r for r in act.readings if isinstance(r, StrideReading)]
    assert strides
    assert strides[-1].total_distance_m == pytest.approx(9843.26, rel=0.01)
    assert any("no cadence" in n for n in act.notes)


def test_missing_session_totals_come_from_the_records() -> None:
    """(e) Suunto: no HR or cadence in the session, distance on 361 of 1473 records."""
    act = _one("suunto-move-no-session-hr.fit")
    assert act.totals is not None
    assert act.totals.avg_heart_rate_bpm == pytest.approx(94.6, abs=0.5)
    assert act.totals.distance_m == pytest.approx(2338.0, rel=0.01)
    assert any("has no average heart rate" in n for n in act.notes)
    assert any("distance on 361 of 1473 records" in n for n in act.notes)
    strides = [r.total_distance_m for r in act.readings if isinstance(r, StrideReading)]
    steps = [b - a for a, b in itertools.pairwise(d for d in strides if d is not None)]
    assert min(steps) >= 0.0
    assert sum(steps) == pytest.approx(2338.0, rel=0.01)  # what processing adds up


def test_damaged_file_fails_saying_where_or_salvages_with_a_note() -> None:
    """(m, e) FR35: garbage from byte ~28020, no session. Default: an error naming the byte and
    what was readable; salvage: the 1108 valid records, with the damage as a note."""
    with pytest.raises(ReplayError) as caught:
        _read("fr35-run-damaged.fit")
    assert caught.value.offset == 28050
    assert "1108 records, 1368 s readable" in str(caught.value)
    (act,) = _read("fr35-run-damaged.fit", salvage=True)
    assert act.summary is None
    assert act.notes[0].startswith("damaged file (")
    assert any("no session message" in n for n in act.notes)
    hr = [r for r in act.readings if isinstance(r, HeartRateReading)]
    assert len(hr) == 1108
    assert hr[-1].time_utc == datetime(2018, 12, 28, 14, 29, 34, tzinfo=UTC)
    assert act.totals is not None
    assert act.totals.distance_m == pytest.approx(2351.78, abs=0.5)


def test_compressed_timestamps_resolve_from_the_last_full_timestamp() -> None:
    """(c) FR70: compressed-timestamp record headers; times strictly follow the records."""
    act = _one("fr70-intervals.fit")
    assert act.totals is not None
    assert act.totals.timer_time_s == pytest.approx(3163.0, abs=1.0)
    assert act.totals.distance_m == pytest.approx(6239.7, rel=0.01)
    times = [r.time_mono_s for r in act.readings if isinstance(r, HeartRateReading)]
    assert times == sorted(times)
    assert times[-1] > 3000


# -------------------------------------------------------------------- derived variants


def test_gps_corrections_variant_is_not_a_reset(tmp_path: Path) -> None:
    """Derived: the Apple Watch run with its record distance set 2.5 m below the record before
    at 288 records (every 5th from the 10th): the device's corrected distance is unchanged."""
    src = CORPUS / "apple-watch-s3-run.fit"
    dst = tmp_path / "gps-corrections.fit"
    previous: list[int] = [0]
    marked = set(range(10, 10 + 5 * 288, 5))

    def change(gnum: int, num: int, k: int, value: int) -> int | None:
        if (gnum, num) != (_RECORD, 5):
            return None
        out = max(previous[0] - 250, 0) if k in marked else None
        previous[0] = value
        return out

    _rewrite(src, dst, change)
    (act,) = read_fit(dst, athlete="ann")
    assert any("went back 288 times" in n for n in act.notes)
    assert act.totals is not None
    assert act.totals.distance_m == pytest.approx(5746.28, rel=0.01)
    totals = [r.total_distance_m for r in act.readings if isinstance(r, StrideReading)]
    steps = [b - a for a, b in itertools.pairwise(d for d in totals if d is not None)]
    assert min(steps) >= 0.0
    assert sum(steps) == pytest.approx(5746.28, rel=0.01)


def test_unset_clock_variant_imports(tmp_path: Path) -> None:
    """Derived: FR70 (compressed timestamps) with every date made relative to power-on (what
    an unset clock writes); the offset is a multiple of 32 so the compressed headers still fit."""
    src = DATA / "fit" / "fr70-intervals.fit"
    (original,) = read_fit(src, athlete="ann")
    first = int((original.start_utc - datetime(1989, 12, 31, tzinfo=UTC)).total_seconds())
    offset = (first - 1000) // 32 * 32
    starts = {(_SESSION, 2), (_LAP, 2), (_FILE_ID, 4)}  # and every message's timestamp (253)

    def change(g: int, n: int, _k: int, v: int) -> int | None:
        return v - offset if (n == 253 or (g, n) in starts) and v > offset else None

    dst = tmp_path / "clock-unset.fit"
    _rewrite(src, dst, change)
    (act,) = read_fit(dst, athlete="ann")
    assert act.start_utc.year == 1989
    assert any("device clock not set" in n for n in act.notes)
    assert act.totals is not None
    assert original.totals is not None
    assert act.totals.distance_m == pytest.approx(original.totals.distance_m)
    assert act.totals.timer_time_s == pytest.approx(original.totals.timer_time_s)
    assert act.totals.avg_heart_rate_bpm == pytest.approx(original.totals.avg_heart_rate_bpm)
    start = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
    (dated,) = read_fit(dst, athlete="ann", start_utc=start)
    first_hr = next(r for r in dated.readings if isinstance(r, HeartRateReading))
    assert dated.start_utc.year == 2024
    assert abs((first_hr.time_utc - start).total_seconds()) < 60
