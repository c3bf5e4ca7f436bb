"""Event loops whose clock runs faster than real time.

bleak's and bumble's timeouts, ``asyncio.sleep`` and :class:`ingest.clock.LoopClock` all read
``loop.time()``. Replacing that clock runs a whole virtual workout unchanged, faster:

* ``speed=None``: virtual time. When nothing is ready the clock jumps to the next timer, so a
  40-minute workout takes as long as the CPU work it needs. Results depend only on the seed.
  Meant for in-process work (bumble's link); real I/O still works but gets no time to happen
  while the clock jumps, so use a finite speed with servers. While work handed to a thread
  (``run_in_executor``, ``asyncio.to_thread``) is running, the clock does not jump: it runs at
  wall speed until the thread is done. Jumping then spun the loop on timers (bumble's
  advertisers fire every 20 ms) and starved the thread of the GIL: sqlite3 gives it back
  around every row, and each time it waited a switch interval (5 ms) for it, so the session
  store's commits fell behind for ever (a 3-athlete ``demo --speed max`` hung in CI).
* ``speed=N`` (N ≠ 1): paced virtual time. The clock advances only while the loop waits:
  the selector waits until the next timer is due on an N× schedule of the wall clock, so real
  sockets get real time (demos with a real broker or database). Work on the CPU takes no
  virtual time, as in the virtual mode: a busy machine makes the run slower, never makes a
  timeout fire early. Behind schedule, the waits shrink (to no less than a quarter of the
  scaled delay) so the run catches up. A plain N× clock (the first version) turned 50 ms of
  CPU contention into 5 virtual seconds at 100×: with ten athletes connecting at once every
  BLE connect timed out, over and over, and notifications were stamped late.
* ``speed=1.0``: the wall clock (``time.monotonic``), for live runs with real sensors.

Run a coroutine on one with :func:`run`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CATCH_UP = 4.0
"""Behind its schedule, a paced loop's clock runs at most this many times its speed."""


class _WarpSelector(selectors.DefaultSelector):
    """The platform selector, with waits scaled to the loop's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: TimeWarpLoop | None = None

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None or loop.speed == 1.0:
            return self._block(timeout)
        if timeout is not None and timeout <= 0:
            return self._block(0)  # work is ready: no virtual time passes
        if loop.speed is None:
            if timeout is None:
                return self._block(None)  # no timer at all: only I/O can wake us
            if loop.threads_busy:  # wall speed until the thread is done (it wakes us)
                started = time.monotonic()
                events = self._block(timeout)
                loop.advance(min(timeout, time.monotonic() - started) if events else timeout)
                return events
            events = self._block(0)
            if not events:
                loop.advance(timeout)  # nothing to do before the next timer: jump to it
            return events
        started = time.monotonic()
        if timeout is None:  # no timer: only I/O can wake us; the scaled time waited passes
            events = self._block(None)
            loop.advance((time.monotonic() - started) * loop.speed)
            return events
        # The next timer is due at a wall time on the N× schedule. Behind it (CPU work took
        # longer) the wait shrinks, but to no less than 1/CATCH_UP of the scaled delay, so
        # real I/O awaited under a timeout still gets real time.
        on_schedule = loop.wall_time_of(loop.time() + timeout) - started
        wait = max(on_schedule, timeout / (loop.speed * CATCH_UP))
        events = self._block(wait)
        if events:  # woken by I/O: the share of the way to the timer
            waited = time.monotonic() - started
            loop.advance(min(timeout, timeout * waited / wait))
        else:  # the timer is due: reach it exactly (an oversleep is only lag)
            loop.advance(timeout)
        return events

    def _block(self, wait: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        """The platform select, waiting at most ``wait`` real seconds (``None``: until I/O)."""
        loop = self.loop
        if loop is not None and loop.on_select is not None:
            loop.on_select(wait)
        return super().select(wait)


class TimeWarpLoop(asyncio.SelectorEventLoop):
    """A selector event loop with a virtual (``None``), paced virtual (``speed`` N) or wall
    (``speed`` 1.0) clock; see the module docstring."""

    def __init__(self, speed: float | None) -> None:
        selector = _WarpSelector()
        self.speed = speed
        self._virtual_s = 0.0
        self._real_origin = time.monotonic()
        self.threads_busy = 0
        """Executor jobs started and not yet done (virtual mode waits for them in real time)."""
        self.on_select: Callable[[float | None], None] | None = None
        """Observer (for tests): called with the real seconds each platform select may block
        (``0`` polls, ``None`` waits for I/O), so a test can see the pacing without timing it."""
        super().__init__(selector)
        if speed is not None and speed <= 0:
            self.close()
            raise ValueError(f"speed must be > 0 or None (virtual time), got {speed}")
        selector.loop = self

    def time(self) -> float:
        if self.speed == 1.0:
            return time.monotonic() - self._real_origin
        return self._virtual_s

    def wall_time_of(self, loop_time_s: float) -> float:
        """The ``time.monotonic()`` at which ``loop_time_s`` is due on the N× schedule."""
        return self._real_origin + loop_time_s / (self.speed or math.inf)

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """As the base loop; counted in :attr:`threads_busy` until the job is done."""
        future = super().run_in_executor(executor, func, *args)
        self.threads_busy += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future: asyncio.Future[Any]) -> None:
        self.threads_busy -= 1

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (virtual and paced modes)."""
        self._virtual_s += seconds


def run(coro: Coroutine[Any, Any, T], *, speed: float | None) -> T:
    """Run ``coro`` to completion on a fresh :class:`TimeWarpLoop`.

    ``speed=1.0`` is the wall clock on the same code path.
    """
    with asyncio.Runner(loop_factory=lambda: TimeWarpLoop(speed)) as runner:
        return runner.run(coro)
