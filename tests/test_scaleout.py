"""The scale-out tier against a real Kafka-protocol broker (Tansu, on loopback): the worker
gives what a single ``run`` gives, keeps going when workers die or join, and the bridge keeps
each athlete's order (issue #13).

Inputs are real runs with RR intervals (Forerunner 630 and fēnix 3, ``tests/data/fit``), one
per athlete. The reference is the same pure processing in one process
(:class:`~processing.pipeline.AthleteProcessor` with the worker's session id), encoded as the
worker encodes its outputs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from influx_server import InfluxServer
from kafka_server import TansuServer
from mosquitto_server import MosquittoServer, ThreadSubscriber, free_port

from ingest.records import Reading, session_end
from ingest.replay.fit import read_fit
from outputs.influx.target import InfluxTarget
from outputs.lineprotocol.encode import encode_point
from outputs.mqtt import MqttTarget
from outputs.mqtt_codec import encode_output, encode_reading, topic_for
from outputs.mqtt_source import MqttReadingPublisher
from processing.pipeline import AthleteProcessor
from processing.records import Alert, ProcessingOutput
from processing.settings import ProcessingSettings
from stridewatch.bridge import BridgeCounters, run_bridge
from stridewatch.errors import RuntimeFailureError
from stridewatch.worker import (
    ALERTS_TOPIC,
    CONSUMER_GROUP,
    METRICS_TOPIC,
    READINGS_TOPIC,
    Worker,
    WorkerOptions,
    build_app,
    output_kind,
    session_id,
)
from stridewatch.worker import (
    PARTITIONS as WORKER_PARTITIONS,
)

FIT = Path(__file__).parent / "data" / "fit"
RUNS = {"ann": "fr630-with-lth.fit", "bob": "fenix3-with-empty-runscribe.fit"}
CLUB = {"ann": "fr630-with-lth.fit", "bob": "fenix3-with-empty-runscribe.fit",
        "cyd": "fr630-with-lth.fit", "dan": "fenix3-with-empty-runscribe.fit",
        "eve": "fr630-with-lth.fit", "fay": "fenix3-with-empty-runscribe.fit"}
"""Six athletes (the two real runs, thrice, under other names): spread over 4 partitions."""
PARTITIONS = 4
WAIT_S = 120.0
"""Bound on waiting for a worker's outputs (they take a few seconds)."""
# Tansu 0.6 reports offsets per produced batch: one record per batch keeps them exact (the
# changelog offsets Quix checks on restore, and the test's own producer).
TANSU_PRODUCER = {"batch.num.messages": 1}
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
"""Rebalances in seconds rather than the default 45 s session timeout."""

Output = tuple[str, str, str | None, bytes]
"""(topic, athlete, kind header, payload)."""


@cache
def _readings(athlete: str) -> tuple[Reading, ...]:
    (activity,) = read_fit(FIT / CLUB[athlete], athlete=athlete)
    return activity.readings[:1200]  # 10+ minutes each: HRV, DFA, segments carry state


def _reference(athletes: Sequence[str] = tuple(RUNS), *, ended: bool = False) -> list[Output]:
    """What the workers must emit: the single-process outputs, as topic messages (``ended``:
    with the final outputs of each session, as at the end of a ``run``)."""
    out: list[Output] = []
    for record in _reference_records(athletes, ended=ended):
        payload = encode_output(record).payload
        if isinstance(record, Alert):
            out.append((ALERTS_TOPIC, record.athlete, "alert", payload))
        else:
            out.append((METRICS_TOPIC, record.athlete, output_kind(record), payload))
    return out


def _reference_records(athletes: Sequence[str], *, ended: bool = False
                       ) -> list[ProcessingOutput]:
    out: list[ProcessingOutput] = []
    for athlete in athletes:
        readings = _readings(athlete)
        processor = AthleteProcessor(athlete, ProcessingSettings(),
                                     id_prefix=session_id(readings[0]))
        for reading in readings:
            out.extend(processor.process(reading))
        if ended:
            out.extend(processor.finish())
    return out


