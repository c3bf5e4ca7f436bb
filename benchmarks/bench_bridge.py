"""Benchmark: readings/s one ``stridewatch bridge`` forwards from MQTT into Kafka, acknowledged
end to end (issue #13).

Everything runs on loopback: Mosquitto (``tests/mosquitto_server.py``) and a Tansu broker
(``tests/kafka_server.py``, in memory), fresh for each run; the bridge is a
``python -m stridewatch -v bridge`` child process (the command an operator runs), so its CPU
is its own. Load: ``READINGS`` readings of ``ATHLETES`` simulated athletes (HR 1 Hz + footpod
2 Hz, interleaved by time, as collectors publish them) from :mod:`benchmarks.records`, built
with the scale-out benchmark's helpers, ~265 bytes each as :func:`encode_reading` writes them.

Method, per run: create ``stridewatch.readings``; start the bridge once so that Mosquitto
holds its persistent session (MQTT 5, fixed client id), stop it cleanly (SIGTERM); publish the
readings with QoS 1 (the broker queues them for the session: the test config has
``max_queued_messages 100000``); start the bridge again and read the topic from the beginning
with a consumer in this process until Kafka holds every reading. The bridge sends each MQTT
PUBACK only after Kafka's delivery report (``MqttReadingSource(manual_ack=True)``, at most
``RECEIVE_MAXIMUM`` unacknowledged); its own count of acknowledgements sent, logged when it
stops, is checked against the readings.

Figure ``bridge_readings``: readings / (last reading in Kafka - first reading in Kafka), the
bridge's producer without options (what it needs on a plain topic: no changelog offsets to
get right), the best of ``REPEATS`` runs (the machine is shared: ``other_processes_cores``
in each run says how much of it something else took). Baseline, same run, same brokers and
preloaded queue: the raw MQTT→Kafka floor, a minimal loop with the same libraries (aiomqtt
subscribe QoS 1 on the same MQTT 5 session settings, PUBACK on receipt by paho; confluent_kafka
Producer with the bridge's settings; the topic's athlete level as key; no decoding, no
encoding, no acknowledgement bookkeeping). Both again with Tansu's produce workaround
``batch.num.messages=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_scaleout import (  # noqa: E402
    READER_FETCH_WAIT_MS,
    TANSU_PRODUCER,
    CpuMeter,
    _bases,
    _cpu_s,
    _schedule,
)
from outputs.mqtt import MqttTarget, make_client  # noqa: E402
from outputs.mqtt_codec import topic_filter, topic_for  # noqa: E402
from outputs.mqtt_source import RECEIVE_MAXIMUM, SESSION_EXPIRY_S  # noqa: E402
from stridewatch.bridge import PRODUCER_QUEUE  # noqa: E402
from stridewatch.worker import PARTITIONS, READINGS_TOPIC, RETENTION_MS  # noqa: E402
from tests.kafka_server import TansuServer  # noqa: E402
from tests.mosquitto_server import MosquittoServer  # noqa: E402

READINGS: Final = 20_000
ATHLETES: Final = 100
BASE_ATHLETES: Final = 16
"""Simulated athletes, reused under new names (as the scale-out benchmark does)."""
DURATION_S: Final = 70.0
"""Workout seconds per athlete: 100 athletes x (6 + 3/s x 70 s) > ``READINGS``."""
PUBLISH_INFLIGHT: Final = 1000
"""QoS 1 publishes in flight while preloading (the load only, not measured)."""
PUBLISH_WAIT_S: Final = 60.0
READY_WAIT_S: Final = 30.0
FORWARD_WAIT_S: Final = 60.0
"""Bound on one timed run (all readings in Kafka)."""
DUPLICATE_QUIET_S: Final = 0.5
"""After the last reading arrived: read this long more for repeats."""
STOP_WAIT_S: Final = 30.0
REPEATS: Final = 2
"""Runs of the bridge and of the floor (alternating; the best counts: the machine is shared)
without the Tansu workaround; one each with it (slower, and bound by Tansu)."""

BRIDGE_READY: Final = "MQTT source subscribed"
FLOOR_READY: Final = "raw floor subscribed"


def _log(text: str) -> None:
    print(f"  bridge: {text}", file=sys.stderr, flush=True)


def _machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy (``/proc/stat``; 0 when unknown)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # not idle/iowait


def _main_thread_cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid``'s main thread (its event loop; ``/proc``, 0 when
    unknown): librdkafka's threads are in the process's figure but not in this one."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- load ---------------------------------------------------------------------------------------


def _load() -> list[tuple[str, bytes]]:
    """(MQTT topic, payload) of ``READINGS`` readings of ``ATHLETES`` athletes, by time."""
    bases = _bases(BASE_ATHLETES, DURATION_S)
    names = [f"athlete-{i:03d}" for i in range(ATHLETES)]
    items = _schedule(bases, names, DURATION_S)[:READINGS]
    if len(items) < READINGS:
        raise RuntimeError(f"only {len(items)} readings built, {READINGS} wanted")
    return [(topic_for(key.decode(), "readings"), payload) for _, _, key, payload, _ in items]


def _preload(mqtt: MosquittoServer, messages: Sequence[tuple[str, bytes]]) -> float:
    """Publish ``messages`` with QoS 1 and wait for every PUBACK; the publish rate (msg/s)."""
    connected, done = threading.Event(), threading.Event()
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(messages):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bridge-load-{os.getpid()}")
    client.max_inflight_messages_set(PUBLISH_INFLIGHT)
    client.on_connect = lambda *_: connected.set()
    client.on_publish = on_publish
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    try:
        if not connected.wait(READY_WAIT_S):
            raise RuntimeError("load publisher: no CONNACK from mosquitto")
        started = time.perf_counter()
        for topic, payload in messages:
            client.publish(topic, payload, qos=1)
        if not done.wait(PUBLISH_WAIT_S):
            raise RuntimeError(f"load publisher: {acked} of {len(messages)} PUBACKs within "
                               f"{PUBLISH_WAIT_S:.0f} s")
        return len(messages) / (time.perf_counter() - started)
    finally:
        client.disconnect()
        client.loop_stop()


# -- forwarders (the bridge, the raw floor) -------------------------------------------------------


class Forwarder:
    """A forwarding child process (``stridewatch bridge`` or the raw floor), its output in a
    log file."""

    def __init__(self, command: Sequence[str], ready: str, log: Path) -> None:
        self.ready = ready
        self.log = log
        self._offset = log.stat().st_size if log.exists() else 0  # this run's output starts
        self.started = time.time()  # here (one log for both runs)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def text(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.process.args!r} exited ({code}):\n{self.text()[-3000:]}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WAIT_S
        while self.ready not in self.text():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {self.ready!r} within {READY_WAIT_S:.0f} s:\n"
                                   f"{self.text()[-3000:]}")
            time.sleep(0.02)

    def stop(self) -> str:
        """SIGTERM (both flush and exit), bounded; this run's output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_WAIT_S)
        return self.text()


