"""Benchmark: alert latency, from a strap's notification to an MQTT subscriber, in real time.

One virtual HR strap (a real bumble GATT server on a :class:`VirtualRadio`), our bleak
backend, a :class:`Collector`, a :class:`Pipeline` (HR-surge cooldown 0 so surges repeat) and an
:class:`MqttPublisher` (every output published; alerts QoS 1 from its in-memory outbox) to a
real ``mosquitto`` (``tests/mosquitto_server.py``); the subscriber is a child process on its own
core, as a real consumer is. Standard asyncio loop: all times are real.

The strap sends a frame every 50 ms (20× a real strap, to collect many samples quickly) in
cycles ``120, 120, 127, 134, 140`` bpm, with one RR interval every 0.5 s: each 140 frame is a
rise of 20 bpm within 30 s, i.e. one ``hr_surge`` alert, and the drop back to 120 re-arms it
(rise below 10 bpm). No step exceeds HrQuality's 30 bpm jump limit.

``alert_latency_p99``: ``time.perf_counter()`` just before ``VirtualPeripheral.notify`` of the
triggering frame → ``time.perf_counter()`` in the subscriber when the alert arrives (both
CLOCK_MONOTONIC on Linux, so they compare across processes). p50 and n as extra keys.
Baseline: the notify → collector (decoded record out of the collector) latency of the same
frames; also ``to_pipeline_alert``: notify → alert produced by the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ingest.clock import LoopClock  # noqa: E402
from ingest.collector import Collector  # noqa: E402
from ingest.collector_settings import CollectorSettings  # noqa: E402
from ingest.gatt import uuids  # noqa: E402
from ingest.gatt.heart_rate import HeartRateMeasurement  # noqa: E402
from ingest.records import Contact, HeartRateReading  # noqa: E402
from ingest.sensor_map import SensorMap  # noqa: E402
from ingest.virtual.peripheral import VirtualPeripheral  # noqa: E402
from ingest.virtual.radio import CharacteristicSpec, ServiceSpec, VirtualRadio  # noqa: E402
from outputs.mqtt import MqttPublisher, MqttTarget  # noqa: E402
from outputs.mqtt_codec import topic_for  # noqa: E402
from processing.pipeline import Pipeline  # noqa: E402
from processing.records import Alert, AlertKind  # noqa: E402
from processing.settings import AlertSettings, ProcessingSettings  # noqa: E402
from tests.mosquitto_server import MosquittoServer  # noqa: E402

ATHLETE = "bench"
PATTERN = (120, 120, 127, 134, 140)
"""One cycle of HR values (bpm); the last frame of each cycle triggers an hr_surge."""
TRIGGER_BPM = PATTERN[-1]
FRAME_INTERVAL_S = 0.05
RR_EVERY = 10
"""One RR interval (0.5 s) every 10 frames, so the beats keep real time."""
SAMPLES = 160
WARMUP = 2
"""First alerts left out (first QoS 1 publish on a fresh connection)."""
DRIVE_LIMIT_S = 50.0
TIMEOUT_S = 90.0
TARGET_MS = 50.0

SUBSCRIBER = """
import asyncio, json, sys, time, aiomqtt
async def main(port, topic, n, timeout):
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic, qos=1)
        print("ready", flush=True)
        count = 0
        try:
            async with asyncio.timeout(timeout):
                async for message in client.messages:
                    t = time.perf_counter()
                    print(t, json.loads(message.payload)["id"], flush=True)
                    count += 1
                    if count == n:
                        break
        except TimeoutError:
            pass
asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


def _frame(bpm: int, k: int) -> bytes:
    rr = (round(60.0 / bpm * 1024),) if k % RR_EVERY == 0 else ()
    return bytes(HeartRateMeasurement(heart_rate_bpm=bpm, contact=Contact.DETECTED,
                                      energy_kj=None, rr_ticks=rr))


async def _strap(radio: VirtualRadio) -> VirtualPeripheral:
    service = ServiceSpec(
        uuids.HEART_RATE_SERVICE,
        (CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, read=False, notify=True),),
    )
    return await radio.add_peripheral(name="HRM latency", services=[service],
                                      advertised_service_uuids=[uuids.HEART_RATE_SERVICE])


class _Stamps:
    def __init__(self) -> None:
        self.notify: dict[int, float] = {}
        self.collector: dict[int, float] = {}
        self.alert: dict[int, float] = {}
        self.other_alerts: list[str] = []


async def _drive(strap: VirtualPeripheral, stamps: _Stamps, cycles: int) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 0
    for n in range(1, cycles + 1):
        for bpm in PATTERN:
            k += 1
            delay = start + k * FRAME_INTERVAL_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = _frame(bpm, k)
            if bpm == TRIGGER_BPM:
                stamps.notify[n] = time.perf_counter()
            await strap.notify(uuids.HEART_RATE_MEASUREMENT, frame)
        if loop.time() - start > DRIVE_LIMIT_S:
            return


