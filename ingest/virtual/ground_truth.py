"""Ground truth of a simulated session: segments, accelerations, artifacts and resting HRV.

:class:`GroundTruth` records what really happened in a session simulated by
:func:`ingest.virtual.athlete.simulate`, derived from the workout phases and the exact model
arrays rather than from anything a sensor reports. Tests of later stages (segmentation,
acceleration detection, HR-surge alerts, HRV and artifact cleaning) compare their output
against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ingest.virtual.time_grid import DT_S, FloatArray
from ingest.virtual.workouts import Phase


@dataclass(frozen=True, slots=True)
class TruthSegment:
    """A stretch of one activity kind (contiguous phases of the same kind merged).

    Attributes:
        kind: stand, walk, run or sprint.
        start_s: start (s since session start).
        end_s: end (s).
        start_m: cumulative distance at the start (m).
        end_m: cumulative distance at the end (m).
    """

    kind: str
    start_s: float
    end_s: float
    start_m: float
    end_m: float


@dataclass(frozen=True, slots=True)
class TruthAcceleration:
    """What happened in one ``accelerate`` phase (normally a start from standstill).

    Attributes:
        start_s: start of the phase (s since session start).
        start_m: cumulative distance at the start (m).
        time_to_90pct_s: time from the start until speed first reached 90 % of the phase's peak
            (s), interpolated between samples.
        distance_to_90pct_m: distance covered by then (m).
        peak_speed_mps: highest speed in the phase (m/s).
        peak_cadence_spm: highest cadence in the phase (steps/min).
        peak_step_length_m: longest step in the phase (m, foot strike to foot strike).
        steps: steps taken during the phase (integrated cadence, rounded).
    """

    start_s: float
    start_m: float
    time_to_90pct_s: float
    distance_to_90pct_m: float
    peak_speed_mps: float
    peak_cadence_spm: float
    peak_step_length_m: float
    steps: int


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What really happened, for tests of segmentation, alerts, HRV and accelerations.

    Attributes:
        duration_s: session length (s).
        distance_m: total distance (m).
        segments: activity segments in order; phases of the same kind in a row are merged.
        accelerations: one per ``accelerate`` phase, in order.
        surge_time_s: first time t (s) at which model HR(t) − min(HR over [t − 30 s, t]) ≥
            20 bpm; ``None`` if HR never surges. Computed on the smooth model HR, not on beats.
        artifact_beat_indices: indices into ``AthleteTrace.beat_times_s`` of artifact beats: for
            an extra beat, the spurious beat itself (its RR and the next one are both short);
            for a missed beat, the beat ending the merged, too-long RR interval.
        resting_rmssd_ms: RMSSD (ms) of the artifact-free RR intervals during the initial stand
            (the first 60 s if the workout does not start standing): today's resting HRV.
    """

    duration_s: float
    distance_m: float
    segments: tuple[TruthSegment, ...]
    accelerations: tuple[TruthAcceleration, ...]
    surge_time_s: float | None
    artifact_beat_indices: tuple[int, ...]
    resting_rmssd_ms: float


def segments(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    distance: FloatArray,
) -> tuple[TruthSegment, ...]:
    """Activity segments in order, contiguous phases of the same kind merged."""
    merged: list[tuple[str, int, int]] = []
    for phase, (k0, k1) in zip(phases, bounds, strict=True):
        if merged and merged[-1][0] == phase.kind:
            merged[-1] = (phase.kind, merged[-1][1], k1)
        else:
            merged.append((phase.kind, k0, k1))
    return tuple(
        TruthSegment(kind, float(time[k0]), float(time[k1]), float(distance[k0]),
                     float(distance[k1]))
        for kind, k0, k1 in merged
    )  # fmt: skip


def accelerations(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    speed: FloatArray,
    cadence: FloatArray,
    step: FloatArray,
    distance: FloatArray,
) -> tuple[TruthAcceleration, ...]:
    """One :class:`TruthAcceleration` per ``accelerate`` phase, in order."""
    out: list[TruthAcceleration] = []
    for phase, (k0, k1) in zip(phases, bounds, strict=True):
        if not phase.accelerate:
            continue
        v = speed[k0 : k1 + 1]
        peak = float(v.max())
        i = int(np.argmax(v >= 0.9 * peak))
        if i == 0:
            t90, d90 = 0.0, 0.0
        else:  # interpolate the crossing between samples i - 1 and i
            frac = (0.9 * peak - v[i - 1]) / (v[i] - v[i - 1])
            t90 = (i - 1 + frac) * DT_S
            d_prev, d_here = distance[k0 + i - 1], distance[k0 + i]
            d90 = float(d_prev + frac * (d_here - d_prev) - distance[k0])
        c = cadence[k0 : k1 + 1]
        steps = float(np.sum(0.5 * (c[1:] + c[:-1])) * DT_S / 60.0)
        out.append(
            TruthAcceleration(
                start_s=float(time[k0]),
                start_m=float(distance[k0]),
                time_to_90pct_s=float(t90),
                distance_to_90pct_m=d90,
                peak_speed_mps=peak,
                peak_cadence_spm=float(c.max()),
                peak_step_length_m=float(step[k0 : k1 + 1].max()),
                steps=round(steps),
            )
        )
    return tuple(out)


# Resting window when a workout does not start with a stand (s).
_DEFAULT_REST_WINDOW_S: Final = 60.0


def resting_rmssd_ms(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    clean: FloatArray,
    prev_beat_s: float,
) -> float:
    """RMSSD (ms) of clean RR over the initial stand (else the first 60 s); NaN if under 2 RR."""
    end = float(time[bounds[0][1]]) if phases[0].kind == "stand" else _DEFAULT_REST_WINDOW_S
    rr = np.diff(clean[clean <= end], prepend=prev_beat_s)
    if len(rr) < 2:
        return float("nan")
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)) * 1000.0)