def _produce(kafka: TansuServer, athletes: Sequence[str], start: int = 0,
             stop: int | None = None, *, end: bool = False) -> None:
    """Produce the athletes' readings ``[start:stop]`` (``end``: then a ``session_end``
    each, as ``collect --mqtt`` sends when it stops)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka.bootstrap, **TANSU_PRODUCER})
    for athlete in athletes:
        readings = list(_readings(athlete)[start:stop])
        if end:
            readings.append(session_end(readings[-1]))
        for reading in readings:
            producer.produce(READINGS_TOPIC, key=athlete.encode(),
                             value=encode_reading(reading).payload)
            producer.poll(0)
    assert producer.flush(30) == 0


class OutputReader:
    """Reads the output topics from the start, as a dashboard or notifier would."""

    def __init__(self, kafka: TansuServer) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": kafka.bootstrap,
                                   "group.id": "test-reader", "enable.auto.commit": False})
        md = self._consumer.list_topics(timeout=10)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for topic in (METRICS_TOPIC, ALERTS_TOPIC)
                               for p in md.topics[topic].partitions])
        self.got: list[Output] = []

    def read_until(self, count: int, *, distinct: bool = False) -> list[Output]:
        """What has arrived, once there are at least ``count`` messages (``distinct``: count
        repeats once), bounded by :data:`WAIT_S`."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if (len(set(self.got)) if distinct else len(self.got)) >= count:
                break
            message = self._consumer.poll(0.2)
            if message is None or message.error():
                continue
            kind = dict(message.headers() or []).get("kind")
            self.got.append((message.topic(), message.key().decode(),
                             kind.decode() if kind is not None else None, message.value()))
        return self.got

    def close(self) -> None:
        self._consumer.close()


def _consume(kafka: TansuServer, until: int) -> list[Output]:
    reader = OutputReader(kafka)
    try:
        return reader.read_until(until)
    finally:
        reader.close()


def _per_athlete(outputs: Sequence[Output]) -> dict[tuple[str, str], list[Output]]:
    grouped: dict[tuple[str, str], list[Output]] = {}
    for item in outputs:
        grouped.setdefault((item[0], item[1]), []).append(item)
    return grouped


@pytest.fixture
def topics(kafka: TansuServer) -> TansuServer:
    kafka.create_topics([READINGS_TOPIC], partitions=PARTITIONS)
    # The outputs as a worker creates them (a reader may subscribe before any worker runs).
    kafka.create_topics([METRICS_TOPIC, ALERTS_TOPIC], partitions=WORKER_PARTITIONS)
    return kafka


def _run_in_process(options: WorkerOptions, readings: int,
                    done: Callable[[Worker], bool] = lambda worker: True) -> Worker:
    """Run a worker on this thread (Quix wants the main thread) until it has processed
    ``readings`` and ``done(worker)``; a watcher thread stops it (bounded)."""
    worker = build_app(options)
    app, step = worker.app, worker.step
    deadline = time.monotonic() + WAIT_S

    def watch() -> None:
        while time.monotonic() < deadline:
            if step.counters.readings >= readings and done(worker):
                break
            time.sleep(0.05)
        app.stop()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        app.run()
    finally:
        watcher.join()
        worker.close()
    assert step.counters.readings >= readings, step.counters
    return worker