def _bridge_command(mqtt: MosquittoServer, bootstrap: str, client_id: str,
                    options: dict[str, int]) -> list[str]:
    return [sys.executable, "-m", "stridewatch", "-v", "bridge", "--mqtt", mqtt.url,
            "--kafka", bootstrap, "--client-id", client_id,
            *(f"--producer-option={k}={v}" for k, v in options.items())]


def _floor_command(mqtt: MosquittoServer, bootstrap: str, client_id: str,
                   options: dict[str, int]) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_bridge", "raw-floor", mqtt.url, bootstrap,
            client_id, json.dumps(options)]


async def _raw_floor(url: str, bootstrap: str, client_id: str, options: dict[str, Any]) -> None:
    """The floor: MQTT messages straight into Kafka (PUBACK on receipt), until SIGTERM."""
    from confluent_kafka import Producer

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "queue.buffering.max.messages": PRODUCER_QUEUE,
                         **options})  # as stridewatch.bridge.KafkaReadingProducer
    client = make_client(MqttTarget.from_url(url, env={}), client_id=client_id,
                         v5_session=(SESSION_EXPIRY_S, RECEIVE_MAXIMUM))
    count = 0

    async def forward() -> None:
        nonlocal count
        async for message in client.messages:
            key = message.topic.value.split("/")[2].encode()
            while True:
                try:
                    producer.produce(READINGS_TOPIC, key=key, value=message.payload)
                    break
                except BufferError:
                    await asyncio.to_thread(producer.poll, 0.1)
            count += 1
            producer.poll(0)

    async with client:
        await client.subscribe(topic_filter("readings"), qos=1)
        print(FLOOR_READY, flush=True)
        task = asyncio.create_task(forward())
        await stop.wait()
        task.cancel()
        left = await asyncio.to_thread(producer.flush, STOP_WAIT_S)
    print(f"raw floor: {count} forwarded, {left} not acknowledged by Kafka", flush=True)


