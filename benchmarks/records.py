"""Realistic readings for the processing benchmarks, built without BLE.

:func:`athlete_records` turns a virtual athlete's :class:`~ingest.virtual.athlete.AthleteTrace`
into the records the collector would emit for it: the frames come from the virtual sensors'
own encoders (:meth:`VirtualAthlete.heart_rate_frame` / :meth:`~VirtualAthlete.rsc_frame`) and
are decoded with our GATT decoders and placed with a :class:`~ingest.beat_clock.BeatClock`,
exactly as :class:`ingest.collector.Collector` does, so every value is wire-exact: a
Heart Rate Measurement per ``1 / hr_hz`` s with the RR intervals of the beats since the previous
frame and their beat times, an RSC Measurement per ``1 / footpod_hz`` s. Each sensor starts with
what the collector emits on connect (``connected`` link event, ``SensorInfo``, battery level).

:func:`mix_workout` is the benchmarks' long session: easy-8k, tempo-8k, easy-8k back to back
(about 2 h 15 min), so 1-hour and 2-hour slices are both real running.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.beat_clock import BeatClock
from ingest.gatt.heart_rate import decode_heart_rate
from ingest.gatt.rsc import RscFeature, decode_rsc
from ingest.gatt.rsc import names as rsc_feature_names
from ingest.records import (
    BatteryReading,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
    StrideReading,
)
from ingest.virtual.athlete import AthleteTrace, simulate
from ingest.virtual.sensors import START_BATTERY_PCT, SensorOptions, VirtualAthlete
from ingest.virtual.workouts import Workout, load_workout

EPOCH = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
"""UTC of monotonic time :data:`MONO0`."""
MONO0 = 1000.0
"""Monotonic time (s) of the workout's start."""
ARRIVAL_LAG_S = 0.0075
"""Notification arrives this long after the sensor's measurement (half a 15 ms interval)."""
_FEATURES = (
    RscFeature.WALKING_OR_RUNNING_STATUS
    | RscFeature.INSTANTANEOUS_STRIDE_LENGTH
    | RscFeature.TOTAL_DISTANCE
)


def mix_workout() -> Workout:
    """easy-8k, tempo-8k and easy-8k as one session (≈ 2 h 15 min of mostly running)."""
    easy, tempo = load_workout("easy-8k"), load_workout("tempo-8k")
    return Workout(
        name="easy-tempo-easy",
        description="easy-8k, tempo-8k, easy-8k back to back",
        phases=easy.phases + tempo.phases + easy.phases,
    )


def mix_trace(seed: int = 0) -> AthleteTrace:
    """The simulated athlete of :func:`mix_workout`."""
    return simulate(mix_workout(), seed=seed)


