"""Fault suite: InfluxDB SIGKILLed for 60 s of virtual time mid-session, then restarted.

A virtual session (every record type, every measurement) is recorded through the real path,
:class:`AsyncStore` → outbox → :class:`OutboxDelivery` → a real influxd (loopback), on the
demo's paced virtual clock (``timewarp``, 100×). Once with InfluxDB killed (``SIGKILL``) at
virtual second 100 and restarted at 160, once without an outage into another database.
Afterwards the points of both runs are equal, measurement by measurement, in order; the
outbox's backlog is 0; the outage was noticed (failed attempts, one warning) and survived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from influx_server import InfluxServer
from test_influx import ATHLETE, T0, expected_rows, session_records, stored_rows

from ingest.virtual import timewarp
from outputs.codec import Record
from outputs.influx import InfluxTarget, InfluxWriter, OutboxDelivery
from outputs.store import AsyncStore
from processing.records import Segment

SESSION_S = 300
KILL_AT_S = 100.0
OUTAGE_S = 60.0
SPEED = 100.0
DRAIN_TIMEOUT_S = 60.0  # real seconds


def _when(record: Record) -> datetime:
    return record.start_utc if isinstance(record, Segment) else record.time_utc


async def _record(
    db_path: Path, influxd: InfluxServer, database: str, records: Sequence[Record], *,
    outage: bool,
) -> dict[str, Any]:  # fmt: skip
    """Record ``records`` at their virtual times while delivering; the delivery's figures."""
    target = InfluxTarget(url=influxd.url, database=database, batch_lines=500, batch_age_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    by_second: dict[int, list[Record]] = {}
    for r in sorted(records, key=_when):
        by_second.setdefault(int((_when(r) - T0).total_seconds()), []).append(r)
    failed_during_outage = 0
    async with InfluxWriter(target) as writer, AsyncStore.open(db_path) as out:
        delivery = OutboxDelivery(out.store, writer, backoff_initial_s=0.5, backoff_max_s=5.0)
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop), name="influx-delivery")
        sid = out.store.create_session(ATHLETE, T0, "virtual")
        restart: asyncio.Task[None] | None = None
        for second in range(SESSION_S + 2):
            await asyncio.sleep(max(0.0, start + second - loop.time()))
            if outage and second == KILL_AT_S:
                await asyncio.to_thread(influxd.kill)  # SIGKILL
            if outage and second == KILL_AT_S + OUTAGE_S:
                failed_during_outage = delivery.progress.failed_attempts
                restart = asyncio.create_task(asyncio.to_thread(influxd.start))
            out.extend(sid, by_second.get(second, []))
            delivery.notify()
        if restart is not None:
            await restart
        await out.flush()
        out.store.end_session(sid, T0 + timedelta(seconds=SESSION_S))
        drained = await delivery.drain(DRAIN_TIMEOUT_S)
        stop.set()
        await task
        backlogs = await asyncio.to_thread(out.store.output_backlogs, {"influx": None})
        dead = await asyncio.to_thread(out.store.dead_letters, "influx")
    p = delivery.progress
    return {"drained": drained, "backlogs": backlogs, "dead": dead, "failed": failed_during_outage,
            "delivered": p.delivered, "failures": p.failures, "ever_ok": p.ever_ok}  # fmt: skip


def _points(influxd: InfluxServer, database: str) -> dict[str, list[dict[str, Any]]]:
    """Every point, per measurement, in the server's order (time, then series)."""
    result = influxd.query("SHOW MEASUREMENTS", database)["results"][0]
    names = [row[0] for row in result["series"][0]["values"]]
    return {name: influxd.points(f'SELECT * FROM "{name}"', database) for name in names}


def test_influxdb_killed_for_60_virtual_seconds_loses_nothing(
    influxd: InfluxServer, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="outputs.influx")
    records = session_records(SESSION_S)
    clean_db = f"{influx_db}_clean"
    influxd.create_database(clean_db)
    try:
        clean = timewarp.run(
            _record(tmp_path / "clean.db", influxd, clean_db, records, outage=False),
            speed=SPEED,
        )
        faulty = timewarp.run(
            _record(tmp_path / "faulty.db", influxd, influx_db, records, outage=True),
            speed=SPEED,
        )
        assert influxd.running
        expected = _points(influxd, clean_db)
        got = _points(influxd, influx_db)
        by_rows = {m: stored_rows(influxd, influx_db, m) for m in got}
    finally:
        influxd.start()
        influxd.drop_database(clean_db)
    assert clean["drained"]
    assert clean["backlogs"] == {"influx": 0}
    assert faulty["drained"]
    assert faulty["backlogs"] == {"influx": 0}
    assert faulty["dead"] == [] == clean["dead"]
    assert faulty["failed"] > 0  # the outage was seen by the delivery...
    assert faulty["failures"] == 0  # ...and it recovered
    assert faulty["delivered"] == clean["delivered"] == len(records)
    assert set(got) == set(expected)
    for measurement, points in expected.items():
        assert got[measurement] == points, measurement  # equal, in order
    assert by_rows == expected_rows(records)  # and exactly the session's points
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "cannot write to InfluxDB" in r.getMessage()]  # fmt: skip
    assert len(warnings) == 1
    assert influxd.url in warnings[0].getMessage()
    assert any("resumed after" in r.getMessage() for r in caplog.records)
