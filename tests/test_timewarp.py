"""Time-warped event loops: virtual and scaled clocks.

Nothing here times the tests: the loop's pacing is observed through
:attr:`~ingest.virtual.timewarp.TimeWarpLoop.on_select`, the real seconds it lets each platform
select block. Burning CPU for a wall-clock duration is only ever the stimulus ("work").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ingest.clock import LoopClock
from ingest.virtual import timewarp

FLOAT_SLACK_S = 1e-9
"""Rounding of the float arithmetic on ``time.monotonic()`` values (not a timing tolerance)."""


@contextlib.contextmanager
def recorded_selects(*, never_block: bool = False) -> Iterator[list[float | None]]:
    """The real seconds each platform select of the running loop may block, while open.

    ``never_block``: fail at once (from inside the loop) on a select that could block, rather
    than after sleeping through it.
    """
    loop = asyncio.get_running_loop()
    assert isinstance(loop, timewarp.TimeWarpLoop)
    waits: list[float | None] = []

    def observe(wait: float | None) -> None:
        waits.append(wait)
        if never_block and wait != 0:
            raise AssertionError(f"the loop was about to block ({wait} s), selects: {waits}")

    loop.on_select = observe
    try:
        yield waits
    finally:
        loop.on_select = None


def burn_cpu(seconds: float) -> None:
    """The stimulus "CPU work": busy for ``seconds`` of wall time (never asserted on)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


async def _sleep_an_hour(
    *, never_block: bool = False
) -> tuple[float, timedelta, list[float | None]]:
    clock = LoopClock(datetime(2026, 1, 1, tzinfo=UTC))
    with recorded_selects(never_block=never_block) as waits:
        start = clock.monotonic_s()
        utc0 = clock.utc()
        await asyncio.sleep(3600)
        # A timeout around a shorter sleep: the sleep wins (the timeout's 55 s margin is 18 ms
        # of wall time at 3000x; the paced clock never runs ahead of its schedule anyway).
        async with asyncio.timeout(60):
            await asyncio.sleep(5)
        return clock.monotonic_s() - start, clock.utc() - utc0, waits


def test_virtual_time_jumps_to_the_next_timer() -> None:
    elapsed, utc_elapsed, waits = timewarp.run(_sleep_an_hour(never_block=True), speed=None)
    assert elapsed == pytest.approx(3605.0)
    assert utc_elapsed == timedelta(seconds=3605)
    # An hour and five seconds of timers, and the loop never blocked: every select only
    # polled, and the clock jumped to each timer (a handful of selects, not a stepped hour).
    assert waits
    assert set(waits) == {0}
    assert len(waits) < 20, waits


async def _timers_while_a_thread_works() -> tuple[list[float | None], list[float | None], int]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, timewarp.TimeWarpLoop)
    release = threading.Event()
    job = asyncio.ensure_future(asyncio.to_thread(release.wait))
    try:
        await asyncio.sleep(0)  # the job is on its thread
        busy = getattr(loop, "threads_busy", 0)
        with recorded_selects() as while_busy:
            await asyncio.sleep(0.02)  # a 20 ms timer (bumble's advertising interval)
    finally:
        release.set()  # the thread ends whatever failed (or the loop's shutdown waits for it)
    await job
    with recorded_selects(never_block=True) as after:
        await asyncio.sleep(3600)
    return while_busy, after, busy - getattr(loop, "threads_busy", 0)


def test_virtual_time_waits_for_a_thread_at_wall_speed() -> None:
    """While a thread works, the virtual clock does not jump: the loop waits (really) for the
    next timer, so it never spins on timers and starves the thread of the GIL (a 3-athlete
    ``demo --speed max`` hung in CI on the session store's commits)."""
    while_busy, after, done = timewarp.run(_timers_while_a_thread_works(), speed=None)
    assert done == 1  # the job was counted while it ran, and no longer once done
    # One real wait for the timer (then polls while the sleeper wakes), no jump.
    assert [w for w in while_busy if w != 0] == [pytest.approx(0.02)]
    assert set(after) == {0}  # the thread done: time jumps again, an hour without blocking


