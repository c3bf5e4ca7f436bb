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

Manual acknowledgements (``manual_ack=True``, for ``stridewatch bridge``): the source owes the
broker a PUBACK for each reading and :attr:`Received.ack` sends it, once the consumer has put
the reading somewhere safe (Kafka's delivery report). Until then the broker keeps the message
in the session (MQTT 5, clean start off, :data:`SESSION_EXPIRY_S`) and re-sends it after a
crash; at most :data:`RECEIVE_MAXIMUM` are unacknowledged, which bounds what the process holds.
Repeats are not dropped in this mode (each must be acknowledged itself): consumers de-duplicate.

Both reconnect through :class:`ingest.reconnect.Reconnector` (full jitter, reset after a
connect, a stop interrupts the wait) and expose ``link`` (:class:`ingest.reconnect.LinkStatus`).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Final, Self

import aiomqtt

from ingest.background import BackgroundTask
from ingest.reconnect import LinkStatus
from ingest.records import Reading
from outputs.errors import RecordCodecError
from outputs.mqtt import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    CLOSE_TIMEOUT_S,
    DropOldestQueue,
    LinkCallback,
    MqttTarget,
    default_client_id,
    make_client,
    mqtt_reconnector,
    run_until_stopped,
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
RECEIVE_MAXIMUM: Final = 2_000
"""Readings unacknowledged at once with ``manual_ack`` (MQTT 5 Receive Maximum): ~0.7 s of
1,000 athletes, enough to keep Kafka batches full (a delivery report takes ~5-20 ms)."""
SESSION_EXPIRY_S: Final = 24 * 3600
"""How long the broker keeps a ``manual_ack`` source's session (its queued readings) while
the process is away: a day, so a bridge restarted after a night's outage loses nothing (the
broker's ``max_queued_messages`` bounds the backlog)."""


def _no_ack() -> None:
    """Nothing owed: the client acknowledged on receipt."""


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A reading taken from MQTT and its acknowledgement.

    ``ack()`` sends the PUBACK (thread-safe: it may be called from a Kafka delivery callback on
    any thread); a no-op unless the source was built with ``manual_ack``. An ack that arrives
    after the connection it came on was lost is dropped: the broker re-sends the reading on
    the new connection, and that copy gets its own ack.
    """

    reading: Reading
    ack: Callable[[], None]


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
        shared_group: subscribe through ``$share/<group>/`` (several sources share the load;
            Mosquitto hands the messages out round-robin, so one topic's order is lost).
        manual_ack: acknowledge each reading only when :attr:`Received.ack` is called (needs
            ``persistent``; iterate :meth:`deliveries`). See the module docstring.
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        athlete: str | None = None,
        client_id: str | None = None,
        persistent: bool = False,
        shared_group: str | None = None,
        manual_ack: bool = False,
        queue_size: int = SOURCE_QUEUE_SIZE,
        on_link_change: LinkCallback | None = None,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        if persistent and client_id is None:
            raise ValueError("persistent=True needs a fixed client_id (the session's name)")
        if manual_ack and not persistent:
            raise ValueError("manual_ack=True needs persistent=True (the broker keeps what is "
                             "not acknowledged in the session)")
        self.target = target
        self.client_id = client_id or default_client_id("source")
        topic = topic_filter("readings", athlete)
        self.topic = shared_filter(shared_group, topic) if shared_group else topic
        self._persistent = persistent
        self._manual_ack = manual_ack
        # With manual acks the broker sends at most RECEIVE_MAXIMUM unacknowledged: a queue
        # that holds them all never drops one.
        self._queue: DropOldestQueue[Received] = DropOldestQueue(
            max(queue_size, RECEIVE_MAXIMUM) if manual_ack else queue_size)
        self._client: aiomqtt.Client | None = None
        self._stopping = asyncio.Event()
        self._link = mqtt_reconnector(
            f"MQTT source {self.client_id}", target, stop=self._stopping, rng=rng,
            initial_s=backoff_initial_s, max_s=backoff_max_s, on_change=on_link_change,
            log=logger)
        self._recent: collections.deque[bytes] = collections.deque()
        self._recent_set: set[bytes] = set()
        self._runner = BackgroundTask("MqttReadingSource")
        self._closed = False
        self._subscribed = asyncio.Event()
        self.received = 0
        self.bad_messages = 0
        self.duplicates = 0
        self.acked = 0
        self.acks_dropped = 0
        """Acks owed on a connection that was lost since (the broker re-sends those)."""

    @property
    def link(self) -> LinkStatus:
        """The broker link as last seen (connected, ever connected, failures, last error)."""
        return self._link.status

    @property
    def subscriptions(self) -> int:
        """Successful subscribes so far (one per connect)."""
        return self._link.status.connects

    @property
    def dropped(self) -> int:
        """Readings dropped because the consumer fell behind by more than the queue."""
        return self._queue.dropped

    async def __aenter__(self) -> Self:
        self._stopping.clear()
        self._runner.start(self._link.run(self._session), name=f"mqtt-source-{self.client_id}")
        self._closed = False
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closed = True
        self._queue.wake()  # a waiting consumer sees the end
        self._stopping.set()
        await self._runner.stop(grace_s=CLOSE_TIMEOUT_S)

    async def wait_subscribed(self, timeout_s: float, *, count: int = 1) -> None:
        """Wait (bounded) until subscribed ``count`` times in total."""
        async with asyncio.timeout(timeout_s):
            while self.subscriptions < count:
                self._subscribed.clear()
                await self._subscribed.wait()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Reading:
        return (await self._next()).reading

    async def deliveries(self) -> AsyncIterator[Received]:
        """Readings with their acknowledgements (the way to iterate with ``manual_ack``)."""
        while True:
            try:
                yield await self._next()
            except StopAsyncIteration:
                return

    async def _next(self) -> Received:
        while True:
            items = self._queue.take(1)
            if items:
                return items[0]
            if self._closed:
                raise StopAsyncIteration
            await self._queue.wait()

    def _deliver(self, topic: str, payload: object, ack: Callable[[], None] = _no_ack) -> None:
        """Decode one message and enqueue it (synchronous: no await between receive and put)."""
        if not isinstance(payload, bytes):
            payload = str(payload).encode() if isinstance(payload, str) else b""
        if not self._manual_ack and payload in self._recent_set:
            self.duplicates += 1
            return
        try:
            reading = decode_reading(payload)
        except RecordCodecError as exc:
            self.bad_messages += 1
            logger.warning("MQTT source: skipping undecodable message on %s (%d so far): %s",
                           topic, self.bad_messages, exc)
            ack()  # it will never decode: not worth a redelivery
            return
        if not self._manual_ack:
            self._recent.append(payload)
            self._recent_set.add(payload)
            if len(self._recent) > DEDUP_WINDOW:
                self._recent_set.discard(self._recent.popleft())
        self.received += 1
        self._queue.put(Received(reading, ack))

    async def _session(self) -> None:
        if self._manual_ack:
            client = make_client(self.target, client_id=self.client_id,
                                 v5_session=(SESSION_EXPIRY_S, RECEIVE_MAXIMUM))
            client._client.manual_ack_set(True)  # paho: no PUBACK until ack() is called
        else:
            client = make_client(self.target, client_id=self.client_id,
                                 clean_session=not self._persistent)
        async with client:
            self._client = client
            try:
                await client.subscribe(self.topic, qos=1)
                self._link.connected()
                self._subscribed.set()
                logger.info("MQTT source subscribed to %s on %s", self.topic, self.target.url)
                await run_until_stopped(self._stopping, self._receive(client))
            finally:
                self._client = None

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            ack = self._acker(client, message.mid, message.qos) if self._manual_ack else _no_ack
            self._deliver(str(message.topic), message.payload, ack)

    def _acker(self, client: aiomqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        """The PUBACK of message ``mid`` on ``client``, sendable from any thread."""
        loop = asyncio.get_running_loop()

        def on_loop() -> None:  # paho's client is driven by this loop: only touch it here
            if self._client is client:
                client._client.ack(mid, qos)
                self.acked += 1
            else:
                self.acks_dropped += 1

        def ack() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(on_loop)

        return ack


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
        on_link_change: LinkCallback | None = None,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.target = target
        self.client_id = client_id or default_client_id("collect")
        self._queue: DropOldestQueue[OutgoingMessage] = DropOldestQueue(queue_size)
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()
        self._link = mqtt_reconnector(
            f"MQTT collect {self.client_id}", target, stop=self._stopping, rng=rng,
            initial_s=backoff_initial_s, max_s=backoff_max_s, on_change=on_link_change,
            log=logger)
        self._runner = BackgroundTask("MqttReadingPublisher")
        self.published = 0
        self.encode_errors = 0

    @property
    def link(self) -> LinkStatus:
        """The broker link as last seen (connected, ever connected, failures, last error)."""
        return self._link.status

    @property
    def connections(self) -> int:
        return self._link.status.connects

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    async def __aenter__(self) -> Self:
        self._runner.start(self._link.run(self._session), name=f"mqtt-collect-{self.client_id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._runner.running:
            return
        if exc is None and self._link.status.connected:
            await self.flush(CLOSE_TIMEOUT_S)
        self._stopping.set()
        await self._runner.stop(grace_s=CLOSE_TIMEOUT_S)

    def publish_nowait(self, reading: Reading) -> None:
        try:
            message = encode_reading(reading)
        except RecordCodecError as exc:
            self.encode_errors += 1
            logger.warning("MQTT collect: cannot encode %s, skipped: %s",
                           type(reading).__name__, exc)
            return
        self._queue.put(message)
        self._idle.clear()

    async def publish(self, reading: Reading) -> None:
        """Async alias of :meth:`publish_nowait` (returns at once)."""
        self.publish_nowait(reading)

    async def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until every queued reading was acknowledged by the broker."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _session(self) -> None:
        client = make_client(self.target, client_id=self.client_id)
        # A full window is normal here, not the "many pending calls" aiomqtt warns of.
        client.pending_calls_threshold = PUBLISH_WINDOW + 10
        async with client:
            self._link.connected()
            await run_until_stopped(self._stopping, watch_disconnect(client),
                                    self._send(client))

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._queue.wait()
            window = self._queue.take(PUBLISH_WINDOW)
            if not window:
                continue
            try:
                async with asyncio.TaskGroup() as tg:
                    for m in window:
                        tg.create_task(client.publish(m.topic, m.payload, qos=m.qos))
            except BaseException:
                self._queue.requeue(window)  # at-least-once: the source drops repeats
                raise
            self.published += len(window)
            if not len(self._queue):
                self._idle.set()
