"""MQTT output (aiomqtt 2.x): :class:`MqttPublisher` and the shared-subscription :class:`MqttSink`.

Topics and payloads are in :mod:`outputs.mqtt_codec`.

Publisher policy:

* ``status`` is retained: ``online`` after every connect, ``offline`` on a clean close, and a
  Last Will ``offline`` (retained, QoS 1) that the broker publishes when the process dies or
  the link is lost.
* Telemetry (metrics, rr, hrv) is QoS 0, not retained, and goes through a bounded queue that
  **drops the oldest** when full (``dropped_telemetry``): fresh samples are worth more than
  stale ones, and :meth:`MqttPublisher.publish` must never block the pipeline. A batch that
  fails because the broker went away is counted as dropped too (QoS 0 is lossy by contract).
* Alerts are QoS 1, not retained, and **never dropped**: they are taken from an
  :class:`AlertOutbox` (the session store's durable outbox, or an in-memory one) and marked
  delivered only after the broker acknowledged the publish. A publish interrupted by a broker
  outage is repeated after reconnecting, so a consumer may see an alert twice: alerts carry an
  ``id`` for de-duplication (at-least-once).
* Reconnect with capped exponential backoff and full jitter.

Throughput: aiomqtt's ``publish`` awaits each message (an event-loop round trip per message,
~3k msgs/s). The telemetry sender therefore queues a batch of QoS 0 messages in paho's
outgoing buffer (through aiomqtt's underlying paho client, ``Client._client``) and awaits only
the last one; paho writes packets in order, so when the last is written all are
(``benchmarks/bench_mqtt.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import random
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Final, Generic, Protocol, Self, TypeVar

import aiomqtt
import paho.mqtt.client as paho

from ingest.background import BackgroundTask
from outputs.errors import RecordCodecError
from outputs.mqtt_codec import (
    TOPIC_KINDS,
    OutgoingMessage,
    SinkRecord,
    TopicKind,
    decode_message,
    encode_alert,
    encode_output,
    encode_status,
    ha_discovery_messages,
    shared_filter,
    topic_filter,
)
from processing.records import Alert, ProcessingOutput

logger = logging.getLogger(__name__)

OUTPUT_NAME: Final = "mqtt"
"""Name of this output in the store's outbox (``store.pending(OUTPUT_NAME, limit)``)."""

ENV_USER: Final = "STRIDEWATCH_MQTT_USER"
ENV_PASSWORD: Final = "STRIDEWATCH_MQTT_PASSWORD"

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883

KEEPALIVE_S: Final = 15
"""MQTT keepalive: a half-open TCP link is noticed within ~1.5x this (broker and client)."""
OPERATION_TIMEOUT_S: Final = 10.0
"""Bound on connect, subscribe and QoS 1 acknowledgements (loopback answers in < 1 ms)."""
BACKOFF_INITIAL_S: Final = 0.5
"""First reconnect delay: a restarting broker is usually back within a second."""
BACKOFF_MAX_S: Final = 30.0
"""Cap: a broker that is down for long is still retried twice a minute."""
TELEMETRY_QUEUE_SIZE: Final = 1000
"""Telemetry kept while the broker is away: ~3 min of one athlete's 1 Hz groups + RR."""
TELEMETRY_BATCH: Final = 500
"""QoS 0 messages handed to paho per await (see the module docstring)."""
ALERT_BATCH: Final = 50
ALERT_KINDS: Final = ("alert",)
"""Record kinds this output takes from the store's outbox (telemetry goes through publish())."""
OUTBOX_POLL_S: Final = 1.0
"""How often the alert sender looks at an external outbox (it is also woken by publish())."""
CLOSE_TIMEOUT_S: Final = 3.0
"""Bound on flushing and saying ``offline`` when a publisher or sink is closed."""


def backoff_delay_s(attempt: int, rng: random.Random, *, initial_s: float = BACKOFF_INITIAL_S,
                    max_s: float = BACKOFF_MAX_S) -> float:
    """Full jitter: uniform in [0, min(max_s, initial_s * 2**attempt)] (aiomqtt's scheme).

    >>> rng = random.Random(1)
    >>> all(0 <= backoff_delay_s(a, rng) <= 30 for a in range(100))
    True
    """
    return rng.uniform(0.0, min(max_s, initial_s * 2.0 ** min(attempt, 30)))


