"""The scale-out worker: a Quix Streams application running our processing per athlete
(issue #13).

Input: topic ``stridewatch.readings`` (key: athlete, UTF-8; value: the reading as
:func:`ingest.records.record_to_json`, the same payload a remote collector sends over MQTT;
``stridewatch bridge`` fills it). Kafka keeps one athlete's readings in one partition, in order,
and the consumer group gives each partition to exactly one worker at a time; Quix moves a
partition, with its state, when a worker joins, leaves or dies.

Per reading, :class:`AthleteStep` runs the athlete's
:class:`~processing.pipeline.AthleteProcessor` (the same pure code as ``run``), kept in the
partition's state as snapshot + journal (:mod:`processing.snapshot`: at most ~0.4 KB of
changelog per reading), and emits the outputs:

* ``stridewatch.metrics``: metrics and closed segments, the MQTT payloads
  (:mod:`outputs.mqtt_codec`), header ``kind`` = the MQTT topic kind (``metrics``, ``rr``,
  ``hrv``, ``segment``); key: athlete;
* ``stridewatch.alerts``: alerts (header ``kind`` = ``alert``) with their ids (unique per
  athlete session; a re-processed reading repeats an alert with the *same* id, so consumers
  de-duplicate by id);
* InfluxDB (``--influx``) through :class:`outputs.influx.sink.InfluxSink`;
* MQTT (``--mqtt``) through :class:`outputs.mqtt.quix_sink.MqttOutputSink`: alerts (QoS 1),
  telemetry and athlete status on the topics ``run`` uses, for dashboards and notifications.

Delivery is at-least-once: after a crash, the readings since the last commit are processed
again from the restored state, so they give the same outputs with the same ids.

The athlete's session id (the prefix of alert ids) is the first reading's UTC time and the
athlete (``20260601T063000Z-ann``), kept in the state, so every worker gives the same ids.
A ``session_end`` link event (``collect --mqtt`` sends one per athlete when it stops) closes the
session as the end of a ``run`` does: the final SESSION metric (totals), the last split and the
open segment are emitted, and the athlete's next reading starts a new session with a new id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ingest.records import Reading, is_session_end, session_end
from outputs.errors import RecordCodecError
from outputs.mqtt_codec import decode_reading, encode_output, encode_reading
from processing.pipeline import AthleteProcessor
from processing.records import ProcessingOutput
from processing.settings import ProcessingSettings
from processing.snapshot import JournaledProcessor, KeyValueState

logger = logging.getLogger(__name__)

READINGS_TOPIC: Final = "stridewatch.readings"
METRICS_TOPIC: Final = "stridewatch.metrics"
ALERTS_TOPIC: Final = "stridewatch.alerts"
CONSUMER_GROUP: Final = "stridewatch-workers"
PARTITIONS: Final = 12
"""Partitions of the readings topic made by ``bridge``/``worker`` when it is missing: the most
workers one group can use (docs/scaling.md sizes it)."""
RETENTION_MS: Final = 7 * 24 * 3600 * 1000
"""Retention of the topics we create: a week (Tansu needs an explicit one; Quix reads it)."""


def session_id(reading: Reading) -> str:
    """The athlete's session id in the worker: first reading's UTC second and the athlete."""
    return f"{reading.time_utc:%Y%m%dT%H%M%SZ}-{reading.athlete}"


@dataclass
class StepCounters:
    """What the worker did, for logs and tests."""

    readings: int = 0
    outputs: int = 0
    restores: int = 0
    repeats: int = 0
    """Readings dropped as byte-identical copies of recent ones (a bridge's redelivery)."""
    bad_payloads: int = 0
    wrong_key: int = 0
    new_sessions: int = 0
    """Athletes whose next session began after a SESSION_END closed the previous one."""
    idle_ends: int = 0
    """SESSION_ENDs with no session to end (the athlete's last one had ended): skipped."""
    restarted_clocks: int = 0
    """Sessions ended because their collector's clock started again (it restarted without
    ending them): :meth:`~processing.pipeline.AthleteProcessor.clock_restarted`."""


@dataclass
class AthleteStep:
    """The stateful step (``sdf.apply(step, stateful=True, expand=True)``): one reading in,
    its processing outputs out, the athlete's processor kept in ``state``.

    In-memory processors are a cache of the state: one that no longer matches it (the
    partition moved and came back, or a failed checkpoint rolled the state back) is restored
    from the state before use, so a reading is never counted twice.
    """

    settings: ProcessingSettings = field(default_factory=ProcessingSettings)
    counters: StepCounters = field(default_factory=StepCounters)
    on_restore: Callable[[str, int], None] | None = None
    """Called with the athlete and the readings already applied (0 for a new athlete) when
    this worker takes an athlete up: first reading, a partition arrived, or a checkpoint was
    rolled back."""
    _cache: dict[str, JournaledProcessor] = field(default_factory=dict)

    def __call__(self, value: bytes, state: KeyValueState) -> list[ProcessingOutput]:
        try:
            reading = decode_reading(value)
        except RecordCodecError as exc:
            self.counters.bad_payloads += 1
            logger.error("skipped a reading that cannot be decoded: %s", exc)
            return []
        athlete = reading.athlete
        journaled = self._cache.get(athlete)
        if journaled is None or not journaled.matches(state):
            journaled = self._restore(reading, state)
        if journaled.is_repeat(value):
            self.counters.repeats += 1
            return []
        out: list[ProcessingOutput] = []
        processor = journaled.processor
        if not processor.ended and processor.clock_restarted(reading):
            # The collector restarted without ending the session (crashed, rebooted): that
            # session ends where its data ended (as if it had sent its end), this reading
            # begins the next. The end is journaled like a reading, so a restore agrees.
            logger.warning("%s: the collector's clock started again: the session ends and a "
                           "new one begins", reading.athlete)
            end = session_end(reading)
            self.counters.restarted_clocks += 1
            out += journaled.process(end, encode_reading(end).payload, state)
        if processor.ended:  # the athlete's last session ended: this one is new
            if is_session_end(reading):  # ... unless there is nothing to end (a second end)
                self.counters.idle_ends += 1
                return out
            self._start_session(reading, journaled, state)
        self.counters.readings += 1
        out += journaled.process(reading, value, state)
        self.counters.outputs += len(out)
        return out

    def _restore(self, reading: Reading, state: KeyValueState) -> JournaledProcessor:
        sid = state.get("session")
        if sid is None:
            sid = session_id(reading)
            state.set("session", sid)
        athlete = reading.athlete

        def new() -> AthleteProcessor:
            return AthleteProcessor(athlete, self.settings, id_prefix=str(sid))

        journaled = JournaledProcessor.restore(state, decode_reading, new)
        self.counters.restores += 1
        self._cache[athlete] = journaled
        if self.on_restore is not None:
            self.on_restore(athlete, journaled.applied)
        return journaled

    def _start_session(self, reading: Reading, journaled: JournaledProcessor,
                       state: KeyValueState) -> None:
        """A new session for ``reading``'s athlete, whose last one a SESSION_END closed: a new
        session id (alert-id prefix) and a fresh processor, in the state too."""
        sid = session_id(reading)
        state.set("session", sid)
        journaled.start_over(AthleteProcessor(reading.athlete, self.settings, id_prefix=sid),
                             state)
        self.counters.new_sessions += 1
        logger.info("%s: new session %s after the last one ended", reading.athlete, sid)


def output_kind(record: ProcessingOutput) -> str:
    """The MQTT topic kind of an output (``metrics``, ``rr``, ``hrv``, ``segment``,
    ``alert``): the ``kind`` header on the output topics."""
    return encode_output(record).topic.rsplit("/", 1)[1]


def encode_for_topic(record: ProcessingOutput) -> tuple[bytes, bytes]:
    """``(kind, payload)`` of an output, encoded once: the ``kind`` header picks the topic
    (``alert`` → ``stridewatch.alerts``) and the payload is the MQTT payload."""
    message = encode_output(record)
    payload = message.payload
    return (message.topic.rsplit("/", 1)[1].encode(),
            payload if isinstance(payload, bytes) else payload.encode())


def _kind_header(value: Any, key: Any, timestamp: int, headers: Any) -> list[tuple[str, bytes]]:
    kind: bytes = value[0]
    return [("kind", kind)]


def _payload_of(value: Any) -> bytes:
    payload: bytes = value[1]
    return payload


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker connects and where its outputs go."""

    bootstrap: str
    state_dir: Path
    influx: Any = None
    """An :class:`outputs.influx.target.InfluxTarget`, or None for no InfluxDB."""
    mqtt: Any = None
    """An :class:`outputs.mqtt.target.MqttTarget` for alerts, telemetry and status, or None."""
    consumer_group: str = CONSUMER_GROUP
    commit_interval_s: float = 1.0
    auto_offset_reset: str = "earliest"
    settings: ProcessingSettings = field(default_factory=ProcessingSettings)
    consumer_extra: dict[str, Any] = field(default_factory=dict)
    producer_extra: dict[str, Any] = field(default_factory=dict)
    influx_retry_after_s: float = 5.0
    """Pause after a failed InfluxDB write before the batch is processed again."""
    mqtt_retry_after_s: float = 5.0
    """Pause after alerts MQTT did not take before the batch is processed again."""


@dataclass
class Worker:
    """A built worker: ``app.run()`` runs it (blocking; SIGINT/SIGTERM stop it cleanly)."""

    app: Any
    """The ``quixstreams.Application``."""
    step: AthleteStep
    influx: Any = None
    """The :class:`outputs.influx.sink.InfluxSink`, if any."""
    mqtt: Any = None
    """The :class:`outputs.mqtt.quix_sink.MqttOutputSink`, if any."""

    def close(self) -> None:
        """Close the sinks' connections (after ``app.run()`` returned)."""
        for sink in (self.influx, self.mqtt):
            if sink is not None:
                sink.close()


def build_app(options: WorkerOptions, step: AthleteStep | None = None) -> Worker:
    """The Quix Streams application of one worker (not started)."""
    from outputs.quix import Application, TopicConfig

    app = Application(
        broker_address=options.bootstrap,
        consumer_group=options.consumer_group,
        auto_offset_reset=options.auto_offset_reset,  # type: ignore[arg-type]
        commit_interval=options.commit_interval_s,
        state_dir=str(options.state_dir),
        consumer_extra_config=options.consumer_extra or None,
        producer_extra_config=options.producer_extra or None,
        loglevel=None,
    )
    config = TopicConfig(num_partitions=PARTITIONS, replication_factor=1,
                         extra_config={"retention.ms": str(RETENTION_MS)})
    readings = app.topic(READINGS_TOPIC, key_deserializer="str", value_deserializer="bytes",
                         config=config)
    metrics = app.topic(METRICS_TOPIC, key_serializer="str", value_serializer="bytes",
                        config=config)
    alerts = app.topic(ALERTS_TOPIC, key_serializer="str", value_serializer="bytes",
                       config=config)
    step = step or AthleteStep(options.settings)
    stateful: Callable[[Any, Any], Any] = step  # Quix's State satisfies KeyValueState
    outs = app.dataframe(readings).apply(stateful, stateful=True, expand=True)

    def topic_of(value: Any, key: Any, timestamp: int, headers: Any) -> Any:
        return alerts if headers[0][1] == b"alert" else metrics

    # One chain, no branches for the topics: Quix copies a value (pickle) for every extra
    # branch, which cost more than the processing (benchmarks/bench_worker.py).
    (outs.apply(encode_for_topic)
         .set_headers(_kind_header)
         .apply(_payload_of)
         .to_topic(topic_of))  # fmt: skip
    influx = None
    if options.influx is not None:
        from outputs.influx.sink import InfluxSink

        influx = InfluxSink(options.influx, retry_after_s=options.influx_retry_after_s)
        outs.sink(influx)
    mqtt = None
    if options.mqtt is not None:
        from outputs.mqtt.quix_sink import MqttOutputSink

        mqtt = MqttOutputSink(options.mqtt, retry_after_s=options.mqtt_retry_after_s)
        outs.sink(mqtt)
    return Worker(app, step, influx, mqtt)
