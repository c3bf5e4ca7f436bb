"""Alerts over MQTT against a real Mosquitto: one sender per process, exactly once in normal
operation, at least once (same id) across a broker restart, the cursor moved on PUBACK only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from mosquitto_server import MosquittoServer
from test_mqtt import FAST, T0, WAIT_S, Subscriber, alert, heart, subscribed, target, until

from outputs.mqtt import ALERT_KINDS, OUTPUT_NAME, MqttAlertSender, MqttPublisher
from outputs.mqtt_codec import encode_alert, topic_for
from outputs.outbox import StoreOutbox
from outputs.store import SessionStore
from processing.records import Alert


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore.open(tmp_path / "store.db")
    try:
        yield s
    finally:
        s.close()


def sender(server: MosquittoServer, store: SessionStore) -> MqttAlertSender:
    return MqttAlertSender(target(server), StoreOutbox(store), poll_s=0.05, **FAST)


def alert_ids(sub: Subscriber) -> list[str]:
    return [str(p["id"]) for p in sub.payloads("/alert")]


async def wait_marker(server: MosquittoServer, sub: Subscriber, token: str) -> None:
    """Publish a marker alert last and wait for it: with the senders done (flushed, so every
    alert was acknowledged, hence routed, before), nothing sent earlier can still arrive."""
    marker = alert(f"marker-{token}", 0)
    out = encode_alert(marker)
    async with aiomqtt.Client(server.host, server.port) as client:
        await client.publish(out.topic, out.payload, qos=1)
    await until(lambda: marker.id in alert_ids(sub), "the marker")
    sub.messages = [m for m in sub.messages if b"marker-" not in bytes(m.payload)]  # type: ignore[arg-type,unused-ignore]


async def test_three_athletes_one_sender_each_alert_exactly_once(
    mosquitto: MosquittoServer, mqtt_token: str, store: SessionStore
) -> None:
    athletes = [f"A{i}-{mqtt_token}" for i in range(3)]
    sessions = {a: store.create_session(a, T0, "test") for a in athletes}
    expected: list[Alert] = []
    async with subscribed(mosquitto, "stridewatch/v1/+/alert", f"sub-{mqtt_token}") as sub:
        async with contextlib.AsyncExitStack() as stack:
            publishers = {a: await stack.enter_async_context(
                MqttPublisher(target(mosquitto), athlete=a, alerts="ignore")) for a in athletes}
            alerts = await stack.enter_async_context(sender(mosquitto, store))
            await alerts.wait_connected(WAIT_S)
            for i in range(4):
                for athlete in athletes:
                    a = alert(athlete, i)
                    expected.append(a)
                    store.write(sessions[athlete], [a, heart(athlete, i)])
                    publishers[athlete].publish_nowait(a)  # as the app does: skipped
                    alerts.notify()
            assert await alerts.flush(WAIT_S)
            assert await alerts.backlog() == 0
            with pytest.raises(RuntimeError, match="already has an MQTT alert sender"):
                async with sender(mosquitto, store):
                    pass
        await wait_marker(mosquitto, sub, mqtt_token)
    got = alert_ids(sub)
    assert sorted(got) == sorted(a.id for a in expected)  # each exactly once
    assert alerts.published_alerts == len(expected)
    assert all(p.published_alerts == 0 for p in publishers.values())
    # The cursor passed every alert; telemetry rows after the last alert stay for others.
    assert store.backlog(OUTPUT_NAME, kinds=ALERT_KINDS) == 0


async def test_cursor_moves_only_on_puback(
    mosquitto: MosquittoServer, mqtt_token: str, store: SessionStore
) -> None:
    athlete = f"P{mqtt_token}"
    sid = store.create_session(athlete, T0, "test")
    mosquitto.kill()  # nobody to acknowledge
    async with sender(mosquitto, store) as alerts:
        store.write(sid, [alert(athlete, 0), alert(athlete, 1)])
        alerts.notify()
        await until(lambda: alerts.link.failures >= 2, "two failed attempts")
        assert await alerts.backlog() == 2
        assert not await alerts.flush(0.2)
        assert not alerts.link.ever_connected
        mosquitto.start()
        async with subscribed(mosquitto, "stridewatch/v1/+/alert", f"late-{mqtt_token}") as sub:
            alerts.notify()
            await until(lambda: len(alert_ids(sub)) == 2, "both alerts after the broker came")
            assert await alerts.flush(WAIT_S)
        assert await alerts.backlog() == 0
        assert alerts.link.ever_connected


async def test_broker_restart_every_alert_at_least_once_same_id_and_telemetry_resumes(
    mosquitto_persistent: MosquittoServer, mqtt_token: str, store: SessionStore
) -> None:
    server = mosquitto_persistent
    athlete = f"R{mqtt_token}"
    sid = store.create_session(athlete, T0, "test")
    base = topic_for(athlete, "metrics").rsplit("/", 1)[0]
    n_alerts = 30
    sent = {alert(athlete, i).id: alert(athlete, i) for i in range(n_alerts)}
    async with subscribed(server, f"{base}/#", f"sub-{mqtt_token}") as sub, \
            MqttPublisher(target(server), athlete=athlete, alerts="ignore", **FAST) as pub, \
            sender(server, store) as alerts:
        await pub.wait_connected(WAIT_S)
        await alerts.wait_connected(WAIT_S)
        for i in range(n_alerts // 2):
            store.write(sid, [alert(athlete, i)])
            alerts.notify()
            pub.publish_nowait(heart(athlete, i))
        await until(lambda: len(alert_ids(sub)) >= 3, "first alerts")
        server.stop()  # SIGTERM: the persistent broker saves sessions and queued messages
        for i in range(n_alerts // 2, n_alerts):
            store.write(sid, [alert(athlete, i)])
            alerts.notify()
            pub.publish_nowait(heart(athlete, i))
        server.start()
        await until(lambda: alerts.link.connects >= 2, "alert sender reconnect")
        await until(lambda: pub.connections >= 2, "publisher reconnect")
        await until(lambda: sub.connections >= 2, "subscriber reconnect")
        for i in range(1000, 1010):
            pub.publish_nowait(heart(athlete, i))
        await until(lambda: set(alert_ids(sub)) == set(sent), "every alert")
        await until(lambda: any(p["t_mono_s"] == 1109.0 for p in sub.payloads("/metrics")),
                    "telemetry after the restart")
        assert await alerts.flush(WAIT_S)
        assert await alerts.backlog() == 0
    # Duplicates only with the same id, and the same content.
    for payload in sub.payloads("/alert"):
        assert json.loads(encode_alert(sent[str(payload["id"])]).payload) == payload
    # Sender side: each alert once, plus at most the one in flight at the outage.
    assert n_alerts <= alerts.published_alerts <= n_alerts + 1
    assert alerts.link.failures >= 1


async def test_deprecated_alert_outbox_publishers_share_one_sender(
    mosquitto: MosquittoServer, mqtt_token: str, store: SessionStore
) -> None:
    """``MqttPublisher(alert_outbox=store)`` (the old wiring): one shared sender, not N."""
    athletes = [f"D{i}-{mqtt_token}" for i in range(3)]
    sessions = {a: store.create_session(a, T0, "test") for a in athletes}
    expected = [alert(a, i) for i in range(3) for a in athletes]
    async with subscribed(mosquitto, "stridewatch/v1/+/alert", f"sub-{mqtt_token}") as sub:
        async with contextlib.AsyncExitStack() as stack:
            publishers = [await stack.enter_async_context(
                MqttPublisher(target(mosquitto), athlete=a, alert_outbox=store))
                for a in athletes]
            await publishers[0].wait_connected(WAIT_S)
            with pytest.raises(RuntimeError, match="already has an MQTT alert sender"):
                async with sender(mosquitto, store):
                    pass
            for a in expected:
                store.write(sessions[a.athlete], [a])
                publishers[0].publish_nowait(a)  # wakes the shared sender
            for p in publishers:
                assert await p.flush(WAIT_S)
        await wait_marker(mosquitto, sub, mqtt_token)
    assert sorted(alert_ids(sub)) == sorted(a.id for a in expected)
    assert store.backlog(OUTPUT_NAME, kinds=ALERT_KINDS) == 0
