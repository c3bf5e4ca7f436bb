"""Benchmark: MQTT telemetry throughput through a real Mosquitto broker.

``run()`` returns one figure, ``mqtt_publish``: heart-group Metrics per second that go through
:class:`processing.outputs.mqtt.MqttPublisher` (encode, bounded queue, batched QoS 0 publish)
to a real ``mosquitto`` (started here with ``tests/mosquitto_server.py``) and are all received
by a subscriber in another process; the clock runs from the first publish to the last message
received. The figure's subscriber is Mosquitto's own ``mosquitto_sub`` (C, as a native consumer
such as Telegraf would be), so the figure measures our publishing path and the broker. The
same run with a Python (aiomqtt) subscriber is reported alongside as ``python_subscriber``: on
a small machine a single Python consumer, not the publisher, is the limit there.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from processing.outputs.mqtt import MqttPublisher, MqttTarget  # noqa: E402
from processing.outputs.mqtt_codec import topic_for  # noqa: E402
from processing.records import Metric, MetricGroup  # noqa: E402
from tests.mosquitto_server import MosquittoServer  # noqa: E402

MESSAGES = 50_000
CHUNK = MESSAGES
"""Metrics handed to the publisher before waiting for its queue to drain (queue holds all)."""
TIMEOUT_S = 120.0
SUBSCRIBE_GRACE_S = 1.0
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


def _native_subscriber(server: MosquittoServer, metrics: list[Metric]) -> float:
    """Messages/s with ``mosquitto_sub -C N`` as the subscriber: it exits after the N-th
    message, and a thread blocked in ``wait()`` notes the time."""
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        raise RuntimeError("mosquitto_sub not found: install Debian's mosquitto-clients "
                           "(make system-deps)")
    child = subprocess.Popen(
        [exe, "-h", "127.0.0.1", "-p", str(server.port), "-q", "0",
         "-t", topic_for("bench", "metrics"), "-C", str(len(metrics)), "-W", str(int(TIMEOUT_S))],
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
        started, published = asyncio.run(_publish(server, metrics))
        waiter.join(TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
        waiter.join()
    if child.returncode != 0 or not finished:
        raise RuntimeError(f"mosquitto_sub did not receive all {len(metrics)} messages "
                           f"(exit {child.returncode})")
    return published / (finished[0] - started)


def run() -> list[dict[str, object]]:
    metrics = _metrics("bench", MESSAGES)
    with tempfile.TemporaryDirectory() as tmp, MosquittoServer(Path(tmp)) as server:
        rate = _native_subscriber(server, metrics)
        python_rate = _python_subscriber(server, metrics)
    return [{
        "name": "mqtt_publish",
        "value": round(rate),
        "unit": "messages/s",
        "baseline": None,
        "ratio": None,
        "target": f"{TARGET}: {'met' if rate >= 20_000 else 'MISSED'}",
        "messages": len(metrics),
        "python_subscriber": round(python_rate),
        "note": "QoS 0 heart metrics, MqttPublisher -> mosquitto -> mosquitto_sub (child "
                "process), loopback, clock from first publish to last message received; "
                "python_subscriber: the same with an aiomqtt subscriber",
    }]


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
