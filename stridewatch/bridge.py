"""The bridge: readings from remote collectors over MQTT into Kafka, keyed by athlete
(issue #13).

``stridewatch bridge --mqtt URL --kafka BOOTSTRAP`` subscribes to
``$share/stridewatch-bridge/stridewatch/v1/+/readings`` (a shared subscription: run several
bridges and the broker splits the messages between them) and produces every reading to
``stridewatch.readings`` with the athlete as key, so Kafka keeps each athlete's readings in one
partition in order. The value is the reading's wire payload
(:func:`ingest.records.record_to_json`), unchanged in meaning from MQTT.

Stateless: no store, no processing. Order: one athlete's readings come from one collector on
one MQTT topic (the broker keeps their order for one subscriber), and the producer is
idempotent (``enable.idempotence``), so retries neither reorder nor repeat them. QoS 1
redeliveries are dropped by :class:`outputs.mqtt_source.MqttReadingSource`.

Backpressure, not unbounded buffering: when Kafka is slower than the readings arrive, the
producer's queue (:data:`PRODUCER_QUEUE`) fills and the bridge waits for the broker to
acknowledge before reading more; readings then wait in the MQTT source's bounded queue (10,000,
oldest dropped and counted beyond it) and in the broker. On stop, everything taken from MQTT is
flushed to Kafka (bounded by :data:`FLUSH_TIMEOUT_S`) and what could not be is reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ingest.records import Reading
from outputs.mqtt import MqttTarget
from outputs.mqtt_codec import encode_reading
from outputs.mqtt_source import MqttReadingSource
from stridewatch.errors import RuntimeFailureError
from stridewatch.worker import PARTITIONS, READINGS_TOPIC, RETENTION_MS

logger = logging.getLogger(__name__)

SHARED_GROUP: Final = "stridewatch-bridge"
PRODUCER_QUEUE: Final = 100_000
"""Readings the Kafka producer holds unacknowledged before the bridge waits (~30 s of 1,000
athletes; a few MB)."""
FLUSH_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 10.0


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
    waits: int = 0
    """Times the producer's queue was full and the bridge waited for the broker."""


class KafkaReadingProducer:
    """Produces readings to ``stridewatch.readings`` keyed by athlete, with backpressure."""

    def __init__(self, bootstrap: str, *, extra: dict[str, Any] | None = None,
                 queue_size: int = PRODUCER_QUEUE) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.counters = BridgeCounters()
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,  # retries keep order and never duplicate
            "linger.ms": 5,
            "queue.buffering.max.messages": queue_size,
            **(extra or {}),
        })

    def _on_delivery(self, error: Any, _message: Any) -> None:
        if error is None:
            self.counters.delivered += 1
            return
        self.counters.failed += 1
        logger.error("a reading could not be written to Kafka at %s: %s", self.bootstrap, error)

    async def send(self, reading: Reading) -> None:
        """Queue one reading; waits (for broker acknowledgements) while the queue is full."""
        payload = encode_reading(reading).payload
        key = reading.athlete.encode()
        while True:
            try:
                self._producer.produce(READINGS_TOPIC, key=key, value=payload,
                                       on_delivery=self._on_delivery)
                break
            except BufferError:
                self.counters.waits += 1
                await asyncio.to_thread(self._producer.poll, 0.1)  # acknowledgements free room
        self.counters.forwarded += 1
        self._producer.poll(0)

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> int:
        """Wait (bounded) until every queued reading is acknowledged; how many are not."""
        left: int = await asyncio.to_thread(self._producer.flush, timeout_s)
        return left


async def run_bridge(mqtt: MqttTarget, bootstrap: str, *, stop: asyncio.Event,
                     producer_extra: dict[str, Any] | None = None,
                     client_id: str | None = None, queue_size: int = PRODUCER_QUEUE,
                     subscribed: asyncio.Event | None = None) -> BridgeCounters:
    """Forward readings from MQTT to Kafka until ``stop`` is set; then flush.

    ``subscribed`` is set once the MQTT subscription is in place (readings published from
    then on are forwarded).

    Raises:
        RuntimeFailureError: Kafka or the MQTT broker unreachable at start, or readings left
            unacknowledged by Kafka at the end.
    """
    await asyncio.to_thread(ensure_topic, bootstrap, extra=producer_extra)
    producer = KafkaReadingProducer(bootstrap, extra=producer_extra, queue_size=queue_size)
    source = MqttReadingSource(mqtt, client_id=client_id, shared_group=SHARED_GROUP,
                               persistent=client_id is not None)

    async def forward() -> None:
        async for reading in source:
            await producer.send(reading)

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
        await stop.wait()
        forwarding.cancel()
    left = await producer.flush()
    counters = producer.counters
    logger.info("bridge: %d reading(s) forwarded, %d acknowledged, %d failed, %d dropped by "
                "the MQTT queue", counters.forwarded, counters.delivered, counters.failed,
                source.dropped)
    if left or counters.failed:
        raise RuntimeFailureError(
            f"{left + counters.failed} reading(s) were not acknowledged by Kafka at {bootstrap}"
            " (see the log above); the collectors' MQTT retries do not cover them")
    return counters
