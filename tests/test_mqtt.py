"""MQTT output: codec (pure, hypothesis) and publisher/sink against a real Mosquitto broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mosquitto_server import MosquittoServer

from outputs.errors import RecordCodecError
from outputs.mqtt import (
    MemoryAlertOutbox,
    MqttPublisher,
    MqttSink,
    MqttTarget,
)
from outputs.mqtt_codec import (
    SinkRecord,
    decode_alert,
    decode_message,
    decode_metric,
    encode_alert,
    encode_metric,
    escape_topic_level,
    ha_discovery_messages,
    parse_topic,
    topic_for,
    unescape_topic_level,
)
from processing.records import Alert, AlertKind, Metric, MetricGroup, Severity

T0 = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
WAIT_S = 10.0
"""Bound on every wait for the broker (loopback answers in milliseconds)."""
class Fast(TypedDict):
    backoff_initial_s: float
    backoff_max_s: float


FAST: Fast = {"backoff_initial_s": 0.05, "backoff_max_s": 0.3}
"""Reconnect quickly in tests."""


def heart(athlete: str, i: int, group: MetricGroup = MetricGroup.HEART) -> Metric:
    return Metric(athlete=athlete, time_utc=T0 + timedelta(seconds=i), time_mono_s=100.0 + i,
                  group=group, values={"heart_rate_bpm": 120 + i % 50, "contact": "detected",
                                       "rise_30s_bpm": None})


def alert(athlete: str, i: int) -> Alert:
    return Alert(id=f"{athlete}-hr_surge-{i}", athlete=athlete, time_utc=T0 + timedelta(seconds=i),
                 time_mono_s=100.0 + i, kind=AlertKind.HR_SURGE, severity=Severity.WARNING,
                 value=171.0, threshold=20.0, message=f"HR surge #{i}")


def target(server: MosquittoServer) -> MqttTarget:
    return MqttTarget.from_url(server.url, env={})


# --------------------------------------------------------------------------------- codec


@given(st.text(min_size=1))
def test_topic_level_escape_round_trips_and_is_a_valid_level(name: str) -> None:
    level = escape_topic_level(name)
    assert not set(level) & {"+", "#", "/", "\x00"}
    assert unescape_topic_level(level) == name
    assert parse_topic(topic_for(name, "metrics")) == (name, "metrics")


def test_topic_escape_examples() -> None:
    assert topic_for("Zoë", "alert") == "stridewatch/v1/Zoë/alert"
    assert topic_for("a/b+c#d%", "rr") == "stridewatch/v1/a%2Fb%2Bc%23d%25/rr"
    with pytest.raises(RecordCodecError, match="empty"):
        topic_for("", "metrics")


@pytest.mark.parametrize(
    ("group", "kind"),
    [(MetricGroup.HEART, "metrics"), (MetricGroup.GAIT, "metrics"),
     (MetricGroup.SESSION, "metrics"), (MetricGroup.RR, "rr"), (MetricGroup.HRV, "hrv")],
)
def test_metric_payload_and_round_trip(group: MetricGroup, kind: str) -> None:
    m = heart("Ana", 3, group)
    out = encode_metric(m)
    assert out.topic == f"stridewatch/v1/Ana/{kind}"
    assert (out.qos, out.retain) == (0, False)
    data = json.loads(out.payload)
    assert data["t"] == "2026-05-01T06:30:03Z"
    assert ("group" in data) == (kind == "metrics")
    assert decode_message(out.topic, out.payload) == m


def test_non_finite_metric_values_become_null() -> None:
    m = Metric(athlete="Ana", time_utc=T0, time_mono_s=1.0, group=MetricGroup.HRV,
               values={"rmssd_60s_ms": float("nan"), "sdnn_60s_ms": float("inf")})
    out = encode_metric(m)
    assert b"NaN" not in out.payload
    assert b"Infinity" not in out.payload
    assert decode_metric("Ana", "hrv", out.payload).values == {"rmssd_60s_ms": None,
                                                                 "sdnn_60s_ms": None}


def test_alert_payload_keeps_id_and_round_trips() -> None:
    a = alert("Ana", 7)
    out = encode_alert(a)
    assert (out.topic, out.qos, out.retain) == ("stridewatch/v1/Ana/alert", 1, False)
    assert json.loads(out.payload)["id"] == "Ana-hr_surge-7"
    assert decode_alert("Ana", out.payload) == a


@pytest.mark.parametrize(
    ("topic", "payload"),
    [("stridewatch/v1/Ana/metrics", b"not json"),
     ("stridewatch/v1/Ana/metrics", b"[1]"),
     ("stridewatch/v1/Ana/metrics", b'{"t":"2026-05-01T06:30:00Z"}'),
     ("stridewatch/v1/Ana/alert", b'{"id":"x"}'),
     ("stridewatch/v1/Ana/status", b"online"),
     ("other/topic", b"{}")],
    ids=["not-json", "not-object", "missing-keys", "alert-missing", "status", "foreign-topic"],
)
def test_decode_message_rejects_bad_input_with_a_codec_error(topic: str, payload: bytes) -> None:
    with pytest.raises(RecordCodecError):
        decode_message(topic, payload)


def test_target_from_url() -> None:
    env = {"STRIDEWATCH_MQTT_USER": "coach", "STRIDEWATCH_MQTT_PASSWORD": "s3cret"}
    t = MqttTarget.from_url("mqtts://broker.example", env=env)
    assert (t.host, t.port, t.tls, t.username) == ("broker.example", 8883, True, "coach")
    assert t.password is not None
    assert t.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(t)
    assert "s3cret" not in str(t)
    assert MqttTarget.from_url("mqtt://127.0.0.1:1884", env={}).port == 1884
    for bad in ("http://h:1883", "mqtt://", "h:1883", "mqtt://u:p@h", "mqtt://h:99999",
                "mqtt://h/path"):
        with pytest.raises(ValueError, match=r"expected mqtt://HOST\[:PORT\]"):
            MqttTarget.from_url(bad, env={})


@pytest.mark.parametrize("url", ["mqtt://coach:hunter2@broker:1883", "mqtts://:hunter2@broker",
                                 "mqtt://coach:hunter2@broker:99999"])
def test_password_in_url_is_refused_without_printing_it(url: str) -> None:
    with pytest.raises(ValueError, match="not in the URL") as info:
        MqttTarget.from_url(url, env={})
    assert "hunter2" not in str(info.value)
    assert "***@broker" in str(info.value)


def test_ha_discovery_configs() -> None:
    messages = ha_discovery_messages("Ana B")
    assert len(messages) == 4
    for m in messages:
        assert m.topic.startswith("homeassistant/sensor/stridewatch_ana_b_")
        assert m.topic.endswith("/config")
        assert m.retain
        assert m.qos == 1
        config = json.loads(m.payload)
        assert config["availability_topic"] == "stridewatch/v1/Ana B/status"
    keys = {json.loads(m.payload)["state_topic"]: m for m in messages}
    assert set(keys) == {"stridewatch/v1/Ana B/metrics", "stridewatch/v1/Ana B/alert"}


# ---------------------------------------------------------------- queue policy (no broker)


async def test_telemetry_drops_oldest_alerts_are_kept_while_broker_is_unreachable() -> None:
    publisher = MqttPublisher(MqttTarget(host="127.0.0.1", port=1), athlete="Ana",
                              queue_size=100)
    for i in range(250):
        await publisher.publish(heart("Ana", i))
    for i in range(30):
        await publisher.publish(alert("Ana", i))
    assert publisher.dropped_telemetry == 150
    queued = publisher._telemetry.take(1000)
    assert [json.loads(m.payload)["t_mono_s"] for m in queued] == [100.0 + i
                                                                  for i in range(150, 250)]
    outbox = publisher._memory_outbox
    assert outbox is not None
    assert len(outbox) == 30


# ------------------------------------------------------------------ real broker helpers


class Subscriber:
    """A plain aiomqtt subscriber that reconnects (persistent session), collecting messages."""

    def __init__(self, server: MosquittoServer, topic: str, client_id: str) -> None:
        self.server = server
        self.topic = topic
        self.client_id = client_id
        self.messages: list[aiomqtt.Message] = []
        self.subscribed = asyncio.Event()
        self.connections = 0

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.server.host, self.server.port,
                                          identifier=self.client_id,
                                          clean_session=False) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connections += 1
                    self.subscribed.set()
                    async for message in client.messages:
                        self.messages.append(message)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    def payloads(self, suffix: str) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.messages  # type: ignore[arg-type]
                if str(m.topic).endswith(suffix)]


@contextlib.asynccontextmanager
async def subscribed(server: MosquittoServer, topic: str, client_id: str
                     ) -> AsyncIterator[Subscriber]:
    sub = Subscriber(server, topic, client_id)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sub.run())
        async with asyncio.timeout(WAIT_S):
            await sub.subscribed.wait()
        try:
            yield sub
        finally:
            task.cancel()


async def until(predicate: object, what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate()`` (bounded) until true."""
    assert callable(predicate)
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 (polls plain counters)
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}") from None


