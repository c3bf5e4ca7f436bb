"""Benchmark: CPU of the demo path with 20 virtual athletes at real-time speed.

``virtual_fleet("easy-8k", athletes=20)`` (40 real bumble GATT servers on one in-process
radio) + our bleak backend + :class:`Collector`, then, as ``stridewatch demo`` does
(``_record_live`` without network outputs), every record through a :class:`SessionRecorder`:
session store (SQLite in a temp dir, batched by :class:`AsyncStore` on its worker thread) and
the :class:`Pipeline`. Speed 1.0 (a :class:`TimeWarpLoop` at real time, as the demo uses).

The athletes' traces start 15 min into the workout (:func:`benchmarks.records.shifted_trace`)
so the window is steady running (HR ~150, ~2.5 RR per frame), not the opening stand.
Process CPU (``time.process_time()``, all threads) is measured over a steady window of
``WINDOW_S`` wall seconds that starts ``SETTLE_S`` after the last athlete started (connect and
discovery are left out).

``demo_cpu_per_athlete``: value = total CPU of the process for 20 athletes in % of one core;
``per_athlete_pct`` = value / 20. Baseline, same benchmark run, same fleet and window: the
collector consuming records without processing or storing them, i.e. the virtual radio
(bumble peripherals and central) + bleak backend + collector, which a real deployment replaces
by a BLE adapter; ``processing_store_pct`` = value - baseline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.records import shifted_trace  # noqa: E402
from ingest.clock import LoopClock  # noqa: E402
from ingest.records import Reading  # noqa: E402
from ingest.virtual import timewarp  # noqa: E402
from ingest.virtual.sensors import VirtualFleet, virtual_fleet  # noqa: E402
from outputs.store import AsyncStore  # noqa: E402
from processing.settings import ProcessingSettings  # noqa: E402
from stridewatch.session import SessionRecorder  # noqa: E402

WORKOUT = "easy-8k"
ATHLETES = 20
SKIP_S = 900.0
SETTLE_S = 3.0
WINDOW_S = 20.0
TARGET_PCT = 10.0


class _Window:
    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self.records = 0
        """Records in the window."""
        self.total = 0
        """Records so far (the sink counts them)."""


async def _measure_window(fleet: VirtualFleet, window: _Window) -> None:
    while any(a.start_s is None for a in fleet.athletes):  # noqa: ASYNC110 - no event
        await asyncio.sleep(0.05)
    await asyncio.sleep(SETTLE_S)
    records0 = window.total
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(WINDOW_S)
    window.cpu_s = time.process_time() - cpu0
    window.wall_s = time.perf_counter() - wall0
    window.records = window.total - records0


async def _run(full: bool, store_dir: Path) -> tuple[_Window, int]:
    window = _Window()
    async with virtual_fleet(WORKOUT, athletes=ATHLETES) as fleet:
        for athlete in fleet.athletes:
            athlete.trace = shifted_trace(athlete.trace, SKIP_S)
        stop_at = SETTLE_S + WINDOW_S + 2.0
        clock = LoopClock(datetime.now(UTC).replace(microsecond=0))

        def counting(sink: Callable[[Reading], object]) -> Callable[[Reading], None]:
            def inner(record: Reading) -> None:
                window.total += 1
                sink(record)
            return inner

        monitor = asyncio.ensure_future(_measure_window(fleet, window))
        try:
            if full:
                async with AsyncStore.open(store_dir / "demo.sqlite") as store:
                    recorder = SessionRecorder(store, f"virtual:{WORKOUT}", ProcessingSettings())
                    try:
                        await fleet.collect(counting(recorder.handle), clock=clock,
                                            stop_at_s=stop_at)
                    finally:
                        recorder.finish()
                    await store.flush()
                    recorder.close_sessions()
            else:
                await fleet.collect(counting(lambda _r: None), clock=clock, stop_at_s=stop_at)
            await asyncio.wait_for(monitor, timeout=5.0)
        finally:
            monitor.cancel()
    if not window.wall_s:
        raise RuntimeError("the measurement window did not complete")
    return window, window.total


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        radio, radio_records = timewarp.run(_run(False, Path(tmp)), speed=1.0)
        full, full_records = timewarp.run(_run(True, Path(tmp)), speed=1.0)
    value = 100.0 * full.cpu_s / full.wall_s
    baseline = 100.0 * radio.cpu_s / radio.wall_s
    verdict = "met" if value <= TARGET_PCT else "MISSED"
    share = value - baseline
    return [{
        "name": "demo_cpu_per_athlete",
        "value": round(value, 2),
        "unit": "% of one core (20 athletes, total)",
        "baseline": {"name": "same fleet, virtual radio + collector only (no processing, "
                             "no store), % of one core", "value": round(baseline, 2)},
        "ratio": round(value / baseline, 3) if baseline else None,
        "target": f"20 athletes <= {TARGET_PCT:g} % of one core in total: {verdict}"
                  + ("" if value <= TARGET_PCT else
                     f" (processing + store alone: {share:.1f} %, "
                     f"{'within' if share <= TARGET_PCT else 'also over'} the target)"),
        "per_athlete_pct": round(value / ATHLETES, 3),
        "processing_store_pct": round(share, 2),
        "processing_store_per_athlete_pct": round(share / ATHLETES, 3),
        "athletes": ATHLETES,
        "window_s": round(full.wall_s, 1),
        "records_per_s": round(full.records / full.wall_s, 1),
        "baseline_records_per_s": round(radio.records / radio.wall_s, 1),
        "records_total": full_records,
        "baseline_records_total": radio_records,
        "note": f"speed 1.0; {WORKOUT} from {SKIP_S:.0f} s in (steady running); process CPU "
                "(all threads) over the steady window; the baseline includes bumble's simulated "
                "peripherals and central, absent in a real deployment",
    }]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