async def _measure(url: str, cycles: int) -> _Stamps:
    stamps = _Stamps()
    async with VirtualRadio() as radio:
        strap = await _strap(radio)
        pipeline = Pipeline(ProcessingSettings(alerts=AlertSettings(cooldown_s=0.0)))
        async with MqttPublisher(MqttTarget.from_url(url, env={}), athlete=ATHLETE) as publisher:
            await publisher.wait_connected(10.0)
            collector = Collector(
                SensorMap(default_athlete=ATHLETE),
                clock=LoopClock(datetime.now(UTC)),
                settings=CollectorSettings(scan_s=0.5),
                scanner_backend=radio.scanner_backend,
                client_backend=radio.client_backend,
            )
            async with collector:
                async with asyncio.timeout(30.0):
                    while not strap.subscribed:  # noqa: ASYNC110 - no event to wait on
                        await asyncio.sleep(0.01)

                async def drive() -> None:
                    await _drive(strap, stamps, cycles)
                    await asyncio.sleep(0.5)
                    collector.stop()

                triggers = 0
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(drive())
                    async for record in collector:
                        if (isinstance(record, HeartRateReading)
                                and record.heart_rate_bpm == TRIGGER_BPM):
                            triggers += 1
                            stamps.collector[triggers] = time.perf_counter()
                        for out in pipeline.process(record):
                            if isinstance(out, Alert):
                                if out.kind is AlertKind.HR_SURGE:
                                    seq = int(out.id.rsplit(":", 1)[1])
                                    stamps.alert[seq] = time.perf_counter()
                                else:
                                    stamps.other_alerts.append(out.id)
                            publisher.publish_nowait(out)
            await publisher.flush(10.0)
    return stamps


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _summary(latencies_ms: list[float]) -> dict[str, float | int]:
    return {"p50_ms": round(_pct(latencies_ms, 50), 2), "p99_ms": round(_pct(latencies_ms, 99), 2),
            "max_ms": round(max(latencies_ms), 2) if latencies_ms else float("nan"),
            "n": len(latencies_ms)}


def run() -> list[dict[str, object]]:
    cycles = SAMPLES + WARMUP
    with tempfile.TemporaryDirectory() as tmp, MosquittoServer(Path(tmp)) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, str(server.port), topic_for(ATHLETE, "alert"),
             str(cycles), str(TIMEOUT_S)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("benchmark subscriber did not start")
            stamps = asyncio.run(_measure(server.url, cycles))
            received, _ = child.communicate(timeout=TIMEOUT_S)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    arrived: dict[int, float] = {}
    for line in received.splitlines():
        t, alert_id = line.split()
        if alert_id.startswith(f"{ATHLETE}:hr_surge:"):
            arrived.setdefault(int(alert_id.rsplit(":", 1)[1]), float(t))
    # Alert n is raised by the n-th trigger frame (checked: the pipeline's and ours agree).
    seqs = sorted(n for n in arrived if n > WARMUP and n in stamps.notify)
    end_to_end = [(arrived[n] - stamps.notify[n]) * 1000.0 for n in seqs]
    to_collector = [(stamps.collector[n] - stamps.notify[n]) * 1000.0
                    for n in seqs if n in stamps.collector]
    to_alert = [(stamps.alert[n] - stamps.notify[n]) * 1000.0 for n in seqs if n in stamps.alert]
    matched = all(stamps.alert.get(n, 0.0) >= stamps.collector.get(n, 0.0) > stamps.notify[n]
                  for n in seqs)
    total = _summary(end_to_end)
    base = _summary(to_collector)
    p99 = float(total["p99_ms"])
    verdict = "met" if p99 <= TARGET_MS else "MISSED"
    return [{
        "name": "alert_latency_p99",
        "value": p99,
        "unit": "ms",
        "baseline": {"name": "notify -> decoded record out of the collector, p99",
                     "value": base["p99_ms"]},
        "ratio": round(p99 / float(base["p99_ms"]), 2) if base["p99_ms"] else None,
        "target": f"<= {TARGET_MS:g} ms: {verdict}",
        "p50_ms": total["p50_ms"],
        "max_ms": total["max_ms"],
        "n": total["n"],
        "triggers_sent": len(stamps.notify),
        "alerts_received": len(arrived),
        "sequence_consistent": matched,
        "baseline_p50_ms": base["p50_ms"],
        "to_pipeline_alert": _summary(to_alert),
        "other_alerts": stamps.other_alerts[:5],
        "note": "real time; strap notify -> bumble -> bleak backend -> collector -> Pipeline -> "
                "MqttPublisher (QoS 1 alert, in-memory outbox) -> mosquitto -> aiomqtt "
                "subscriber (child process); HR frames every 50 ms, an hr_surge every 5 frames; "
                f"first {WARMUP} alerts left out",
    }]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
