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
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ingest.records import Reading, is_session_end, session_end
from outputs.influx import InfluxTarget, InfluxWriter, OutboxDelivery
from outputs.mqtt import MqttAlertSender, MqttPublisher, MqttTarget
from outputs.notify import Notifier, NotifyTarget
from outputs.outbox import StoreOutbox
from outputs.speech import DEFAULT_TIMEOUT_S, Speaker
from outputs.store import AsyncStore, SessionStore
from processing.pipeline import AthleteHistory, Pipeline
from processing.records import Alert, Metric, ProcessingOutput, is_session_totals
from processing.settings import ProcessingSettings
from stridewatch.config import SpeakSettings

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
# How long the end of a run waits, in REAL seconds, for the network outputs to drain before
# leaving the rest in the store's outbox (delivered by the next run or `stridewatch push`).
# Real time, because the demo runs on a virtual clock where 10 s pass in no time (issue #10:
# `demo --speed max` left 15 % of the records undelivered).
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
        """Session id → its final SESSION metric (the totals)."""
        self.ended: list[tuple[str, str]] = []
        """(athlete, session id) of the sessions a SESSION_END closed, in order."""

    def _session(self, record: Reading) -> str | None:
        """The athlete's open session, opened by this record if need be; None for a
        SESSION_END of an athlete with no open session (nothing to end)."""
        sid = self.sessions.get(record.athlete)
        if sid is None:
            if is_session_end(record):
                return None
            sid = self.store.store.create_session(
                record.athlete, record.time_utc, self.source, meta={"source": self.source}
            )
            self.sessions[record.athlete] = sid
            log.info("session %s started for %s", sid, record.athlete)
        return sid

    def handle(self, record: Reading) -> list[ProcessingOutput]:
        athlete = record.athlete
        processor = self.pipeline.athletes.get(athlete)
        if processor is not None and processor.clock_restarted(record):
            # The collector restarted without ending the session (crashed, rebooted): that
            # session ended where its data ended, and this record begins the next.
            log.warning("%s: the collector's clock started again (it restarted without ending "
                        "the session): the session ends and a new one begins", athlete)
            ended = self.handle(session_end(record))
            return ended + self.handle(record)
        sid = self._session(record)
        if sid is None:
            return []
        self.store.add(sid, record)
        outputs = self.pipeline.process(record)
        self._emit(athlete, sid, outputs)
        if athlete not in self.pipeline.athletes:  # a SESSION_END closed the session
            # Closed now, not at the end of the run: the athlete's next session (which may
            # follow at once) reads this one's summary for its readiness baseline.
            self._keep_final(athlete, outputs)
            self._close(sid)
            del self.sessions[athlete]
            self.ended.append((athlete, sid))
            log.info("session %s of %s ended by its collector", sid, athlete)
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

    def _keep_final(self, athlete: str, outputs: Sequence[ProcessingOutput]) -> None:
        for out in outputs:
            if is_session_totals(out):
                self.finals[self.sessions[athlete]] = out

    def finish(self) -> dict[str, str]:
        """Close every open athlete's session; returns athlete → session id (the last one,
        for an athlete whose collector ended a session and began another)."""
        for athlete, processor in self.pipeline.athletes.items():
            outputs = processor.finish()
            self._emit(athlete, self.sessions[athlete], outputs)
            self._keep_final(athlete, outputs)
        return dict(self.all_sessions())

    def all_sessions(self) -> list[tuple[str, str]]:
        """(athlete, session id) of every session this recorder opened: the ones their
        collector ended first, in order, then the open ones."""
        return [*self.ended, *self.sessions.items()]

    def close_sessions(self) -> None:
        """After the final flush: end times and summaries (used by later sessions) of the
        sessions :meth:`finish` closed (those a SESSION_END closed are already)."""
        for sid in self.sessions.values():
            self._close(sid)

    def _close(self, sid: str) -> None:
        final = self.finals.get(sid)
        if final is not None:
            end_session(self.store.store, sid, final)


def end_session(store: SessionStore, sid: str, final: Metric) -> None:
    """Close the session at its final SESSION metric: the end time and the summary values
    later sessions read (:data:`SUMMARY_KEYS`)."""
    store.end_session(sid, final.time_utc)
    for key in SUMMARY_KEYS:
        value = final.values.get(key)
        if value is not None:
            store.set_session_summary(sid, key, value)


