"""The bridge: readings from remote collectors over MQTT into Kafka, keyed by athlete
(issue #13).

``stridewatch bridge --mqtt URL --kafka BOOTSTRAP [--partition I/N]`` subscribes to
``stridewatch/v1/+/readings`` and produces every reading of its athletes to
``stridewatch.readings`` with the athlete as key, so Kafka keeps each athlete's readings in one
partition. The value is the reading's wire payload (:func:`ingest.records.record_to_json`).

**Nothing lost, even when the bridge is killed.** The MQTT session is persistent (MQTT 5, a
fixed client id, kept a day) and a reading is acknowledged to the broker only when Kafka has
acknowledged it (its delivery report), so a bridge that dies owes the broker the readings it
had not yet put in Kafka, and the broker sends them again when the bridge (the same
``--partition``, hence the same client id) comes back; meanwhile the broker queues the
readings that arrive. A reading delivered to Kafka whose acknowledgement was lost in the crash
is produced twice: the repeat is byte-identical, and the workers drop it
(:class:`processing.snapshot.JournaledProcessor`).

**In order per athlete.** One athlete's readings come from one collector on one topic, and the
broker keeps a topic's order for one subscriber; the producer is idempotent, so its retries
neither reorder nor repeat. Several bridges share the load by athlete, not by message:
``--partition I/N`` forwards the athletes whose CRC-32 modulo N is I (the same on every host)
and acknowledges the others at once. A shared subscription (``$share/...``) would split one
athlete's readings between bridges, and their order in Kafka would be a race: Mosquitto hands
a shared subscription's messages out round-robin, message by message (seen on Mosquitto 2.0).

**Backpressure, not unbounded buffering.** At most
:data:`outputs.mqtt_source.RECEIVE_MAXIMUM` readings are unacknowledged, so when Kafka is slow
the broker stops sending and keeps the rest; the producer's queue (:data:`PRODUCER_QUEUE`) is
a second bound. On stop, what was taken from MQTT is flushed to Kafka (bounded by
:data:`FLUSH_TIMEOUT_S`) and acknowledged before the connection closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ingest.records import Reading
from outputs.mqtt import MqttTarget
from outputs.mqtt_codec import encode_reading
from outputs.mqtt_source import MqttReadingSource, Received
from stridewatch.errors import RuntimeFailureError
from stridewatch.worker import PARTITIONS, READINGS_TOPIC, RETENTION_MS

logger = logging.getLogger(__name__)

PRODUCER_QUEUE: Final = 100_000
"""Readings the Kafka producer holds unacknowledged before the bridge waits (~30 s of 1,000
athletes; a few MB)."""
FLUSH_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 10.0
REPORT_POLL_S: Final = 0.1
"""Longest wait for a delivery report when idle (the acknowledgements follow it)."""


def owner(athlete: str, bridges: int) -> int:
    """The bridge (``0 .. bridges-1``) that forwards ``athlete``: CRC-32 of its UTF-8 name
    modulo ``bridges``, the same in every process (unlike ``hash``, which is salted)."""
    return zlib.crc32(athlete.encode()) % bridges


def bridge_client_id(partition: tuple[int, int]) -> str:
    """The MQTT client id of bridge ``I`` of ``N``: fixed, so a restarted bridge resumes its
    session (and the readings the broker kept for it); unique per partition."""
    index, count = partition
    return f"stridewatch-bridge-{index}-of-{count}"


def connection_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The librdkafka settings of ``options`` that say how to connect (``security.*``,
    ``sasl.*``, ``ssl.*``), for clients other than the one they were given for."""
    return {key: value for key, value in options.items()
            if key.startswith(("security.", "sasl.", "ssl."))}


def ensure_topic(bootstrap: str, name: str = READINGS_TOPIC, *,
                 partitions: int = PARTITIONS, timeout_s: float = CONNECT_TIMEOUT_S,
                 extra: Mapping[str, Any] | None = None) -> None:
    """Create ``name`` (with a retention, which some brokers need) unless it exists.
    ``extra``: how to connect (see :func:`connection_options`).

    Raises:
        RuntimeFailureError: the broker cannot be reached or refused to create the topic.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **connection_options(extra or {}),
                         "logger": logger})  # librdkafka's retries: to the log, not stderr
    try:
        if name in admin.list_topics(timeout=timeout_s).topics:
            return
        futures = admin.create_topics(
            [NewTopic(name, partitions, 1, config={"retention.ms": str(RETENTION_MS)})],
            request_timeout=timeout_s)
        futures[name].result(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        cause = error.str() if isinstance(error, KafkaError) else str(exc)
        raise RuntimeFailureError(
            f"Kafka at {bootstrap}: {cause}; check --kafka (host:port of a broker) and "
            "that the broker is running") from None


@dataclass
class BridgeCounters:
    """What the bridge did."""

    forwarded: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    """Readings of athletes another bridge forwards (``--partition``)."""
    waits: int = 0
    """Times the producer's queue was full and the bridge waited for the broker."""


