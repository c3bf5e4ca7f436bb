"""Alerts over MQTT: :class:`MqttAlertSender`, the one sender of a process (issue #10).

Alerts are QoS 1, not retained, and **never dropped**. The sender takes the records of kind
``"alert"`` from the outbox cursor :data:`OUTPUT_NAME` (the session store, through the async
:class:`outputs.outbox.AsyncOutbox`: no SQLite call on the event loop), publishes them in
order, and moves the cursor past each one only after the broker's PUBACK (``await
client.publish(qos=1)`` returns on the PUBACK: see :mod:`outputs.mqtt.client`). So:

* exactly one message per alert in normal operation, whatever the number of athletes: there
  is one sender per outbox cursor; a second one on the same outbox is refused
  (``RuntimeError``), so two clients can never drain one cursor;
* at least once under faults: an alert whose PUBACK did not arrive (broker restart, killed
  process) is sent again after reconnecting; alerts carry an ``id`` for de-duplication.

Work per poll is bounded (:data:`ALERT_BATCH` rows); the sender polls every ``poll_s`` and
when :meth:`MqttAlertSender.notify` is called (the app calls it when it stored an alert).

:class:`MemoryAlertOutbox` is the in-memory outbox of a :class:`~outputs.mqtt.MqttPublisher`
used without a store (library users): private to that publisher, so it cannot be shared.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Collection
from types import TracebackType
from typing import Final, Self

import aiomqtt

from ingest.background import BackgroundTask
from ingest.reconnect import LinkStatus
from outputs.errors import RecordCodecError
from outputs.mqtt.client import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    CLOSE_TIMEOUT_S,
    LinkCallback,
    default_client_id,
    make_client,
    mqtt_reconnector,
    run_until_stopped,
    watch_disconnect,
)
from outputs.mqtt.target import MqttTarget
from outputs.mqtt_codec import encode_alert
from outputs.outbox import AsyncOutbox
from outputs.store import OutboxItem
from processing.records import Alert

__all__ = [
    "ALERT_BATCH",
    "ALERT_KINDS",
    "OUTBOX_POLL_S",
    "OUTPUT_NAME",
    "AlertPump",
    "MemoryAlertOutbox",
    "MemoryOutboxItem",
    "MqttAlertSender",
]

logger = logging.getLogger(__name__)

OUTPUT_NAME: Final = "mqtt"
"""Name of this output's cursor in the store's outbox."""
ALERT_KINDS: Final = ("alert",)
"""Record kinds this output takes from the outbox (telemetry goes through the publishers)."""
ALERT_BATCH: Final = 50
"""Outbox rows read per poll (bounded work; alerts are a few per run)."""
OUTBOX_POLL_S: Final = 0.5
"""How often the sender looks at the outbox when not woken (the store commits every 0.25 s)."""


MemoryOutboxItem = OutboxItem
"""The rows of a :class:`MemoryAlertOutbox` (the store's own row type; old name kept)."""


class MemoryAlertOutbox:
    """An in-memory :class:`~outputs.outbox.AsyncOutbox` of alerts (no store).

    Holds alerts until delivered; not bounded by count (alerts are rare: a few per run).
    """

    def __init__(self) -> None:
        self._items: collections.deque[OutboxItem] = collections.deque()
        self._seq = 0

    def add(self, alert: Alert) -> None:
        self._seq += 1
        self._items.append(OutboxItem(seq=self._seq, session_id="", record=alert))

    async def pending(self, output: str, limit: int, *, kinds: Collection[str] | None = None
                      ) -> list[OutboxItem]:
        return list(self._items)[:limit]

    async def mark_delivered(self, output: str, up_to_seq: int) -> None:
        while self._items and self._items[0].seq <= up_to_seq:
            self._items.popleft()

    async def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)


