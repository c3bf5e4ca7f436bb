"""MQTT as a Quix Streams sink: the scale-out worker's alerts, telemetry and status for the
dashboards and notifications, on the same topics a single ``run`` publishes (issue #13).

Quix batches the worker's outputs per partition and calls :meth:`MqttOutputSink.write` when it
checkpoints. Each output is published with :func:`outputs.mqtt_codec.encode_output` on
``stridewatch/v1/<athlete>/<kind>``:

* alerts and a session's final totals (the SESSION metric a ``session_end`` brings, followed
  by the athlete's ``offline`` status) at QoS 1, and the checkpoint waits for the broker's
  acknowledgements: a batch with one the broker did not take raises
  ``SinkBackpressureError``, so Quix aborts the checkpoint and processes the same readings
  again (same alert ids: subscribers de-duplicate by id, as they do for ``run``'s outbox).
  Neither is lost while MQTT is down, and no athlete stays ``online`` for ever.
* telemetry (metrics, RR, HRV, segments) at QoS 0, as in ``run``: while the broker is
  unreachable it is dropped and counted (``dropped``), never held up.
* status: ``online`` (retained, QoS 1) the first time this worker publishes for an athlete,
  i.e. when the athlete's partition arrives. A worker connection has one Last Will, so unlike
  ``run`` (one connection per athlete) an athlete's ``offline`` is not published when a worker
  dies: the worker that takes the partition over says ``online`` again. ``offline`` (retained,
  QoS 1) follows the session's final SESSION metric, when a ``session_end`` closed it.

The client is paho's (the library under aiomqtt) driven from Quix's thread: the sink is
synchronous, and paho's network thread reconnects with back-off on its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from outputs.mqtt.client import KEEPALIVE_S, OPERATION_TIMEOUT_S, default_client_id
from outputs.mqtt.target import MqttTarget
from outputs.mqtt_codec import encode_output, encode_status
from outputs.quix import BatchingSink, SinkBackpressureError, SinkBatch
from processing.records import Alert, is_session_totals

logger = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 5.0
"""Pause of the partitions after alerts the broker did not take, before the batch is
processed again."""
RECONNECT_MAX_S: Final = 30
"""paho's reconnect back-off cap (s), as :data:`outputs.mqtt.client.BACKOFF_MAX_S`."""


class MqttOutputSink(BatchingSink):
    """Publishes the worker's outputs (processing records) to one MQTT broker."""

    def __init__(self, target: MqttTarget, *, client_id: str | None = None,
                 retry_after_s: float = RETRY_AFTER_S,
                 ack_timeout_s: float = OPERATION_TIMEOUT_S) -> None:
        super().__init__()
        self.target = target
        self.client_id = client_id or default_client_id("worker")
        self.retry_after_s = retry_after_s
        self.ack_timeout_s = ack_timeout_s
        self.published = 0
        """Messages the broker took (QoS 1) or that were sent (QoS 0)."""
        self.dropped = 0
        """Telemetry messages dropped because the broker was unreachable."""
        self.failed_batches = 0
        """Batches given back to Quix (backpressure) because alerts were not acknowledged."""
        self._online: set[str] = set()
        self._client: paho.Client | None = None

    def setup(self) -> None:
        """Start connecting (in the background: an unreachable broker does not stop the
        worker, its alerts wait in Kafka)."""
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.target.username is not None:
            password = self.target.password
            client.username_pw_set(self.target.username,
                                   password.get_secret_value() if password else None)
        if self.target.tls:
            client.tls_set()
        client.reconnect_delay_set(1, RECONNECT_MAX_S)
        client.connect_async(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        self._client = client

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def write(self, batch: SinkBatch) -> None:
        client = self._client
        if client is None:
            raise RuntimeError("MqttOutputSink.write before setup()")
        waiting: list[paho.MQTTMessageInfo] = []
        for item in batch:
            record: Any = item.value
            athlete: str = record.athlete
            final = is_session_totals(record)
            must_deliver = final or isinstance(record, Alert)
            if not self.connected:
                if must_deliver:
                    self._give_back(f"broker {self.target.url} unreachable")
                self.dropped += 1
                continue
            if athlete not in self._online:
                status = encode_status(athlete, online=True)
                waiting.append(client.publish(status.topic, status.payload, qos=1, retain=True))
                self._online.add(athlete)
            message = encode_output(record)
            info = client.publish(message.topic, message.payload, qos=1 if must_deliver else 0)
            if must_deliver:
                waiting.append(info)
            else:
                self.published += 1
            if final:  # the session ended (SESSION_END): the athlete is offline
                status = encode_status(athlete, online=False)
                waiting.append(client.publish(status.topic, status.payload, qos=1, retain=True))
                self._online.discard(athlete)
        self._wait_acknowledged(waiting)

    def _wait_acknowledged(self, waiting: list[paho.MQTTMessageInfo]) -> None:
        deadline = time.monotonic() + self.ack_timeout_s
        for info in waiting:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (ValueError, RuntimeError) as exc:  # paho: queue full / not connected
                self._give_back(str(exc))
            if not info.is_published():
                self._give_back(f"broker {self.target.url} did not acknowledge within "
                                f"{self.ack_timeout_s:.0f} s")
            self.published += 1

    def _give_back(self, why: str) -> None:
        self.failed_batches += 1
        self._online.clear()  # say online again after the broker is back
        logger.warning("MQTT alerts not delivered (%s); the batch is processed again in %.1f s",
                       why, self.retry_after_s)
        raise SinkBackpressureError(retry_after=self.retry_after_s)

    def close(self) -> None:
        """Disconnect (the worker's clean stop)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
