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
readings held in memory (a saturating load: far above the ~10 readings/s of one athlete):
``store_loop_lag_saturated_p99`` and ``_max``.

``store_loop_lag_p99`` (issue #10) is the live figure: 20 athletes recorded in real time (each a
heart-rate strap at 1 Hz and a footpod at 2 Hz, wire-exact readings from
:mod:`benchmarks.records`, plus the metrics the pipeline emits for them: heart and gait per
reading, RR per beat, HRV and session every 10 s), fed at their arrival times through
:class:`AsyncStore` (default batching), while :class:`~outputs.influx.OutboxDelivery` polls the
outbox through :class:`~outputs.outbox.StoreOutbox` (worker threads) and writes to a real
influxd on loopback. A 10 ms ticker measures how late the loop wakes (actual minus scheduled
wake, ms); the first second is warm-up. Target: p99 <= 5 ms.

Run ``python -m benchmarks.bench_store`` (``STRIDEWATCH_BENCH_LIVE_S`` sets the live run's
length, default 20 s); a runner calls :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.records import session_records
from ingest.records import Contact, HeartRateReading, Reading, StrideReading
from outputs.codec import Record
from outputs.influx import InfluxTarget, InfluxWriter, OutboxDelivery, StoreDeliveryOutbox
from outputs.store import AsyncStore, SessionStore
from processing.records import Metric, MetricGroup, MetricValue

_T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
_ASYNC_READINGS = 100_000
_BASELINE_READINGS = {"NORMAL": 5_000, "FULL": 500}  # FULL fsyncs every transaction: slow
_CHUNK = 500
_TICK_S = 0.001
_LIVE_ATHLETES = 20
_LIVE_TICK_S = 0.010
_LIVE_WARMUP_S = 1.0


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


def _with_metrics(readings: list[Reading]) -> list[tuple[float, Record]]:
    """(arrival mono time, record): the readings and the metrics the pipeline would emit."""
    out: list[tuple[float, Record]] = []
    last_hrv: dict[str, float] = {}
    for r in readings:
        out.append((r.time_mono_s, r))
        if isinstance(r, HeartRateReading):
            out.append((r.time_mono_s, Metric(
                athlete=r.athlete, time_utc=r.time_utc, time_mono_s=r.time_mono_s,
                group=MetricGroup.HEART, values={"heart_rate_bpm": float(r.heart_rate_bpm),
                                                 "zone": 3, "contact": "detected"})))
            for rr, beat in zip(r.rr_intervals_s, r.beat_times_mono_s, strict=False):
                out.append((r.time_mono_s, Metric(
                    athlete=r.athlete, time_mono_s=beat,
                    time_utc=r.time_utc - timedelta(seconds=r.time_mono_s - beat),
                    group=MetricGroup.RR,
                    values={"rr_ms": rr * 1000.0, "clean_rr_ms": rr * 1000.0})))
            if r.time_mono_s - last_hrv.get(r.athlete, -1e9) >= 10.0:
                last_hrv[r.athlete] = r.time_mono_s
                periodic: tuple[tuple[MetricGroup, dict[str, MetricValue]], ...] = (
                    (MetricGroup.HRV, {"rmssd_60s_ms": 35.5, "sdnn_60s_ms": 50.25,
                                       "dfa_alpha1": 0.91, "coverage_60s": 1.0}),
                    (MetricGroup.SESSION, {"trimp": 12.5, "avg_hr_bpm": 141.0,
                                           "segment": "run"}),
                )
                for group, values in periodic:
                    out.append((r.time_mono_s, Metric(
                        athlete=r.athlete, time_utc=r.time_utc, time_mono_s=r.time_mono_s,
                        group=group, values=values)))
        elif isinstance(r, StrideReading):
            out.append((r.time_mono_s, Metric(
                athlete=r.athlete, time_utc=r.time_utc, time_mono_s=r.time_mono_s,
                group=MetricGroup.GAIT, values={"cadence_spm": float(r.cadence_per_min * 2),
                                                "speed_mps": r.speed_mps, "running": True})))
    return out  # fmt: skip


async def _live(path: Path, url: str, duration_s: float) -> dict[str, float]:
    """20 athletes in real time into the store, InfluxDB delivery polling its outbox."""
    readings = session_records(athletes=_LIVE_ATHLETES, duration_s=duration_s)
    timeline = _with_metrics(readings)
    mono0 = min(t for t, _ in timeline)
    lags: list[float] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def ticker() -> None:
        started = loop.time()
        while not stop.is_set():
            due = loop.time() + _LIVE_TICK_S
            await asyncio.sleep(_LIVE_TICK_S)
            if due - started > _LIVE_WARMUP_S:
                lags.append((loop.time() - due) * 1000.0)

    target = InfluxTarget(url=url, database="bench")
    async with InfluxWriter(target) as writer, AsyncStore.open(path) as out:
        sids = {
            f"athlete-{i + 1}": out.store.create_session(f"athlete-{i + 1}", _T0, "benchmark")
            for i in range(_LIVE_ATHLETES)
        }
        delivery = OutboxDelivery(StoreDeliveryOutbox(out.store), writer)
        deliver_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(ticker(), name="bench-ticker")
            tg.create_task(delivery.run(deliver_stop), name="influx-delivery")
            start = loop.time()
            i = 0
            while i < len(timeline):
                now = loop.time() - start
                while i < len(timeline) and timeline[i][0] - mono0 <= now:
                    record = timeline[i][1]
                    out.add(sids[record.athlete], record)
                    i += 1
                delivery.notify()
                if i < len(timeline):
                    await asyncio.sleep(max(0.0, timeline[i][0] - mono0 - now))
            stop.set()
            await out.flush()
            drained = await delivery.drain(60.0)
            deliver_stop.set()
        if not drained:
            raise RuntimeError(f"InfluxDB delivery did not drain: {delivery.progress}")
    lags.sort()
    return {
        "p99": lags[int(len(lags) * 0.99)],
        "max": lags[-1],
        "records_per_s": len(timeline) / duration_s,
        "delivered": float(delivery.progress.delivered),
    }


def live_figures(duration_s: float | None = None) -> list[dict[str, object]]:
    """The live 20-athlete loop-lag figures (starts an influxd on loopback)."""
    duration = duration_s or float(os.environ.get("STRIDEWATCH_BENCH_LIVE_S", "20"))
    repo = Path(__file__).resolve().parent.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.influx_server import InfluxServer

    with tempfile.TemporaryDirectory(prefix="stridewatch-bench-live-") as tmp:
        server = InfluxServer(Path(tmp) / "influxd")
        with server:
            server.create_database("bench")
            result = asyncio.run(_live(Path(tmp) / "live.db", server.url, duration))
    return [
        {
            "name": "store_loop_lag_p99",
            "value": round(result["p99"], 2),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "<= 5 ms (20 athletes live, "
            f"{result['records_per_s']:.0f} records/s, InfluxDB delivery from the outbox)",
        },
        {
            "name": "store_loop_lag_live_max",
            "value": round(result["max"], 2),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "report",
        },
    ]


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
                "name": f"store_loop_lag_saturated_{name}",
                "value": round(value, 2),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "report",
            }
        )
    return figures + live_figures()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
