"""InfluxDB failures that speak, a status the app can show, a drain on real time, and the one
settings model (:class:`InfluxTarget`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from influx_server import InfluxServer, free_port
from pydantic import SecretStr
from test_influx import ATHLETE, T0, FakeOutbox, RecordingFakeInflux, at, session_records, wait_for

from ingest.virtual import timewarp
from outputs.influx import (
    DeliveryState,
    InfluxAuthError,
    InfluxConfigError,
    InfluxTarget,
    InfluxWriter,
    OutboxDelivery,
    describe_exception,
)
from outputs.store import SessionStore
from processing.records import Metric, MetricGroup

SECRET = "hunter2-s3cr3t"


async def test_unreachable_influxdb_warns_at_the_first_failure_with_url_and_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="outputs.influx")
    url = f"http://127.0.0.1:{free_port()}"
    target = InfluxTarget(url=url, database="d", username="gw", password=SECRET, timeout_s=2)
    outbox = FakeOutbox(session_records(3))
    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0, backoff_initial_s=0.01,
                                  backoff_max_s=0.02)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        await wait_for(lambda: delivery.progress.failed_attempts >= 3, 10, "failed attempts")
        status = delivery.progress
        assert not await delivery.drain(0.05)  # real seconds: nothing can arrive
        stop.set()
        await task
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # at the first failure, once per outage
    text = warnings[0].getMessage()
    assert url in text
    assert "connection refused" in text
    assert "start InfluxDB or fix the URL" in text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    # Between attempts it is RETRYING; the next attempt may already be SENDING (a race that
    # failed one CI run): either way it never succeeded.
    assert status.state in (DeliveryState.RETRYING, DeliveryState.SENDING)
    assert not status.ever_ok
    assert not status.reached
    assert status.url == url
    assert status.backlog == 0 or status.backlog == outbox.left()
    assert "connection refused" in (status.last_error or "")
    assert outbox.left() == len(outbox.items)  # everything kept for later
    assert outbox.registered == ["influx"]


@pytest.fixture
def refusing_influx() -> Iterator[RecordingFakeInflux]:
    """A FAKE InfluxDB that answers 401 to every write."""
    fake = RecordingFakeInflux([(401, {}, b'{"error":"authorization failed"}')] * 5)
    yield fake
    fake.close()


async def test_unauthorised_fails_fast_and_drain_returns(
    refusing_influx: RecordingFakeInflux,
) -> None:
    fake = refusing_influx
    target = InfluxTarget(url=fake.url, database="d", username="gw", password=SECRET)
    outbox = FakeOutbox(session_records(2))
    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(outbox, writer, batch_age_s=0.0)
        task = asyncio.create_task(delivery.run())
        drained = await delivery.drain(30.0)  # returns on the failure, not at the deadline
        with pytest.raises(InfluxAuthError) as caught:
            await task
    assert not drained
    assert SECRET not in str(caught.value)
    status = delivery.progress
    assert status.state is DeliveryState.FAILED
    assert not status.ever_ok
    assert not status.reached
    assert "STRIDEWATCH_INFLUX_PASSWORD" in (status.last_error or "")


def test_drain_waits_on_real_time_on_a_virtual_clock(
    influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    """`demo --speed max` runs on virtual time, where a 10 s loop timeout is over at once; the
    drain still delivers everything (issue #10: 15 % was left behind)."""
    n = 6_000
    records = [Metric(athlete=ATHLETE, time_utc=at(i * 0.01), time_mono_s=i * 0.01,
                      group=MetricGroup.HEART, values={"heart_rate_bpm": 100.0 + i % 50})
               for i in range(n)]  # fmt: skip
    target = InfluxTarget(url=influxd.url, database=influx_db, batch_lines=500)

    async def main() -> tuple[bool, int]:
        with SessionStore.open(tmp_path / "s.db") as store:
            store.write(store.create_session(ATHLETE, T0, "virtual"), records)
            async with InfluxWriter(target) as writer:
                delivery = OutboxDelivery(store, writer)
                stop = asyncio.Event()
                task = asyncio.create_task(delivery.run(stop))
                drained = await delivery.drain(60.0)
                stop.set()
                await task
                return drained, store.backlog("influx")

    drained, backlog = timewarp.run(main(), speed=None)
    assert drained
    assert backlog == 0
    count = influxd.query("SELECT COUNT(heart_rate_bpm) FROM heart", influx_db)
    assert count["results"][0]["series"][0]["values"][0][1] == n


# ------------------------------------------------------------------------------ settings


def test_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(InfluxConfigError) as caught:
        InfluxTarget(url=f"http://gw:{SECRET}@127.0.0.1:8086", database="d")
    assert SECRET not in str(caught.value)
    assert "STRIDEWATCH_INFLUX_TOKEN" in str(caught.value)


def test_secrets_are_secretstr_and_never_in_repr() -> None:
    target = InfluxTarget(url="http://h:8086", database="d", username="gw", password=SECRET)
    assert isinstance(target.password, SecretStr)
    assert SECRET not in repr(target)
    assert SECRET not in str(target.password)
    assert target.auth_headers()["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        ({}, {}, {"mode": "v1", "database": "stridewatch", "token": None, "username": None}),
        ({"database": "runs", "retention_policy": "raw"}, {"STRIDEWATCH_INFLUX_TOKEN": "t"},
         {"mode": "v1", "database": "runs", "retention_policy": "raw", "username": None}),
        ({"auth": "password"}, {"STRIDEWATCH_INFLUX_USER": "gw",
                                "STRIDEWATCH_INFLUX_PASSWORD": "pw"},
         {"mode": "v1", "username": "gw", "token": None}),
        ({"org": "o", "bucket": "b"}, {"STRIDEWATCH_INFLUX_TOKEN": "t"},
         {"mode": "v2", "org": "o", "bucket": "b", "database": None}),
        ({"auth": "none"}, {"STRIDEWATCH_INFLUX_TOKEN": "t"}, {"token": None}),
        ({"batch_lines": 100}, {}, {"batch_lines": 100}),
    ],
)  # fmt: skip
def test_build_is_the_one_way_to_settings(
    kwargs: dict[str, object], env: dict[str, str], expected: dict[str, object]
) -> None:
    target = InfluxTarget.build("http://127.0.0.1:8086", environ=env, **kwargs)  # type: ignore[arg-type]
    for key, value in expected.items():
        assert getattr(target, key) == value, key
    if "STRIDEWATCH_INFLUX_TOKEN" in env and kwargs.get("auth") != "none":
        assert target.auth_headers() == {"Authorization": "Token t"}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"auth": "token"}, "STRIDEWATCH_INFLUX_TOKEN"),
        ({"auth": "password"}, "STRIDEWATCH_INFLUX_PASSWORD"),
        ({"org": "o", "bucket": "b"}, "needs a token"),
    ],
)
def test_build_names_missing_credentials(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(InfluxConfigError, match=problem):
        InfluxTarget.build("http://127.0.0.1:8086", environ={}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError("timed out"), "no answer within 2 s"),
        (ConnectionResetError(104, "reset"), "closed the connection"),
    ],
)
def test_failures_are_described_in_words(exc: BaseException, words: str) -> None:
    assert words in describe_exception(exc, 2.0)
