"""Readings over MQTT: a remote collector publishes, a processing host consumes.

``stridewatch collect --mqtt URL`` runs :class:`MqttReadingPublisher` next to the sensors; the
processing host reads the same Readings back with :class:`MqttReadingSource` (an async
iterator, like the BLE collector). Topic ``stridewatch/v1/<athlete>/readings``, payload
:func:`ingest.records.record_to_json` (see :mod:`outputs.mqtt_codec`).

QoS choice: readings are published with **QoS 1**. They are the primary data of a remote
athlete (a lost HR frame is a lost RR interval, a hole in HRV), unlike the derived telemetry
the processing host publishes at QoS 0. QoS 1 is at-least-once: after a reconnect the
publisher re-sends what the broker had not acknowledged, so :class:`MqttReadingSource`
drops byte-identical repeats of recently seen payloads (``duplicates``).

Layering note: the codec and connection helpers live in :mod:`outputs`; this
adapter imports them (pure modules plus aiomqtt), which is the one place ``ingest`` reaches
into ``processing``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from types import TracebackType
from typing import Final, Self

import aiomqtt

from ingest.background import BackgroundTask
from ingest.records import Reading
from outputs.errors import RecordCodecError
from outputs.mqtt import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    CLOSE_TIMEOUT_S,
    DropOldestQueue,
    MqttTarget,
    backoff_delay_s,
    default_client_id,
    make_client,
    watch_disconnect,
)
from outputs.mqtt_codec import (
    OutgoingMessage,
    decode_reading,
    encode_reading,
    shared_filter,
    topic_filter,
)

logger = logging.getLogger(__name__)

SOURCE_QUEUE_SIZE: Final = 10_000
"""Readings buffered for a slow consumer (~30 min of one athlete's strap and footpod)."""
PUBLISH_QUEUE_SIZE: Final = 10_000
"""Readings kept while the broker is away (same order of time)."""
PUBLISH_WINDOW: Final = 20
"""QoS 1 publishes in flight at once (paho's default max_inflight_messages)."""
DEDUP_WINDOW: Final = 4096
"""Recent payloads remembered to drop QoS 1 redeliveries (far more than one window)."""


class MqttReadingSource:
    """Async iterator of Readings received on ``stridewatch/v1/<athlete|+>/readings``.

    A bounded queue decouples the network from the consumer: when full, the oldest reading is
    dropped and counted (``dropped``). Undecodable messages are counted (``bad_messages``),
    logged and skipped. Reconnects (with backoff) and resubscribes after broker restarts.

    Args:
        target: the broker.
        athlete: only this athlete (all athletes when ``None``).
        client_id: MQTT client id; give a fixed one with ``persistent=True`` so the broker
            queues readings while this process is away.
        shared_group: subscribe through ``$share/<group>/`` (several sources share the load).
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        athlete: str | None = None,
        client_id: str | None = None,
        persistent: bool = False,
        shared_group: str | None = None,
        queue_size: int = SOURCE_QUEUE_SIZE,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        if persistent and client_id is None:
            raise ValueError("persistent=True needs a fixed client_id (the session's name)")
        self.target = target
        self.client_id = client_id or default_client_id("source")
        topic = topic_filter("readings", athlete)
        self.topic = shared_filter(shared_group, topic) if shared_group else topic
        self._persistent = persistent
        self._queue: DropOldestQueue[Reading] = DropOldestQueue(queue_size)
        self._rng = rng or random.Random()
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._recent: collections.deque[bytes] = collections.deque()
        self._recent_set: set[bytes] = set()
        self._runner = BackgroundTask("MqttReadingSource")
        self._closed = False
        self._subscribed = asyncio.Event()
        self.received = 0
        self.bad_messages = 0
        self.duplicates = 0
        self.subscriptions = 0

    @property
    def dropped(self) -> int:
        """Readings dropped because the consumer fell behind by more than the queue."""
        return self._queue.dropped

    async def __aenter__(self) -> Self:
        self._runner.start(self._run(), name=f"mqtt-source-{self.client_id}")
        self._closed = False
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closed = True
        self._queue.wake()  # a waiting consumer sees the end
        await self._runner.stop()

    async def wait_subscribed(self, timeout_s: float, *, count: int = 1) -> None:
        """Wait (bounded) until subscribed ``count`` times in total."""
        async with asyncio.timeout(timeout_s):
            while self.subscriptions < count:
                self._subscribed.clear()
                await self._subscribed.wait()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Reading:
        while True:
            items = self._queue.take(1)
            if items:
                return items[0]
            if self._closed:
                raise StopAsyncIteration
            await self._queue.wait()

    def _deliver(self, topic: str, payload: object) -> None:
        """Decode one message and enqueue it (synchronous: no await between receive and put)."""
        if not isinstance(payload, bytes):
            payload = str(payload).encode() if isinstance(payload, str) else b""
        if payload in self._recent_set:
            self.duplicates += 1
            return
        try:
            reading = decode_reading(payload)
        except RecordCodecError as exc:
            self.bad_messages += 1
            logger.warning("MQTT source: skipping undecodable message on %s (%d so far): %s",
                           topic, self.bad_messages, exc)
            return
        self._recent.append(payload)
        self._recent_set.add(payload)
        if len(self._recent) > DEDUP_WINDOW:
            self._recent_set.discard(self._recent.popleft())
        self.received += 1
        self._queue.put(reading)

    async def _run(self) -> None:
        attempt = 0
        while True:
            before = self.subscriptions
            try:
                client = make_client(self.target, client_id=self.client_id,
                                     clean_session=not self._persistent)
                async with client:
                    await client.subscribe(self.topic, qos=1)
                    self.subscriptions += 1
                    self._subscribed.set()
                    logger.info("MQTT source subscribed to %s on %s", self.topic,
                                self.target.url)
                    async for message in client.messages:
                        self._deliver(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                logger.warning("MQTT source: connection to %s lost or failed: %s",
                               self.target.url, exc)
            attempt = 0 if self.subscriptions > before else attempt + 1
            await asyncio.sleep(backoff_delay_s(attempt, self._rng, initial_s=self._backoff[0],
                                                max_s=self._backoff[1]))


class MqttReadingPublisher:
    """Publishes Readings (QoS 1) for ``stridewatch collect --mqtt URL``; async context manager.

    :meth:`publish` never blocks: readings wait in a bounded queue that drops the oldest when
    full (``dropped``), so a broker outage cannot stall the BLE collector. Up to
    :data:`PUBLISH_WINDOW` publishes are in flight; a window interrupted by an outage is sent
    again after reconnecting (the source drops the repeats).
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        client_id: str | None = None,
        queue_size: int = PUBLISH_QUEUE_SIZE,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.target = target
        self.client_id = client_id or default_client_id("collect")
        self._queue: DropOldestQueue[OutgoingMessage] = DropOldestQueue(queue_size)
        self._rng = rng or random.Random()
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._runner = BackgroundTask("MqttReadingPublisher")
        self._in_flight = 0
        self.published = 0
        self.encode_errors = 0
        self.connections = 0

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    async def __aenter__(self) -> Self:
        self._runner.start(self._run(), name=f"mqtt-collect-{self.client_id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._runner.running:
            return
        if exc is None:
            await self.flush(CLOSE_TIMEOUT_S)
        await self._runner.stop()

    def publish_nowait(self, reading: Reading) -> None:
        try:
            message = encode_reading(reading)
        except RecordCodecError as exc:
            self.encode_errors += 1
            logger.warning("MQTT collect: cannot encode %s, skipped: %s",
                           type(reading).__name__, exc)
            return
        self._queue.put(message)

    async def publish(self, reading: Reading) -> None:
        """Async alias of :meth:`publish_nowait` (returns at once)."""
        self.publish_nowait(reading)

    async def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until every queued reading was acknowledged by the broker."""
        try:
            async with asyncio.timeout(timeout_s):
                while len(self._queue) or self._in_flight:  # noqa: ASYNC110 (counters, no event)
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        attempt = 0
        while True:
            connected = False
            try:
                client = make_client(self.target, client_id=self.client_id)
                # A full window is normal here, not the "many pending calls" aiomqtt warns of.
                client.pending_calls_threshold = PUBLISH_WINDOW + 10
                async with client:
                    connected = True
                    self.connections += 1
                    logger.info("MQTT collect: connected to %s", self.target.url)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(watch_disconnect(client), name="mqtt-collect-watch")
                        tg.create_task(self._send(client), name="mqtt-collect-send")
            except* aiomqtt.MqttError as group:
                logger.warning("MQTT collect: connection to %s lost or failed: %s",
                               self.target.url, group.exceptions[0])
            attempt = 0 if connected else attempt + 1
            await asyncio.sleep(backoff_delay_s(attempt, self._rng, initial_s=self._backoff[0],
                                                max_s=self._backoff[1]))

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._queue.wait()
            window = self._queue.take(PUBLISH_WINDOW)
            self._in_flight = len(window)
            try:
                async with asyncio.TaskGroup() as tg:
                    for m in window:
                        tg.create_task(client.publish(m.topic, m.payload, qos=m.qos))
            except BaseException:
                self._queue.requeue(window)  # at-least-once: the source drops repeats
                raise
            finally:
                self._in_flight = 0
            self.published += len(window)