def test_scaled_time_runs_faster_than_real_time() -> None:
    speed = 3000.0
    elapsed, _, waits = timewarp.run(_sleep_an_hour(), speed=speed)
    assert elapsed == pytest.approx(3605.0)  # timers are reached exactly
    assert None not in waits  # always a timer to wait for: never an open-ended wait
    blocked = sum(w for w in waits if w is not None)
    # Paced: it really waits, at least the catch-up share of the scaled schedule...
    assert blocked >= 3605.0 / (speed * timewarp.CATCH_UP) - FLOAT_SLACK_S
    # ...and never longer than the N× schedule: 3605 virtual seconds in at most 1.2 real ones.
    assert blocked <= 3605.0 / speed + FLOAT_SLACK_S


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        timewarp.TimeWarpLoop(0)


def test_loop_clock_needs_an_aware_origin() -> None:
    async def make() -> None:
        LoopClock(datetime(2026, 1, 1))

    with pytest.raises(ValueError, match="timezone-aware"):
        asyncio.run(make())


def test_paced_time_does_not_pass_while_the_cpu_works() -> None:
    """At speed N the clock moves only while the loop waits: 0.2 s of CPU work is no virtual
    time (a plain N× clock made it 20 virtual seconds and fired the timeout below)."""

    async def main() -> tuple[float, float, list[float | None]]:
        loop = asyncio.get_running_loop()
        with recorded_selects() as waits:
            start = loop.time()
            burn_cpu(0.2)
            after_work = loop.time()
            async with asyncio.timeout(1.0):
                await asyncio.sleep(0.5)
            return after_work - start, loop.time() - start, waits

    during_work, total, waits = timewarp.run(main(), speed=100.0)
    assert during_work == 0.0
    assert total == pytest.approx(0.5)
    # Behind schedule after the work (0.2 s of wall time > the sleep's 5 ms at 100x), the
    # sleep still gets a quarter of its scaled time: exactly that, in one wait.
    assert [w for w in waits if w != 0] == [pytest.approx(0.5 / (100.0 * timewarp.CATCH_UP))]


def test_paced_time_keeps_to_its_schedule() -> None:
    """Ahead of schedule, paced time runs at most N× the wall clock; CPU work done between
    timers overlaps the schedule instead of adding to it."""
    speed, sleep_s, work_s = 100.0, 2.0, 0.01  # each sleep is 20 ms of wall time at 100x

    async def main() -> tuple[float, list[float], list[float | None]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, timewarp.TimeWarpLoop)
        lead: list[float] = []
        with recorded_selects() as waits:
            for _ in range(10):
                burn_cpu(work_s)
                await asyncio.sleep(sleep_s)
                # How far the clock is ahead of the N× schedule (it must never be).
                lead.append(loop.wall_time_of(loop.time()) - time.monotonic())
            return loop.time(), lead, waits

    virtual_end, lead, waits = timewarp.run(main(), speed=speed)
    assert virtual_end == pytest.approx(10 * sleep_s)
    assert max(lead) <= FLOAT_SLACK_S
    blocked = [w for w in waits if w != 0]
    assert len(blocked) == 10
    assert None not in blocked
    # Each 10 ms of work came out of the following 20 ms wait instead of adding to it (and
    # a wait never shrinks below the catch-up share).
    scaled = sleep_s / speed
    for wait in blocked:
        assert wait is not None
        assert scaled / timewarp.CATCH_UP - FLOAT_SLACK_S <= wait <= scaled - work_s + FLOAT_SLACK_S


def test_wall_clock_at_speed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """At speed 1.0 the loop's clock is ``time.monotonic()`` (a fake one here, moved by hand)."""
    wall = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(timewarp, "time", SimpleNamespace(monotonic=lambda: wall.now))

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        wall.now += 0.05
        return loop.time() - start

    assert timewarp.run(main(), speed=1.0) == pytest.approx(0.05)
