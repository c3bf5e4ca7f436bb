"""Clocks: where event time comes from.

Nothing in ingest or processing reads the wall clock directly. The collector stamps each
notification through a :class:`Clock`; the application builds one at its edge. :class:`LoopClock`
follows the running event loop's ``time()``, so on a time-warped loop (``--speed N`` demos,
virtual-time tests) every stamp follows the loop and results depend only on the seed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of arrival stamps."""

    def monotonic_s(self) -> float:
        """Monotonic time in seconds (intervals only; arbitrary origin)."""
        ...

    def utc(self) -> datetime:
        """Timezone-aware UTC time of now."""
        ...


class LoopClock:
    """Monotonic time from the event loop, UTC anchored once.

    ``utc()`` is ``utc_origin + (loop.time() - loop time at construction)``: immune to wall-clock
    steps during a session, and virtual when the loop's time is virtual.

    Args:
        utc_origin: UTC at construction. The application passes ``datetime.now(UTC)`` for live
            runs and a fixed instant for reproducible demos.
        loop: the loop to follow; the running loop by default.
    """

    def __init__(
        self, utc_origin: datetime, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if utc_origin.tzinfo is None:
            raise ValueError("utc_origin must be timezone-aware (UTC)")
        self._loop = loop or asyncio.get_running_loop()
        self._mono_origin = self._loop.time()
        self._utc_origin = utc_origin.astimezone(UTC)

    def monotonic_s(self) -> float:
        return self._loop.time()

    def utc(self) -> datetime:
        return self._utc_origin + timedelta(seconds=self._loop.time() - self._mono_origin)
