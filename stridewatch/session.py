"""Wiring of one live run: readings → processing → store, MQTT, InfluxDB, console.

:class:`SessionRecorder` is the synchronous heart: for each record it opens the athlete's
session on first sight, stores the reading, runs the pipeline and stores and forwards what it
produced. The store is the durable outbox: InfluxDB delivery reads from it, so a database that
is down loses nothing, and an unreachable server never stops the collection.

:func:`live_outputs` opens the optional network outputs as one async context.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ingest.records import Reading
from outputs.influx import InfluxTarget, InfluxWriter, OutboxDelivery
from outputs.mqtt import MqttPublisher, MqttTarget
from outputs.store import AsyncStore, SessionStore
from processing.pipeline import AthleteHistory, Pipeline
from processing.records import Metric, MetricGroup, ProcessingOutput
from processing.settings import ProcessingSettings

log = logging.getLogger(__name__)

# Summary values of a session kept for later sessions (readiness baseline, early-rise history).
SUMMARY_KEYS = (
    "resting_rmssd_ms",
    "early_rise_bpm",
    "distance_m",
    "avg_hr_bpm",
    "max_hr_bpm",
    "trimp",
    "readiness",
    "decoupling_pct",
)
# How long the end of a run waits for the network outputs to drain before leaving the rest in
# the store's outbox (delivered by the next run or `stridewatch push`).
DRAIN_TIMEOUT_S = 10.0


def athlete_history(store: SessionStore, athlete: str, limit: int = 30) -> AthleteHistory:
    """What processing needs from the athlete's past sessions in ``store``."""
    rmssd = store.resting_rmssd_history(athlete, limit=limit)
    rises: list[float] = []
    for row in store.sessions(athlete)[-limit:]:
        value = store.session_summary(row.id).get("early_rise_bpm")
        if isinstance(value, float | int):
            rises.append(float(value))
    return AthleteHistory(resting_rmssd_ms=tuple(rmssd), early_rise_bpm=tuple(rises))


@dataclasses.dataclass
class SessionRecorder:
    """Readings in; sessions, stored records and forwarded outputs out."""

    store: AsyncStore
    source: str
    settings: ProcessingSettings = dataclasses.field(default_factory=ProcessingSettings)
    on_output: Callable[[Reading, Sequence[ProcessingOutput]], None] | None = None
    publish: Callable[[str, ProcessingOutput], None] | None = None

    def __post_init__(self) -> None:
        sync = self.store.store
        self.sessions: dict[str, str] = {}
        # Alert ids start with the athlete's session id: unique across sessions, and stable
        # for the same session (issue #10). The session exists before the first process().
        self.pipeline = Pipeline(
            self.settings,
            history=lambda athlete: athlete_history(sync, athlete),
            id_prefix=lambda athlete: self.sessions[athlete],
        )
        self.finals: dict[str, Metric] = {}

    def _session(self, record: Reading) -> str:
        sid = self.sessions.get(record.athlete)
        if sid is None:
            sid = self.store.store.create_session(
                record.athlete, record.time_utc, self.source, meta={"source": self.source}
            )
            self.sessions[record.athlete] = sid
            log.info("session %s started for %s", sid, record.athlete)
        return sid

    def handle(self, record: Reading) -> list[ProcessingOutput]:
        sid = self._session(record)
        self.store.add(sid, record)
        outputs = self.pipeline.process(record)
        self._emit(record.athlete, sid, outputs)
        if self.on_output is not None:
            self.on_output(record, outputs)
        return outputs

    def _emit(self, athlete: str, sid: str, outputs: Sequence[ProcessingOutput]) -> None:
        if not outputs:
            return
        self.store.extend(sid, outputs)
        if self.publish is not None:
            for out in outputs:
                self.publish(athlete, out)

    def finish(self) -> dict[str, str]:
        """Close every athlete's session; returns athlete → session id."""
        for athlete, processor in self.pipeline.athletes.items():
            sid = self.sessions[athlete]
            outputs = processor.finish()
            self._emit(athlete, sid, outputs)
            for out in outputs:
                if not isinstance(out, Metric) or out.group is not MetricGroup.SESSION:
                    continue
                if out.values.get("final"):
                    self.finals[athlete] = out
        return dict(self.sessions)

    def close_sessions(self) -> None:
        """After the final flush: end times and summaries (used by later sessions)."""
        sync = self.store.store
        for athlete, sid in self.sessions.items():
            final = self.finals.get(athlete)
            end = final.time_utc if final is not None else None
            if end is not None:
                sync.end_session(sid, end)
            if final is not None:
                for key in SUMMARY_KEYS:
                    value = final.values.get(key)
                    if value is not None:
                        sync.set_session_summary(sid, key, value)


