"""The one reconnect loop (ingest/reconnect.py) that every MQTT client uses: no broker needed."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from ingest.backoff import backoff_delay_s
from ingest.reconnect import LinkChange, Reconnector

WAIT_S = 10.0
TINY = {"initial_s": 1e-4, "max_s": 1e-3}


class LinkDownError(Exception):
    pass


def script(steps: list[str], link: list[Reconnector], stop: asyncio.Event):  # type: ignore[no-untyped-def]
    """A session that follows ``steps``: "fail" (never connects), "lost" (connects, then
    fails), "group" (fails inside an exception group); stops when the script ends."""
    it = iter(steps)

    async def session() -> None:
        step = next(it, None)
        if step is None:
            stop.set()
            return
        if step == "lost":
            link[0].connected()
        if step == "group":
            raise ExceptionGroup("tg", [LinkDownError("in a group")])
        raise LinkDownError(f"step {step}")

    return session


async def test_counter_resets_after_a_connect_and_every_change_is_reported() -> None:
    stop = asyncio.Event()
    changes: list[LinkChange] = []
    holder: list[Reconnector] = []
    link = Reconnector("test", "mqtt://h:1", stop=stop, retry_on=(LinkDownError,),
                       rng=random.Random(5), on_change=changes.append, **TINY)  # type: ignore[arg-type]
    holder.append(link)
    await link.run(script(["fail", "fail", "lost", "fail", "group"], holder, stop))
    # Attempts: 0, 1 (failures in a row), then reset by the connect: 0, 1, 2.
    rng = random.Random(5)
    expected = [backoff_delay_s(a, rng, jitter="full", **TINY) for a in (0, 1, 0, 1, 2)]
    failures = [c for c in changes if c.event != "connected"]
    assert [c.retry_in_s for c in failures] == expected
    assert [c.event for c in changes] == ["failed", "failed", "connected", "lost", "failed",
                                          "failed"]
    assert link.status.failures == 5
    assert link.status.connects == 1
    assert link.status.ever_connected
    assert not link.status.connected
    assert link.status.last_error == "in a group"  # the leaf of the group


async def test_stop_interrupts_the_wait_at_once() -> None:
    stop = asyncio.Event()
    failed = asyncio.Event()
    link = Reconnector("test", "mqtt://h:1", stop=stop, retry_on=(LinkDownError,),
                       initial_s=3600.0, max_s=3600.0,
                       on_change=lambda _c: failed.set())

    async def session() -> None:
        raise LinkDownError("down")

    task = asyncio.create_task(link.run(session))
    async with asyncio.timeout(WAIT_S):
        await failed.wait()
    stop.set()
    async with asyncio.timeout(WAIT_S):  # an hour's backoff: only the stop can end it
        await task
    assert not task.cancelled()


async def test_first_failure_warns_repeats_are_info_a_new_cause_warns_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    causes = iter(["refused", "refused", "refused", "timeout"])

    async def session() -> None:
        cause = next(causes, None)
        if cause is None:
            stop.set()
            return
        raise LinkDownError(cause)

    link = Reconnector("MQTT test", "mqtt://broker:1883", stop=stop, retry_on=(LinkDownError,),
                       describe=lambda e: f"cause={e}", **TINY)  # type: ignore[arg-type]
    await link.run(session)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "mqtt://broker:1883" in warnings[0]
    assert "cause=refused" in warnings[0]
    assert "cause=timeout" in warnings[1]
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "still" in r.getMessage()]
    assert len(infos) == 2


async def test_other_errors_are_not_retried() -> None:
    link = Reconnector("test", "mqtt://h:1", stop=asyncio.Event(), retry_on=(LinkDownError,))

    async def session() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await link.run(session)


async def test_wait_connected_is_bounded() -> None:
    link = Reconnector("test", "mqtt://h:1", stop=asyncio.Event(), retry_on=(LinkDownError,))
    with pytest.raises(TimeoutError):
        await link.wait_connected(0.01)
    link.connected()
    await link.wait_connected(WAIT_S)


def test_backoff_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Reconnector("t", "u", stop=asyncio.Event(), retry_on=(LinkDownError,), initial_s=0)
