"""Waits shared by the outbox outputs (InfluxDB, notifications): deadlines in **real** time,
and "sleep or until an event", each written once.

The demo runs on a virtual-time event loop where ``asyncio.timeout(10)`` is ten virtual
seconds, about no real time (issue #10: `demo --speed max` left 15 % undelivered). A drain
must wait on the wall clock: :class:`RealDeadline` is a future resolved by a
``threading.Timer`` through ``call_soon_threadsafe``, so it fires whatever the loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType
from typing import Any, Self

__all__ = ["RealDeadline", "wait_any"]


class RealDeadline:
    """``timeout_s`` real seconds from entry; an async context manager.

    >>> async def demo() -> bool:
    ...     async with RealDeadline(0.01) as deadline:
    ...         await deadline.wait(asyncio.Event())  # never set: the deadline ends it
    ...         return deadline.expired
    >>> asyncio.run(demo())
    True
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = max(0.0, timeout_s)
        self._end = 0.0
        self._expired: asyncio.Future[None] | None = None
        self._timer: threading.Timer | None = None

    @property
    def expired(self) -> bool:
        """Whether the real deadline has passed."""
        done = self._expired is not None and self._expired.done()
        return done or time.monotonic() >= self._end

    async def wait(self, event: asyncio.Event) -> None:
        """Until ``event`` is set or the deadline passes (whichever is first)."""
        assert self._expired is not None, "enter the RealDeadline first"
        changed = asyncio.ensure_future(event.wait())
        waits: list[asyncio.Future[Any]] = [changed, self._expired]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        expired: asyncio.Future[None] = loop.create_future()

        def expire() -> None:
            if not expired.done():
                expired.set_result(None)

        def fire() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(expire)

        self._expired = expired
        self._end = time.monotonic() + self.timeout_s
        self._timer = threading.Timer(self.timeout_s, fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._expired is not None and not self._expired.done():
            self._expired.cancel()


async def wait_any(delay_s: float, *events: asyncio.Event | None) -> None:
    """Sleep ``delay_s`` (loop time) or until one of ``events`` is set (``None`` skipped)."""
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait())
                                        for e in events if e is not None]
    try:
        if waits:
            await asyncio.wait(waits, timeout=max(0.0, delay_s),
                               return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(max(0.0, delay_s))
    finally:
        for task in waits:
            task.cancel()