@dataclasses.dataclass
class LiveOutputs:
    """The open network outputs of a run."""

    publishers: dict[str, MqttPublisher]
    delivery: OutboxDelivery | None

    def publish(self, athlete: str, out: ProcessingOutput) -> None:
        publisher = self.publishers.get(athlete)
        if publisher is not None:
            publisher.publish_nowait(out)
        if self.delivery is not None:
            self.delivery.notify()

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.delivery is not None:
            p = self.delivery.progress
            info["influx"] = {"delivered": p.delivered, "backlog": p.backlog, "state": str(p.state),
                              "last_error": p.last_error}
        if self.publishers:
            info["mqtt"] = {
                "dropped": sum(p.dropped_telemetry for p in self.publishers.values()),
                "published": sum(p.published_telemetry for p in self.publishers.values()),
            }
        return info


@contextlib.asynccontextmanager
async def live_outputs(
    store: SessionStore,
    athletes: Sequence[str],
    *,
    influx: InfluxTarget | None,
    mqtt: MqttTarget | None,
    ha_discovery: bool = False,
) -> AsyncIterator[LiveOutputs]:
    """Open MQTT publishers (one per athlete: each owns its status Last Will) and InfluxDB
    delivery from the store's outbox; on exit, drain both for at most ``DRAIN_TIMEOUT_S``."""
    async with contextlib.AsyncExitStack() as stack:
        publishers: dict[str, MqttPublisher] = {}
        if mqtt is not None:
            for athlete in athletes:
                publishers[athlete] = await stack.enter_async_context(
                    MqttPublisher(mqtt, athlete=athlete, alert_outbox=store,
                                  ha_discovery=ha_discovery)
                )
        delivery: OutboxDelivery | None = None
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            if influx is not None:
                writer = await stack.enter_async_context(InfluxWriter(influx))
                delivery = OutboxDelivery(store, writer)
                tg.create_task(_deliver(delivery, stop), name="influx-delivery")
            outputs = LiveOutputs(publishers, delivery)
            try:
                yield outputs
            finally:
                stop.set()
                if delivery is not None:
                    delivery.notify()
                for publisher in publishers.values():
                    await publisher.flush(DRAIN_TIMEOUT_S)


async def _deliver(delivery: OutboxDelivery, stop: asyncio.Event) -> None:
    """InfluxDB delivery that never takes the run down: errors are logged, data stays stored."""
    try:
        async with asyncio.timeout(None) as deadline:

            async def arm() -> None:
                await stop.wait()
                deadline.reschedule(asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(arm())
                await delivery.run(stop)
                raise _DoneError
    except* _DoneError:
        pass
    except* TimeoutError:
        log.warning("InfluxDB delivery did not drain within %.0f s; the backlog stays in the "
                    "store (stridewatch push sends it later)", DRAIN_TIMEOUT_S)
    except* Exception as group:
        for exc in group.exceptions:
            log.error("InfluxDB delivery stopped: %s. Readings are kept in the store; fix the "
                      "problem and run `stridewatch push` to send them.", exc)


class _DoneError(Exception):
    """Internal: delivery finished; cancels the arming task."""