# -- one timed run ------------------------------------------------------------------------------


class ReadingsReader:
    """Reads ``stridewatch.readings`` from the beginning (every partition)."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-bridge",
                                   "enable.auto.commit": False,
                                   "fetch.wait.max.ms": READER_FETCH_WAIT_MS})
        self._consumer.assign([TopicPartition(READINGS_TOPIC, p, OFFSET_BEGINNING)
                               for p in range(PARTITIONS)])

    def read(self, timeout_s: float = 0.05) -> list[bytes]:
        return [m.value() or b"" for m in self._consumer.consume(num_messages=5000,
                                                                   timeout=timeout_s)
                if not m.error()]

    def close(self) -> None:
        self._consumer.close()


@dataclass
class RunResult:
    label: str
    rate: float = 0.0
    seconds: float = 0.0
    startup_s: float = 0.0
    """Process start -> first reading in Kafka."""
    delivered: int = 0
    """Distinct readings of the load in Kafka."""
    duplicates: int = 0
    cpu_cores: dict[str, float] | None = None
    """Cores each process used from the first reading in Kafka to the last."""
    main_thread_cores: float | None = None
    """Of the forwarder's: its main thread's (the event loop), same window."""
    other_cores: float | None = None
    """Cores the rest of the machine used meanwhile (busy cores - the processes above)."""
    cpu_s: dict[str, float] | None = None
    """CPU seconds each process used from the forwarder's start to the last reading."""
    publish_rate: float = 0.0
    acked: int | None = None
    """MQTT acknowledgements the bridge says it sent (its log)."""
    log_problems: list[str] | None = None

    def as_json(self) -> dict[str, object]:
        return {"readings_per_s": round(self.rate), "seconds": round(self.seconds, 2),
                "startup_s": round(self.startup_s, 2), "missing": READINGS - self.delivered,
                "duplicates": self.duplicates, "mqtt_acks_sent": self.acked,
                "cpu_cores": self.cpu_cores, "main_thread_cores": self.main_thread_cores,
                "other_processes_cores": self.other_cores,
                "cpu_s": self.cpu_s,
                "log_problems": self.log_problems or []}


