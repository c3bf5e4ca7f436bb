"""BackgroundTask: the one owner of the background coroutine of async resources."""

from __future__ import annotations

import asyncio
import types

import pytest

from ingest.background import BackgroundTask

WAIT_S = 5.0
"""Bound on waiting for something that happens at once; only a failure waits this long."""


async def forever() -> None:
    """Runs until cancelled."""
    await asyncio.Event().wait()


async def test_second_start_is_refused_and_the_coroutine_closed() -> None:
    runner = BackgroundTask("Thing")
    runner.start(forever(), name="first")

    async def never() -> None:  # pragma: no cover: must not run
        raise AssertionError

    second = never()
    with pytest.raises(RuntimeError, match="Thing is not reentrant"):
        runner.start(second, name="second")
    assert isinstance(second, types.CoroutineType)
    assert second.cr_frame is None  # closed: no "never awaited" warning
    await runner.stop()
    assert not runner.running


async def test_grace_lets_the_coroutine_finish_then_cancels() -> None:
    finished: list[str] = []
    polite_running = asyncio.Event()
    stop_asked = asyncio.Event()
    stubborn_running = asyncio.Event()

    async def polite() -> None:
        polite_running.set()
        await stop_asked.wait()
        finished.append("polite")

    async def stubborn() -> None:
        stubborn_running.set()
        try:
            await forever()  # never ends by itself
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise

    runner = BackgroundTask("polite")
    runner.start(polite(), name="polite")
    async with asyncio.timeout(WAIT_S):
        await polite_running.wait()
    stop_asked.set()  # as an owner asks its coroutine to end, then stops it with a grace
    await runner.stop(grace_s=WAIT_S)
    assert finished == ["polite"]  # it ended by itself within the grace: not cancelled

    runner.start(stubborn(), name="stubborn")  # stopped: may start again
    async with asyncio.timeout(WAIT_S):
        await stubborn_running.wait()
    await runner.stop(grace_s=0.01)  # the grace runs out (the expected path), then it cancels
    assert finished == ["polite", "cancelled"]


async def test_failure_of_the_coroutine_reaches_the_caller() -> None:
    failing = asyncio.Event()

    async def broken() -> None:
        failing.set()
        raise OSError("disk full")

    runner = BackgroundTask("store")
    runner.start(broken(), name="broken")
    async with asyncio.timeout(WAIT_S):
        await failing.wait()  # set in the task's last step: it has failed by the time we wake
    with pytest.raises(OSError, match="disk full"):
        await runner.stop()
    await runner.stop()  # already stopped: nothing to do
