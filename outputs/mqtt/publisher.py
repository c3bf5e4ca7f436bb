"""One athlete's telemetry and status over MQTT: :class:`MqttPublisher`.

Policy:

* ``status`` is retained: ``online`` after every connect, ``offline`` on a clean close, and a
  Last Will ``offline`` (retained, QoS 1) that the broker publishes when the process dies or
  the link is lost. A connection has one will, hence one publisher per athlete. A session's
  final totals (a remote collector's ``session_end``) are followed by ``offline`` too, and the
  athlete's next output by ``online``: a dashboard sees who is running now.
* Telemetry (metrics, rr, hrv, segment) is QoS 0, not retained, and goes through a bounded
  queue that **drops the oldest** when full (``dropped_telemetry``): fresh samples are worth
  more than stale ones, and :meth:`MqttPublisher.publish_nowait` never blocks the pipeline. A
  batch that fails because the broker went away is counted as dropped too (QoS 0 is lossy).
* Alerts: stored alerts are sent by the process's one :class:`~outputs.mqtt.MqttAlertSender`,
  not by the publishers (N publishers draining one cursor sent athlete N's alerts N times).
  With ``alerts="ignore"`` (the app's choice when it runs a sender) an Alert given to
  :meth:`~MqttPublisher.publish_nowait` is skipped. With ``alerts="memory"`` (the default, for
  library users without a store) the publisher keeps them in its own private
  :class:`~outputs.mqtt.alerts.MemoryAlertOutbox` and sends them QoS 1, acknowledged.
* Reconnect: :class:`ingest.reconnect.Reconnector` (full jitter, reset after a connect);
  :attr:`MqttPublisher.link` tells whether the broker was ever reached and why not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from types import TracebackType
from typing import Literal, Self

import aiomqtt

from ingest.background import BackgroundTask
from ingest.reconnect import LinkStatus
from outputs.errors import RecordCodecError
from outputs.mqtt.alerts import AlertPump, MemoryAlertOutbox, MqttAlertSender
from outputs.mqtt.client import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    CLOSE_TIMEOUT_S,
    DropOldestQueue,
    LinkCallback,
    default_client_id,
    make_client,
    mqtt_reconnector,
    publish_batch,
    run_until_stopped,
    watch_disconnect,
)
from outputs.mqtt.target import MqttTarget
from outputs.mqtt_codec import (
    OutgoingMessage,
    encode_output,
    encode_status,
    ha_discovery_messages,
)
from outputs.outbox import AsyncOutbox, StoreOutbox
from outputs.store import SessionStore
from processing.records import Alert, ProcessingOutput, is_session_totals

__all__ = ["TELEMETRY_BATCH", "TELEMETRY_QUEUE_SIZE", "AlertMode", "MqttPublisher"]

logger = logging.getLogger(__name__)

TELEMETRY_QUEUE_SIZE = 1000
"""Telemetry kept while the broker is away: ~3 min of one athlete's 1 Hz groups + RR."""
TELEMETRY_BATCH = 500
"""QoS 0 messages handed to paho per await (see :mod:`outputs.mqtt.client`)."""
MEMORY_ALERT_POLL_S = 1.0
"""Fallback poll of the private in-memory outbox (publish_nowait wakes the sender at once)."""

AlertMode = Literal["memory", "ignore"]