def shifted_trace(trace: AthleteTrace, skip_s: float) -> AthleteTrace:
    """``trace`` starting ``skip_s`` seconds in (the athlete is already mid-workout at t = 0)."""
    k = round(skip_s / trace.dt_s)
    skip = float(trace.time_s[k])
    beats = trace.beat_times_s > skip

    def ro(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.array(a, copy=True)
        out.setflags(write=False)
        return out

    return dataclasses.replace(
        trace,
        time_s=ro(trace.time_s[k:] - skip),
        speed_mps=ro(trace.speed_mps[k:]),
        cadence_spm=ro(trace.cadence_spm[k:]),
        step_length_m=ro(trace.step_length_m[k:]),
        distance_m=ro(trace.distance_m[k:]),
        hr_bpm=ro(trace.hr_bpm[k:]),
        running=ro(trace.running[k:]),
        beat_times_s=ro(trace.beat_times_s[beats] - skip),
        rr_s=ro(trace.rr_s[beats]),
    )


def _stamp(t_s: float) -> tuple[float, datetime]:
    mono = MONO0 + t_s + ARRIVAL_LAG_S
    return mono, EPOCH + timedelta(seconds=mono - MONO0)


def _connect(athlete: str, sensor: str, name: str, kind: SensorKind) -> list[Reading]:
    mono, utc = _stamp(0.0)
    common = {"athlete": athlete, "sensor": sensor, "time_utc": utc, "time_mono_s": mono}
    footpod = kind is SensorKind.FOOTPOD
    return [
        LinkEvent(**common, state=LinkState.CONNECTED),  # type: ignore[arg-type]
        SensorInfo(
            **common,  # type: ignore[arg-type]
            name=name,
            kind=kind,
            manufacturer="stridewatch virtual",
            model="POD-V1" if footpod else "HRM-V1",
            firmware="1.0.0",
            body_sensor_location=None if footpod else "chest",
            rsc_features=rsc_feature_names(_FEATURES) if footpod else None,
        ),
        BatteryReading(**common, level_pct=START_BATTERY_PCT, raw=bytes([START_BATTERY_PCT])),  # type: ignore[arg-type]
    ]


def athlete_records(
    trace: AthleteTrace,
    *,
    athlete: str = "athlete-1",
    index: int = 0,
    duration_s: float = 3600.0,
    hr_hz: float = 1.0,
    footpod_hz: float = 2.0,
) -> list[Reading]:
    """What the collector emits for one athlete over the first ``duration_s`` s of ``trace``.

    ``index`` makes the sensor addresses unique between athletes.
    """
    strap_addr = f"D0:00:00:00:{index:02X}:01"
    pod_addr = f"D0:00:00:00:{index:02X}:02"
    virtual = VirtualAthlete(
        name=athlete, trace=trace, options=SensorOptions(footpod_interval_s=1.0 / footpod_hz)
    )
    out = _connect(athlete, strap_addr, virtual.strap_name, SensorKind.HEART_RATE)
    out += _connect(athlete, pod_addr, virtual.footpod_name, SensorKind.FOOTPOD)
    beat_clock = BeatClock()
    # (workout time, order, kind) of every frame; at equal times the strap is sent first.
    n_hr = int(duration_s * hr_hz + 1e-9)
    n_pod = int(duration_s * footpod_hz + 1e-9)
    events = sorted(
        [(k / hr_hz, 0, k) for k in range(1, n_hr + 1)]
        + [(j / footpod_hz, 1, j) for j in range(1, n_pod + 1)]
    )
    t_prev_hr = 0.0
    for t, kind, k in events:
        mono, utc = _stamp(t)
        if kind == 0:
            raw = virtual.heart_rate_frame(t, t_prev_hr, k)
            t_prev_hr = t
            m = decode_heart_rate(raw)
            rr = m.rr_intervals_s
            placed = beat_clock.place(mono, rr)
            out.append(
                HeartRateReading(
                    athlete=athlete,
                    sensor=strap_addr,
                    time_utc=utc,
                    time_mono_s=mono,
                    heart_rate_bpm=m.heart_rate_bpm,
                    rr_intervals_s=rr,
                    beat_times_mono_s=placed.beat_times_s,
                    contact=m.contact,
                    energy_kj=m.energy_kj,
                    raw=raw,
                )
            )
        else:
            raw = virtual.rsc_frame(t)
            s = decode_rsc(raw)
            out.append(
                StrideReading(
                    athlete=athlete,
                    sensor=pod_addr,
                    time_utc=utc,
                    time_mono_s=mono,
                    speed_mps=s.speed_mps,
                    cadence_per_min=s.cadence_per_min,
                    stride_length_m=s.stride_length_m,
                    total_distance_m=s.total_distance_m,
                    running=s.running,
                    raw=raw,
                )
            )
    return out


def merge(streams: Iterable[Sequence[Reading]]) -> list[Reading]:
    """Several athletes' records interleaved by arrival time (as one collector yields them)."""
    return list(heapq.merge(*streams, key=lambda r: r.time_mono_s))


def session_records(
    *,
    athletes: int = 1,
    duration_s: float = 3600.0,
    hr_hz: float = 1.0,
    footpod_hz: float = 2.0,
    seed: int = 0,
) -> list[Reading]:
    """``athletes`` athletes (seeds ``seed + i``) doing :func:`mix_workout`, interleaved."""
    return merge(
        athlete_records(
            mix_trace(seed + i),
            athlete=f"athlete-{i + 1}",
            index=i,
            duration_s=duration_s,
            hr_hz=hr_hz,
            footpod_hz=footpod_hz,
        )
        for i in range(athletes)
    )
