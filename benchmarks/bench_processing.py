"""Benchmark: the processing pipeline on one core, over realistic readings (no BLE).

Records come from :mod:`benchmarks.records`: the virtual athlete's own frame encoders decoded
with our decoders and beat clock, as the collector emits them (HR 1 Hz with RR and beat times,
footpod frames, the connect preamble), on the easy-8k / tempo-8k / easy-8k mix.

Figures:

``processing_readings``
    Readings per second through :meth:`Pipeline.process` (every metric and alert), 4 athletes
    × 1 h interleaved (HR 1 Hz + footpod 2 Hz), best of 3. Baseline: iterating the same records
    and dispatching on their type only (the floor of any consumer); ratio = value / baseline.
    ``top``: the 5 functions with the most cumulative time under cProfile (one profiled run;
    entry points left out), and ``top_self``: the 5 with the most own time.
    ``output_floor``: building only the output records this run emits (the same
    :class:`Metric` objects with the same ``values`` dicts, through ``new_metric``), per
    reading: the ceiling of any implementation, compiled or not, that keeps today's output
    contract (issue #13 asks where the 200k/s target's time goes).
``processing_replay_1h``
    Wall seconds to replay one athlete's hour at 4 readings/s (HR 1 Hz + footpod 3 Hz: 14,400
    readings) through a fresh :class:`Pipeline`, ``finish()`` included; median of 5.
``processing_state_bytes``
    Memory traced (tracemalloc) to one :class:`AthleteProcessor` after feeding it 1 h of
    records (outputs discarded; records built before tracing starts). A throwaway processor
    is fed first so one-time caches and lazy imports are not counted. The same after 2 h is
    reported as ``after_2h_bytes`` to show the state is bounded.
"""

from __future__ import annotations

import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.records import athlete_records, mix_trace, session_records  # noqa: E402
from ingest.records import (  # noqa: E402
    BatteryReading,
    HeartRateReading,
    LinkEvent,
    Reading,
    SensorInfo,
    StrideReading,
)
from processing.pipeline import AthleteProcessor, Pipeline  # noqa: E402
from processing.records import Metric, MetricGroup, MetricValue, new_metric  # noqa: E402

RATE_ATHLETES = 4
RATE_DURATION_S = 3600.0
RATE_RUNS = 3
REPLAY_RUNS = 5
READINGS_TARGET = 200_000
REPLAY_TARGET_S = 0.5
STATE_TARGET_BYTES = 65_536
_ENTRY_POINTS = ("_drive", "process", "process_all")
_COMPONENTS = {
    # name: (file suffix, function) whose cumulative time is reported
    "heart (HR + RR beats)": ("processing/pipeline.py", "_heart"),
    "rr beats (cleaning, HRV, DFA, RR metrics)": ("processing/pipeline.py", "_beats"),
    "dfa update": ("processing/dfa.py", "update"),
    "hrv update": ("processing/hrv.py", "update"),
    "hrv metric (get + thresholds + readiness)": ("processing/pipeline.py", "_hrv_metric"),
    "gait (stride, segments, splits, accelerations)": ("processing/pipeline.py", "_stride"),
    "alerts tick": ("processing/alerts.py", "tick"),
    "session metric": ("processing/pipeline.py", "_session_metric"),
}


def _drive(records: Sequence[Reading]) -> float:
    pipeline = Pipeline()
    process = pipeline.process
    start = time.perf_counter()
    for r in records:
        process(r)
    return time.perf_counter() - start


def _dispatch_floor(records: Sequence[Reading]) -> float:
    """Iterate and type-dispatch only: what any consumer of these records pays at least."""
    counts = [0, 0, 0, 0, 0]
    start = time.perf_counter()
    for r in records:
        match r:
            case HeartRateReading():
                counts[0] += 1
            case StrideReading():
                counts[1] += 1
            case BatteryReading():
                counts[2] += 1
            case LinkEvent():
                counts[3] += 1
            case SensorInfo():
                counts[4] += 1
    elapsed = time.perf_counter() - start
    assert sum(counts) == len(records)
    return elapsed


