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