def _forward_run(tmp: Path, label: str, messages: Sequence[tuple[str, bytes]],
                 command: Any, ready: str, options: dict[str, int]) -> RunResult:
    """One timed run on fresh brokers: session, preload, forwarder again until Kafka holds
    every message."""
    result = RunResult(label)
    workdir = tmp / label
    expected = {payload for _, payload in messages}
    with MosquittoServer(workdir / "mqtt") as mqtt, TansuServer(workdir / "kafka") as kafka:
        kafka.create_topics([READINGS_TOPIC], partitions=PARTITIONS, retention_ms=RETENTION_MS)
        args = command(mqtt, kafka.bootstrap, f"bench-{label}", options)
        log = workdir / "forwarder.log"
        first = Forwarder(args, ready, log)  # makes the persistent session
        try:
            first.wait_ready()
        finally:
            first.stop()
        if first.process.returncode != 0:
            raise RuntimeError(f"{label}: exited {first.process.returncode}:\n{first.text()}")
        result.publish_rate = _preload(mqtt, messages)
        reader = ReadingsReader(kafka.bootstrap)
        forwarder = Forwarder(args, ready, log)
        pids = {"forwarder": forwarder.process.pid, "tansu": kafka.pid,
                "mosquitto": mqtt.pid,
                "reader": os.getpid()}
        cpu0 = {name: _cpu_s(pid) for name, pid in pids.items()}
        try:
            seen: set[bytes] = set()
            total = 0
            first_at = last_at = 0.0
            meter: CpuMeter | None = None
            main0 = busy0 = 0.0
            deadline = time.monotonic() + FORWARD_WAIT_S
            while len(seen) < len(expected) and time.monotonic() < deadline:
                batch = reader.read()
                if not batch:
                    forwarder.check_alive()
                    continue
                now = time.time()
                if meter is None:
                    first_at, meter = now, CpuMeter(pids)
                    main0 = _main_thread_cpu_s(forwarder.process.pid)
                    busy0 = _machine_busy_s()
                total += len(batch)
                seen.update(batch)
                last_at = now
            result.cpu_s = {name: round(_cpu_s(pid) - cpu0[name], 2)
                            for name, pid in pids.items()}
            if meter is not None:
                result.cpu_cores = meter.cores()
                wall = max(1e-3, time.monotonic() - meter.started)
                result.main_thread_cores = round(
                    (_main_thread_cpu_s(forwarder.process.pid) - main0) / wall, 2)
                result.other_cores = round(max(0.0, (_machine_busy_s() - busy0) / wall
                                               - sum(result.cpu_cores.values())), 2)
            quiet_until = time.monotonic() + DUPLICATE_QUIET_S
            while time.monotonic() < quiet_until:
                total += len(reader.read())
        finally:
            reader.close()
            text = forwarder.stop()
        result.delivered = len(seen & expected)
        result.duplicates = total - len(seen)
        result.seconds = last_at - first_at
        result.startup_s = first_at - forwarder.started if first_at else 0.0
        result.rate = result.delivered / result.seconds if result.seconds > 0 else 0.0
        found = re.search(r"(\d+) MQTT acknowledgement\(s\) sent", text)
        result.acked = int(found.group(1)) if found else None
        result.log_problems = [line.strip() for line in text.splitlines()
                               if re.search(r"ERROR|WARNING|Traceback", line)][:5]
        if forwarder.process.returncode != 0:
            result.log_problems.append(f"exit status {forwarder.process.returncode}")
    _log(f"{label}: {result.rate:.0f} readings/s ({result.delivered}/{READINGS} in "
         f"{result.seconds:.2f} s, startup {result.startup_s:.2f} s, {result.duplicates} "
         f"duplicate(s), acks {result.acked}; preload {result.publish_rate:.0f} msg/s; cores "
         f"{result.cpu_cores}, main thread {result.main_thread_cores}, other processes "
         f"{result.other_cores}; cpu s {result.cpu_s})")
    if result.delivered < READINGS:
        _log(f"WARNING {label}: {READINGS - result.delivered} reading(s) never reached Kafka "
             f"within {FORWARD_WAIT_S:.0f} s")
    return result