# --- connection settings ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MqttTarget:
    """Where the broker is and how to log in.

    Credentials come from the environment (:data:`ENV_USER`, :data:`ENV_PASSWORD`), never from
    the URL, so they do not show up in process lists or shell history.
    """

    host: str
    port: int = DEFAULT_PORT
    tls: bool = False
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("MQTT host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"MQTT port must be 1..65535, got {self.port}")
        if self.password is not None and self.username is None:
            raise ValueError(f"{ENV_PASSWORD} is set but {ENV_USER} is not")

    @classmethod
    def from_url(cls, url: str, *, env: Mapping[str, str] | None = None) -> MqttTarget:
        """``mqtt://HOST[:PORT]`` (plain, port 1883) or ``mqtts://HOST[:PORT]`` (TLS, 8883)."""
        expected = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
        environ = os.environ if env is None else env
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad MQTT URL {url!r}: {expected} ({exc})") from exc
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"bad MQTT URL {url!r}: {expected}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                f"bad MQTT URL {url!r}: {expected}; put credentials in {ENV_USER} and "
                f"{ENV_PASSWORD}, not in the URL"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bad MQTT URL {url!r}: {expected} (no path or query)")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            tls=tls,
            username=environ.get(ENV_USER) or None,
            password=environ.get(ENV_PASSWORD) or None,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def make_client(target: MqttTarget, *, client_id: str, will: aiomqtt.Will | None = None,
                clean_session: bool | None = None) -> aiomqtt.Client:
    """An aiomqtt client for ``target`` with stridewatch's timeouts."""
    return aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        identifier=client_id,
        will=will,
        clean_session=clean_session,
        keepalive=KEEPALIVE_S,
        timeout=OPERATION_TIMEOUT_S,
        tls_params=aiomqtt.TLSParameters() if target.tls else None,
    )


def default_client_id(role: str) -> str:
    """A unique client id: two clients with one id keep disconnecting each other."""
    return f"stridewatch-{role}-{os.getpid()}-{secrets.token_hex(3)}"


async def watch_disconnect(client: aiomqtt.Client) -> None:
    """Return… never: raise ``MqttError`` when the connection is lost.

    For clients that do not subscribe: aiomqtt's message iterator raises when disconnected.
    """
    async for message in client.messages:
        logger.debug("unexpected message on %s", message.topic)
    raise aiomqtt.MqttError("message iterator ended")  # pragma: no cover


