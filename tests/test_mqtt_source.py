"""Readings over MQTT: MqttReadingPublisher → real Mosquitto → MqttReadingSource."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mosquitto_server import MosquittoServer

from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
    StrideReading,
)
from outputs.errors import RecordCodecError
from outputs.mqtt import MqttTarget
from outputs.mqtt_codec import decode_reading, encode_reading, topic_for
from outputs.mqtt_source import MqttReadingPublisher, MqttReadingSource

WAIT_S = 10.0
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.3}

finite = st.floats(allow_nan=False, allow_infinity=False)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC))
names = st.text(min_size=1, max_size=12)
common = {"athlete": names, "sensor": st.text(max_size=17), "time_utc": times,
          "time_mono_s": finite}
readings: st.SearchStrategy[Reading] = st.one_of(
    st.builds(HeartRateReading, **common, heart_rate_bpm=st.integers(0, 65535),
              rr_intervals_s=st.lists(finite, max_size=9).map(tuple),
              beat_times_mono_s=st.lists(finite, max_size=9).map(tuple),
              contact=st.sampled_from(Contact), energy_kj=st.none() | st.integers(0, 65535),
              raw=st.binary(max_size=20)),
    st.builds(StrideReading, **common, speed_mps=finite, cadence_per_min=st.integers(0, 255),
              stride_length_m=st.none() | finite, total_distance_m=st.none() | finite,
              running=st.none() | st.booleans(), raw=st.binary(max_size=10)),
    st.builds(BatteryReading, **common, level_pct=st.integers(0, 100), raw=st.binary(max_size=1)),
    st.builds(LinkEvent, **common, state=st.sampled_from(LinkState), detail=st.text(),
              raw=st.binary(max_size=20)),
    st.builds(SensorInfo, **common, name=st.text(), kind=st.sampled_from(SensorKind),
              manufacturer=st.none() | st.text(), model=st.none() | st.text(),
              firmware=st.none() | st.text(), body_sensor_location=st.none() | st.text(),
              rsc_features=st.none() | st.lists(st.text(), max_size=4).map(tuple)),
)


@given(readings)
def test_reading_round_trip_is_exact(reading: Reading) -> None:
    out = encode_reading(reading)
    assert out.topic == topic_for(reading.athlete, "readings")
    assert out.qos == 1
    back = decode_reading(out.payload)
    assert back == reading
    assert type(back) is type(reading)
    assert back.time_utc.utcoffset() == reading.time_utc.utcoffset()


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe", b"[]", b'{"type":"nope"}', b'{"type":"battery","athlete":"A"}',
     b'{"type":"battery","athlete":"A","sensor":"s","time_utc":"2026-05-01T06:30:00",'
     b'"time_mono_s":1.0,"level_pct":50,"raw":"00"}',
     b'{"type":"battery","athlete":"A","sensor":"s","time_utc":"2026-05-01T06:30:00Z",'
     b'"time_mono_s":1.0,"level_pct":"50","raw":"00"}',
     b'{"type":"battery","athlete":"A","sensor":"s","time_utc":"2026-05-01T06:30:00Z",'
     b'"time_mono_s":1.0,"level_pct":50,"raw":"zz"}'],
    ids=["empty", "not-utf8", "array", "unknown-type", "incomplete", "naive-time",
         "string-int", "bad-hex"],
)
def test_decode_reading_rejects_bad_payloads(payload: bytes) -> None:
    with pytest.raises(RecordCodecError):
        decode_reading(payload)


def sample_readings(athlete: str, n: int) -> list[Reading]:
    t0 = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    out: list[Reading] = []
    for i in range(n):
        t = t0 + timedelta(seconds=i)
        if i % 3 == 0:
            out.append(HeartRateReading(
                athlete=athlete, sensor="AA:01", time_utc=t, time_mono_s=10.0 + i,
                heart_rate_bpm=140 + i % 7, rr_intervals_s=(431 / 1024, 0.1 + i / 7),
                beat_times_mono_s=(9.5 + i, 9.9 + i), contact=Contact.DETECTED,
                energy_kj=None if i % 2 else i, raw=bytes([0x16, 140, 1, 2, 3, 4])))
        elif i % 3 == 1:
            out.append(StrideReading(
                athlete=athlete, sensor="BB:02", time_utc=t, time_mono_s=10.0 + i,
                speed_mps=3.3 + i / 256, cadence_per_min=88, stride_length_m=None,
                total_distance_m=123.4 + i, running=True, raw=bytes([2, 1, 2, 3])))
        else:
            out.append(LinkEvent(athlete=athlete, sensor="AA:01", time_utc=t,
                                 time_mono_s=10.0 + i, state=LinkState.RR_GAP,
                                 detail=f"gap {i}"))
    return out


async def collect(source: MqttReadingSource, n: int) -> list[Reading]:
    got: list[Reading] = []
    async with asyncio.timeout(WAIT_S):
        async for reading in source:
            got.append(reading)
            if len(got) == n:
                break
    return got


async def test_readings_round_trip_through_mosquitto(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"Zoë/{mqtt_token}"
    target = MqttTarget.from_url(mosquitto.url, env={})
    sent = sample_readings(athlete, 60)
    async with MqttReadingSource(target, athlete=athlete, **FAST) as source:
        await source.wait_subscribed(WAIT_S)
        async with MqttReadingPublisher(target, **FAST) as publisher:
            for r in sent:
                await publisher.publish(r)
            assert await publisher.flush(WAIT_S)
            assert publisher.published == 60
        assert await collect(source, 60) == sent
        assert (source.bad_messages, source.dropped, source.duplicates) == (0, 0, 0)


async def test_bad_payloads_are_counted_and_skipped(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"B{mqtt_token}"
    target = MqttTarget.from_url(mosquitto.url, env={})
    good = sample_readings(athlete, 2)
    async with MqttReadingSource(target, **FAST) as source:
        await source.wait_subscribed(WAIT_S)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            topic = topic_for(athlete, "readings")
            await client.publish(topic, encode_reading(good[0]).payload, qos=1)
            await client.publish(topic, b"garbage", qos=1)
            await client.publish(topic, b'{"type":"heart_rate"}', qos=1)
            await client.publish(topic, encode_reading(good[0]).payload, qos=1)  # a redelivery
            await client.publish(topic, encode_reading(good[1]).payload, qos=1)
        assert await collect(source, 2) == good
        assert (source.bad_messages, source.duplicates) == (2, 1)


async def test_source_resubscribes_after_broker_restart(
    mosquitto: MosquittoServer, mqtt_token: str
) -> None:
    athlete = f"R{mqtt_token}"
    target = MqttTarget.from_url(mosquitto.url, env={})
    sent = sample_readings(athlete, 6)
    async with MqttReadingSource(target, athlete=athlete, **FAST) as source, \
            MqttReadingPublisher(target, **FAST) as publisher:
        await source.wait_subscribed(WAIT_S)
        for r in sent[:3]:
            await publisher.publish(r)
        assert await collect(source, 3) == sent[:3]
        mosquitto.kill()
        mosquitto.start()
        await source.wait_subscribed(WAIT_S, count=2)
        for r in sent[3:]:
            await publisher.publish(r)
        assert await publisher.flush(WAIT_S)
        assert await collect(source, 3) == sent[3:]


async def test_source_queue_drops_oldest_when_the_consumer_lags() -> None:
    source = MqttReadingSource(MqttTarget(host="127.0.0.1", port=1), queue_size=3)
    sent = sample_readings("Ana", 5)
    for r in sent:
        source._deliver("stridewatch/v1/Ana/readings", encode_reading(r).payload)
    assert source.dropped == 2
    assert [item.reading for item in source._queue.take(10)] == sent[2:]
