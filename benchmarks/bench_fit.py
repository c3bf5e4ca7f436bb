"""Benchmark: FIT import speed, ``read_fit`` vs fitdecode alone.

Input: the largest FIT file in ``tests/data/fit`` (``mornindew-broken.fit``, 318 kB, 6,874
records, a 2 h 24 min run; a valid file despite its name, see tests/data/SOURCES.md). Both
sides are repeated until about one second has passed; the figure is FIT ``record`` messages
per second.

Baseline: fitdecode alone with the same options (CRC checked, errors raised), iterating every
frame and doing nothing else. The ratio (ours / baseline) shows what conversion to Readings,
the time line and the RR chain cost on top of decoding.

Run ``python -m benchmarks.bench_fit``; a runner calls :func:`run`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import fitdecode

from ingest.replay import read_fit

_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "fit"
_TARGET_S = 1.0


def _largest() -> Path:
    return max(_DATA.glob("*.fit"), key=lambda p: p.stat().st_size)


def _decode_only(path: Path) -> int:
    """Records seen by fitdecode alone (frames iterated, nothing converted)."""
    records = 0
    with fitdecode.FitReader(
        path, check_crc=fitdecode.CrcCheck.RAISE, error_handling=fitdecode.ErrorHandling.RAISE
    ) as reader:
        for frame in reader:
            if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name == "record":
                records += 1
    return records


def _rate(work: Callable[[], int]) -> tuple[float, int]:
    """(records per second, records per call), repeating ``work`` for about a second."""
    records = work()  # warm-up (imports, profile tables)
    calls = 0
    start = time.perf_counter()
    while True:
        work()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= _TARGET_S:
            return records * calls / elapsed, records


def run() -> list[dict[str, object]]:
    """The ``fit_import`` figure (records/s) with fitdecode alone as the baseline."""
    path = _largest()

    def ours() -> int:
        activities = read_fit(path, athlete="bench")
        return sum(1 for a in activities for r in a.readings if r.sensor == "fit:pod")

    ours_rate, _ = _rate(ours)
    base_rate, _ = _rate(lambda: _decode_only(path))
    return [
        {
            "name": "fit_import",
            "value": round(ours_rate),
            "unit": "records/s",
            "baseline": {
                "name": "fitdecode alone (iterate frames, no conversion)",
                "value": round(base_rate),
            },
            "ratio": round(ours_rate / base_rate, 3),
            "target": "report",
            "file": path.name,
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