@dataclasses.dataclass
class LiveOutputs:
    """The open network outputs of a run: per-athlete MQTT publishers (retained status, Last
    Will, QoS 0 telemetry), the process's one MQTT alert sender (QoS 1 from the store's outbox)
    and InfluxDB delivery from the outbox."""

    publishers: dict[str, MqttPublisher]
    alerts: MqttAlertSender | None
    delivery: OutboxDelivery | None
    speaker: Speaker | None = None
    notifier: Notifier | None = None
    writer: AsyncStore | None = None
    """The run's store writer: an alert is committed at once (phones wait for it)."""

    def publish(self, athlete: str, out: ProcessingOutput) -> None:
        publisher = self.publishers.get(athlete)
        if publisher is not None:
            publisher.publish_nowait(out)  # alerts are skipped there: the sender has them
        if self.alerts is not None:
            self.alerts.notify()
        if self.delivery is not None:
            self.delivery.notify()
        if self.speaker is not None:
            self.speaker.publish(out)  # never blocks: a bounded queue, stale cues dropped
        if isinstance(out, Alert) and self.writer is not None:
            self.writer.commit_soon()  # the outbox outputs wake on the commit

    def wake(self) -> None:
        """New records were committed: the outbox outputs look now, not at their next poll."""
        if self.alerts is not None:
            self.alerts.notify()
        if self.notifier is not None:
            self.notifier.notify()
        if self.delivery is not None:
            self.delivery.notify()

    async def drain(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` real seconds until every output has delivered what the
        store holds; True when all did."""
        deadline = time.monotonic() + timeout_s
        ok = True
        if self.delivery is not None:
            ok = await drain_delivery(self.delivery, deadline) and ok
        if self.alerts is not None:
            ok = await drain_alerts(self.alerts, deadline) and ok
        if self.notifier is not None:
            ok = await drain_notifier(self.notifier, deadline) and ok
        for publisher in self.publishers.values():
            left = max(0.0, deadline - time.monotonic())
            if publisher.link.connected:
                await publisher.flush(left)
        if self.speaker is not None:  # the last alert is still said (at most 5 s more)
            await self.speaker.drain(min(max(0.0, deadline - time.monotonic()), 5.0))
        return ok

    def problems(self) -> list[str]:
        """One line per output that never connected: URL and cause (never a secret)."""
        lines: list[str] = []
        if self.delivery is not None:
            p = self.delivery.progress
            if not p.reached:
                lines.append(f"InfluxDB {p.url} was never reached: {p.last_error or 'no answer'}"
                             f"; {p.backlog} record(s) wait in the store (`stridewatch push` "
                             "sends them)")
        links = [p.link for p in self.publishers.values()]
        if self.alerts is not None:
            links.append(self.alerts.link)
        if links and not any(link.ever_connected for link in links):
            failed = next((link for link in links if link.last_error), links[0])
            lines.append(f"MQTT broker {failed.url} was never reached: "
                         f"{failed.last_error or 'no answer'}; alerts wait in the store "
                         "(`stridewatch push --mqtt URL` sends them)")
        if self.notifier is not None:
            lines += self.notifier.problems()
        return lines

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.delivery is not None:
            p = self.delivery.progress
            info["influx"] = {"url": p.url, "delivered": p.delivered, "backlog": p.backlog,
                              "state": str(p.state), "ever_ok": p.ever_ok,
                              "failures": p.failures, "last_error": p.last_error}
        if self.publishers or self.alerts is not None:
            link = self.alerts.link if self.alerts is not None else None
            info["mqtt"] = {
                "dropped": sum(p.dropped_telemetry for p in self.publishers.values()),
                "published": sum(p.published_telemetry for p in self.publishers.values()),
                "alerts_published": self.alerts.published_alerts if self.alerts else 0,
                "connected": link.connected if link else None,
                "last_error": link.last_error if link else None,
            }
        if self.notifier is not None:
            info["notify"] = self.notifier.status()
        if self.speaker is not None:
            sp = self.speaker
            info["speak"] = {"available": sp.available, "reason": sp.reason,
                             **dataclasses.asdict(sp.stats), "last_error": sp.last_error}
        return info


GIVE_UP_ATTEMPTS = 3
"""Failed attempts, none ever successful, after which a drain stops waiting: a server that
refused or never answered three times will not take the backlog in the next seconds."""


async def drain_delivery(delivery: OutboxDelivery, deadline: float,
                         on_step: Callable[[], None] | None = None) -> bool:
    """Until ``deadline`` (``time.monotonic``): InfluxDB holds everything the store does.

    In real-time steps of at most 1 s (``on_step`` after each, e.g. a progress bar); gives up
    early when the server was never reached after :data:`GIVE_UP_ATTEMPTS` attempts."""
    while time.monotonic() < deadline:
        if await delivery.drain(min(1.0, deadline - time.monotonic())):
            return True
        if on_step is not None:
            on_step()
        p = delivery.progress
        if not p.ever_ok and p.failed_attempts >= GIVE_UP_ATTEMPTS:
            return False
    return False


async def drain_notifier(notifier: Notifier, deadline: float) -> bool:
    """Until ``deadline``: every push target confirmed every stored alert; gives up early on
    targets never reached after :data:`GIVE_UP_ATTEMPTS` attempts."""
    while time.monotonic() < deadline:
        if await notifier.drain(min(1.0, deadline - time.monotonic())):
            return True
        if all(not s["ever_ok"] and s["failed_attempts"] >= GIVE_UP_ATTEMPTS
               for s in notifier.status().values()):
            return False
    return False


async def drain_alerts(sender: MqttAlertSender, deadline: float) -> bool:
    """Until ``deadline`` (``time.monotonic``): every stored alert acknowledged by the broker.

    ``flush`` waits on the loop's clock, which is virtual in the demo: short flushes in a loop
    bounded by real time (a poll of the outbox on the virtual clock, a real wait otherwise)."""
    while True:
        if await sender.backlog() == 0:
            return True
        if time.monotonic() >= deadline or not sender.link.connected:
            return False
        sender.notify()
        await sender.flush(min(0.1, max(0.0, deadline - time.monotonic())))


@contextlib.asynccontextmanager
async def live_outputs(
    store: SessionStore,
    athletes: Sequence[str],
    *,
    influx: InfluxTarget | None,
    mqtt: MqttTarget | None,
    ha_discovery: bool = False,
    speak: SpeakSettings | None = None,
    real_time: bool = True,
    notify: Sequence[NotifyTarget] = (),
    writer: AsyncStore | None = None,
) -> AsyncIterator[LiveOutputs]:
    """Open the outputs; on exit, drain them for at most ``DRAIN_TIMEOUT_S`` real seconds
    (what is left stays in the store's outbox). ``real_time``: the loop's clock is the wall
    clock (False for the demo's virtual clocks, where a synthesiser timeout would be virtual).
    """
    async with contextlib.AsyncExitStack() as stack:
        speaker: Speaker | None = None
        if speak is not None:
            speaker = await stack.enter_async_context(Speaker(
                voice=speak.voice, status_every_s=speak.status_every_s,
                say_athlete=len(athletes) > 1,
                timeout_s=DEFAULT_TIMEOUT_S if real_time else None,
            ))
            if not speaker.available:
                log.warning("%s", speaker.reason)
        publishers: dict[str, MqttPublisher] = {}
        alerts: MqttAlertSender | None = None
        if mqtt is not None:
            for athlete in athletes:
                publishers[athlete] = await stack.enter_async_context(
                    MqttPublisher(mqtt, athlete=athlete, alerts="ignore",
                                  ha_discovery=ha_discovery)
                )
            alerts = await stack.enter_async_context(MqttAlertSender(mqtt, StoreOutbox(store)))
        notifier: Notifier | None = None
        if notify:
            notifier = await stack.enter_async_context(Notifier(store, notify))
        delivery: OutboxDelivery | None = None
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            if influx is not None:
                influx_writer = await stack.enter_async_context(InfluxWriter(influx))
                delivery = OutboxDelivery(store, influx_writer)
                tg.create_task(_deliver(delivery, stop), name="influx-delivery")
            outputs = LiveOutputs(publishers, alerts, delivery, speaker, notifier, writer)
            if writer is not None:
                writer.add_commit_listener(lambda _n: outputs.wake())
            try:
                yield outputs
            finally:
                started = time.monotonic()
                if not await outputs.drain(DRAIN_TIMEOUT_S):
                    log.warning("not everything was delivered (gave up after %.1f s); the "
                                "backlog stays in the store (stridewatch push sends it later)",
                                time.monotonic() - started)
                stop.set()
                if delivery is not None:
                    delivery.notify()


async def _deliver(delivery: OutboxDelivery, stop: asyncio.Event) -> None:
    """InfluxDB delivery that never takes the run down: errors are logged, data stays stored."""
    try:
        await delivery.run(stop)
    except Exception as exc:  # the run goes on; the records stay in the store
        log.error("InfluxDB delivery stopped: %s. Readings are kept in the store; fix the "
                  "problem and run `stridewatch push` to send them.", exc)
