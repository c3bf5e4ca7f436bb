"""The one reconnect loop of every network client (issue #10), and the link status it keeps.

A client (MQTT publisher, alert sender, sink, reading source and reading publisher) describes
one connection as a coroutine, its *session*: connect, call :meth:`Reconnector.connected` once
the link is usable, work until the link is lost (raise) or a stop was requested (return).
:meth:`Reconnector.run` repeats sessions until the stop event is set, with one rule for all:

* The backoff counter is reset after a successful connect: a link that was up and is lost is
  retried after the shortest delay; consecutive failed attempts wait longer and longer
  (:func:`ingest.backoff.backoff_delay_s`, capped, jittered).
* The wait between attempts ends at once when the stop event is set (never a plain sleep that
  a stop cannot interrupt).
* Failures speak: the first failure of a streak (and any change of cause) is logged at WARNING
  with the URL, the cause in words and what to do (``describe``); repeats of the same cause
  go to INFO. The client's :class:`LinkStatus` (read-only snapshot) tells the app whether it
  is connected, ever connected, how many failures there were and the last error, so a finite
  command can exit 1 when it never connected. ``on_change`` is called on every connect and
  failure (console lines, ``status``).

Only exceptions of ``retry_on`` are retried; anything else is a bug and ends :meth:`run`.
The caller gives the URL for messages: it must not contain a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Literal

from ingest.backoff import Jitter, backoff_delay_s

__all__ = ["LinkChange", "LinkStatus", "Reconnector"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class LinkStatus:
    """One client's link, as last seen (an immutable snapshot; read it again for news)."""

    url: str
    """Where the client connects (never with a secret)."""
    connected: bool = False
    ever_connected: bool = False
    connects: int = 0
    """Successful connects so far (a reconnect increments it)."""
    failures: int = 0
    """Failed connection attempts and lost connections so far."""
    last_error: str | None = None
    """The cause of the last failure, in words, with what to do (``None``: none yet)."""


@dataclasses.dataclass(frozen=True, slots=True)
class LinkChange:
    """What :class:`Reconnector` reports to ``on_change``."""

    event: Literal["connected", "failed", "lost"]
    """``failed``: an attempt that never connected; ``lost``: a connected link ended."""
    status: LinkStatus
    retry_in_s: float | None = None
    """Delay before the next attempt (``None`` for ``connected``)."""


class Reconnector:
    """Runs a client's sessions until ``stop`` is set; keeps its :class:`LinkStatus`.

    Args:
        name: the client, for log lines (``"MQTT publisher stridewatch-pub-1-ab12"``).
        url: where it connects, for log lines and the status (no secret in it).
        stop: set by the client to end :meth:`run` (also interrupts the backoff wait).
        retry_on: the exceptions that mean "the link failed" (e.g. ``aiomqtt.MqttError``);
            they may arrive alone or inside an exception group (a session's ``TaskGroup``).
        describe: the cause of a failure in words, with what to do (default ``str``).
        rng: jitter source (seed it in tests).
        initial_s, max_s, jitter: the backoff (see :func:`ingest.backoff.backoff_delay_s`).
        on_change: called (synchronously) after each connect, failure and loss.
        logger: where to log (the client's module logger).
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        stop: asyncio.Event,
        retry_on: tuple[type[Exception], ...],
        describe: Callable[[BaseException], str] = str,
        rng: random.Random | None = None,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        jitter: Jitter = "full",
        on_change: Callable[[LinkChange], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self.name = name
        self.stop = stop
        self._retry_on = retry_on
        self._describe = describe
        self._rng = rng or random.Random()
        self._backoff = (initial_s, max_s, jitter)
        self._on_change = on_change
        self._log = logger or log
        self._status = LinkStatus(url=url)
        self._up = asyncio.Event()
        self._session_connected = False
        self._streak_cause: str | None = None
        self._streak_failures = 0

    @property
    def status(self) -> LinkStatus:
        return self._status

    def connected(self) -> None:
        """Called by the session once the link is usable (connected, subscribed, …)."""
        s = self._status
        self._session_connected = True
        self._status = dataclasses.replace(s, connected=True, ever_connected=True,
                                           connects=s.connects + 1)
        if self._streak_failures:
            self._log.warning("%s: connected to %s (after %d failed attempts)", self.name,
                              s.url, self._streak_failures)
        else:
            self._log.info("%s: connected to %s", self.name, s.url)
        self._streak_cause = None
        self._streak_failures = 0
        self._up.set()
        self._report(LinkChange("connected", self._status))

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait (bounded: ``TimeoutError``) until the link is up."""
        async with asyncio.timeout(timeout_s):
            await self._up.wait()

    async def run(self, session: Callable[[], Awaitable[None]]) -> None:
        """Repeat ``session()`` until :attr:`stop` is set (see the module docstring)."""
        attempt = 0
        while not self.stop.is_set():
            self._session_connected = False
            error: BaseException | None = None
            try:
                await session()
            except* self._retry_on as group:
                error = _first_leaf(group)
            finally:
                was_connected = self._session_connected
                self._up.clear()
                if self._status.connected:
                    self._status = dataclasses.replace(self._status, connected=False)
            if self.stop.is_set():
                return
            if was_connected:
                attempt = 0  # the one reset rule: after a successful connect
            delay = backoff_delay_s(attempt, self._rng, initial_s=self._backoff[0],
                                    max_s=self._backoff[1], jitter=self._backoff[2])
            attempt += 1
            self._failed(error, was_connected, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stop.wait()

    def _failed(self, error: BaseException | None, was_connected: bool, delay: float) -> None:
        cause = "the connection was closed" if error is None else _safe_describe(
            self._describe, error)
        s = self._status
        self._status = dataclasses.replace(s, failures=s.failures + 1, last_error=cause)
        if was_connected:
            self._log.warning("%s: connection to %s lost: %s; reconnecting in %.1f s",
                              self.name, s.url, cause, delay)
        elif cause != self._streak_cause:
            self._log.warning("%s: cannot connect to %s: %s (retrying in %.1f s)",
                              self.name, s.url, cause, delay)
        else:
            self._log.info("%s: still cannot connect to %s (%d failures): %s; retrying in "
                           "%.1f s", self.name, s.url, self._status.failures, cause, delay)
        self._streak_cause = cause
        self._streak_failures = 0 if was_connected else self._streak_failures + 1
        self._report(LinkChange("lost" if was_connected else "failed", self._status, delay))

    def _report(self, change: LinkChange) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(change)
        except Exception:
            self._log.exception("%s: on_change callback failed", self.name)


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _safe_describe(describe: Callable[[BaseException], str], error: BaseException) -> str:
    try:
        return describe(error)
    except Exception:  # a describe bug must not take the client down
        return f"{type(error).__name__}: {error}"
