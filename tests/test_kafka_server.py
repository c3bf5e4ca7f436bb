"""The Tansu test broker (tests/kafka_server.py) speaks enough Kafka for our clients."""

from __future__ import annotations

import socket
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType
from kafka_server import DEFAULT_RETENTION_MS, TansuServer

BOUND_S = 30.0
"""Bound on waiting for messages to come back (~1.5 s here, mostly the group join)."""
SESSION_TIMEOUT_MS = 3000
"""Tansu holds a group join for about half the session timeout (librdkafka's default 45 s
would make the first poll wait ~22 s)."""


def _topic_config(kafka: TansuServer, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = kafka.admin()  # keep a reference: a collected client fails its futures (_DESTROY)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: entry.value for name, entry in entries.items()}


def test_keyed_messages_come_back_in_per_key_order(kafka: TansuServer) -> None:
    kafka.create_topics(["strides"], partitions=4)
    keys = [f"athlete-{i}" for i in range(8)]
    per_key = 50
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5})
    for seq in range(per_key):
        for key in keys:
            producer.produce("strides", key=key, value=str(seq))
    assert producer.flush(BOUND_S) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": "test-order",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 500,
        }
    )
    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    try:
        consumer.subscribe(["strides"])
        deadline = time.monotonic() + BOUND_S
        while sum(map(len, seen.values())) < len(keys) * per_key:
            assert time.monotonic() < deadline, f"only {dict(seen)} within {BOUND_S} s"
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            key, value = message.key(), message.value()
            assert key is not None
            assert value is not None
            seen[key.decode()].append(int(value))
            partitions[key.decode()].add(message.partition())
    finally:
        consumer.close()

    assert seen == {key: list(range(per_key)) for key in keys}
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert len(set().union(*partitions.values())) > 1, "keys should spread over partitions"


def test_create_topics_sets_retention(kafka: TansuServer) -> None:
    kafka.create_topics(["default-retention"], partitions=2)
    kafka.create_topics(["short-retention"], retention_ms=60_000)

    assert _topic_config(kafka, "default-retention").get("retention.ms") == str(
        DEFAULT_RETENTION_MS
    )
    assert _topic_config(kafka, "short-retention").get("retention.ms") == "60000"
    topics = kafka.admin().list_topics(timeout=10).topics
    assert len(topics["default-retention"].partitions) == 2
    assert len(topics["short-retention"].partitions) == 1


def test_kill_closes_the_port(kafka: TansuServer) -> None:
    with socket.create_connection((kafka.host, kafka.port), timeout=5):
        pass
    kafka.kill()
    assert not kafka.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((kafka.host, kafka.port), timeout=5).close()


def test_restart_on_the_same_port_is_empty(kafka: TansuServer) -> None:
    kafka.create_topics(["lost-on-restart"])
    port = kafka.port
    kafka.stop()
    kafka.start()

    assert kafka.port == port
    assert "lost-on-restart" not in kafka.admin().list_topics(timeout=10).topics