def test_worker_gives_what_a_single_run_gives(topics: TansuServer, tmp_path: Path) -> None:
    """Every output of a ``run``, in order per athlete, down to the session's totals (distance,
    HR, HRV, time in zones: the final SESSION metric a ``session_end`` brings)."""
    _produce(topics, list(RUNS), end=True)
    options = WorkerOptions(bootstrap=topics.bootstrap, state_dir=tmp_path / "state",
                            producer_extra=TANSU_PRODUCER, consumer_extra=FAST_GROUP)
    _run_in_process(options, sum(len(_readings(a)) + 1 for a in RUNS))
    reference = _reference(ended=True)
    assert sum(1 for r in reference if r[0] == ALERTS_TOPIC) > 0  # the runs do raise alerts
    finals = [r for r in reference if b'"final":true' in r[3]]
    assert sorted(r[1] for r in finals) == sorted(RUNS)  # each session's totals, once
    got = _consume(topics, len(reference))
    # Per athlete and topic, in order (other athletes interleave freely), nothing more or less.
    assert _per_athlete(got) == _per_athlete(reference)


def _wait_committed(kafka: TansuServer, athletes: Sequence[str]) -> None:
    """Until the workers' group has committed an offset on every partition that holds one of
    ``athletes`` (bounded by :data:`WAIT_S`)."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": CONSUMER_GROUP,
                      "enable.auto.commit": False})
    try:
        partitions = {_partition_of(kafka, a) for a in athletes}
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            committed = probe.committed([TopicPartition(READINGS_TOPIC, p) for p in partitions],
                                        timeout=10)
            if all(tp.offset > 0 for tp in committed):
                return
            time.sleep(0.1)
        raise AssertionError(f"no commit on every partition of {athletes} in {WAIT_S} s")
    finally:
        probe.close()


@cache
def _partition_of(kafka: TansuServer, athlete: str) -> int:
    """The partition Kafka's default partitioner puts ``athlete``'s readings in."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "test-partitions",
                       "enable.auto.commit": False})
    try:
        md = reader.list_topics(READINGS_TOPIC, timeout=10)
        from confluent_kafka import OFFSET_BEGINNING

        reader.assign([TopicPartition(READINGS_TOPIC, p, OFFSET_BEGINNING)
                       for p in md.topics[READINGS_TOPIC].partitions])
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and not message.error() and message.key() == athlete.encode():
                partition: int = message.partition()
                return partition
        raise AssertionError(f"no reading of {athlete} on {READINGS_TOPIC}")
    finally:
        reader.close()


def _first_occurrences(items: Sequence[Output]) -> list[Output]:
    seen: set[Output] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


