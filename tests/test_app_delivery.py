"""Delivery you can trust, end to end through the commands (issue #10), against the real
Mosquitto and influxd on loopback:

* alerts of several athletes and sessions arrive exactly once, with distinct ids;
* a broker or database that refuses us is named with its cause (never the secret) and a
  finite command exits 1; `push` moves the cursors `status` shows;
* a recording process killed with SIGKILL mid-session: the next command closes its session as
  interrupted and `push` delivers the backlog to InfluxDB and MQTT.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from influx_server import InfluxServer
from mosquitto_server import MosquittoServer, free_port
from proc_lines import LineReader

from ingest.records import Contact, HeartRateReading
from outputs.mqtt import MqttTarget
from outputs.store import AsyncStore, SessionStore
from processing.records import Alert
from processing.settings import AlertSettings, ProcessingSettings
from stridewatch.session import SessionRecorder, live_outputs

SECRET = "s3cret-Pa55"


def _cli(*args: str, env: dict[str, str] | None = None,
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stridewatch", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def subscriber(mosquitto: MosquittoServer) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """A QoS 1 `mosquitto_sub` on every athlete's alert topic, known to be subscribed (a
    retained probe arrived); the returned function publishes a marker after everything sent
    so far and returns the alerts received before it."""
    port = str(mosquitto.port)
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-r", "-q", "1",
                    "-t", "stridewatch/v1/probe/alert", "-m", '{"probe": true}'],
                   check=True, timeout=30)
    proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-v", "-q", "1",
                             "-t", "stridewatch/v1/+/alert"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = LineReader(proc.stdout)  # type: ignore[arg-type]
    lines.wait_for(r"^stridewatch/v1/probe/alert ", 30)
    markers = iter(range(1, 1000))

    def received() -> list[dict[str, Any]]:
        n = next(markers)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1",
                        "-t", "stridewatch/v1/marker/alert", "-m", json.dumps({"marker": n})],
                       check=True, timeout=30)
        lines.wait_for(rf'^stridewatch/v1/marker/alert {{"marker": {n}}}$', 30)
        return [json.loads(line.split(" ", 1)[1]) for line in lines.lines
                if line.split(" ", 1)[0] not in ("stridewatch/v1/probe/alert",
                                                 "stridewatch/v1/marker/alert")]

    try:
        yield received
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        lines.text()


def _surging_readings(athlete: str, start: datetime, offset_s: float) -> list[HeartRateReading]:
    """HR 100 bpm for 60 s, then +40 bpm within 20 s, twice (an hr_surge each time, the second
    after the cooldown): 2 alerts per athlete and session."""
    out: list[HeartRateReading] = []
    for i in range(400):
        t = float(i)
        in_cycle = t % 200
        hr = 100 if in_cycle < 60 else min(140, 100 + int((in_cycle - 60) * 2)) \
            if in_cycle < 120 else 100
        out.append(HeartRateReading(
            athlete=athlete, sensor=f"{athlete}-strap", time_utc=start + timedelta(seconds=t),
            time_mono_s=offset_s + t, heart_rate_bpm=hr, rr_intervals_s=(), beat_times_mono_s=(),
            contact=Contact.DETECTED, energy_kj=None, raw=bytes([0x06, hr])))
    return out


async def _record_session(store_path: Path, target: MqttTarget, athletes: list[str],
                          start: datetime) -> None:
    settings = ProcessingSettings(alerts=AlertSettings(cooldown_s=60.0))
    async with AsyncStore.open(store_path) as store:
        recorder = SessionRecorder(store, "test", settings)
        async with live_outputs(store.store, athletes, influx=None, mqtt=target) as outputs:
            recorder.publish = outputs.publish
            streams = [_surging_readings(a, start, 0.0) for a in athletes]
            for group in zip(*streams, strict=True):
                for reading in group:
                    recorder.handle(reading)
            recorder.finish()
            await store.flush()
            assert not outputs.problems()
        await store.flush()
        recorder.close_sessions()


async def test_alerts_arrive_exactly_once_with_distinct_ids_across_sessions_and_athletes(
    tmp_path: Path, mosquitto: MosquittoServer, subscriber: Callable[[], list[dict[str, Any]]]
) -> None:
    """The issue's figures: two sessions x three athletes into one store; alerts in the store
    = alert messages received = distinct ids (it was 18 stored, 37 received, 9 ids)."""
    store_path = tmp_path / "s.sqlite"
    target = MqttTarget.from_url(mosquitto.url, env={})
    athletes = ["athlete-1", "athlete-2", "athlete-3"]
    t0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    await _record_session(store_path, target, athletes, t0)
    await _record_session(store_path, target, athletes, t0 + timedelta(days=1))
    with SessionStore.open(store_path) as store:
        stored: list[Alert] = [a for r in store.sessions() for a in store.alerts(r.id)]
        assert store.backlog("mqtt", kinds=("alert",)) == 0
    received = subscriber()
    assert len(stored) >= 2 * len(athletes) * 2
    assert len({a.id for a in stored}) == len(stored)
    assert sorted(m["id"] for m in received) == sorted(a.id for a in stored)


def test_wrong_mqtt_password_is_named_without_the_secret_and_the_demo_exits_1(
    tmp_path: Path
) -> None:
    with MosquittoServer(tmp_path / "broker", users={"gw": "right-one"}) as broker:
        done = _cli("demo", "--workout", "start-practice", "--speed", "max",
                    "--store", str(tmp_path / "s.sqlite"), "--mqtt", broker.url,
                    env={"STRIDEWATCH_MQTT_USER": "gw", "STRIDEWATCH_MQTT_PASSWORD": SECRET})
    assert done.returncode == 1, done.stderr[-3000:]
    assert broker.url in done.stderr
    assert "not authori" in done.stderr.lower()
    assert SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_mqtt_password_in_the_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    done = _cli("demo", "--speed", "max", "--store", str(tmp_path / "s.sqlite"),
                "--mqtt", f"mqtt://gw:{SECRET}@127.0.0.1:1883")
    assert done.returncode == 2
    assert "STRIDEWATCH_MQTT_PASSWORD" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_unreachable_influxdb_push_exits_1_naming_url_and_cause(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    imported = _cli("import", str(Path(__file__).parent / "data" / "fr630_rr_s.txt"),
                    "--start", "2024-05-01T06:00:00+00:00", "--store", str(store))
    assert imported.returncode == 0, imported.stderr[-2000:]
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = _cli("push", "--store", str(store), "--influx", url,
                env={"STRIDEWATCH_INFLUX_TOKEN": SECRET})
    assert done.returncode == 1, done.stderr[-2000:]
    assert url in done.stderr
    assert "refused" in done.stderr.lower()
    assert SECRET not in done.stderr + done.stdout
    status = json.loads(_cli("status", "--store", str(store)).stdout)
    assert status["influx"]["backlog"] > 0  # nothing lost: it waits in the store


def test_push_moves_the_cursor_status_shows(tmp_path: Path, influxd: InfluxServer,
                                            influx_db: str) -> None:
    store = tmp_path / "s.sqlite"
    _cli("import", str(Path(__file__).parent / "data" / "fr630_rr_s.txt"),
         "--start", "2024-05-01T06:00:00+00:00", "--store", str(store))
    assert "influx" not in json.loads(_cli("status", "--store", str(store)).stdout)
    pushed = _cli("push", "--store", str(store), "--influx", influxd.url,
                  "--influx-db", influx_db)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    status = json.loads(_cli("status", "--store", str(store)).stdout)
    assert status["influx"]["backlog"] == 0
    again = _cli("push", "latest", "--store", str(store), "--influx", influxd.url,
                 "--influx-db", influx_db)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "pushed session" in again.stdout


def _count(store: Path, kind: str) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records WHERE kind = ?",
                                    (kind,)).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_killed_recorder_session_is_closed_interrupted_and_push_delivers_its_backlog(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxServer, influx_db: str,
    subscriber: Callable[[], list[dict[str, Any]]],
) -> None:
    """SIGKILL mid-session: the store opens, the session is closed as interrupted, and `push`
    delivers what the outputs had not: InfluxDB holds every stored reading, MQTT every stored
    alert (duplicates only with the same id)."""
    store = tmp_path / "s.sqlite"
    dead = f"http://127.0.0.1:{free_port()}"  # the recorder's InfluxDB is down: a backlog
    proc = subprocess.Popen(
        [sys.executable, "-m", "stridewatch", "demo", "--workout", "morning-5k", "--low-hrv",
         "--speed", "50", "--store", str(store), "--influx", dead, "--mqtt", mosquitto.url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _count(store, "alert") < 1:  # a condition: the first alert is stored
            assert proc.poll() is None, "the demo ended before its first alert"
            assert time.monotonic() < deadline, "no alert stored in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    hr_stored = _count(store, "heart_rate")
    assert hr_stored > 0
    status = json.loads(_cli("status", "--store", str(store)).stdout)
    assert status["sessions"]["interrupted"] == 1
    assert status["sessions"]["open"] == 0
    pushed = _cli("push", "--store", str(store), "--influx", influxd.url, "--influx-db",
                  influx_db, "--mqtt", mosquitto.url)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    status = json.loads(_cli("status", "--store", str(store)).stdout)
    assert status["influx"]["backlog"] == 0
    assert status["mqtt"]["backlog"] == 0
    result = influxd.query('SELECT count("heart_rate_bpm") FROM "hr_raw"', db=influx_db)
    assert result["results"][0]["series"][0]["values"][0][1] == hr_stored
    with SessionStore.open(store) as s:
        stored = [a.id for r in s.sessions() for a in s.alerts(r.id)]
    received = [m["id"] for m in subscriber()]
    assert set(received) == set(stored)  # at least once; duplicates only with the same id


async def test_spoken_cues_take_every_alert_without_blocking_the_recording(
    tmp_path: Path,
) -> None:
    """`--speak` wiring: the run's alerts reach the speaker's queue (said by espeak-ng, or
    counted as failed where this machine has no audio device), and the recording completes."""
    from stridewatch.config import SpeakSettings

    settings = ProcessingSettings(alerts=AlertSettings(cooldown_s=60.0))
    raised: list[Alert] = []
    async with AsyncStore.open(tmp_path / "s.sqlite") as store:
        recorder = SessionRecorder(
            store, "test", settings,
            on_output=lambda _r, outs: raised.extend(o for o in outs if isinstance(o, Alert)))
        async with live_outputs(store.store, ["ana"], influx=None, mqtt=None,
                                speak=SpeakSettings(status_every_s=None, voice=None)) as outputs:
            recorder.publish = outputs.publish
            for reading in _surging_readings("ana", datetime(2026, 5, 1, tzinfo=UTC), 0.0):
                recorder.handle(reading)
            status = outputs.status()["speak"]
    assert len(raised) >= 2
    assert status["available"] is True, status["reason"]
    assert status["queued"] == len(raised)


def test_demo_pushes_one_notification_per_alert_to_a_webhook(tmp_path: Path) -> None:
    """Issue #12's end-to-end test: `demo --low-hrv --athletes 3 --notify json://...` delivers
    exactly one notification per alert of the reports, with the alert's id and text."""
    import re

    from http_receiver import HttpReceiver

    store = tmp_path / "s.sqlite"
    with HttpReceiver() as receiver:
        done = _cli("demo", "--low-hrv", "--athletes", "3", "--speed", "max",
                    "--store", str(store), "--notify", receiver.url("json", "/hook"),
                    timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        got = receiver.snapshot()
    with SessionStore.open(store) as s:
        stored = [a for r in s.sessions() for a in s.alerts(r.id)]
        assert s.output_backlogs({"notify:cli-1": ("alert",)}) == {"notify:cli-1": 0}
    ids = [m.group(1) for r in got for m in [re.search(r"alert id: (\S+)", r.text())] if m]
    assert len(stored) >= 3
    assert sorted(ids) == sorted(a.id for a in stored)  # exactly once each
    by_id = {a.id: a for a in stored}
    for request in got:
        text = request.text()
        alert = by_id[re.search(r"alert id: (\S+)", text).group(1)]  # type: ignore[union-attr]
        assert alert.athlete in text


async def test_notifications_a_dead_service_missed_show_in_status_and_push_sends_them(
    tmp_path: Path,
) -> None:
    """The push service is down for the whole run: its alerts wait under notify:cli-1 in
    `status`; `push --notify URL` (the same first --notify) sends each once."""
    from http_receiver import HttpReceiver

    from outputs.notify import NotifyTarget

    store_path = tmp_path / "s.sqlite"
    dead = f"json://127.0.0.1:{free_port()}/hook"
    settings = ProcessingSettings(alerts=AlertSettings(cooldown_s=60.0))
    async with AsyncStore.open(store_path) as store:
        recorder = SessionRecorder(store, "test", settings)
        async with live_outputs(store.store, ["ana"], influx=None, mqtt=None,
                                notify=[NotifyTarget.create("cli-1", dead)],
                                writer=store) as outputs:
            recorder.publish = outputs.publish
            for reading in _surging_readings("ana", datetime(2026, 5, 1, tzinfo=UTC), 0.0):
                recorder.handle(reading)
            recorder.finish()
            await store.flush()
        problems = outputs.problems()
        await store.flush()
        recorder.close_sessions()
    assert any("json://127.0.0.1" in p for p in problems), problems
    status = json.loads(_cli("status", "--store", str(store_path)).stdout)
    waiting = status["notify:cli-1"]["backlog"]
    assert waiting >= 2
    with HttpReceiver() as receiver:
        done = _cli("push", "--store", str(store_path), "--notify", receiver.url("json"))
        got = receiver.snapshot()
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(_cli("status", "--store", str(store_path)).stdout)[
        "notify:cli-1"]["backlog"] == 0
    with SessionStore.open(store_path) as s:
        stored = sorted(a.id for r in s.sessions() for a in s.alerts(r.id))
    import re
    sent = sorted(m.group(1) for r in got for m in re.finditer(r"alert id: (\S+)", r.text()))
    assert sent == stored
