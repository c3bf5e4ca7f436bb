"""Event loops whose clock runs faster than real time.

bleak's and bumble's timeouts, ``asyncio.sleep`` and :class:`ingest.clock.LoopClock` all read
``loop.time()``. Replacing that clock runs a whole virtual workout unchanged, faster:

* ``speed=N``: loop time advances N× faster than the monotonic clock; the selector's wait is
  divided by N so timers fire on (scaled) time. Real sockets keep working (demos with a real
  broker or database).
* ``speed=None``: virtual time. When nothing is ready the clock jumps to the next timer, so a
  40-minute workout takes as long as the CPU work it needs. Results depend only on the seed.
  Meant for in-process work (bumble's link); real I/O still works but gets no time to happen
  while the clock jumps, so use a finite speed with servers.

Run a coroutine on one with :func:`run`.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _WarpSelector(selectors.DefaultSelector):
    """The platform selector, with waits scaled to the loop's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: TimeWarpLoop | None = None

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None or timeout is None or timeout <= 0:
            return super().select(timeout)
        if loop.speed is None:
            events = super().select(0)
            if not events:
                loop.advance(timeout)  # nothing to do before the next timer: jump to it
            return events
        return super().select(timeout / loop.speed)


class TimeWarpLoop(asyncio.SelectorEventLoop):
    """A selector event loop with a scaled (``speed``) or virtual (``None``) clock."""

    def __init__(self, speed: float | None) -> None:
        selector = _WarpSelector()
        self.speed = speed
        self._virtual_s = 0.0
        self._real_origin = time.monotonic()
        super().__init__(selector)
        if speed is not None and speed <= 0:
            self.close()
            raise ValueError(f"speed must be > 0 or None (virtual time), got {speed}")
        selector.loop = self

    def time(self) -> float:
        if self.speed is None:
            return self._virtual_s
        return (time.monotonic() - self._real_origin) * self.speed

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (virtual mode only)."""
        self._virtual_s += seconds


def run(coro: Coroutine[Any, Any, T], *, speed: float | None) -> T:
    """Run ``coro`` to completion on a fresh :class:`TimeWarpLoop`.

    ``speed=1.0`` is plain real time on the same code path.
    """
    with asyncio.Runner(loop_factory=lambda: TimeWarpLoop(speed)) as runner:
        return runner.run(coro)
