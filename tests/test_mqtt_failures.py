"""Failures that speak (issue #10): a broker that refuses us is reported at the first failure,
with the URL and the cause in words, never the password; every MQTT client exposes ``link``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mosquitto_server import MosquittoServer, free_port
from test_mqtt import FAST, WAIT_S, until

from ingest.reconnect import LinkStatus
from outputs.mqtt import MqttAlertSender, MqttPublisher, MqttSink, MqttTarget
from outputs.mqtt.alerts import MemoryAlertOutbox
from outputs.mqtt_source import MqttReadingPublisher, MqttReadingSource

PASSWORD = "c0rrect-Horse"
WRONG = "wr0ng-Battery-s3cret"


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto-auth", users={"coach": PASSWORD})
    server.start()
    try:
        yield server
    finally:
        server.kill()


def creds(password: str) -> dict[str, str]:
    return {"STRIDEWATCH_MQTT_USER": "coach", "STRIDEWATCH_MQTT_PASSWORD": password}


async def _sink_cb(record: object) -> None:
    return None


CLIENTS: dict[str, Callable[[MqttTarget], Any]] = {
    "publisher": lambda t: MqttPublisher(t, athlete="Ana", **FAST),
    "alert_sender": lambda t: MqttAlertSender(t, MemoryAlertOutbox(), **FAST),
    "sink": lambda t: MqttSink(t, on_record=_sink_cb, client_id="sink-fail", **FAST),
    "source": lambda t: MqttReadingSource(t, **FAST),
    "reading_publisher": lambda t: MqttReadingPublisher(t, **FAST),
}


@contextlib.asynccontextmanager
async def failing(client: Any, caplog: pytest.LogCaptureFixture) -> AsyncIterator[LinkStatus]:
    """Run ``client`` until its second failed attempt; yield its link status."""
    caplog.set_level(logging.INFO)
    async with client:
        await until(lambda: client.link.failures >= 2, "two failed attempts")
        yield client.link


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("kind", list(CLIENTS))
async def test_wrong_password_is_reported_at_the_first_failure_without_the_password(
    auth_broker: MosquittoServer, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    t = MqttTarget.from_url(auth_broker.url, env=creds(WRONG))
    async with failing(CLIENTS[kind](t), caplog) as link:
        assert not link.connected
        assert not link.ever_connected
        assert link.last_error is not None
        assert "refused the login" in link.last_error
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings  # the first failure speaks; repeats go to INFO
    text = warnings[0]
    assert auth_broker.url in text
    assert "not authori" in text.lower()
    assert "STRIDEWATCH_MQTT_PASSWORD" in text
    assert all(WRONG not in r.getMessage() for r in caplog.records)
    assert WRONG not in caplog.text


async def test_right_password_connects(
    auth_broker: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    t = MqttTarget.from_url(auth_broker.url, env=creds(PASSWORD))
    async with MqttPublisher(t, athlete="Ana", **FAST) as pub:
        await pub.wait_connected(WAIT_S)
        assert pub.link.ever_connected
        assert pub.link.failures == 0
    assert PASSWORD not in caplog.text


async def test_no_credentials_for_a_broker_that_needs_them(
    auth_broker: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    t = MqttTarget.from_url(auth_broker.url, env={})
    async with failing(MqttPublisher(t, athlete="Ana", **FAST), caplog) as link:
        assert link.last_error is not None
        assert "no credentials were given" in link.last_error


async def test_tls_to_a_plain_port_is_reported(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"mqtts://{mosquitto.host}:{mosquitto.port}"
    t = MqttTarget.from_url(url, env=creds(WRONG))
    async with failing(MqttPublisher(t, athlete="Ana", **FAST), caplog) as link:
        assert not link.ever_connected
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert url in warnings[0]
    assert "TLS handshake failed" in warnings[0]
    assert "mqtt://" in warnings[0]  # what to do
    assert WRONG not in caplog.text


async def test_nothing_listening_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    t = MqttTarget.from_url(url, env={})
    async with failing(MqttAlertSender(t, MemoryAlertOutbox(), **FAST), caplog) as link:
        assert link.last_error is not None
        assert "connection refused" in link.last_error
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert url in warnings[0]
    assert "is a broker running" in warnings[0]


async def test_lost_connection_is_a_warning_and_reconnect_resets_the_backoff(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = MqttTarget.from_url(mosquitto.url, env={})
    async with MqttPublisher(t, athlete="Ana", **FAST) as pub:
        await pub.wait_connected(WAIT_S)
        mosquitto.kill()
        await until(lambda: pub.link.failures >= 1, "the loss")
        assert not pub.link.connected
        assert pub.link.ever_connected
        mosquitto.start()
        await until(lambda: pub.link.connects >= 2, "the reconnect")
    messages = warnings_of(caplog)
    assert any("lost" in m and mosquitto.url in m for m in messages), messages
