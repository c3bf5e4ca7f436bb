"""Connection helpers shared by every MQTT client of stridewatch (aiomqtt 2.x).

* :func:`make_client`: an aiomqtt client for a :class:`MqttTarget` with stridewatch's timeouts.
* :func:`mqtt_reconnector`: the :class:`ingest.reconnect.Reconnector` of an MQTT client (full
  jitter, ``MqttError`` retried, failures described by :func:`describe_error`).
* :func:`describe_error`: the cause of a failure in words with what to do (wrong credentials,
  TLS to a plain port, nothing listening, host not found), never a secret.
* :func:`publish_batch`, :class:`DropOldestQueue`, :func:`watch_disconnect`,
  :func:`run_until_stopped`: the pieces the publishers and subscribers are built of.

Throughput: aiomqtt's ``publish`` awaits each message (an event-loop round trip per message,
~3k msgs/s). :func:`publish_batch` therefore queues QoS 0 messages in paho's outgoing buffer
(through aiomqtt's underlying paho client, ``Client._client``) and awaits only the last one;
paho writes packets in order, so when the last is written all are
(``benchmarks/bench_mqtt.py``).

Acknowledgements (verified in aiomqtt 2.5 / paho 2.2 source): ``await client.publish(qos=1)``
returns only when paho calls ``on_publish`` for the message id, which paho does for QoS 1 when
the PUBACK arrives (``_handle_pubackcomp``), not when the packet is written (that is QoS 0
only). A connection lost first raises ``MqttError``; no answer within the client's timeout
raises ``MqttError("Operation timed out")``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, Generic, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.reconnect import LinkChange, Reconnector
from outputs.mqtt.target import ENV_PASSWORD, ENV_USER, MqttTarget
from outputs.mqtt_codec import OutgoingMessage

__all__ = [
    "BACKOFF_INITIAL_S",
    "BACKOFF_MAX_S",
    "CLOSE_TIMEOUT_S",
    "KEEPALIVE_S",
    "OPERATION_TIMEOUT_S",
    "DropOldestQueue",
    "LinkCallback",
    "default_client_id",
    "describe_error",
    "make_client",
    "mqtt_reconnector",
    "publish_batch",
    "run_until_stopped",
    "watch_disconnect",
]

logger = logging.getLogger(__name__)

KEEPALIVE_S: Final = 15
"""MQTT keepalive: a half-open TCP link is noticed within ~1.5x this (broker and client)."""
OPERATION_TIMEOUT_S: Final = 10.0
"""Bound on connect, subscribe and QoS 1 acknowledgements (loopback answers in < 1 ms)."""
BACKOFF_INITIAL_S: Final = 0.5
"""First reconnect delay: a restarting broker is usually back within a second."""
BACKOFF_MAX_S: Final = 30.0
"""Cap: a broker that is down for long is still retried twice a minute."""
CLOSE_TIMEOUT_S: Final = 3.0
"""Bound on flushing and saying ``offline`` when a client is closed."""

LinkCallback = Callable[[LinkChange], None]
"""Called on every connect, failed attempt and lost connection of a client."""

# CONNACK refusals that mean "who you are is not accepted" (MQTT 3.1.1 codes 4 and 5, and
# their MQTT 5 equivalents, which paho 2.x reports for 3.1.1 too).
_AUTH_CODES: Final = frozenset({4, 5, 134, 135})


def make_client(target: MqttTarget, *, client_id: str, will: aiomqtt.Will | None = None,
                clean_session: bool | None = None,
                v5_session: tuple[int, int] | None = None) -> aiomqtt.Client:
    """An aiomqtt client for ``target`` with stridewatch's timeouts.

    ``v5_session``: ``(session_expiry_s, receive_maximum)`` for an MQTT 5 client that resumes
    its session (clean start off): the broker keeps the session, its queued and unacknowledged
    messages for ``session_expiry_s`` after a disconnect, and sends at most
    ``receive_maximum`` messages unacknowledged (MQTT 5.0 §3.1.2.11.2, §3.1.2.11.3). MQTT
    3.1.1 has no receive maximum: Mosquitto then allows 20 in flight per client.
    """
    v5: dict[str, Any] = {}
    if v5_session is not None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        properties.SessionExpiryInterval, properties.ReceiveMaximum = v5_session
        v5 = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False,
              "properties": properties}
    client = aiomqtt.Client(
        target.host,
        target.port,
        username=target.username,
        password=target.password.get_secret_value() if target.password is not None else None,
        identifier=client_id,
        will=will,
        clean_session=clean_session,
        keepalive=KEEPALIVE_S,
        timeout=OPERATION_TIMEOUT_S,
        tls_params=aiomqtt.TLSParameters() if target.tls else None,
        **v5,
    )
    if target.tls:
        _close_failed_tls_sockets(client._client)
    return client


def _close_failed_tls_sockets(inner: paho.Client) -> None:
    """Close the TLS socket when the handshake fails (paho 2.2 leaves it open: a socket leak
    per attempt, e.g. ``mqtts://`` to a plain port retried for hours)."""
    original = inner._ssl_wrap_socket

    def wrap(tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = inner._ssl_context  # set by aiomqtt at connect time
        if context is None or not context.check_hostname:
            return original(tcp_sock)  # not make_client's configuration: paho's own code
        ssl_sock = context.wrap_socket(tcp_sock, server_hostname=inner.host,
                                       do_handshake_on_connect=False)
        try:
            ssl_sock.settimeout(inner.connect_timeout)
            ssl_sock.do_handshake()  # check_hostname: the context verifies the host name
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock

    setattr(inner, "_ssl_wrap_socket", wrap)  # noqa: B010 (a method of the instance)


def default_client_id(role: str) -> str:
    """A unique client id: two clients with one id keep disconnecting each other."""
    return f"stridewatch-{role}-{os.getpid()}-{secrets.token_hex(3)}"


def describe_error(error: BaseException, target: MqttTarget) -> str:
    """The cause of an MQTT failure in words, with what to do (never a secret).

    >>> t = MqttTarget(host="broker", port=1883)
    >>> describe_error(aiomqtt.MqttError("[Errno 111] Connection refused"), t)[:61]
    'connection refused ([Errno 111] Connection refused): is a bro'
    """
    text = str(error)
    lower = text.lower()
    where = f"{target.host}:{target.port}"
    if isinstance(error, MqttConnectError):
        rc = error.rc
        code = rc.value if isinstance(rc, ReasonCode) else rc
        if code in _AUTH_CODES:
            given = ("no credentials were given" if target.username is None
                     else f"user {target.username!r}")
            return (f"the broker refused the login ({text}; {given}): check {ENV_USER} and "
                    f"{ENV_PASSWORD}, and the broker's password file and ACL")
        return f"the broker refused the connection ({text})"
    if target.tls and any(w in lower for w in ("ssl", "tls", "reset by peer", "eof",
                                               "wrong version", "handshake")):
        if "certificate" in lower:
            return (f"TLS certificate not accepted ({text}): the broker's certificate must be "
                    "trusted by this system's CA store and match the host name")
        return (f"TLS handshake failed ({text}): {where} does not seem to speak TLS; use "
                f"mqtt:// for a plain listener, or the broker's TLS port (usually 8883)")
    if "refused" in lower:
        return f"connection refused ({text}): is a broker running and listening on {where}?"
    if any(w in lower for w in ("name or service", "nodename", "name resolution",
                                "getaddrinfo", "no address")):
        return f"host not found ({text}): check the host name {target.host!r}"
    if "timed out" in lower:
        return (f"no answer within {OPERATION_TIMEOUT_S:.0f} s ({text}): is {where} reachable "
                "and an MQTT broker?")
    if "unreachable" in lower:
        return f"network unreachable ({text}): check the network and the host {target.host!r}"
    return text or type(error).__name__


def mqtt_reconnector(
    name: str,
    target: MqttTarget,
    *,
    stop: asyncio.Event,
    rng: random.Random | None,
    initial_s: float,
    max_s: float,
    on_change: LinkCallback | None,
    log: logging.Logger,
) -> Reconnector:
    """The reconnect loop of one MQTT client (full jitter; ``MqttError`` is retried)."""
    return Reconnector(
        name, target.url, stop=stop, retry_on=(aiomqtt.MqttError,),
        describe=lambda exc: describe_error(exc, target), rng=rng, initial_s=initial_s,
        max_s=max_s, jitter="full", on_change=on_change, logger=log,
    )


async def watch_disconnect(client: aiomqtt.Client) -> None:
    """Return… never: raise ``MqttError`` when the connection is lost.

    For clients that do not subscribe: aiomqtt's message iterator raises when disconnected.
    """
    async for message in client.messages:
        logger.debug("unexpected message on %s", message.topic)
    raise aiomqtt.MqttError("message iterator ended")  # pragma: no cover


class _CloseRequestedError(Exception):
    """Raised inside a connection's task group to end it cleanly (close was requested)."""


async def _raise_when_set(stop: asyncio.Event,
                          on_stop: Callable[[], Awaitable[None]] | None) -> None:
    await stop.wait()
    if on_stop is not None:
        await on_stop()
    raise _CloseRequestedError


async def run_until_stopped(stop: asyncio.Event, *jobs: Coroutine[Any, Any, None],
                            on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run ``jobs`` in a task group until one fails (its error is raised) or ``stop`` is set:
    then ``on_stop()`` is awaited while the jobs still run, the jobs are cancelled and this
    returns."""
    try:
        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tg.create_task(job)
            tg.create_task(_raise_when_set(stop, on_stop))
    except* _CloseRequestedError:
        pass


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
