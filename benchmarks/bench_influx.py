"""Benchmark: writing points into a real influxd (Debian's 1.6), batched vs one per request.

Records are heart-rate metrics of one athlete at 10 Hz (one line each). Both runs go through the
production path: :func:`outputs.lineprotocol.encode_point` → :meth:`InfluxWriter.deliver`
(gzip, kept-alive HTTP connection, classification), into a fresh database of an influxd started
for the benchmark on free loopback ports (``tests/influx_server.py``).

* ``influx_write``: 200,000 points in batches of 5,000 lines per request (the default).
* baseline ``one point per request``: 1,500 points, one request each (what a naive writer does).

Run ``python -m benchmarks.bench_influx``; a runner calls :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outputs.influx import InfluxTarget, InfluxWriter
from outputs.lineprotocol import encode_point
from processing.records import Metric, MetricGroup

_BATCHED_POINTS = 200_000
_BATCH_LINES = 5_000
_BASELINE_POINTS = 1_500
_T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)


def _records(n: int, offset_s: float) -> list[Metric]:
    return [
        Metric(
            athlete="Zoë",
            time_utc=_T0 + timedelta(seconds=offset_s + i * 0.1),
            time_mono_s=offset_s + i * 0.1,
            group=MetricGroup.HEART,
            values={"heart_rate_bpm": 100.0 + (i % 800) / 10, "zone": 2, "contact": "detected"},
        )
        for i in range(n)
    ]


async def _write(url: str, db: str, records: list[Metric], batch: int) -> float:
    """Seconds to encode and deliver ``records`` in requests of ``batch`` lines."""
    target = InfluxTarget(url=url, database=db, batch_lines=batch)
    async with InfluxWriter(target) as writer:
        started = time.perf_counter()
        for start in range(0, len(records), batch):
            lines: list[str] = []
            for record in records[start : start + batch]:
                lines.extend(encode_point(record))
            result = await writer.deliver(lines)
            if not result.ok:
                raise RuntimeError(f"benchmark write failed: {result.outcome.message}")
        return time.perf_counter() - started


def run() -> list[dict[str, object]]:
    """Start an influxd, measure both write rates, stop it; one figure."""
    repo = Path(__file__).resolve().parent.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.influx_server import InfluxServer

    with tempfile.TemporaryDirectory(prefix="bench-influx-") as tmp, InfluxServer(tmp) as server:
        server.create_database("bench")
        batched_s = asyncio.run(
            _write(server.url, "bench", _records(_BATCHED_POINTS, 0.0), _BATCH_LINES)
        )
        baseline_s = asyncio.run(
            _write(server.url, "bench", _records(_BASELINE_POINTS, 100_000.0), 1)
        )
        stored = server.query("SELECT COUNT(heart_rate_bpm) FROM heart", "bench")
        count = stored["results"][0]["series"][0]["values"][0][1]
        if count != _BATCHED_POINTS + _BASELINE_POINTS:
            raise RuntimeError(f"expected {_BATCHED_POINTS + _BASELINE_POINTS} points, got {count}")
    batched = _BATCHED_POINTS / batched_s
    baseline = _BASELINE_POINTS / baseline_s
    return [
        {
            "name": "influx_write",
            "value": round(batched),
            "unit": "points/s",
            "baseline": {"name": "one point per request", "value": round(baseline)},
            "ratio": round(batched / baseline, 1),
            "target": ">= 100000 points/s and >= 20x",
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