class KafkaReadingProducer:
    """Produces readings to ``stridewatch.readings`` keyed by athlete, with backpressure."""

    def __init__(self, bootstrap: str, *, extra: dict[str, Any] | None = None,
                 queue_size: int = PRODUCER_QUEUE) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.counters = BridgeCounters()
        self._waiting = False
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,  # retries keep order and never duplicate
            "linger.ms": 5,
            "queue.buffering.max.messages": queue_size,
            **(extra or {}),
        })

    def _on_delivery(self, delivered: Callable[[], None], error: Any, _message: Any) -> None:
        if error is None:
            self.counters.delivered += 1
            delivered()
            return
        self.counters.failed += 1  # not acknowledged to MQTT: the broker sends it again
        logger.error("a reading could not be written to Kafka at %s: %s", self.bootstrap, error)

    async def send(self, reading: Reading, delivered: Callable[[], None] = lambda: None) -> None:
        """Queue one reading; waits (for broker acknowledgements) while the queue is full.
        ``delivered`` is called (on any thread) once Kafka has acknowledged the reading."""
        payload = encode_reading(reading).payload
        key = reading.athlete.encode()
        on_delivery = functools.partial(self._on_delivery, delivered)
        while True:
            try:
                self._producer.produce(READINGS_TOPIC, key=key, value=payload,
                                       on_delivery=on_delivery)
                break
            except BufferError:
                if not self._waiting:
                    logger.warning("Kafka at %s is slower than the readings: waiting for its "
                                   "acknowledgements (%d in flight); the MQTT broker keeps "
                                   "the rest", self.bootstrap, len(self._producer))
                self._waiting = True
                self.counters.waits += 1
                await asyncio.to_thread(self._producer.poll, 0.1)  # acknowledgements free room
        if self._waiting:
            self._waiting = False
            logger.info("Kafka at %s takes readings again", self.bootstrap)
        self.counters.forwarded += 1
        self._producer.poll(0)

    async def serve_reports(self) -> None:
        """Deliver Kafka's reports (and so the MQTT acknowledgements) while no reading is
        being sent; runs until cancelled."""
        while True:
            await asyncio.to_thread(self._producer.poll, REPORT_POLL_S)

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> int:
        """Wait (bounded) until every queued reading is acknowledged; how many are not."""
        left: int = await asyncio.to_thread(self._producer.flush, timeout_s)
        return left


async def run_bridge(mqtt: MqttTarget, bootstrap: str, *, stop: asyncio.Event,
                     partition: tuple[int, int] = (0, 1),
                     producer_extra: dict[str, Any] | None = None,
                     client_id: str | None = None, queue_size: int = PRODUCER_QUEUE,
                     subscribed: asyncio.Event | None = None) -> BridgeCounters:
    """Forward the readings of bridge ``partition`` (``(I, N)``) from MQTT to Kafka until
    ``stop`` is set; then flush and acknowledge what was forwarded.

    ``client_id`` defaults to :func:`bridge_client_id`. ``subscribed`` is set once the MQTT
    subscription is in place (readings published from then on are forwarded).

    Raises:
        RuntimeFailureError: Kafka or the MQTT broker unreachable at start, or readings left
            unacknowledged by Kafka at the end (the broker keeps those for the next start).
    """
    index, count = partition
    if not 0 <= index < count:
        raise ValueError(f"partition {index}/{count}: I must be 0 .. N-1")
    await asyncio.to_thread(ensure_topic, bootstrap, extra=producer_extra)
    producer = KafkaReadingProducer(bootstrap, extra=producer_extra, queue_size=queue_size)
    source = MqttReadingSource(mqtt, client_id=client_id or bridge_client_id(partition),
                               persistent=True, manual_ack=True)
    counters = producer.counters

    async def forward() -> None:
        item: Received
        async for item in source.deliveries():
            if count > 1 and owner(item.reading.athlete, count) != index:
                counters.skipped += 1
                item.ack()
                continue
            await producer.send(item.reading, item.ack)

    async with source, asyncio.TaskGroup() as tasks:
        try:
            await source.wait_subscribed(CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeFailureError(
                f"MQTT broker {mqtt.url}: not subscribed within {CONNECT_TIMEOUT_S:.0f} s "
                f"({source.link.last_error or 'no answer'}); check --mqtt and that the "
                "broker is running") from None
        if subscribed is not None:
            subscribed.set()
        forwarding = tasks.create_task(forward(), name="bridge-forward")
        reports = tasks.create_task(producer.serve_reports(), name="bridge-reports")
        await stop.wait()
        forwarding.cancel()
        reports.cancel()
        # Flushed while still connected, so the acknowledgements reach the broker.
        left = await producer.flush()
    logger.info("bridge %d/%d: %d reading(s) forwarded, %d acknowledged by Kafka, %d failed, "
                "%d of other bridges' athletes; %d MQTT acknowledgement(s) sent",
                index, count, counters.forwarded, counters.delivered, counters.failed,
                counters.skipped, source.acked)
    if left or counters.failed:
        raise RuntimeFailureError(
            f"{left + counters.failed} reading(s) were not acknowledged by Kafka at {bootstrap}"
            " (see the log above); the MQTT broker keeps them for this bridge's next start")
    return counters