async def publish_batch(client: aiomqtt.Client, batch: Sequence[OutgoingMessage]) -> None:
    """Publish in order; QoS 0 messages are buffered in paho and only the last is awaited."""
    inner: paho.Client = client._client  # aiomqtt 2.x's paho client (see module docstring)
    last = len(batch) - 1
    for i, message in enumerate(batch):
        if message.qos == 0 and i < last:
            info = inner.publish(message.topic, message.payload, 0, message.retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        else:
            await client.publish(message.topic, message.payload, qos=message.qos,
                                 retain=message.retain)


T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A bounded FIFO that drops the oldest item when full, counting drops (``dropped``)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be >= 1")
        self.maxsize = maxsize
        self.dropped = 0
        self._items: collections.deque[T] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` oldest items (removed)."""
        n = min(limit, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    def requeue(self, items: Sequence[T]) -> None:
        """Put items taken but not sent back in front; trims the oldest beyond capacity."""
        self._items.extendleft(reversed(items))
        while len(self._items) > self.maxsize:
            self._items.popleft()
            self.dropped += 1
        if self._items:
            self._ready.set()

    def wake(self) -> None:
        """Make a pending :meth:`wait` return (for closing)."""
        self._ready.set()

    async def wait(self) -> None:
        """Wait until the queue is not empty or :meth:`wake` is called (callers re-check)."""
        if not self._items:
            self._ready.clear()
            await self._ready.wait()


# --- alert outbox -------------------------------------------------------------------------


class OutboxEntry(Protocol):
    """One outbox row (the store's ``OutboxItem(seq, session_id, record)``)."""

    @property
    def seq(self) -> int: ...

    @property
    def record(self) -> object: ...


class AlertOutbox(Protocol):
    """What the publisher needs from the store: pending rows in order, and acknowledgement.

    :class:`outputs.store.SessionStore` has this shape: ``pending`` with
    ``kinds=("alert",)`` returns only alerts; rows of other kinds count as delivered once a
    later ``seq`` is marked.
    """

    def pending(self, output: str, limit: int, *, kinds: Collection[str] | None = None
                ) -> Sequence[OutboxEntry]: ...

    def mark_delivered(self, output: str, up_to_seq: int) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryOutboxItem:
    seq: int
    session_id: str
    record: Alert


class MemoryAlertOutbox:
    """In-memory :class:`AlertOutbox` (the default when there is no session store).

    Holds alerts until delivered; not bounded by count (alerts are rare: a few per run).
    """

    def __init__(self) -> None:
        self._items: collections.deque[MemoryOutboxItem] = collections.deque()
        self._seq = 0

    def add(self, alert: Alert) -> None:
        self._seq += 1
        self._items.append(MemoryOutboxItem(self._seq, "", alert))

    def pending(self, output: str, limit: int, *, kinds: Collection[str] | None = None
                ) -> list[MemoryOutboxItem]:
        return list(self._items)[:limit]

    def mark_delivered(self, output: str, up_to_seq: int) -> None:
        while self._items and self._items[0].seq <= up_to_seq:
            self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


class _CloseRequestedError(Exception):
    """Raised inside a connection's task group to end it cleanly (close was requested)."""


# --- publisher ----------------------------------------------------------------------------


class MqttPublisher:
    """Publishes one athlete's processing outputs; an async context manager.

    Args:
        target: the broker.
        athlete: whose ``status`` topic this connection owns (its Last Will).
        client_id: MQTT client id (unique per process by default).
        queue_size: telemetry queue bound (drop oldest when full).
        alert_outbox: where alerts come from (the session store); ``None`` keeps alerts
            passed to :meth:`publish` in a :class:`MemoryAlertOutbox`. With an outbox,
            :meth:`publish` of an Alert only wakes the sender: the store is the source.
        ha_discovery: publish Home Assistant discovery configs (retained) on each connect.
        rng: jitter source (seed it in tests).
        backoff_initial_s, backoff_max_s: reconnect backoff bounds.
        outbox_poll_s: how often an external outbox is polled.
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        athlete: str,
        client_id: str | None = None,
        queue_size: int = TELEMETRY_QUEUE_SIZE,
        alert_outbox: AlertOutbox | None = None,
        ha_discovery: bool = False,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        outbox_poll_s: float = OUTBOX_POLL_S,
    ) -> None:
        self.target = target
        self.athlete = athlete
        self.client_id = client_id or default_client_id("pub")
        self._status_online = encode_status(athlete, online=True)
        self._status_offline = encode_status(athlete, online=False)
        self._telemetry: DropOldestQueue[OutgoingMessage] = DropOldestQueue(queue_size)
        self._memory_outbox = MemoryAlertOutbox() if alert_outbox is None else None
        self._outbox: AlertOutbox = alert_outbox or self._memory_outbox  # type: ignore[assignment]
        self._ha_discovery = ha_discovery
        self._rng = rng or random.Random()
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._outbox_poll_s = outbox_poll_s
        self._alerts_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._runner = BackgroundTask("MqttPublisher")
        self._in_flight = 0
        self.published_telemetry = 0
        self.published_alerts = 0
        self.encode_errors = 0
        self.connections = 0
        """Successful connects so far (a reconnect increments it)."""

    @property
    def dropped_telemetry(self) -> int:
        """Telemetry messages dropped (queue full, or lost in a broker outage)."""
        return self._telemetry.dropped

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> Self:
        self._runner.start(self._run(), name=f"mqtt-publisher-{self.athlete}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._runner.running:
            return
        if self.connected and exc is None:
            await self.flush(CLOSE_TIMEOUT_S)
        self._stopping.set()
        await self._runner.stop(grace_s=CLOSE_TIMEOUT_S)

    def publish_nowait(self, record: ProcessingOutput) -> None:
        """Enqueue a record; never blocks (telemetry drops the oldest when full)."""
        if isinstance(record, Alert):
            if self._memory_outbox is not None:
                self._memory_outbox.add(record)
            self._alerts_wake.set()
            return
        try:
            message = encode_output(record)
        except RecordCodecError as exc:
            self.encode_errors += 1
            logger.warning("MQTT: cannot encode %s, skipped: %s", type(record).__name__, exc)
            return
        self._telemetry.put(message)

    async def publish(self, record: ProcessingOutput) -> None:
        """Async alias of :meth:`publish_nowait` (returns at once)."""
        self.publish_nowait(record)

    async def wait_connected(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    def _alerts_pending(self) -> bool:
        return bool(self._outbox.pending(OUTPUT_NAME, 1, kinds=ALERT_KINDS))

    async def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until queued telemetry is written and pending alerts acknowledged."""
        try:
            async with asyncio.timeout(timeout_s):
                while len(self._telemetry) or self._in_flight or self._alerts_pending():
                    self._alerts_wake.set()
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                await self._session()
            except* aiomqtt.MqttError as group:
                exc = group.exceptions[0]
                if self.connections:
                    logger.warning("MQTT publisher %s: connection to %s lost or failed: %s",
                                   self.client_id, self.target.url, exc)
            finally:
                was_connected = self._connected.is_set()
                self._connected.clear()
            if self._stopping.is_set():
                return
            attempt = 0 if was_connected else attempt + 1
            delay = backoff_delay_s(attempt, self._rng, initial_s=self._backoff[0],
                                    max_s=self._backoff[1])
            logger.info("MQTT publisher %s: reconnecting in %.1f s", self.client_id, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self) -> None:
        will = aiomqtt.Will(self._status_offline.topic, self._status_offline.payload,
                            qos=1, retain=True)
        async with make_client(self.target, client_id=self.client_id, will=will) as client:
            online = self._status_online
            await client.publish(online.topic, online.payload, qos=1, retain=True)
            if self._ha_discovery:
                for m in ha_discovery_messages(self.athlete):
                    await client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
            self.connections += 1
            self._connected.set()
            logger.info("MQTT publisher %s connected to %s", self.client_id, self.target.url)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(watch_disconnect(client), name="mqtt-pub-watch")
                    tg.create_task(self._send_telemetry(client), name="mqtt-pub-telemetry")
                    tg.create_task(self._send_alerts(client), name="mqtt-pub-alerts")
                    tg.create_task(self._wait_stop(), name="mqtt-pub-stop")
            except* _CloseRequestedError:
                off = self._status_offline
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await client.publish(off.topic, off.payload, qos=1, retain=True)

    async def _wait_stop(self) -> None:
        await self._stopping.wait()
        raise _CloseRequestedError

    async def _send_telemetry(self, client: aiomqtt.Client) -> None:
        while True:
            await self._telemetry.wait()
            batch = self._telemetry.take(TELEMETRY_BATCH)
            self._in_flight = len(batch)
            try:
                await publish_batch(client, batch)
            except aiomqtt.MqttError:
                self._telemetry.dropped += len(batch)  # QoS 0: lossy by contract
                raise
            finally:
                self._in_flight = 0
            self.published_telemetry += len(batch)

    async def _send_alerts(self, client: aiomqtt.Client) -> None:
        while True:
            self._alerts_wake.clear()
            items = self._outbox.pending(OUTPUT_NAME, ALERT_BATCH, kinds=ALERT_KINDS)
            if not items:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._outbox_poll_s):
                        await self._alerts_wake.wait()
                continue
            for item in items:
                if isinstance(item.record, Alert):
                    message = encode_alert(item.record)
                    await client.publish(message.topic, message.payload, qos=1)
                    self.published_alerts += 1
                # Other records in this output's outbox travel as telemetry: nothing to do.
                self._outbox.mark_delivered(OUTPUT_NAME, item.seq)


# --- sink ---------------------------------------------------------------------------------

SINK_KINDS: Final[tuple[TopicKind, ...]] = ("readings", "metrics", "rr", "hrv", "segment",
                                            "alert")


class MqttSink:
    """Consumes stridewatch topics through a shared subscription; an async context manager.

    Several sinks with the same ``group`` share the load: the broker hands each message to one
    of them. Subscriptions are QoS 1 on a persistent session (fixed ``client_id``,
    ``clean_session=False``), so messages routed to a sink that is briefly away are queued by
    the broker and delivered when it comes back. Mosquitto 2.0 keeps routing a share of the
    messages to a *disconnected* persistent member, so on a clean close the sink first
    **leaves the group** (unsubscribes) and handles what it already received; the others then
    take all the traffic. A sink that crashes keeps its share queued until it returns.

    After every (re)connect the sink subscribes again, whether or not the broker kept the
    session (Telegraf's MQTT consumer went silent after broker restarts for lack of this).

    Each decoded record is awaited through ``on_record`` in arrival order. Undecodable
    messages are counted (``bad_messages``) and skipped; a failing ``on_record`` is logged and
    counted (``callback_errors``). paho acknowledges a QoS 1 message on receipt, so a process
    that dies between receipt and ``on_record`` loses those messages (at most the few in the
    local queue).
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        on_record: Callable[[SinkRecord], Awaitable[None]],
        client_id: str,
        group: str = "stridewatch",
        kinds: Iterable[TopicKind] = SINK_KINDS,
        persistent: bool = True,
        leave_group_on_close: bool = True,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        kinds = tuple(kinds)
        unknown = set(kinds) - set(TOPIC_KINDS) | ({"status"} & set(kinds))
        if unknown or not kinds:
            raise ValueError(f"sink kinds must be among {SINK_KINDS}, got {kinds}")
        self.target = target
        self.client_id = client_id
        self.topics = tuple(shared_filter(group, topic_filter(k)) for k in kinds)
        self._on_record = on_record
        self._persistent = persistent
        self._leave = leave_group_on_close
        self._rng = rng or random.Random()
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stopping = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._runner = BackgroundTask("MqttSink")
        self._busy = False
        self.handled = 0
        self.bad_messages = 0
        self.callback_errors = 0
        self.subscriptions = 0
        """Successful subscribes so far (one per connect)."""

    async def __aenter__(self) -> Self:
        self._runner.start(self._run(), name=f"mqtt-sink-{self.client_id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()
        await self._runner.stop(grace_s=2 * CLOSE_TIMEOUT_S)

    async def wait_subscribed(self, timeout_s: float, *, count: int = 1) -> None:
        """Wait (bounded) until the sink has subscribed ``count`` times in total."""
        async with asyncio.timeout(timeout_s):
            while self.subscriptions < count:
                self._subscribed.clear()
                await self._subscribed.wait()

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            subscribed_before = self.subscriptions
            try:
                await self._session()
            except* aiomqtt.MqttError as group:
                logger.warning("MQTT sink %s: connection to %s lost or failed: %s",
                               self.client_id, self.target.url, group.exceptions[0])
            if self._stopping.is_set():
                return
            attempt = 0 if self.subscriptions > subscribed_before else attempt + 1
            delay = backoff_delay_s(attempt, self._rng, initial_s=self._backoff[0],
                                    max_s=self._backoff[1])
            logger.info("MQTT sink %s: reconnecting in %.1f s", self.client_id, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _session(self) -> None:
        client = make_client(self.target, client_id=self.client_id,
                             clean_session=not self._persistent)
        async with client:
            await client.subscribe([(t, 1) for t in self.topics])
            self.subscriptions += 1
            self._subscribed.set()
            logger.info("MQTT sink %s subscribed to %s", self.client_id, ", ".join(self.topics))
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive(client), name="mqtt-sink-receive")
                    tg.create_task(self._wait_stop(client), name="mqtt-sink-stop")
            except* _CloseRequestedError:
                pass

    async def _wait_stop(self, client: aiomqtt.Client) -> None:
        await self._stopping.wait()
        if self._leave:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await client.unsubscribe(list(self.topics))
                    # Handle what was already received (and acknowledged) before leaving.
                    # aiomqtt's queue has no "empty" event: poll it (bounded by the timeout).
                    while len(client.messages) or self._busy:  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
        raise _CloseRequestedError

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._busy = True
            try:
                await self._handle(str(message.topic), message.payload)
            finally:
                self._busy = False

    async def _handle(self, topic: str, payload: object) -> None:
        if not isinstance(payload, bytes | str):
            payload = b""
        try:
            record = decode_message(topic, payload)
        except RecordCodecError as exc:
            self.bad_messages += 1
            logger.warning("MQTT sink %s: skipping undecodable message on %s (%d so far): %s",
                           self.client_id, topic, self.bad_messages, exc)
            return
        try:
            await self._on_record(record)
        except Exception:
            self.callback_errors += 1
            logger.exception("MQTT sink %s: on_record failed for a %s on %s",
                             self.client_id, type(record).__name__, topic)
            return
        self.handled += 1