class StridewatchProcess:
    """``stridewatch <args>`` as a child process (killable like a crashed machine), its
    output in ``<workdir>/<name>.log``."""

    def __init__(self, args: Sequence[str], workdir: Path, name: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stridewatch", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def wait_for(self, text: str) -> None:
        """Until the process's output shows ``text`` (bounded by :data:`WAIT_S`)."""
        deadline = time.monotonic() + WAIT_S
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"no {text!r} in {self.log}"
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.log.read_text(errors="replace")


_TANSU_PRODUCER_OPTIONS = [f"--producer-option={k}={v}" for k, v in TANSU_PRODUCER.items()]


def worker_process(kafka: TansuServer, workdir: Path, name: str) -> StridewatchProcess:
    """``stridewatch worker`` with its own state directory, fast rebalances."""
    options = [*_TANSU_PRODUCER_OPTIONS,
               *(f"--consumer-option={k}={v}" for k, v in FAST_GROUP.items()),
               "--commit-interval", "0.5"]  # the flag, end to end
    return StridewatchProcess(["worker", "--kafka", kafka.bootstrap,
                               "--state-dir", str(workdir / f"{name}-state"), *options],
                              workdir, name)


@pytest.fixture
def workers(topics: TansuServer, tmp_path: Path) -> Iterator[list[StridewatchProcess]]:
    started: list[StridewatchProcess] = []
    yield started
    for worker in started:
        worker.stop()


def test_workers_dying_and_joining_lose_nothing_and_repeat_only_with_the_same_ids(
    topics: TansuServer, workers: list[StridewatchProcess], tmp_path: Path
) -> None:
    athletes = list(CLUB)
    half = 600
    reference = _reference(athletes)
    workers += [worker_process(topics, tmp_path, "w1"), worker_process(topics, tmp_path, "w2")]
    _produce(topics, athletes, 0, half)
    reader = OutputReader(topics)
    try:
        workers[0].wait_for("worker: athlete ")  # w1 has athletes (not only w2)
        # Mid-session, once every athlete's progress (and so its state) is committed.
        _wait_committed(topics, athletes)
        workers[0].kill()  # SIGKILL: no goodbye, its partitions move on the session timeout
        workers.append(worker_process(topics, tmp_path, "w3"))  # joins with no state at all
        _produce(topics, athletes, half, None)
        got = reader.read_until(len(set(reference)), distinct=True)
    finally:
        reader.close()
    logs = "\n".join(w.stop() for w in workers)
    assert "Traceback" not in logs, logs[-3000:]
    # The killed worker's athletes moved: another worker restored them mid-session.
    assert "resumes after reading" in logs, logs[-3000:]
    by_key, ref_by_key = _per_athlete(got), _per_athlete(reference)
    assert set(by_key) == set(ref_by_key)
    for key, expected in ref_by_key.items():
        # Nothing lost, nothing out of order: with repeats removed, exactly the single run.
        assert _first_occurrences(by_key[key]) == _first_occurrences(expected), key
        # Repeats are whole outputs again (an alert repeats with its id), never new ones.
        assert set(by_key[key]) == set(expected), key
    repeats = len(got) - len(set(got))
    print(f"{repeats} repeated output(s) after the kill (at-least-once)")


class ReadingsReader:
    """Reads ``stridewatch.readings`` from the start: (key, partition, value) in each
    partition's order."""

    def __init__(self, kafka: TansuServer) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": kafka.bootstrap,
                                   "group.id": "test-readings", "enable.auto.commit": False})
        md = self._consumer.list_topics(READINGS_TOPIC, timeout=10)
        self._consumer.assign([TopicPartition(READINGS_TOPIC, p, OFFSET_BEGINNING)
                               for p in md.topics[READINGS_TOPIC].partitions])
        self.got: list[tuple[str, int, bytes]] = []

    def read_until(self, done: Callable[[list[tuple[str, int, bytes]]], bool]
                   ) -> list[tuple[str, int, bytes]]:
        """What has arrived once ``done(got)``; fails after :data:`WAIT_S`."""
        deadline = time.monotonic() + WAIT_S
        while not done(self.got):
            assert time.monotonic() < deadline, f"{len(self.got)} reading(s) only in Kafka"
            message = self._consumer.poll(0.2)
            if message is not None and not message.error():
                self.got.append((message.key().decode(), message.partition(), message.value()))
        return self.got

    def close(self) -> None:
        self._consumer.close()


def _read_readings(kafka: TansuServer, count: int) -> list[tuple[str, int, bytes]]:
    """(key, partition, value) of the first ``count`` readings on the readings topic."""
    reader = ReadingsReader(kafka)
    try:
        return reader.read_until(lambda got: len(got) >= count)
    finally:
        reader.close()


def _unique_client_id(name: str) -> str:
    """A client id no other test uses: the Mosquitto fixture is shared by the whole run, and a
    bridge's persistent session would otherwise collect other tests' readings."""
    return f"{name}-{os.getpid()}-{free_port()}"


