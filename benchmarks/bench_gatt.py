"""Benchmark: GATT notification decoding throughput, ours against bumble's decoder.

``run()`` returns one figure, ``gatt_decode``: frames/s of our decoders on a realistic mix
(70 % Heart Rate Measurement, 30 % RSC Measurement), against bumble's
``HeartRateService.HeartRateMeasurement.from_bytes`` on the HR frames of the same mix (bumble
has no RSC decoder). ``hr_only_value`` is ours on exactly those HR frames, the like-for-like
comparison. Each timing is the best of 3 runs of about 0.5 s.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence

from bumble.profiles.heart_rate_service import HeartRateService

from ingest.gatt.heart_rate import HeartRateMeasurement, decode_heart_rate
from ingest.gatt.rsc import RscMeasurement, decode_rsc
from ingest.records import Contact

MIX_SIZE = 1000
"""Distinct frames in the mix (cycled through while timing)."""
HR_SHARE = 0.7
"""Fraction of heart-rate frames; the rest are RSC frames (a strap and a footpod)."""
REPEATS = 3
"""Timing runs; the best is reported (least disturbed by the machine)."""
RUN_S = 0.5
"""Target duration of one timing run, seconds."""
TARGET = ">= 250000 frames/s and >= 2x bumble"


def _hr_frame(rng: random.Random, i: int) -> bytes:
    rr = tuple(rng.randint(600, 900) for _ in range(rng.choice((0, 1, 1, 2, 2, 3))))
    return bytes(
        HeartRateMeasurement(
            heart_rate_bpm=rng.randint(60, 190),
            contact=Contact.DETECTED,
            energy_kj=rng.randint(0, 3000) if i % 10 == 0 else None,  # every 10th, as straps do
            rr_ticks=rr,
            rr_flag_empty=not rr,
        )
    )


def _rsc_frame(rng: random.Random) -> bytes:
    return bytes(
        RscMeasurement(
            speed_mps=rng.randint(256, 1536) / 256,
            cadence_per_min=rng.randint(150, 190),
            stride_length_m=rng.randint(80, 160) / 100 if rng.random() < 0.5 else None,
            total_distance_m=rng.randint(0, 400000) / 10 if rng.random() < 0.5 else None,
            running=True,
        )
    )


def make_mix(seed: int = 2024) -> list[tuple[Callable[[bytes], object], bytes]]:
    """The frame mix as (decoder, frame) pairs, shuffled, reproducible."""
    rng = random.Random(seed)
    mix: list[tuple[Callable[[bytes], object], bytes]] = []
    for i in range(MIX_SIZE):
        if rng.random() < HR_SHARE:
            mix.append((decode_heart_rate, _hr_frame(rng, i)))
        else:
            mix.append((decode_rsc, _rsc_frame(rng)))
    return mix


def _rate(work: Sequence[tuple[Callable[[bytes], object], bytes]]) -> float:
    """Best-of-``REPEATS`` frames/s decoding every pair of ``work`` in a loop."""

    def one_pass(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            for decode, frame in work:
                decode(frame)
        return time.perf_counter() - start

    elapsed = one_pass(1)
    loops = max(1, int(RUN_S / max(elapsed, 1e-9)))
    best = min(one_pass(loops) for _ in range(REPEATS))
    return loops * len(work) / best


def run() -> list[dict[str, object]]:
    """Time the decoders; one figure (see the module docstring)."""
    mix = make_mix()
    hr_frames = [frame for decode, frame in mix if decode is decode_heart_rate]
    bumble_decode = HeartRateService.HeartRateMeasurement.from_bytes
    value = _rate(mix)
    baseline = _rate([(bumble_decode, f) for f in hr_frames])
    hr_only = _rate([(decode_heart_rate, f) for f in hr_frames])
    return [
        {
            "name": "gatt_decode",
            "value": round(value),
            "unit": "frames/s",
            "baseline": {
                "name": "bumble HeartRateMeasurement.from_bytes (HR frames only)",
                "value": round(baseline),
            },
            "ratio": round(value / baseline, 2),
            "target": TARGET,
            "hr_only_value": round(hr_only),
            "hr_only_ratio": round(hr_only / baseline, 2),
            "mix": f"{len(mix)} frames: {len(hr_frames)} HR (0-3 RR, energy every 10th), "
            f"{len(mix) - len(hr_frames)} RSC (stride/distance each in half)",
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
