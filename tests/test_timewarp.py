"""Time-warped event loops: virtual and scaled clocks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.clock import LoopClock
from ingest.virtual import timewarp


async def _sleep_an_hour() -> tuple[float, timedelta]:
    clock = LoopClock(datetime(2026, 1, 1, tzinfo=UTC))
    start = clock.monotonic_s()
    utc0 = clock.utc()
    await asyncio.sleep(3600)
    # A timeout around a shorter sleep: the sleep wins. The margin (55 s, 18 ms of real time at
    # 3000x) absorbs scheduling jitter on a loaded machine.
    async with asyncio.timeout(60):
        await asyncio.sleep(5)
    return clock.monotonic_s() - start, clock.utc() - utc0


def test_virtual_time_jumps_to_the_next_timer() -> None:
    real = time.monotonic()
    elapsed, utc_elapsed = timewarp.run(_sleep_an_hour(), speed=None)
    assert elapsed == pytest.approx(3605.0)
    assert utc_elapsed == timedelta(seconds=3605)
    assert time.monotonic() - real < 2.0


def test_scaled_time_runs_faster_than_real_time() -> None:
    real = time.monotonic()
    elapsed, _ = timewarp.run(_sleep_an_hour(), speed=3000.0)
    assert elapsed == pytest.approx(3605.0, rel=0.01)  # a few ms of real jitter, scaled
    assert time.monotonic() - real < 5.0


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

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        busy_until = time.monotonic() + 0.2
        while time.monotonic() < busy_until:
            pass
        after_work = loop.time()
        async with asyncio.timeout(1.0):
            await asyncio.sleep(0.5)
        return after_work - start, loop.time() - start

    real = time.monotonic()
    during_work, total = timewarp.run(main(), speed=100.0)
    assert during_work == 0.0
    assert total == pytest.approx(0.5)
    # Behind schedule after the work, the sleep still gets a quarter of its scaled time.
    assert time.monotonic() - real >= 0.2 + 0.5 / (100.0 * timewarp.CATCH_UP)


def test_paced_time_keeps_to_its_schedule() -> None:
    """Ahead of schedule, paced time runs at most N× the wall clock; CPU work done between
    timers overlaps the schedule instead of adding to it."""

    async def main() -> None:
        for _ in range(10):
            busy_until = time.monotonic() + 0.01
            while time.monotonic() < busy_until:
                pass
            await asyncio.sleep(2.0)  # 20 ms of wall time at 100x

    real = time.monotonic()
    timewarp.run(main(), speed=100.0)
    elapsed = time.monotonic() - real
    assert 0.2 <= elapsed < 0.2 + 0.1  # the 10 ms of work each time fit in the 20 ms waits


def test_wall_clock_at_speed_one() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        busy_until = time.monotonic() + 0.05
        while time.monotonic() < busy_until:
            pass
        return loop.time() - start

    assert timewarp.run(main(), speed=1.0) >= 0.05