def run() -> list[dict[str, object]]:
    started = time.perf_counter()
    messages = _load()
    _log(f"{len(messages)} readings of {ATHLETES} athletes built in "
         f"{time.perf_counter() - started:.1f} s")
    plan = [*[(kind, command, ready, {}) for _ in range(REPEATS)
              for kind, command, ready in (("bridge", _bridge_command, BRIDGE_READY),
                                           ("floor", _floor_command, FLOOR_READY))],
            ("bridge-b1", _bridge_command, BRIDGE_READY, TANSU_PRODUCER),
            ("floor-b1", _floor_command, FLOOR_READY, TANSU_PRODUCER)]
    runs: dict[str, list[RunResult]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp_name:
        tmp = Path(tmp_name)
        for kind, command, ready, options in plan:
            label = f"{kind}-{len(runs.get(kind, [])) + 1}"
            runs.setdefault(kind, []).append(
                _forward_run(tmp, label, messages, command, ready, options))
    _log(f"all done in {time.perf_counter() - started:.1f} s")
    bridge, floor, b1, floor_b1 = (max(runs[k], key=lambda r: r.rate)
                                   for k in ("bridge", "floor", "bridge-b1", "floor-b1"))

    def per_reading_us(r: RunResult) -> float | None:
        cores = (r.cpu_cores or {}).get("forwarder")
        return None if cores is None or not r.rate else round(1e6 * cores / r.rate, 1)

    return [{
        "name": "bridge_readings",
        "value": round(bridge.rate),
        "unit": "readings/s",
        "baseline": {"name": "raw MQTT→Kafka floor (aiomqtt QoS 1, PUBACK on receipt, "
                             "confluent_kafka Producer, no decoding), same brokers and load",
                     "value": round(floor.rate)},
        "ratio": round(bridge.rate / floor.rate, 3) if floor.rate else None,
        "target": "informative (a bridge keeps up with N athletes at 3 readings/s each: "
                  "value / 3)",
        "readings": READINGS,
        "athletes": ATHLETES,
        "athletes_realtime_estimate": round(bridge.rate / 3),
        "with_tansu_workaround": round(b1.rate),
        "floor_with_tansu_workaround": round(floor_b1.rate),
        "bridge_cpu_us_per_reading": per_reading_us(bridge),
        "floor_cpu_us_per_reading": per_reading_us(floor),
        "preload_publish_rate": round(bridge.publish_rate),
        "runs": {f"{kind}-{i + 1}": r.as_json() for kind, results in runs.items()
                 for i, r in enumerate(results)},
        "note": f"{READINGS} readings ({ATHLETES} athletes, HR 1 Hz + footpod 2 Hz, "
                "interleaved) queued by Mosquitto for the forwarder's persistent MQTT 5 session "
                f"(receive maximum {RECEIVE_MAXIMUM}), then forwarded into {PARTITIONS} "
                "partitions of a fresh in-memory Tansu, all on loopback on a 2-core machine "
                "shared by the forwarder, both brokers and this process (the reader). "
                f"value: `stridewatch bridge` child process, best of {REPEATS} runs "
                "alternating with the floor's (runs: each), readings / (last reading in Kafka "
                "- first), read back by a consumer (fetch.wait.max.ms "
                f"{READER_FETCH_WAIT_MS}); every MQTT PUBACK is sent after Kafka's delivery "
                "report (mqtt_acks_sent, from its log, should equal the readings); startup_s "
                "(process start to first reading in Kafka, Python imports included) is not "
                "in the rate. Baseline: the raw floor, the same path without the bridge's "
                "work (decode_reading + encode_reading, a delivery callback and a "
                "thread-safe PUBACK per reading): the floor, not Mosquitto's publish rate, "
                "is the comparison that isolates the bridge's own overhead, since both read "
                "the same queued session through the same client libraries into the same "
                "broker. with_tansu_workaround / floor_with_tansu_workaround: the same with "
                "--producer-option batch.num.messages=1 (one record per produce request, "
                "which Tansu 0.6 needs for exact offsets on Quix changelogs; the readings "
                "topic has no changelog, so the bridge does not need it). cpu_cores: cores "
                "each process used from the first reading in Kafka to the last (/proc), "
                "main_thread_cores: the forwarder's event-loop thread alone (the rest is "
                "librdkafka's threads and, in the bridge, the delivery-report poll thread), "
                "other_processes_cores: the rest of the machine meanwhile (/proc/stat); "
                "cpu_s: CPU seconds from the forwarder's start (imports included). "
                "preload_publish_rate: paho QoS 1 publishing into Mosquitto (load only, "
                "not measured against)",
    }]


def _main(argv: list[str]) -> int:
    if argv[:1] == ["raw-floor"] and len(argv) == 5:
        _, url, bootstrap, client_id, options = argv
        asyncio.run(_raw_floor(url, bootstrap, client_id, json.loads(options)))
        return 0
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(run(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
