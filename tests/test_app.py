"""The application end to end: the commands a user runs, as subprocesses.

demo → store → report; FIT import checked against the summary the watch recorded in the file;
push into the real influxd; broken files rejected with nothing written.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.replay.fit import read_fit
from outputs.store import SessionStore

FIT = Path(__file__).parent / "data" / "fit"
# Real running files with HR and cadence whose device summary has distance, avg HR and cadence
# (tests/data/SOURCES.md). FR70 and fēnix 2 store a truncated whole-number cadence: skipped here.
FIT_RUNS = ["fr630-with-lth.fit", "fenix3-with-empty-runscribe.fit",
            "fr920xt-with-runscribe-plus.fit", "mornindew-broken.fit", "time-jump.fit"]


def sw(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "stridewatch", *args],
        capture_output=True, text=True, check=False, timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def report(store: Path, session: str = "latest") -> dict[str, Any]:
    out = sw("report", session, "--format", "json", "--store", str(store))
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("demo") / "sessions.sqlite"
    sw("demo", "--workout", "morning-5k", "--speed", "max", "--store", str(store))
    return store


def test_demo_then_report_json(demo_store: Path) -> None:
    r = report(demo_store)
    assert r["session"]["distance_m"] == pytest.approx(5000.0, rel=0.01)
    kinds = [s["kind"] for s in r["segments"] if s["kind"] != "stand"]
    assert kinds == ["walk", "run", "walk"]
    assert [s["km"] for s in r["splits"]][:5] == [1, 2, 3, 4, 5]
    assert r["heart_rate"]["avg_bpm"] > 60
    assert r["hrv"]["rmssd_ms"] is not None
    # Alerts as processing defines them: the 3:30 /km finish of the run goes over the ceiling
    # (90 % of max HR) for 30 s; no surge on a normal day.
    assert {a["kind"] for a in r["alerts"]} <= {"hr_ceiling"}
    for a in r["alerts"]:
        assert a["id"]
        assert a["message"]
        assert 0 <= a["time_s"] <= r["session"]["duration_s"]


def test_demo_store_has_an_html_report_and_lists_the_session(demo_store: Path) -> None:
    listing = json.loads(sw("sessions", "--store", str(demo_store), "--format", "json").stdout)
    assert len(listing) == 1
    assert listing[0]["athlete"] == "athlete-1"
    html = Path(sw("report", listing[0]["id"], "--store", str(demo_store)).stdout.strip())
    assert html.exists()
    assert "<img" in html.read_text(encoding="utf-8")
    text = sw("report", "latest", "--format", "text", "--store", str(demo_store)).stdout
    assert "km" in text


@pytest.mark.parametrize("name", FIT_RUNS)
def test_fit_import_matches_the_device_summary(tmp_path: Path, name: str) -> None:
    store = tmp_path / "s.sqlite"
    ids = sw("import", str(FIT / name), "--store", str(store)).stdout.split()
    assert len(ids) == 1
    device = read_fit(FIT / name, athlete="athlete-1")[0].summary
    assert device is not None
    r = report(store, ids[0])
    assert device.total_distance_m is not None
    assert r["session"]["distance_m"] == pytest.approx(device.total_distance_m, rel=0.01)
    assert device.avg_heart_rate_bpm is not None
    assert r["heart_rate"]["avg_bpm"] == pytest.approx(device.avg_heart_rate_bpm, abs=1.0)
    assert device.avg_cadence_spm is not None
    # mornindew's device counts zero cadence recorded while moving, which we leave out (the
    # sensor measured nothing): 1.4 spm apart (docs/import-formats.md, disagreements).
    tolerance = 1.5 if name == "mornindew-broken.fit" else 1.0
    assert r["cadence"]["avg_spm"] == pytest.approx(device.avg_cadence_spm, abs=tolerance)


def test_import_of_a_directory_prints_every_session_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in ("multisession.fit", "fr630-with-lth.fit"):
        shutil.copy(FIT / name, folder / name)
    ids = json.loads(sw("import", str(folder), "--format", "json",
                        "--store", str(tmp_path / "s.sqlite")).stdout)
    assert len(ids) == 3  # multisession holds two sessions


def test_broken_file_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    good = (FIT / "fr630-with-lth.fit").read_bytes()
    broken = tmp_path / "broken.fit"
    broken.write_bytes(good[: len(good) // 2])
    store = tmp_path / "s.sqlite"
    result = sw("import", str(broken), "--store", str(store), check=False)
    assert result.returncode == 2
    assert "broken.fit" in result.stderr
    assert "nothing imported" in result.stderr
    with SessionStore.open(store) as s:
        assert s.sessions() == []
    assert "byte" in result.stderr  # says where
    assert "--salvage" in result.stderr  # and what to do
    salvaged = sw("import", str(broken), "--salvage", "--store", str(store))
    assert "note:" in salvaged.stderr
    with SessionStore.open(store) as s:
        (row,) = s.sessions()
        assert list(s.readings(row.id))


def test_unknown_session_and_empty_store_say_what_to_do(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    result = sw("report", "latest", "--store", str(store), check=False)
    assert result.returncode == 2
    assert "stridewatch demo" in result.stderr
    result = sw("report", "nope", "--store", str(store), check=False)
    assert result.returncode == 2
    assert "stridewatch sessions" in result.stderr


def test_corrupt_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    store.write_bytes(b"this is not a database" * 100)
    before = store.read_bytes()
    result = sw("sessions", "--store", str(store), check=False)
    assert result.returncode == 2
    assert str(store) in result.stderr
    assert store.read_bytes() == before


def test_push_is_idempotent_into_the_real_influxd(
    demo_store: Path, influxd: Any, influx_db: str
) -> None:
    sid = json.loads(sw("sessions", "--store", str(demo_store), "--format", "json").stdout)[0]["id"]
    args = ("push", sid, "--store", str(demo_store), "--influx", influxd.url,
            "--influx-db", influx_db)
    first = sw(*args).stdout
    assert "pushed" in first

    def count(measurement: str) -> int:
        result = influxd.query(f'SELECT count(*) FROM "{measurement}"', db=influx_db)
        series = result["results"][0].get("series", [])
        return max(series[0]["values"][0][1:]) if series else 0

    with sqlite3.connect(demo_store) as db:
        beats = db.execute(
            "SELECT count(*) FROM records WHERE kind = 'metric' AND tag = 'rr'"
        ).fetchone()[0]
    measured = {m: count(m) for m in ("rr", "heart", "gait", "hr_raw", "stride_raw")}
    assert measured["rr"] == beats
    sw(*args)
    assert {m: count(m) for m in measured} == measured


def test_import_and_report_use_the_athletes_zones_from_the_config(tmp_path: Path) -> None:
    """With --config, HR zones come from the athlete's max HR (170 → 60/70/80/90 % bounds),
    both in the processing at import and in the report; without it, the defaults (190)."""
    config = tmp_path / "stridewatch.toml"
    config.write_text('[[athletes]]\nname = "runner"\nmax_hr_bpm = 170\nresting_hr_bpm = 50\n',
                      encoding="utf-8")
    fit = str(FIT / "fr630-with-lth.fit")
    own, plain = tmp_path / "own.sqlite", tmp_path / "plain.sqlite"
    sw("import", fit, "--athlete", "runner", "--config", str(config), "--store", str(own))
    sw("import", fit, "--athlete", "runner", "--store", str(plain))
    with_config = json.loads(sw("report", "latest", "--format", "json", "--config", str(config),
                                "--store", str(own)).stdout)["heart_rate"]
    default = report(plain)["heart_rate"]
    assert with_config["zone_lower_bounds_bpm"] == pytest.approx([102.0, 119.0, 136.0, 153.0])
    assert default["zone_lower_bounds_bpm"] == pytest.approx([114.0, 133.0, 152.0, 171.0])
    # The same run spends more time in the upper zones of a lower max HR.
    assert with_config["time_in_zones_s"][4] > default["time_in_zones_s"][4]
    assert sum(with_config["time_in_zones_s"][3:]) > sum(default["time_in_zones_s"][3:])
    assert sum(with_config["time_in_zones_s"]) == pytest.approx(
        sum(default["time_in_zones_s"]), rel=1e-6)


def test_bad_config_for_import_is_a_usage_error(tmp_path: Path) -> None:
    bad = Path(__file__).parent / "data" / "configs" / "bad-values.toml"
    result = sw("import", str(FIT / "fr630-with-lth.fit"), "--config", str(bad),
                "--store", str(tmp_path / "s.sqlite"), check=False)
    assert result.returncode == 2
    assert "bad-values.toml" in result.stderr


def test_rr_text_without_a_start_is_dated_by_its_modification_time(tmp_path: Path) -> None:
    """Kubios/Elite HRV exports carry no start (issue #11): imported, dated to end at the file's
    modification time, and the command says so; --start overrides."""
    import os
    from datetime import UTC, datetime

    rr = tmp_path / "export.txt"
    shutil.copy(Path(__file__).parent / "data" / "fr630_rr_s.txt", rr)
    modified = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    os.utime(rr, (modified.timestamp(), modified.timestamp()))
    store = tmp_path / "s.sqlite"
    done = sw("import", str(rr), "--store", str(store))
    assert "modification time" in done.stderr
    assert "--start" in done.stderr
    with SessionStore.open(store) as s:
        row = s.sessions()[0]
        last = max(r.time_utc for r in s.readings(row.id))
    assert abs((last - modified).total_seconds()) < 2.0
    override = sw("import", str(rr), "--start", "2024-05-01T05:00:00", "--store", str(store))
    assert "modification time" not in override.stderr
    with SessionStore.open(store) as s:
        starts = sorted(r.start_utc for r in s.sessions())
    assert starts[0] == datetime(2024, 5, 1, 5, 0, tzinfo=UTC)


def test_bad_start_names_the_flag(tmp_path: Path) -> None:
    done = sw("import", str(Path(__file__).parent / "data" / "fr630_rr_s.txt"), "--start",
              "yesterday", "--store", str(tmp_path / "s.sqlite"), check=False)
    assert done.returncode == 2
    assert "--start 'yesterday'" in done.stderr
    assert "Traceback" not in done.stderr


CORPUS = Path(__file__).parent / "data" / "fit-corpus"


@pytest.mark.parametrize(
    "name",
    ["fr610-smartrec-pauses.fit",     # smart recording + pauses: avg HR was 171.4 vs 173
     "suunto9-trail-pauses.fit",      # non-Garmin: zero cadence counted (173 vs 179)
     "fr910xt-run-smartrec.fit"],     # old device, smart recording: imported 0 m
)
def test_import_then_report_agrees_with_the_device_on_real_files(tmp_path: Path,
                                                                 name: str) -> None:
    """Through the commands (import → report), not just the reader: the report carries the
    file's own totals, which follow the devices' rules (issue #11)."""
    refs = {r["file"]: r for r in json.loads((CORPUS / "refs.json").read_text())}
    device = refs[name]["session_device"]["sessions"][0]
    store = tmp_path / "s.sqlite"
    (sid,) = sw("import", str(CORPUS / name), "--store", str(store)).stdout.split()
    r = report(store, sid)
    assert r["session"]["distance_m"] == pytest.approx(device["total_distance"], rel=0.01)
    assert r["heart_rate"]["avg_bpm"] == pytest.approx(device["avg_heart_rate"], abs=1.0)
    if device.get("avg_cadence_spm") is not None:
        assert r["cadence"]["avg_spm"] == pytest.approx(device["avg_cadence_spm"], abs=1.0)
