"""Consuming stridewatch topics through a shared subscription: :class:`MqttSink`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
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
    make_client,
    mqtt_reconnector,
    run_until_stopped,
)
from outputs.mqtt.target import MqttTarget
from outputs.mqtt_codec import (
    TOPIC_KINDS,
    SinkRecord,
    TopicKind,
    decode_message,
    shared_filter,
    topic_filter,
)

__all__ = ["SINK_KINDS", "MqttSink"]

logger = logging.getLogger(__name__)

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
        on_link_change: LinkCallback | None = None,
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
        self._stopping = asyncio.Event()
        self._link = mqtt_reconnector(
            f"MQTT sink {client_id}", target, stop=self._stopping, rng=rng,
            initial_s=backoff_initial_s, max_s=backoff_max_s, on_change=on_link_change,
            log=logger)
        self._subscribed = asyncio.Event()
        self._runner = BackgroundTask("MqttSink")
        self._busy = False
        self.handled = 0
        self.bad_messages = 0
        self.callback_errors = 0

    @property
    def link(self) -> LinkStatus:
        """The broker link as last seen (connected, ever connected, failures, last error)."""
        return self._link.status

    @property
    def subscriptions(self) -> int:
        """Successful subscribes so far (one per connect)."""
        return self._link.status.connects

    async def __aenter__(self) -> Self:
        self._runner.start(self._link.run(self._session), name=f"mqtt-sink-{self.client_id}")
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

    async def _session(self) -> None:
        client = make_client(self.target, client_id=self.client_id,
                             clean_session=not self._persistent)
        async with client:
            await client.subscribe([(t, 1) for t in self.topics])
            self._link.connected()
            self._subscribed.set()
            logger.info("MQTT sink %s subscribed to %s", self.client_id, ", ".join(self.topics))
            await run_until_stopped(self._stopping, self._receive(client),
                                    on_stop=lambda: self._leave_group(client))

    async def _leave_group(self, client: aiomqtt.Client) -> None:
        """Unsubscribe, then let the receiver handle what was already received (and
        acknowledged) before the connection closes."""
        if not self._leave:
            return
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await client.unsubscribe(list(self.topics))
                # aiomqtt's queue has no "empty" event: poll it (bounded by the timeout).
                while len(client.messages) or self._busy:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)

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