MetricArgs = tuple[str, datetime, float, MetricGroup, tuple[tuple[str, MetricValue], ...]]


def _emitted_metrics(records: Sequence[Reading]) -> list[MetricArgs]:
    """The constructor arguments of every Metric a fresh Pipeline emits for ``records``."""
    pipeline = Pipeline()
    out: list[MetricArgs] = []
    for r in records:
        for o in pipeline.process(r):
            if isinstance(o, Metric):
                out.append((o.athlete, o.time_utc, o.time_mono_s, o.group,
                            tuple(o.values.items())))
    return out


def _build_metrics(metrics: Sequence[MetricArgs]) -> float:
    """Seconds to build these Metric records (values dict included), nothing else."""
    start = time.perf_counter()
    for athlete, utc, mono, group, values in metrics:
        new_metric(athlete, utc, mono, group, dict(values))
    return time.perf_counter() - start


def _where(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func
    path = Path(filename)
    try:
        name = str(path.relative_to(REPO))
    except ValueError:
        name = path.name
    return f"{name}:{line}({func})"


Profile = tuple[list[dict[str, object]], list[dict[str, object]], dict[str, float]]


def _profile(records: Sequence[Reading]) -> Profile:
    profiler = cProfile.Profile()
    profiler.enable()
    _drive(records)
    profiler.disable()
    stats = pstats.Stats(profiler)
    table = stats.stats  # type: ignore[attr-defined]  # (file, line, func) -> (cc, nc, tt, ct, callers)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [
        (key, int(nc), float(tt), float(ct))
        for key, (_cc, nc, tt, ct, _callers) in table.items()
        if key[2] not in _ENTRY_POINTS and "_lsprof" not in key[2]
        and "disable" not in key[2]
    ]

    def entry(key: tuple[str, int, str], nc: int, value: float) -> dict[str, object]:
        return {"function": _where(key), "calls": nc, "seconds": round(value, 3),
                "share_pct": round(100.0 * value / total, 1)}

    cumulative = sorted(rows, key=lambda x: x[3], reverse=True)[:5]
    own = sorted(rows, key=lambda x: x[2], reverse=True)[:5]
    components = {
        name: round(100.0 * sum(ct for k, _nc, _tt, ct in rows
                                if k[0].endswith(suffix) and k[2] == func) / total, 1)
        for name, (suffix, func) in _COMPONENTS.items()
    }
    return ([entry(k, nc, ct) for k, nc, _tt, ct in cumulative],
            [entry(k, nc, tt) for k, nc, tt, _ct in own], components)


def _processing_readings() -> dict[str, object]:
    records = session_records(athletes=RATE_ATHLETES, duration_s=RATE_DURATION_S)
    _drive(records[:5000])  # warm-up
    elapsed = min(_drive(records) for _ in range(RATE_RUNS))
    floor = min(_dispatch_floor(records) for _ in range(RATE_RUNS))
    rate, floor_rate = len(records) / elapsed, len(records) / floor
    metrics = _emitted_metrics(records)
    output_s = min(_build_metrics(metrics) for _ in range(RATE_RUNS))
    top, top_self, components = _profile(records)
    verdict = "met" if rate >= READINGS_TARGET else "MISSED"
    return {
        "name": "processing_readings",
        "value": round(rate),
        "unit": "readings/s",
        "baseline": {"name": "iterate + type-dispatch the same records only (floor)",
                     "value": round(floor_rate)},
        "ratio": round(rate / floor_rate, 4),
        "target": f">= {READINGS_TARGET} readings/s: {verdict} ({rate / READINGS_TARGET:.2f}x "
                  "of target)",
        "readings": len(records),
        "athletes": RATE_ATHLETES,
        "us_per_reading": round(1e6 / rate, 1),
        "output_floor": {
            "readings_per_s": round(len(records) / output_s),
            "us_per_reading": round(1e6 * output_s / len(records), 2),
            "metrics": len(metrics),
            "values_per_metric": round(sum(len(m[4]) for m in metrics) / len(metrics), 1),
            "share_of_budget_pct": round(100.0 * output_s / len(records) * READINGS_TARGET, 1),
            "note": "building only the Metric records this run emits (same values dicts); "
                    "share_of_budget_pct: of the 5 us a reading the target allows",
        },
        "top": top,
        "top_self": top_self,
        "components_pct": components,
        "note": "one core, best of 3; easy/tempo mix, HR 1 Hz + RR + footpod 2 Hz per athlete; "
                "top/top_self/components_pct (cumulative % of the profiled run; nested, so they "
                "overlap) from one cProfile run (profiling inflates the absolute times)",
    }