# ------------------------------------------------------------------------ publisher tests


async def test_publishes_metrics_alerts_and_retained_status(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"Ana/{mqtt_token}"
    base = f"stridewatch/v1/{escape_topic_level(athlete)}"
    async with subscribed(mosquitto, f"{base}/#", f"sub-{mqtt_token}") as sub:
        async with MqttPublisher(target(mosquitto), athlete=athlete) as pub:
            await pub.wait_connected(WAIT_S)
            await pub.publish(heart(athlete, 1))
            await pub.publish(heart(athlete, 2, MetricGroup.RR))
            await pub.publish(heart(athlete, 3, MetricGroup.HRV))
            await pub.publish(alert(athlete, 1))
            await until(lambda: len(sub.messages) >= 5, "4 records and the status")
        by_topic = {str(m.topic).rsplit("/", 1)[1]: m for m in sub.messages}
        assert by_topic["metrics"].qos == 0
        assert not by_topic["metrics"].retain
        assert json.loads(by_topic["metrics"].payload)["heart_rate_bpm"] == 121  # type: ignore[arg-type]
        assert by_topic["alert"].qos == 1
        assert not by_topic["alert"].retain
        assert decode_message(str(by_topic["alert"].topic),
                              by_topic["alert"].payload) == alert(athlete, 1)  # type: ignore[arg-type]
        assert decode_message(str(by_topic["rr"].topic),
                              by_topic["rr"].payload) == heart(athlete, 2, MetricGroup.RR)  # type: ignore[arg-type]
        await until(lambda: len(sub.messages) >= 6, "offline after a clean close")
        statuses = [m.payload for m in sub.messages if str(m.topic).endswith("/status")]
        assert statuses == [b"online", b"offline"]
    # Retained: a late subscriber sees the last status.
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as late:
        await late.subscribe(f"{base}/status", qos=1)
        async with asyncio.timeout(WAIT_S):
            message = await anext(aiter(late.messages))
        assert (message.payload, message.retain) == (b"offline", True)


async def test_a_sessions_totals_mark_the_athlete_offline_until_their_next_output(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    """A remote collector's ``session_end`` closes the session in a central ``run``: after
    its totals the retained status says ``offline`` (a dashboard sees who runs now), and the
    athlete's next session says ``online`` again, before its first output."""
    athlete = f"Bo/{mqtt_token}"
    base = f"stridewatch/v1/{escape_topic_level(athlete)}"
    totals = Metric(athlete=athlete, time_utc=T0, time_mono_s=9.0, group=MetricGroup.SESSION,
                    values={"final": True, "distance_m": 5000.0})

    async def retained_status() -> bytes:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as late:
            await late.subscribe(f"{base}/status", qos=1)
            async with asyncio.timeout(WAIT_S):
                message = await anext(aiter(late.messages))
            assert message.retain
            return bytes(message.payload)  # type: ignore[arg-type]

    async with subscribed(mosquitto, f"{base}/#", f"sub-{mqtt_token}") as sub:
        async with MqttPublisher(target(mosquitto), athlete=athlete) as pub:
            await pub.wait_connected(WAIT_S)
            await pub.publish(heart(athlete, 1))
            await pub.publish(totals)
            assert await pub.flush(WAIT_S)
            assert await retained_status() == b"offline"
            await pub.publish(heart(athlete, 2))  # the next session
            assert await pub.flush(WAIT_S)
            assert await retained_status() == b"online"
            await until(lambda: len(sub.messages) >= 6, "everything, in order")
        kinds = [(str(m.topic).rsplit("/", 1)[1], m.payload) for m in sub.messages][:6]
        assert [k if k != "status" else p for k, p in kinds] == [
            b"online", "metrics", "metrics", b"offline", b"online", "metrics"]


async def test_home_assistant_discovery_is_published_retained(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"HA {mqtt_token}"
    async with MqttPublisher(target(mosquitto), athlete=athlete, ha_discovery=True) as pub:
        await pub.wait_connected(WAIT_S)
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.subscribe("homeassistant/sensor/+/config", qos=1)
        got: dict[str, bytes] = {}
        async with asyncio.timeout(WAIT_S):
            async for message in client.messages:
                assert message.retain
                got[str(message.topic)] = message.payload  # type: ignore[assignment]
                if len(got) == 4:
                    break
    assert got == {m.topic: m.payload for m in ha_discovery_messages(athlete)}


CHILD = """
import asyncio, sys
from outputs.mqtt import MqttPublisher, MqttTarget
async def main():
    async with MqttPublisher(MqttTarget.from_url(sys.argv[1], env={}), athlete=sys.argv[2]) as p:
        await p.wait_connected(10)
        print("connected", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


async def test_will_marks_status_offline_when_the_publisher_process_is_killed(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"W{mqtt_token}"
    status = topic_for(athlete, "status")
    child = subprocess.Popen(  # noqa: ASYNC220 (starting it takes ~1 ms)
        [sys.executable, "-c", CHILD, mosquitto.url, athlete],
        stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), WAIT_S)
        assert line == b"connected\n"
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.subscribe(status, qos=1)
            async with asyncio.timeout(WAIT_S):
                messages = aiter(client.messages)
                first = await anext(messages)
                assert (first.payload, first.retain) == (b"online", True)
                child.send_signal(signal.SIGKILL)
                will = await anext(messages)
            assert will.payload == b"offline"
    finally:
        child.kill()
        child.wait(timeout=WAIT_S)
        if child.stdout is not None:
            child.stdout.close()


# --------------------------------------------------------------------------- sink tests


class Recorder:
    def __init__(self) -> None:
        self.records: list[SinkRecord] = []

    async def __call__(self, record: SinkRecord) -> None:
        self.records.append(record)


async def publish_raw(server: MosquittoServer, athlete: str, start: int, n: int) -> list[Alert]:
    """Publish ``n`` alerts (QoS 1) with a raw client; returns them."""
    alerts = [alert(athlete, i) for i in range(start, start + n)]
    async with aiomqtt.Client(server.host, server.port) as client:
        for a in alerts:
            out = encode_alert(a)
            await client.publish(out.topic, out.payload, qos=1)
    return alerts


def sink(server: MosquittoServer, rec: Recorder, client_id: str, group: str,
         **kwargs: object) -> MqttSink:
    return MqttSink(target(server), on_record=rec, client_id=client_id, group=group,
                    **FAST, **kwargs)  # type: ignore[arg-type]


def ids(records: Sequence[SinkRecord]) -> list[str]:
    return [r.id for r in records if isinstance(r, Alert)]


async def test_two_sinks_share_the_load_exactly_once_and_one_takes_all_after_the_other_stops(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete, group = f"S{mqtt_token}", f"g{mqtt_token}"
    rec_a, rec_b = Recorder(), Recorder()
    async with sink(mosquitto, rec_b, f"b-{mqtt_token}", group) as sink_b:
        async with sink(mosquitto, rec_a, f"a-{mqtt_token}", group) as sink_a:
            await sink_a.wait_subscribed(WAIT_S)
            await sink_b.wait_subscribed(WAIT_S)
            sent = await publish_raw(mosquitto, athlete, 0, 100)
            await until(lambda: len(rec_a.records) + len(rec_b.records) >= 100, "100 handled")
        # sink A left the group on close: B takes everything now.
        assert rec_a.records
        assert rec_b.records
        more = await publish_raw(mosquitto, athlete, 100, 50)
        # A marker published last arrives last (one publisher, one subscriber left): once it
        # is handled, nothing published before it can still arrive.
        marker = await publish_raw(mosquitto, f"M{athlete}", 0, 1)
        await until(lambda: marker[0].id in ids(rec_b.records), "the marker")
    got = [i for i in ids(rec_a.records) + ids(rec_b.records) if i != marker[0].id]
    assert sorted(got) == sorted(a.id for a in sent + more)  # exactly once, nothing lost
    assert all(r.id not in ids(rec_a.records) for r in more)


async def test_crashed_sink_gets_its_queued_share_when_it_comes_back(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete, group = f"C{mqtt_token}", f"g{mqtt_token}"
    rec_a, rec_b = Recorder(), Recorder()
    async with sink(mosquitto, rec_b, f"b-{mqtt_token}", group) as sink_b:
        async with sink(mosquitto, rec_a, f"a-{mqtt_token}", group,
                        leave_group_on_close=False) as sink_a:
            await sink_a.wait_subscribed(WAIT_S)
            await sink_b.wait_subscribed(WAIT_S)
        # A is gone without leaving (like a crash): mosquitto 2.0 queues A's share.
        sent = await publish_raw(mosquitto, athlete, 0, 40)
        await until(lambda: len(rec_b.records) >= 1, "B handles some")
        async with sink(mosquitto, rec_a, f"a-{mqtt_token}", group) as sink_a:
            await until(lambda: len(rec_a.records) + len(rec_b.records) >= 40, "all 40")
    assert sorted(ids(rec_a.records) + ids(rec_b.records)) == sorted(a.id for a in sent)


async def test_sink_resubscribes_after_a_broker_restart(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"T{mqtt_token}"
    rec = Recorder()
    async with sink(mosquitto, rec, f"s-{mqtt_token}", f"g{mqtt_token}") as s:
        await s.wait_subscribed(WAIT_S)
        await publish_raw(mosquitto, athlete, 0, 5)
        await until(lambda: len(rec.records) >= 5, "before restart")
        mosquitto.kill()  # no persistence: the broker forgets the session and subscription
        mosquitto.start()
        await s.wait_subscribed(WAIT_S, count=2)
        await publish_raw(mosquitto, athlete, 5, 5)
        await until(lambda: len(rec.records) >= 10, "after restart")
    assert ids(rec.records) == [f"{athlete}-hr_surge-{i}" for i in range(10)]


async def test_sink_counts_and_skips_bad_messages(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"B{mqtt_token}"
    rec = Recorder()
    async with sink(mosquitto, rec, f"s-{mqtt_token}", f"g{mqtt_token}") as s:
        await s.wait_subscribed(WAIT_S)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.publish(topic_for(athlete, "alert"), b"{broken", qos=1)
            await client.publish(topic_for(athlete, "metrics"), b"[]", qos=1)
        await publish_raw(mosquitto, athlete, 0, 1)
        await until(lambda: len(rec.records) == 1 and s.bad_messages == 2, "1 good, 2 bad")


async def test_memory_outbox_marks_in_order() -> None:
    box = MemoryAlertOutbox()
    for i in range(3):
        box.add(alert("Ana", i))
    assert [item.seq for item in await box.pending("mqtt", 10)] == [1, 2, 3]
    await box.mark_delivered("mqtt", 2)
    assert [item.seq for item in await box.pending("mqtt", 10)] == [3]
    assert await box.backlog("mqtt") == 1
