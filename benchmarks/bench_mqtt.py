"""Benchmark: MQTT telemetry throughput through a real Mosquitto broker.

``run()`` returns one figure, ``mqtt_publish``: heart-group Metrics per second that go through
:class:`outputs.mqtt.MqttPublisher` (encode, bounded queue, batched QoS 0 publish)
to a real ``mosquitto`` (started here with ``tests/mosquitto_server.py``) and are all received
by a subscriber in another process; the clock runs from the first publish to the last message
received. The figure's subscriber is Mosquitto's own ``mosquitto_sub`` (C, as a native consumer
such as Telegraf would be), so the figure measures our publishing path and the broker. The
same run with a Python (aiomqtt) subscriber is reported alongside as ``python_subscriber``: on
a small machine a single Python consumer, not the publisher, is the limit there.

A second figure, ``mqtt_alerts``, is the drain rate of :class:`outputs.mqtt.MqttAlertSender`:
stored alerts per second taken from a session store's outbox (on worker threads), published
at QoS 1 and marked delivered one by one after each PUBACK (issue #10).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from outputs.mqtt import (  # noqa: E402
    ALERT_KINDS,
    OUTPUT_NAME,
    MqttAlertSender,
    MqttPublisher,
    MqttTarget,
)
from outputs.mqtt_codec import encode_output, topic_for  # noqa: E402
from outputs.outbox import StoreOutbox  # noqa: E402
from outputs.store import SessionStore  # noqa: E402
from processing.records import Alert, AlertKind, Metric, MetricGroup, Severity  # noqa: E402
from tests.mosquitto_server import MosquittoServer  # noqa: E402

MESSAGES = 50_000
CHUNK = MESSAGES
"""Metrics handed to the publisher before waiting for its queue to drain (queue holds all)."""
TIMEOUT_S = 120.0
SUBSCRIBE_GRACE_S = 1.0
RUNS = 3
TARGET = ">= 20000 messages/s"

SUBSCRIBER = """
import asyncio, sys, time, aiomqtt
async def main(port, topic, n):
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=0)
        print("ready", flush=True)
        count = 0
        async with asyncio.timeout(float(sys.argv[4])):
            async for _ in client.messages:
                count += 1
                if count == n:
                    break
        print(time.time(), flush=True)
asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
"""


def _metrics(athlete: str, n: int) -> list[Metric]:
    t0 = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    return [
        Metric(athlete=athlete, time_utc=t0 + timedelta(milliseconds=i), time_mono_s=i / 1000,
               group=MetricGroup.HEART,
               values={"heart_rate_bpm": 120 + i % 60, "zone": 3, "rise_30s_bpm": 4.5,
                       "contact": "detected", "sensor": "AA:BB:CC:DD:EE:FF"})
        for i in range(n)
    ]


async def _publish(server: MosquittoServer, metrics: list[Metric]) -> tuple[float, int]:
    async with MqttPublisher(MqttTarget.from_url(server.url, env={}), athlete="bench",
                             queue_size=2 * CHUNK) as publisher:
        await publisher.wait_connected(10.0)
        started = time.time()
        for i in range(0, len(metrics), CHUNK):
            for m in metrics[i:i + CHUNK]:
                publisher.publish_nowait(m)
            if not await publisher.flush(TIMEOUT_S):
                raise RuntimeError("publisher did not drain")
        if publisher.dropped_telemetry:
            raise RuntimeError(f"{publisher.dropped_telemetry} messages dropped")
        return started, publisher.published_telemetry


def _python_subscriber(server: MosquittoServer, metrics: list[Metric]) -> float:
    """Messages/s with an aiomqtt subscriber in a child process (it prints when it is ready
    and the time it received the last message)."""
    child = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, str(server.port),
         topic_for("bench", "metrics"), str(len(metrics)), str(TIMEOUT_S)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("benchmark subscriber did not start")
        started, published = asyncio.run(_publish(server, metrics))
        finished = float(child.stdout.readline())
        child.wait(timeout=TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    return published / (finished - started)


def _bare_paho(server: MosquittoServer, payloads: list[bytes]) -> tuple[float, int]:
    """The baseline: paho alone (its network thread), publishing pre-encoded payloads at QoS 0
    in a loop; the floor of any publisher built on paho, without encoding or asyncio."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare-paho")
    client.connect("127.0.0.1", server.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10.0
        while not client.is_connected():
            if time.monotonic() > deadline:
                raise RuntimeError("bare paho client did not connect")
            time.sleep(0.01)
        topic = topic_for("bench", "metrics")
        started = time.time()
        info = None
        for payload in payloads:
            info = client.publish(topic, payload, 0)
        assert info is not None
        info.wait_for_publish(TIMEOUT_S)
    finally:
        client.loop_stop()
        client.disconnect()
    return started, len(payloads)


def _native_subscriber(server: MosquittoServer, count: int,
                       publish: Callable[[], tuple[float, int]]) -> float:
    """Messages/s of ``publish()`` (returns its start time and messages sent) received by
    ``mosquitto_sub -C N``: it exits after the N-th message, and a thread blocked in
    ``wait()`` notes the time."""
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        raise RuntimeError("mosquitto_sub not found: install Debian's mosquitto-clients "
                           "(make system-deps)")
    child = subprocess.Popen(
        [exe, "-h", "127.0.0.1", "-p", str(server.port), "-q", "0",
         "-t", topic_for("bench", "metrics"), "-C", str(count), "-W", str(int(TIMEOUT_S))],
        stdout=subprocess.DEVNULL,
    )
    finished: list[float] = []

    def note_exit() -> None:
        child.wait()
        finished.append(time.time())

    waiter = threading.Thread(target=note_exit)
    waiter.start()
    try:
        # mosquitto_sub has no ready signal: give it time to subscribe (outside the timed
        # span). Too little would not skew the figure: it would miss messages, never reach
        # -C N, and the run fails at -W.
        time.sleep(SUBSCRIBE_GRACE_S)
        started, published = publish()
        waiter.join(TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
        waiter.join()
    if child.returncode != 0 or not finished:
        raise RuntimeError(f"mosquitto_sub did not receive all {count} messages "
                           f"(exit {child.returncode})")
    return published / (finished[0] - started)


ALERTS = 2_000


async def _drain_alerts(server: MosquittoServer, store: SessionStore) -> float:
    """Alerts/s: from notify() until every stored alert was acknowledged and marked."""
    t0 = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    sid = store.create_session("bench", t0, "bench")
    store.write(sid, [
        Alert(id=f"{sid}:hr_surge:{i}", athlete="bench", time_utc=t0 + timedelta(seconds=i),
              time_mono_s=float(i), kind=AlertKind.HR_SURGE, severity=Severity.WARNING,
              value=171.0, threshold=20.0, message="bench")
        for i in range(ALERTS)
    ])
    async with MqttAlertSender(MqttTarget.from_url(server.url, env={}),
                               StoreOutbox(store)) as sender:
        await sender.wait_connected(10.0)
        started = time.perf_counter()
        sender.notify()
        if not await sender.flush(TIMEOUT_S):
            raise RuntimeError("alert sender did not drain")
        elapsed = time.perf_counter() - started
    if store.backlog(OUTPUT_NAME, kinds=ALERT_KINDS):
        raise RuntimeError("alerts left in the outbox")
    return ALERTS / elapsed


def _alert_rate(server: MosquittoServer, tmp: str) -> float:
    store = SessionStore.open(Path(tmp) / "alerts.db")
    try:
        return asyncio.run(_drain_alerts(server, store))
    finally:
        store.close()


def run() -> list[dict[str, object]]:
    metrics = _metrics("bench", MESSAGES)
    with tempfile.TemporaryDirectory() as tmp, MosquittoServer(Path(tmp)) as server:
        payloads = [encode_output(m).payload for m in metrics]
        rates = [_native_subscriber(server, len(metrics),
                                    lambda: asyncio.run(_publish(server, metrics)))
                 for _ in range(RUNS)]
        bare = [_native_subscriber(server, len(payloads), lambda: _bare_paho(server, payloads))
                for _ in range(RUNS)]
        python_rate = _python_subscriber(server, metrics)
        alert_rate = _alert_rate(server, tmp)
    rate, bare_rate = max(rates), max(bare)
    return [{
        "name": "mqtt_publish",
        "value": round(rate),
        "unit": "messages/s",
        "baseline": {"name": "bare paho loop, pre-encoded payloads (no encoding, no asyncio)",
                     "value": round(bare_rate)},
        "ratio": round(rate / bare_rate, 3),
        "target": f"{TARGET}: {'met' if rate >= 20_000 else 'MISSED'}",
        "messages": len(metrics),
        "runs": [round(r) for r in rates],
        "baseline_runs": [round(r) for r in bare],
        "python_subscriber": round(python_rate),
        "note": f"best of {RUNS}; QoS 0 heart metrics, MqttPublisher (encode, queue, batched "
                "publish) -> mosquitto -> mosquitto_sub (child process), loopback, clock from "
                "the first publish to the last message received; python_subscriber: one run "
                "with an aiomqtt subscriber instead",
    }, {
        "name": "mqtt_alerts",
        "value": round(alert_rate),
        "unit": "alerts/s",
        "baseline": None,
        "ratio": None,
        "target": "informative (a run has a few alerts)",
        "messages": ALERTS,
        "note": "MqttAlertSender over StoreOutbox(SessionStore): QoS 1 publish, PUBACK, cursor "
                "moved per alert (worker thread), loopback mosquitto; one run",
    }]


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