class AlertPump:
    """Sends the alerts of one outbox cursor over a connected client (QoS 1, in order).

    Used by :class:`MqttAlertSender` (store outbox) and by a publisher's in-memory mode.
    :meth:`wait_drained` waits for a poll *started after the call* that found nothing pending
    (an earlier poll may have missed a row committed since).
    """

    def __init__(self, outbox: AsyncOutbox, *, poll_s: float,
                 batch: int = ALERT_BATCH) -> None:
        self.outbox = outbox
        self.poll_s = poll_s
        self.batch = batch
        self.wake = asyncio.Event()
        self._polls = 0
        """Polls started so far."""
        self._empty_poll = 0
        """Number of the last poll that found nothing pending (0: none yet)."""
        self._polled = asyncio.Event()
        self.published = 0
        self.encode_errors = 0

    async def run(self, client: aiomqtt.Client) -> None:
        while True:
            self.wake.clear()
            self._polls += 1
            poll = self._polls
            items = await self.outbox.pending(OUTPUT_NAME, self.batch, kinds=ALERT_KINDS)
            if not items:
                self._empty_poll = poll
                self._polled.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self.wake.wait()
                continue
            for item in items:
                if isinstance(item.record, Alert):
                    try:
                        message = encode_alert(item.record)
                    except RecordCodecError as exc:
                        self.encode_errors += 1
                        logger.error("MQTT: alert %s cannot be encoded, skipped: %s",
                                     item.record.id, exc)
                    else:
                        # Returns on the PUBACK (raises MqttError if the link is lost first).
                        await client.publish(message.topic, message.payload, qos=1)
                        self.published += 1
                # Rows of other kinds are not this sender's: they count as delivered.
                await self.outbox.mark_delivered(OUTPUT_NAME, item.seq)

    async def wait_drained(self, timeout_s: float) -> bool:
        """Wake the pump and wait (bounded) until a poll started from now on finds nothing
        pending (False on timeout: e.g. the broker is away)."""
        wanted = self._polls + 1
        self.wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                while self._empty_poll < wanted:
                    self._polled.clear()
                    await self._polled.wait()
        except TimeoutError:
            return False
        return True


_claimed: set[int] = set()
"""Outboxes (by identity of the underlying store) that have a sender in this process."""


def _claim_key(outbox: object) -> int:
    return id(getattr(outbox, "store", outbox))


class MqttAlertSender:
    """The process's one sender of stored alerts; an async context manager.

    Args:
        target: the broker.
        outbox: the async outbox (``outputs.outbox.StoreOutbox(store)``).
        client_id: MQTT client id (unique per process by default).
        poll_s: how often the outbox is polled when :meth:`notify` is not called.
        batch: outbox rows per poll.
        on_link_change: called on every connect, failed attempt and lost connection.
        rng, backoff_initial_s, backoff_max_s: reconnect backoff (seed ``rng`` in tests).

    Raises:
        RuntimeError: on entry, when another sender of this process uses the same outbox.
    """

    def __init__(
        self,
        target: MqttTarget,
        outbox: AsyncOutbox,
        *,
        client_id: str | None = None,
        poll_s: float = OUTBOX_POLL_S,
        batch: int = ALERT_BATCH,
        on_link_change: LinkCallback | None = None,
        rng: random.Random | None = None,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.target = target
        self.outbox = outbox
        self.client_id = client_id or default_client_id("alerts")
        self._pump = AlertPump(outbox, poll_s=poll_s, batch=batch)
        self._stopping = asyncio.Event()
        self._link = mqtt_reconnector(
            f"MQTT alert sender {self.client_id}", target, stop=self._stopping, rng=rng,
            initial_s=backoff_initial_s, max_s=backoff_max_s, on_change=on_link_change,
            log=logger)
        self._runner = BackgroundTask("MqttAlertSender")
        self._key: int | None = None

    @property
    def link(self) -> LinkStatus:
        """The broker link as last seen (connected, ever connected, failures, last error)."""
        return self._link.status

    @property
    def connected(self) -> bool:
        return self._link.status.connected

    @property
    def published_alerts(self) -> int:
        """Alerts acknowledged by the broker (a resend after a fault counts again)."""
        return self._pump.published

    @property
    def encode_errors(self) -> int:
        return self._pump.encode_errors

    def notify(self) -> None:
        """Look at the outbox now (an alert was stored)."""
        self._pump.wake.set()

    async def wait_connected(self, timeout_s: float) -> None:
        await self._link.wait_connected(timeout_s)

    async def backlog(self) -> int:
        """Stored alerts not yet acknowledged by the broker."""
        return await self.outbox.backlog(OUTPUT_NAME, kinds=ALERT_KINDS)

    async def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until the outbox has no alert left to send (False on timeout).

        Alerts still in the store's write buffer are not seen: flush the store first.
        """
        return await self._pump.wait_drained(timeout_s)

    async def __aenter__(self) -> Self:
        key = _claim_key(self.outbox)
        if key in _claimed:
            raise RuntimeError("this outbox already has an MQTT alert sender in this process "
                               "(one sender per cursor, or alerts would be sent twice)")
        _claimed.add(key)
        self._key = key
        try:
            self._runner.start(self._link.run(self._session), name=f"mqtt-alerts-{self.client_id}")
        except BaseException:
            _claimed.discard(key)
            raise
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
            if self._key is not None:
                _claimed.discard(self._key)
                self._key = None

    async def _session(self) -> None:
        async with make_client(self.target, client_id=self.client_id) as client:
            self._link.connected()
            await run_until_stopped(self._stopping, watch_disconnect(client),
                                    self._pump.run(client))
