"""Benchmark: readings committed per second into the session store.

Synthetic heart-rate and footpod readings (alternating, exact values, raw bytes) go through
:class:`AsyncStore` with its defaults (commit every 0.25 s or 2,000 records, on a worker
thread), offered as fast as the event loop can add them (chunks of 500, yielding between
chunks); the figure is readings divided by the time until the last one is committed.

Baseline: the naive writer, one :meth:`SessionStore.write` transaction per reading (measured
on fewer readings and reported as a rate). Both run with ``synchronous=NORMAL`` (the default)
and again with ``synchronous=FULL`` (an fsync per commit). While the async writer runs, a
ticker task measures how late the event loop wakes up from 1 ms sleeps (``store_loop_lag_p99``
and ``_max``): commits run on a worker thread and must not block the loop; what remains is
waiting for the GIL (switch interval 5 ms) and garbage-collection pauses over the 100,000
readings held in memory (a saturating load: far above the ~10 readings/s of one athlete).

Run ``python -m benchmarks.bench_store``; a runner calls :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.records import Contact, HeartRateReading, StrideReading
from outputs.store import AsyncStore, SessionStore

_T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
_ASYNC_READINGS = 100_000
_BASELINE_READINGS = {"NORMAL": 5_000, "FULL": 500}  # FULL fsyncs every transaction: slow
_CHUNK = 500
_TICK_S = 0.001


def synthetic_readings(n: int) -> list[HeartRateReading | StrideReading]:
    """``n`` readings of a run: HR frames and footpod frames alternating every 0.125 s."""
    out: list[HeartRateReading | StrideReading] = []
    for i in range(n):
        t = _T0 + timedelta(microseconds=125_000 * i)
        mono = 100.0 + 0.125 * i
        if i % 2 == 0:
            rr = (400 + i % 300) / 1024
            out.append(
                HeartRateReading(
                    athlete="Zoë", sensor="C0:FF:EE:00:00:01", time_utc=t, time_mono_s=mono,
                    heart_rate_bpm=140 + i % 30, rr_intervals_s=(rr,),
                    beat_times_mono_s=(mono - 0.01,), contact=Contact.DETECTED,
                    energy_kj=None, raw=bytes([0x16, 140 + i % 30, 0x90, 0x01]),
                )
            )  # fmt: skip
        else:
            out.append(
                StrideReading(
                    athlete="Zoë", sensor="C0:FF:EE:00:00:02", time_utc=t, time_mono_s=mono,
                    speed_mps=(768 + i % 512) / 256, cadence_per_min=85 + i % 10,
                    stride_length_m=1.25, total_distance_m=i / 10, running=True,
                    raw=bytes([0x07, 0x00, 0x03, 85 + i % 10, 0x7D, 0x00]),
                )
            )  # fmt: skip
    return out


async def _async_writer(
    path: Path, readings: list[HeartRateReading | StrideReading], synchronous: str
) -> tuple[float, list[float]]:
    """(readings/s committed, event-loop lags in ms) through the default AsyncStore."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(_TICK_S)
            lags.append((time.perf_counter() - before - _TICK_S) * 1000.0)

    async with AsyncStore.open(path, synchronous=synchronous) as out:
        sid = out.store.create_session("Zoë", _T0, "benchmark")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ticker(), name="bench-ticker")
            start = time.perf_counter()
            for i in range(0, len(readings), _CHUNK):
                out.extend(sid, readings[i : i + _CHUNK])
                await asyncio.sleep(0)
            await out.flush()
            elapsed = time.perf_counter() - start
            stop.set()
        assert out.committed == len(readings)
    return len(readings) / elapsed, lags


def _per_transaction(
    path: Path, readings: list[HeartRateReading | StrideReading], synchronous: str
) -> float:
    """Readings/s with one transaction per reading."""
    with SessionStore.open(path, synchronous=synchronous) as store:
        sid = store.create_session("Zoë", _T0, "benchmark")
        start = time.perf_counter()
        for reading in readings:
            store.write(sid, [reading])
        return len(readings) / (time.perf_counter() - start)


def run() -> list[dict[str, object]]:
    """Measure and return the benchmark figures (no output)."""
    readings = synthetic_readings(_ASYNC_READINGS)
    figures: list[dict[str, object]] = []
    lags: list[float] = []
    with tempfile.TemporaryDirectory(prefix="stridewatch-bench-store-") as tmp:
        for mode in ("NORMAL", "FULL"):
            rate, mode_lags = asyncio.run(
                _async_writer(Path(tmp) / f"async-{mode}.db", readings, mode)
            )
            lags += mode_lags
            baseline = _per_transaction(
                Path(tmp) / f"naive-{mode}.db", readings[: _BASELINE_READINGS[mode]], mode
            )
            figures.append(
                {
                    "name": "store_commit" if mode == "NORMAL" else "store_commit_sync_full",
                    "value": round(rate),
                    "unit": "readings/s",
                    "baseline": {
                        "name": "one transaction per reading"
                        + ("" if mode == "NORMAL" else " (synchronous=FULL)"),
                        "value": round(baseline),
                    },
                    "ratio": round(rate / baseline, 2),
                    "target": "report",
                }
            )
    lags.sort()
    for name, value in (("p99", lags[int(len(lags) * 0.99)]), ("max", lags[-1])):
        figures.append(
            {
                "name": f"store_loop_lag_{name}",
                "value": round(value, 2),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "report",
            }
        )
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