def _processing_replay_1h() -> dict[str, object]:
    records = athlete_records(mix_trace(0), duration_s=3600.0, footpod_hz=3.0)
    times: list[float] = []
    for _ in range(REPLAY_RUNS):
        pipeline = Pipeline()
        gc.collect()
        start = time.perf_counter()
        for r in records:
            pipeline.process(r)
        pipeline.finish()
        times.append(time.perf_counter() - start)
    value = statistics.median(times)
    verdict = "met" if value < REPLAY_TARGET_S else "MISSED"
    return {
        "name": "processing_replay_1h",
        "value": round(value, 3),
        "unit": "s",
        "baseline": None,
        "ratio": None,
        "target": f"< {REPLAY_TARGET_S} s: {verdict}",
        "readings": len(records),
        "min_s": round(min(times), 3),
        "note": "one athlete, 1 h, HR 1 Hz + RR + footpod 3 Hz, fresh Pipeline, finish() "
                f"included; median of {REPLAY_RUNS}",
    }


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _state_bytes(records: Sequence[Reading]) -> tuple[int, list[dict[str, object]]]:
    """Traced bytes held by one processor fed ``records`` (tracing already on); the top 5
    lines that allocated them."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    processor = AthleteProcessor("athlete-1")
    for r in records:
        processor.process(r)
    gc.collect()
    diff = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")
    top = [
        {"line": _where((s.traceback[0].filename, s.traceback[0].lineno, "")).removesuffix("()"),
         "bytes": s.size_diff, "blocks": s.count_diff}
        for s in sorted(diff, key=lambda s: s.size_diff, reverse=True)[:5]
    ]
    del processor
    return sum(s.size_diff for s in diff), top


def _throwaway(records: Sequence[Reading]) -> None:
    warm = AthleteProcessor("warm-up")
    for r in records:
        warm.process(r)


def _processing_state_bytes() -> dict[str, object]:
    trace = mix_trace(0)
    two_hours = athlete_records(trace, duration_s=7200.0)
    one_hour = [r for r in two_hours if r.time_mono_s <= two_hours[0].time_mono_s + 3600.0]
    # Tracing starts before a throwaway processor fills any process-wide cache or lazy import
    # (so they net out); their size is reported apart: all athletes share them.
    tracemalloc.start()
    try:
        base = _traced()
        _throwaway(two_hours)
        shared = _traced() - base
        value, top = _state_bytes(one_hour)
        after_2h, _ = _state_bytes(two_hours)
    finally:
        tracemalloc.stop()
    verdict = "met" if value <= STATE_TARGET_BYTES else "MISSED"
    return {
        "name": "processing_state_bytes",
        "value": value,
        "unit": "bytes",
        "baseline": None,
        "ratio": None,
        "target": f"<= {STATE_TARGET_BYTES} bytes: {verdict}",
        "after_2h_bytes": after_2h,
        "bounded": after_2h <= value * 1.1 + 4096,
        "top_lines": top,
        "shared_process_caches_bytes": shared,
        "note": "tracemalloc: traced bytes gained by creating one AthleteProcessor and "
                "feeding it 1 h of records (outputs discarded, records built beforehand). "
                "A throwaway processor is fed first so one-time caches and lazy imports are "
                "not counted; what it leaves is reported as shared_process_caches_bytes.",
    }


def run() -> list[dict[str, object]]:
    """Measure and return the benchmark figures (no output)."""
    return [_processing_readings(), _processing_replay_1h(), _processing_state_bytes()]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