@pytest.mark.parametrize("queue_size", [100_000, 2])
def test_bridge_forwards_mqtt_readings_keyed_and_in_order_per_athlete(
    topics: TansuServer, mosquitto: MosquittoServer, queue_size: int
) -> None:
    """Collectors publish over MQTT (QoS 1, interleaved athletes); the bridge puts every
    reading on Kafka once, keyed by athlete, one partition per athlete, in order. With a
    2-reading producer queue the bridge waits for the broker instead of buffering."""
    target = MqttTarget.from_url(mosquitto.url, env={})
    athletes = ["ann", "bob", "cyd"]
    count = 300
    sent = [r for i in range(count) for r in (_readings(a)[i] for a in athletes)]

    async def scenario() -> BridgeCounters:
        stop, subscribed = asyncio.Event(), asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            bridge = tasks.create_task(run_bridge(
                target, topics.bootstrap, stop=stop, subscribed=subscribed,
                producer_extra=TANSU_PRODUCER, queue_size=queue_size,
                client_id=_unique_client_id("bridge")))
            async with asyncio.timeout(WAIT_S):
                await subscribed.wait()
            async with MqttReadingPublisher(target) as publisher:
                for reading in sent:
                    await publisher.publish(reading)
                assert await publisher.flush(WAIT_S)  # all acknowledged by the broker
            got = await asyncio.to_thread(_read_readings, topics, len(sent))
            stop.set()
        assert len(got) == len(sent)
        for athlete in athletes:
            mine = [(partition, value) for key, partition, value in got if key == athlete]
            assert len({partition for partition, _ in mine}) == 1  # one partition per athlete
            assert [value for _, value in mine] == [
                encode_reading(r).payload for r in sent if r.athlete == athlete]
        return bridge.result()

    counters = asyncio.run(scenario())
    assert counters.forwarded == counters.delivered == len(sent)
    assert counters.failed == 0
    print(f"queue {queue_size}: {counters.waits} wait(s) for the broker")


def _in_order_once_each(got: Sequence[tuple[str, int, bytes]],
                        sent: dict[str, list[bytes]]) -> int:
    """Checks that Kafka holds every sent reading, each athlete's in one partition and in the
    order sent, repeats only of byte-identical earlier readings; returns the repeats."""
    for athlete, payloads in sent.items():
        mine = [(partition, value) for key, partition, value in got if key == athlete]
        assert len({partition for partition, _ in mine}) == 1, athlete
        values = [value for _, value in mine]
        seen: set[bytes] = set()
        first = [v for v in values if not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]
        assert first == payloads, athlete  # nothing lost, nothing reordered, nothing new
    assert {key for key, _, _ in got} == set(sent)
    return len(got) - sum(len(p) for p in sent.values())


