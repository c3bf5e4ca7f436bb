"""The scale-out worker's MQTT sink against a real mosquitto (issue #13): alerts are held back
(the checkpoint is given back to Quix) while the broker is unreachable, telemetry is dropped
and counted, and once the broker is there the alert, the telemetry and the athlete's retained
``online`` status arrive on the topics ``run`` uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mosquitto_server import MosquittoServer, ThreadSubscriber, free_port

from outputs.mqtt import MqttTarget
from outputs.mqtt.quix_sink import MqttOutputSink
from outputs.mqtt_codec import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    decode_alert,
    encode_output,
    topic_for,
)
from outputs.quix import SinkBackpressureError, SinkBatch
from processing.records import Alert, AlertKind, Metric, MetricGroup, Severity

WAIT_S = 20.0
T0 = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)
ALERT = Alert(id="20260601T063000Z-ann-hr_surge-1", athlete="ann", time_utc=T0,
              time_mono_s=10.0, kind=AlertKind.HR_SURGE, severity=Severity.WARNING,
              value=172.0, threshold=165.0, message="HR surge")
METRIC = Metric(athlete="ann", time_utc=T0, time_mono_s=10.0, group=MetricGroup.HEART,
                values={"hr_bpm": 150})


def _batch(*records: object) -> SinkBatch:
    batch = SinkBatch("stridewatch.readings", 0)
    for offset, record in enumerate(records):
        batch.append(record, b"ann", 0, [], offset)
    return batch


def _wait(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def sink() -> Iterator[Callable[[MqttTarget], MqttOutputSink]]:
    made: list[MqttOutputSink] = []

    def make(target: MqttTarget) -> MqttOutputSink:
        s = MqttOutputSink(target, retry_after_s=0.1, ack_timeout_s=5.0)
        s.setup()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_alerts_wait_for_the_broker_and_telemetry_is_dropped_meanwhile(
    tmp_path: Path, sink: Callable[[MqttTarget], MqttOutputSink]
) -> None:
    port = free_port()
    out = sink(MqttTarget(host="127.0.0.1", port=port))
    with pytest.raises(SinkBackpressureError):
        out.write(_batch(ALERT))
    assert out.failed_batches == 1
    out.write(_batch(METRIC))  # telemetry alone is not held up: dropped and counted
    assert out.dropped == 1
    with MosquittoServer(tmp_path / "mosquitto", port=port) as server:
        dashboard = ThreadSubscriber(server)
        try:
            _wait(lambda: out.connected, "the sink to reconnect")
            out.write(_batch(METRIC, ALERT))  # the batch Quix processes again
            _wait(lambda: len(dashboard.got) >= 3, "status, metric and alert")
            assert sorted(dashboard.topics()) == [topic_for("ann", "alert"),
                                                  topic_for("ann", "metrics"),
                                                  topic_for("ann", "status")]
            alert = next(p for t, p, _ in dashboard.got if t.endswith("/alert"))
            assert decode_alert("ann", alert) == ALERT
            metric = next(p for t, p, _ in dashboard.got if t.endswith("/metrics"))
            assert metric == encode_output(METRIC).payload
        finally:
            dashboard.close()
        # A later dashboard still gets the retained status: the athlete is online.
        late = ThreadSubscriber(server)
        try:
            _wait(lambda: late.got, "the retained status")
            assert late.got[0][0] == topic_for("ann", "status")
            assert late.got[0][2]  # retained
            assert b"online" in late.got[0][1]
        finally:
            late.close()


def test_a_sessions_totals_mark_the_athlete_offline_and_the_next_reading_online_again(
    tmp_path: Path, sink: Callable[[MqttTarget], MqttOutputSink]
) -> None:
    """A ``session_end`` closes the session in the worker; its final SESSION metric sets the
    retained status to ``offline`` (a dashboard joining later sees the athlete gone), and the
    athlete's next session sets it ``online`` again."""
    final = Metric(athlete="ann", time_utc=T0, time_mono_s=11.0, group=MetricGroup.SESSION,
                   values={"final": True, "distance_m": 8000.0})
    port = free_port()
    out = sink(MqttTarget(host="127.0.0.1", port=port))
    with pytest.raises(SinkBackpressureError):  # the totals wait for the broker, as alerts do
        out.write(_batch(METRIC, final))
    with MosquittoServer(tmp_path / "mosquitto", port=port) as server:
        _wait(lambda: out.connected, "the sink to connect")
        out.write(_batch(METRIC, final))  # the batch Quix processes again

        def status_seen_by_a_new_dashboard() -> bytes:
            late = ThreadSubscriber(server)
            try:
                _wait(lambda: late.got, "the retained status")
                topic, payload, retained = late.got[0]
                assert topic == topic_for("ann", "status")
                assert retained
                return bytes(payload)
            finally:
                late.close()

        assert status_seen_by_a_new_dashboard() == STATUS_OFFLINE
        out.write(_batch(METRIC))  # the next session's first metric
        assert status_seen_by_a_new_dashboard() == STATUS_ONLINE
