"""MQTT output (aiomqtt 2.x), split by responsibility (issue #10).

* :mod:`outputs.mqtt.target`: :class:`MqttTarget`, where the broker is and how to log in.
* :mod:`outputs.mqtt.client`: client factory, error descriptions, the reconnect loop of every
  MQTT client (:class:`ingest.reconnect.Reconnector`), batching and queue helpers.
* :mod:`outputs.mqtt.publisher`: :class:`MqttPublisher`, one athlete's retained status (Last
  Will) and QoS 0 telemetry.
* :mod:`outputs.mqtt.alerts`: :class:`MqttAlertSender`, the process's one sender of stored
  alerts (QoS 1, the cursor moves on the PUBACK).
* :mod:`outputs.mqtt.sink`: :class:`MqttSink`, a shared-subscription consumer.

Topics and payloads are in :mod:`outputs.mqtt_codec`; the reading source and publisher of
remote collection in :mod:`outputs.mqtt_source`. Every client exposes ``link``
(:class:`ingest.reconnect.LinkStatus`): connected, ever connected, failures, last error.
"""

from __future__ import annotations

from ingest.reconnect import LinkChange, LinkStatus
from outputs.mqtt.alerts import (
    ALERT_BATCH,
    ALERT_KINDS,
    OUTBOX_POLL_S,
    OUTPUT_NAME,
    MemoryAlertOutbox,
    MemoryOutboxItem,
    MqttAlertSender,
)
from outputs.mqtt.client import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    CLOSE_TIMEOUT_S,
    KEEPALIVE_S,
    OPERATION_TIMEOUT_S,
    DropOldestQueue,
    LinkCallback,
    default_client_id,
    describe_error,
    make_client,
    mqtt_reconnector,
    publish_batch,
    run_until_stopped,
    watch_disconnect,
)
from outputs.mqtt.publisher import (
    TELEMETRY_BATCH,
    TELEMETRY_QUEUE_SIZE,
    AlertMode,
    MqttPublisher,
)
from outputs.mqtt.sink import SINK_KINDS, MqttSink
from outputs.mqtt.target import (
    DEFAULT_PORT,
    DEFAULT_TLS_PORT,
    ENV_PASSWORD,
    ENV_USER,
    MqttTarget,
    redact_url,
)

__all__ = [
    "ALERT_BATCH",
    "ALERT_KINDS",
    "BACKOFF_INITIAL_S",
    "BACKOFF_MAX_S",
    "CLOSE_TIMEOUT_S",
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "ENV_PASSWORD",
    "ENV_USER",
    "KEEPALIVE_S",
    "OPERATION_TIMEOUT_S",
    "OUTBOX_POLL_S",
    "OUTPUT_NAME",
    "SINK_KINDS",
    "TELEMETRY_BATCH",
    "TELEMETRY_QUEUE_SIZE",
    "AlertMode",
    "DropOldestQueue",
    "LinkCallback",
    "LinkChange",
    "LinkStatus",
    "MemoryAlertOutbox",
    "MemoryOutboxItem",
    "MqttAlertSender",
    "MqttPublisher",
    "MqttSink",
    "MqttTarget",
    "default_client_id",
    "describe_error",
    "make_client",
    "mqtt_reconnector",
    "publish_batch",
    "redact_url",
    "run_until_stopped",
    "watch_disconnect",
]
