"""Stores holding whole sessions, for the report tests.

:func:`store_virtual_session` runs a virtual workout through the whole ingest path (bumble GATT
servers → bleak backend → collector) and :class:`~processing.pipeline.Pipeline`, and writes
every reading and every output into a :class:`~outputs.store.SessionStore` session,
as the live app does. :func:`store_readings` does the same for readings made by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.clock import LoopClock
from ingest.records import Contact, HeartRateReading, Reading, StrideReading
from ingest.virtual import timewarp
from ingest.virtual.sensors import virtual_fleet
from outputs.codec import Record
from outputs.store import SessionStore
from processing.pipeline import AthleteHistory, Pipeline
from processing.records import Metric, MetricGroup, ProcessingOutput

EPOCH = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
"""Wall-clock time at which virtual sessions start."""
BATCH = 2_000
"""Records per store transaction (the async writer's default batch size)."""


def _virtual_readings(workout: str, *, low_hrv: bool, seed: int, epoch: datetime) -> list[Reading]:
    readings: list[Reading] = []

    async def main() -> None:
        async with virtual_fleet(workout, low_hrv=low_hrv, seed=seed) as fleet:
            await fleet.collect(readings.append, clock=LoopClock(epoch))

    timewarp.run(main(), speed=None)
    return readings


def store_readings(
    store: SessionStore,
    readings: Sequence[Reading],
    *,
    source: str,
    history: AthleteHistory | None = None,
) -> str:
    """Run ``readings`` (one athlete) through a :class:`Pipeline` into a new store session.

    Creates the session with the athlete and the first reading's time, writes every reading
    and, right after it, what it produced, in batches; then the pipeline's final outputs, ends
    the session at the last reading and stores ``resting_rmssd_ms`` from the final SESSION
    metric. Returns the session id.
    """
    if not readings:
        raise ValueError("store_readings needs at least one reading")
    athlete = readings[0].athlete
    pipeline = Pipeline(history={athlete: history} if history else None)
    session_id = store.create_session(athlete, readings[0].time_utc, source)
    batch: list[Record] = []

    def add(records: Iterable[Record]) -> None:
        batch.extend(records)
        if len(batch) >= BATCH:
            store.write(session_id, batch)
            batch.clear()

    for reading in readings:
        add([reading])
        add(pipeline.process(reading))
    final: list[ProcessingOutput] = pipeline.finish()
    add(final)
    if batch:
        store.write(session_id, batch)
    store.end_session(session_id, max(r.time_utc for r in readings))
    totals = [
        m for m in final if isinstance(m, Metric) and m.group is MetricGroup.SESSION
        and m.values.get("final")
    ]  # fmt: skip
    if totals:
        resting = totals[-1].values.get("resting_rmssd_ms")
        if isinstance(resting, float) and math.isfinite(resting):
            store.set_session_summary(session_id, "resting_rmssd_ms", resting)
    return session_id


def store_virtual_session(
    store: SessionStore,
    workout: str = "morning-5k",
    *,
    low_hrv: bool = False,
    seed: int = 0,
    epoch: datetime = EPOCH,
    history: AthleteHistory | None = None,
) -> str:
    """Run the virtual ``workout`` end to end and store it as one session; returns its id."""
    readings = _virtual_readings(workout, low_hrv=low_hrv, seed=seed, epoch=epoch)
    return store_readings(store, readings, source="virtual", history=history)


def store_no_rr_session(
    store: SessionStore, *, athlete: str = "No-RR <Runner>", duration_s: int = 600
) -> str:
    """A hand-made session: an HR strap that sends no RR intervals, and a footpod.

    HR at 1 Hz (ramping 100 → 150 bpm), footpod at 2 Hz: 30 s standing, then running at
    3 m/s with 170 steps/min and 1.06 m steps. Returns the session id.
    """
    readings: list[Reading] = []
    start_mono = 1_000.0
    distance = 0.0
    for i in range(duration_s * 2):
        t = i * 0.5
        utc = EPOCH + timedelta(seconds=t)
        moving = t >= 30.0
        speed = 3.0 if moving else 0.0
        distance += speed * 0.5
        if i % 2 == 0:
            readings.append(
                HeartRateReading(
                    athlete=athlete, sensor="hr-1", time_utc=utc, time_mono_s=start_mono + t,
                    heart_rate_bpm=int(100 + 50 * t / duration_s), rr_intervals_s=(),
                    beat_times_mono_s=(), contact=Contact.DETECTED, energy_kj=None, raw=b"",
                )
            )  # fmt: skip
        readings.append(
            StrideReading(
                athlete=athlete, sensor="pod-1", time_utc=utc, time_mono_s=start_mono + t,
                speed_mps=speed, cadence_per_min=170 if moving else 0,
                stride_length_m=1.06 if moving else 0.0, total_distance_m=round(distance, 1),
                running=moving, raw=b"",
            )
        )  # fmt: skip
    return store_readings(store, readings, source="test:no-rr")


def open_store(path: Path) -> SessionStore:
    """A new store at ``path`` (a convenience for tests)."""
    return SessionStore.open(path)