class MqttPublisher:
    """Publishes one athlete's processing outputs; an async context manager.

    Args:
        target: the broker.
        athlete: whose ``status`` topic this connection owns (its Last Will).
        client_id: MQTT client id (unique per process by default).
        queue_size: telemetry queue bound (drop oldest when full).
        alerts: ``"memory"``: send Alerts given to :meth:`publish_nowait` from a private
            in-memory outbox (QoS 1); ``"ignore"``: skip them (a
            :class:`~outputs.mqtt.MqttAlertSender` sends the stored ones).
        ha_discovery: publish Home Assistant discovery configs (retained) on each connect.
        on_link_change: called on every connect, failed attempt and lost connection.
        rng: jitter source (seed it in tests).
        backoff_initial_s, backoff_max_s: reconnect backoff bounds.
        alert_outbox: **deprecated** (use one ``MqttAlertSender``): publishers given the same
            outbox share one alert sender (its own connection), entered by the first and left
            by the last; Alerts given to :meth:`publish_nowait` then only wake it.
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        athlete: str,
        client_id: str | None = None,
        queue_size: int = TELEMETRY_QUEUE_SIZE,
        alerts: AlertMode = "memory",
        ha_discovery: bool = False,
        on_link_change: LinkCallback | None = None,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        alert_outbox: SessionStore | AsyncOutbox | None = None,
    ) -> None:
        if alerts not in ("memory", "ignore"):
            raise ValueError(f"alerts must be 'memory' or 'ignore', got {alerts!r}")
        self.target = target
        self.athlete = athlete
        self.client_id = client_id or default_client_id("pub")
        self._status_online = encode_status(athlete, online=True)
        self._status_offline = encode_status(athlete, online=False)
        self._ended = False
        """The athlete's session ended (its totals went out): the status says ``offline``."""
        self._telemetry: DropOldestQueue[OutgoingMessage] = DropOldestQueue(queue_size)
        self._telemetry_idle = asyncio.Event()
        self._telemetry_idle.set()
        self._memory_outbox: MemoryAlertOutbox | None = None
        self._pump: AlertPump | None = None
        self._shared_outbox = alert_outbox
        self._shared: _SharedSender | None = None
        if alert_outbox is None and alerts == "memory":
            self._memory_outbox = MemoryAlertOutbox()
            self._pump = AlertPump(self._memory_outbox, poll_s=MEMORY_ALERT_POLL_S)
        self._ha_discovery = ha_discovery
        self._stopping = asyncio.Event()
        self._link = mqtt_reconnector(
            f"MQTT publisher {self.client_id}", target, stop=self._stopping, rng=rng,
            initial_s=backoff_initial_s, max_s=backoff_max_s, on_change=on_link_change,
            log=logger)
        self._runner = BackgroundTask("MqttPublisher")
        self.published_telemetry = 0
        self.encode_errors = 0

    @property
    def link(self) -> LinkStatus:
        """The broker link as last seen (connected, ever connected, failures, last error)."""
        return self._link.status

    @property
    def connected(self) -> bool:
        return self._link.status.connected

    @property
    def connections(self) -> int:
        """Successful connects so far (a reconnect increments it)."""
        return self._link.status.connects

    @property
    def dropped_telemetry(self) -> int:
        """Telemetry messages dropped (queue full, or lost in a broker outage)."""
        return self._telemetry.dropped

    @property
    def published_alerts(self) -> int:
        """Alerts acknowledged by the broker through this publisher (in-memory mode)."""
        return self._pump.published if self._pump is not None else 0

    async def __aenter__(self) -> Self:
        if self._shared_outbox is not None:
            self._shared = await _SharedSender.acquire(self.target, self._shared_outbox)
        self._runner.start(self._link.run(self._session), name=f"mqtt-publisher-{self.athlete}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if not self._runner.running:
                return
            if self.connected and exc is None:
                await self.flush(CLOSE_TIMEOUT_S)
            self._stopping.set()
            await self._runner.stop(grace_s=CLOSE_TIMEOUT_S)
        finally:
            shared, self._shared = self._shared, None
            if shared is not None:
                await shared.release(exc)

    def publish_nowait(self, record: ProcessingOutput) -> None:
        """Enqueue a record; never blocks (telemetry drops the oldest when full)."""
        if isinstance(record, Alert):
            if self._memory_outbox is not None and self._pump is not None:
                self._memory_outbox.add(record)
                self._pump.wake.set()
            elif self._shared is not None:
                self._shared.sender.notify()
            return
        try:
            message = encode_output(record)
        except RecordCodecError as exc:
            self.encode_errors += 1
            logger.warning("MQTT: cannot encode %s, skipped: %s", type(record).__name__, exc)
            return
        if self._ended:  # the last session ended: this output begins the athlete's next
            self._ended = False
            self._telemetry.put(self._status_online)
        self._telemetry.put(message)
        if is_session_totals(record):
            self._ended = True
            self._telemetry.put(self._status_offline)
        self._telemetry_idle.clear()

    async def publish(self, record: ProcessingOutput) -> None:
        """Async alias of :meth:`publish_nowait` (returns at once)."""
        self.publish_nowait(record)

    async def wait_connected(self, timeout_s: float) -> None:
        await self._link.wait_connected(timeout_s)

    async def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until queued telemetry is written and pending alerts acknowledged."""
        alerts_ok = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._telemetry_idle.wait()
                if self._pump is not None:
                    alerts_ok = await self._pump.wait_drained(timeout_s)
                elif self._shared is not None:
                    alerts_ok = await self._shared.sender.flush(timeout_s)
        except TimeoutError:
            return False
        return alerts_ok

    async def _session(self) -> None:
        will = aiomqtt.Will(self._status_offline.topic, self._status_offline.payload,
                            qos=1, retain=True)
        async with make_client(self.target, client_id=self.client_id, will=will) as client:
            online = self._status_offline if self._ended else self._status_online
            await client.publish(online.topic, online.payload, qos=1, retain=True)
            if self._ha_discovery:
                for m in ha_discovery_messages(self.athlete):
                    await client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
            self._link.connected()
            jobs = [watch_disconnect(client), self._send_telemetry(client)]
            if self._pump is not None:
                jobs.append(self._pump.run(client))
            await run_until_stopped(self._stopping, *jobs)
            off = self._status_offline
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await client.publish(off.topic, off.payload, qos=1, retain=True)

    async def _send_telemetry(self, client: aiomqtt.Client) -> None:
        while True:
            await self._telemetry.wait()
            batch = self._telemetry.take(TELEMETRY_BATCH)
            if not batch:
                continue
            try:
                await publish_batch(client, batch)
            except aiomqtt.MqttError:
                self._telemetry.dropped += len(batch)  # QoS 0: lossy by contract
                raise
            else:
                self.published_telemetry += len(batch)
            finally:
                if not len(self._telemetry):
                    self._telemetry_idle.set()  # nothing left to send (sent or dropped)


class _SharedSender:
    """Deprecated path: one :class:`MqttAlertSender` shared by the publishers of an outbox."""

    _by_outbox: dict[int, _SharedSender] = {}  # noqa: RUF012 (process-wide registry)

    def __init__(self, key: int, sender: MqttAlertSender) -> None:
        self.key = key
        self.sender = sender
        self.users = 0

    @classmethod
    async def acquire(cls, target: MqttTarget, outbox: SessionStore | AsyncOutbox
                      ) -> _SharedSender:
        key = id(outbox)
        shared = cls._by_outbox.get(key)
        if shared is None:
            async_outbox = StoreOutbox(outbox) if isinstance(outbox, SessionStore) else outbox
            shared = cls(key, MqttAlertSender(target, async_outbox))
            await shared.sender.__aenter__()
            cls._by_outbox[key] = shared
        shared.users += 1
        return shared

    async def release(self, exc: BaseException | None) -> None:
        self.users -= 1
        if self.users == 0:
            del self._by_outbox[self.key]
            await self.sender.__aexit__(type(exc) if exc else None, exc, None)