def test_a_bridge_killed_mid_stream_loses_nothing_and_repeats_only_identical_readings(
    topics: TansuServer, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """SIGKILL the bridge while readings wait for a hung Kafka (its producer queue full),
    publish more while it is down, start it again: every reading reaches Kafka, in order per
    athlete; the only repeats are readings Kafka had taken whose MQTT acknowledgement died
    with the bridge."""
    target = MqttTarget.from_url(mosquitto.url, env={})
    athletes, first, total = ["ann", "bob", "cyd"], 300, 400
    readings = {a: _readings(a)[:total] for a in athletes}
    sent = {a: [encode_reading(r).payload for r in rs] for a, rs in readings.items()}
    args = ["-v", "bridge", "--mqtt", mosquitto.url, "--kafka", topics.bootstrap,
            "--client-id", _unique_client_id("bridge-kill"), *_TANSU_PRODUCER_OPTIONS,
            "--producer-option=queue.buffering.max.messages=50"]

    async def publish(start: int, stop: int) -> None:
        async with MqttReadingPublisher(target) as publisher:
            for i in range(start, stop):
                for athlete in athletes:
                    await publisher.publish(readings[athlete][i])
            assert await publisher.flush(WAIT_S)  # all acknowledged by the broker

    reader = ReadingsReader(topics)
    bridge = StridewatchProcess(args, tmp_path, "bridge-1")
    try:
        bridge.wait_for("MQTT source subscribed")
        asyncio.run(publish(0, first // 2))
        reader.read_until(lambda got: len(got) >= 100)
        with topics.frozen():  # readings pile up in the bridge, unacknowledged by Kafka
            asyncio.run(publish(first // 2, first))
            bridge.wait_for("is slower than the readings")  # its producer queue is full
            bridge.kill()
        asyncio.run(publish(first, total))  # the broker keeps these for the bridge's session
        bridge = StridewatchProcess(args, tmp_path, "bridge-2")
        expected = {p for payloads in sent.values() for p in payloads}
        got = reader.read_until(lambda got: {v for _, _, v in got} >= expected)
    finally:
        log = bridge.stop()
        reader.close()
    assert bridge.process.returncode == 0, log
    repeats = _in_order_once_each(got, sent)
    print(f"{repeats} repeat(s) after the restart")


def test_two_bridges_split_athletes_and_keep_each_in_order(
    topics: TansuServer, mosquitto: MosquittoServer
) -> None:
    """``--partition 0/2`` and ``1/2``: each athlete forwarded by exactly one bridge, once,
    in order (a shared subscription would split an athlete's readings between them)."""
    from stridewatch.bridge import owner

    target = MqttTarget.from_url(mosquitto.url, env={})
    athletes = list(CLUB)
    assert {owner(a, 2) for a in athletes} == {0, 1}  # both bridges have work
    count = 100
    sent_readings = [r for i in range(count) for r in (_readings(a)[i] for a in athletes)]

    async def scenario() -> list[BridgeCounters]:
        stop = asyncio.Event()
        ready = [asyncio.Event(), asyncio.Event()]
        async with asyncio.TaskGroup() as tasks:
            bridges = [tasks.create_task(run_bridge(
                target, topics.bootstrap, stop=stop, subscribed=ready[i], partition=(i, 2),
                producer_extra=TANSU_PRODUCER, client_id=_unique_client_id(f"bridge{i}")))
                for i in range(2)]
            async with asyncio.timeout(WAIT_S):
                for event in ready:
                    await event.wait()
            async with MqttReadingPublisher(target) as publisher:
                for reading in sent_readings:
                    await publisher.publish(reading)
                assert await publisher.flush(WAIT_S)
            got = await asyncio.to_thread(_read_readings, topics, len(sent_readings))
            stop.set()
        sent = {a: [encode_reading(r).payload for r in sent_readings if r.athlete == a]
                for a in athletes}
        assert _in_order_once_each(got, sent) == 0
        return [bridge.result() for bridge in bridges]

    counters = asyncio.run(scenario())
    for i, c in enumerate(counters):
        mine = sum(count for a in athletes if owner(a, 2) == i)
        assert (c.forwarded, c.delivered, c.skipped) == (mine, mine, len(sent_readings) - mine)


def test_bridge_names_an_unreachable_kafka(mosquitto: MosquittoServer) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(RuntimeFailureError, match=f"127.0.0.1:{port}.*--kafka"):
        asyncio.run(run_bridge(MqttTarget.from_url(mosquitto.url, env={}), f"127.0.0.1:{port}",
                               stop=asyncio.Event()))


def test_bridge_partition_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from stridewatch.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["bridge", "--mqtt", "mqtt://h", "--kafka", "h:9092"]).partition == (0, 1)
    assert parse(["bridge", "--mqtt", "mqtt://h", "--kafka", "h:9092",
                  "--partition", "1/2"]).partition == (1, 2)
    for bad in ("2/2", "-1/2", "1", "1-2", "a/b", "0/0"):
        with pytest.raises(SystemExit):
            parse(["bridge", "--mqtt", "mqtt://h", "--kafka", "h:9092", f"--partition={bad}"])
        assert "is not I/N with 0 <= I < N" in capsys.readouterr().err


def test_worker_commit_interval_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from stridewatch.cli import build_parser

    args = build_parser().parse_args(["worker", "--kafka", "h:9092", "--commit-interval", "0.25"])
    assert args.commit_interval == 0.25
    assert build_parser().parse_args(["worker", "--kafka", "h:9092"]).commit_interval == 1.0
    for bad in ("0", "-1", "soon", "61"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["worker", "--kafka", "h:9092", "--commit-interval", bad])
        assert "0.05 to 60 seconds" in capsys.readouterr().err


def test_worker_names_an_unreachable_kafka(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from stridewatch import cli

    port = free_port()  # nothing listens there
    code = cli.main(["worker", "--kafka", f"127.0.0.1:{port}", "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"Kafka at 127.0.0.1:{port}" in err
    assert "check --kafka" in err
    assert "Traceback" not in err


def _influx_points(influxd: InfluxServer, database: str) -> dict[str, list[dict[str, Any]]]:
    """Every point, per measurement, in the server's order (time, then series)."""
    result = influxd.query("SHOW MEASUREMENTS", database)["results"][0]
    names = [row[0] for row in result["series"][0]["values"]]
    return {name: influxd.points(f'SELECT * FROM "{name}"', database) for name in names}


def test_worker_writes_influxdb_and_an_outage_loses_nothing(
    topics: TansuServer, influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    """InfluxDB is down when the worker starts: its writes fail, the checkpoint is aborted and
    the readings are processed again until InfluxDB is back. Then InfluxDB holds exactly the
    points of the single run (written straight into another database as the reference)."""
    reference_db = f"{influx_db}_reference"
    influxd.create_database(reference_db)
    lines = [line for record in _reference_records(list(RUNS)) for line in encode_point(record)]
    status, text = influxd.write(reference_db, "\n".join(lines))
    assert status == 204, text
    _produce(topics, list(RUNS))
    target = InfluxTarget.build(influxd.url, database=influx_db)
    options = WorkerOptions(bootstrap=topics.bootstrap, state_dir=tmp_path / "state",
                            influx=target, influx_retry_after_s=0.2,
                            producer_extra=TANSU_PRODUCER, consumer_extra=FAST_GROUP)
    restarted = threading.Event()

    def outage_then_written(worker: Worker) -> bool:
        if not restarted.is_set():
            if worker.influx.failed_writes == 0:
                return False  # still waiting for the first failed write
            influxd.start()
            restarted.set()
        return bool(worker.influx.written_lines >= len(lines))

    influxd.kill()
    try:
        worker = _run_in_process(options, sum(len(_readings(a)) for a in RUNS),
                                 outage_then_written)
    finally:
        if not influxd.running:
            influxd.start()
    try:
        assert worker.influx.failed_writes > 0
        assert _influx_points(influxd, influx_db) == _influx_points(influxd, reference_db)
    finally:
        influxd.drop_database(reference_db)


def test_worker_publishes_alerts_and_status_to_mqtt_as_run_does(
    topics: TansuServer, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """``worker --mqtt``: every alert of the single run reaches a dashboard on the athlete's
    alert topic (in order, repeats only of the same ids), and each athlete is ``online``."""
    reference = [(record.athlete, encode_output(record).payload)
                 for record in _reference_records(list(RUNS)) if isinstance(record, Alert)]
    assert reference
    _produce(topics, list(RUNS))
    dashboard = ThreadSubscriber(mosquitto)
    options = WorkerOptions(bootstrap=topics.bootstrap, state_dir=tmp_path / "state",
                            mqtt=MqttTarget.from_url(mosquitto.url, env={}),
                            producer_extra=TANSU_PRODUCER, consumer_extra=FAST_GROUP)

    def alerts() -> list[tuple[str, bytes]]:
        got = []
        for topic, payload, _ in dashboard.messages():
            if topic.endswith("/alert"):
                got.append((topic.split("/")[-2], payload))
        return got

    try:
        _run_in_process(options, sum(len(_readings(a)) for a in RUNS),
                        lambda worker: len(set(alerts())) >= len(set(reference)))
        got = alerts()
        for athlete in RUNS:  # per athlete, in order; athletes interleave freely
            mine = [payload for who, payload in got if who == athlete]
            assert list(dict.fromkeys(mine)) == [p for who, p in reference if who == athlete]
        status = {t for t, p, _ in dashboard.messages() if b"online" in p}
        assert status == {topic_for(athlete, "status") for athlete in RUNS}
    finally:
        dashboard.close()
