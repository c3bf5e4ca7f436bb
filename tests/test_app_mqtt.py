"""Remote collection: a gateway publishes readings (`collect --mqtt`), another process runs
the session from them (`run` with an MQTT source), against the real Mosquitto; and the demo's
live outputs into the real Mosquitto and influxd."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mosquitto_server import MosquittoServer, ThreadSubscriber
from proc_lines import LineReader, child_env, stop

from outputs.store import SessionStore


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stridewatch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` (a cheap read) until true; fail after ``timeout_s`` (a bound, not a
    synchronisation delay)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _count(store: Path, kind: str) -> int:
    """Rows of ``kind`` in a store being written by another process (read-only, WAL)."""
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records WHERE kind = ?",
                                    (kind,)).fetchone()[0])
        except sqlite3.OperationalError:  # the schema is being created
            return 0


def _ended_sessions(store: Path) -> int:
    """Sessions closed (``end_utc`` set) in a store being written by another process."""
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute(
                "SELECT COUNT(*) FROM sessions WHERE end_utc IS NOT NULL").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is being created
            return 0


def test_collect_to_mqtt_then_run_from_mqtt(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    config = tmp_path / "remote.toml"
    store = tmp_path / "central.sqlite"
    config.write_text(
        f'[sources]\nble = false\nmqtt = "{mosquitto.url}"\n\n[store]\npath = "{store}"\n',
        encoding="utf-8",
    )
    central = _spawn("-v", "run", "--config", str(config))
    log = LineReader(central.stderr)  # type: ignore[arg-type]
    screen = LineReader(central.stdout)  # type: ignore[arg-type]
    try:
        log.wait_for(r"MQTT source subscribed", 60)  # before the gateway starts
        gateway = subprocess.run(
            [sys.executable, "-m", "stridewatch", "collect", "--virtual", "easy-8k",
             "--speed", "30", "--seconds", "120", "--format", "jsonl", "--mqtt", mosquitto.url],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert gateway.returncode == 0, gateway.stderr[-2000:]
        sent = [json.loads(line) for line in gateway.stdout.splitlines()]
        n_hr = sum(1 for r in sent if r["type"] == "heart_rate")
        wait_until(lambda: _count(store, "heart_rate") >= n_hr, 60, "the central to store them")
        # the gateway stopping sent a session_end: the central closes the session while running
        wait_until(lambda: _ended_sessions(store) == 1, 60, "the session to be closed")
        assert central.poll() is None
    finally:
        stop(central, log)
    err = log.text()
    screen.text()
    assert central.returncode == 0, err[-3000:]
    with SessionStore.open(store) as s:
        sessions = s.sessions()
        assert [r.athlete for r in sessions] == ["athlete-1"]
        got = list(s.readings(sessions[0].id))
        assert sessions[0].end_utc is not None  # closed at the gateway's end, before Ctrl-C
        assert not sessions[0].interrupted
        summary = list(s.metrics(sessions[0].id, "session"))
        gait = list(s.metrics(sessions[0].id, "gait"))
    hr_sent = [r for r in sent if r["type"] == "heart_rate"]
    hr_got = [r for r in got if type(r).__name__ == "HeartRateReading"]
    assert len(hr_got) == len(hr_sent) > 100
    assert [r.raw.hex() for r in hr_got] == [r["raw"] for r in hr_sent]
    assert gait, "the central processed the remote readings"
    assert [m.values.get("final") for m in summary].count(True) == 1, "the totals, once"


def test_a_gateway_stopped_by_sigterm_ends_its_athletes_sessions(
    mosquitto: MosquittoServer,
) -> None:
    """systemd or ``docker stop`` stops a gateway with SIGTERM: like Ctrl-C, it publishes each
    athlete's ``session_end`` (so the central closes the session) and exits 0."""
    subscriber = ThreadSubscriber(mosquitto, "stridewatch/v1/+/readings")
    gateway = _spawn("collect", "--virtual", "easy-8k", "--athletes", "2", "--format", "jsonl",
                     "--mqtt", mosquitto.url)
    log = LineReader(gateway.stderr)  # type: ignore[arg-type]
    screen = LineReader(gateway.stdout)  # type: ignore[arg-type]
    try:
        wait_until(lambda: {t for t, _, _ in subscriber.messages()} == {
            "stridewatch/v1/athlete-1/readings", "stridewatch/v1/athlete-2/readings"},
            60, "readings of both athletes")
        stop(gateway, log, sig=signal.SIGTERM)
        screen.text()
        assert gateway.returncode == 0, log.text()[-3000:]
        ends = [(t, json.loads(p)) for t, p, _ in subscriber.messages()
                if b'"session_end"' in p]
        assert sorted(t for t, _ in ends) == ["stridewatch/v1/athlete-1/readings",
                                              "stridewatch/v1/athlete-2/readings"]
        assert "sessions were ended" in log.text()
    finally:
        subscriber.close()
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)


def test_demo_streams_alerts_to_mqtt_and_points_to_influxd(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: Any, influx_db: str
) -> None:
    # A retained probe on a subscribed topic: its arrival proves the subscription is active.
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-r",
                    "-t", "stridewatch/v1/probe/status", "-m", "probe"], check=True, timeout=30)
    subscriber = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-v", "-q", "1",
         "-t", "stridewatch/v1/+/alert", "-t", "stridewatch/v1/+/status", "-W", "240"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = LineReader(subscriber.stdout)  # type: ignore[arg-type]
    lines.wait_for(r"^stridewatch/v1/probe/status probe$", 30)
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "stridewatch", "demo", "--workout", "morning-5k", "--low-hrv",
             "--speed", "100", "--store", str(tmp_path / "s.sqlite"),
             "--influx", influxd.url, "--influx-db", influx_db, "--mqtt", mosquitto.url],
            capture_output=True, text=True, timeout=180, check=False,
        )
        assert demo.returncode == 0, demo.stderr[-3000:]
        with SessionStore.open(tmp_path / "s.sqlite") as s:
            n_alerts = sum(len(list(s.alerts(r.id))) for r in s.sessions())
        # Every alert was acknowledged by the broker before the demo exited; a marker published
        # now reaches the subscriber after them.
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
                        "-q", "1", "-t", "stridewatch/v1/marker/alert", "-m", "{}"],
                       check=True, timeout=30)
        lines.wait_for(r"^stridewatch/v1/marker/alert ", 30)
    finally:
        subscriber.terminate()
        subscriber.wait(timeout=10)
    received = lines.text()
    assert subscriber.stderr is not None
    subscriber.stderr.close()
    alerts = [json.loads(line.split(" ", 1)[1]) for line in received.splitlines()
              if "/alert " in line and "/marker/" not in line]
    with SessionStore.open(tmp_path / "s.sqlite") as s:
        sid = s.sessions()[0].id
        stored = list(s.alerts(sid))
        assert s.backlog("influx") == 0, demo.stderr[-3000:]
    assert stored
    assert sorted({a["id"] for a in alerts}) == sorted(a.id for a in stored)
    assert len(alerts) == len(stored) == n_alerts  # exactly once per alert (issue #10)
    assert any("offline" in line or "online" in line for line in received.splitlines())
    result = influxd.query('SELECT count("heart_rate_bpm") FROM "heart"', db=influx_db)
    assert result["results"][0]["series"][0]["values"][0][1] > 1000
