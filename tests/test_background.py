"""BackgroundTask: the one owner of the background coroutine of async resources."""

from __future__ import annotations

import asyncio

import pytest

from ingest.background import BackgroundTask


async def test_second_start_is_refused_and_the_coroutine_closed() -> None:
    runner = BackgroundTask("Thing")
    runner.start(asyncio.sleep(10), name="first")

    async def never() -> None:  # pragma: no cover: must not run
        raise AssertionError

    second = never()
    with pytest.raises(RuntimeError, match="Thing is not reentrant"):
        runner.start(second, name="second")
    assert second.cr_frame is None  # closed: no "never awaited" warning
    await runner.stop()
    assert not runner.running


async def test_grace_lets_the_coroutine_finish_then_cancels() -> None:
    finished: list[str] = []

    async def polite() -> None:
        await asyncio.sleep(0.05)
        finished.append("polite")

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise

    runner = BackgroundTask("polite")
    runner.start(polite(), name="polite")
    await runner.stop(grace_s=5.0)
    runner.start(stubborn(), name="stubborn")  # stopped: may start again
    await asyncio.sleep(0)
    await runner.stop(grace_s=0.05)
    assert finished == ["polite", "cancelled"]


async def test_failure_of_the_coroutine_reaches_the_caller() -> None:
    async def broken() -> None:
        raise OSError("disk full")

    runner = BackgroundTask("store")
    runner.start(broken(), name="broken")
    await asyncio.sleep(0.01)
    with pytest.raises(OSError, match="disk full"):
        await runner.stop()
    await runner.stop()  # already stopped: nothing to do
