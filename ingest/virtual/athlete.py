"""A deterministic virtual athlete: speed, gait, heart rate and beat-to-beat intervals.

:func:`simulate` turns a :class:`~ingest.virtual.workouts.Workout` into an :class:`AthleteTrace`,
the whole session precomputed on a 0.25 s grid plus the list of heartbeats a chest strap would
report, and a :class:`GroundTruth` that tests of later stages (segmentation, surge alerts, HRV,
accelerations) compare against. Everything is a pure function of ``(workout, params, seed,
low_hrv, artifact_rate)``: no wall clock, no global random state, no I/O. A 1-hour session takes
a few tens of milliseconds, so tests can simulate freely.

The model, in the order it is computed:

1. **Speed.** Each phase has a target speed (constant or a linear ramp over the phase). Actual
   speed follows it with a first-order lag (``speed_change_tau_s``); ``accelerate`` phases use
   ``accel_tau_s``, which from standstill gives the exponential approach
   ``v(t) = v_peak · (1 − exp(−t/τ))`` of a sprint start. Distance is the integrated speed, and
   distance-defined phases end when their distance is covered, so totals are exact to one step.
2. **Gait.** Cadence (steps/min; one step is foot strike to the next foot strike) is a function
   of speed and gait; step length is then ``speed · 60 / cadence``, so
   ``speed == cadence / 60 · step length`` holds by construction. Walking at 6 km/h gives about
   122 spm × 0.82 m, easy running 171 spm × 1.25 m; in an acceleration cadence saturates near
   ``sprint_cadence_max_spm`` (210) while step length keeps growing (> 1.70 m at 6 m/s), the
   "limiter" the runner described.
3. **Heart rate.** First-order approach to a speed-dependent target (a fraction of heart-rate
   reserve), with different time constants up and down and a cap on the rate of rise (so a
   normal day never shows +20 bpm in 30 s). On a low-HRV day HR is a little higher, and while
   running it rises much faster and overshoots at the start of each run: the case the HR-surge
   alert has to catch (on ``morning-5k`` about 7 s after the run starts).
4. **Beats.** RR intervals are drawn beat by beat around ``60 / HR(t)``. The variability has an
   anti-correlated white part and an AR(1) part; their mix sets DFA α1 (≈ 1.0 at rest and easy
   intensity, ≈ 0.5 near maximum), their scale sets RMSSD (≈ 50 ms at rest, ≈ 20 ms on a low-HRV
   day, a few ms at high intensity).
5. **Artifacts.** Optionally, missed beats (two RR merged) and extra beats (one RR split) at a
   given rate, with their indices recorded in the ground truth.

The steps live in their own pure modules, none of which imports this one:
:mod:`~ingest.virtual.kinematics` (1, 2), :mod:`~ingest.virtual.heart_model` (3 to 5),
:mod:`~ingest.virtual.ground_truth` (:class:`GroundTruth` and its derivation),
:mod:`~ingest.virtual.athlete_params` (:class:`AthleteParams`) and
:mod:`~ingest.virtual.time_grid` (:data:`DT_S`). This module keeps the public interface:
:func:`simulate`, :class:`AthleteTrace`, :class:`GaitSample` and :func:`surge_time_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from ingest.virtual.athlete_params import AthleteParams
from ingest.virtual.ground_truth import GroundTruth, accelerations, resting_rmssd_ms, segments
from ingest.virtual.heart_model import beats, heart_rate, inject_artifacts
from ingest.virtual.kinematics import cadence_spm, kinematics
from ingest.virtual.time_grid import DT_S, BoolArray, FloatArray, IntArray
from ingest.virtual.workouts import Workout

__all__ = [
    "DT_S",
    "SURGE_RISE_BPM",
    "SURGE_WINDOW_S",
    "AthleteParams",
    "AthleteTrace",
    "GaitSample",
    "GroundTruth",
    "simulate",
    "surge_time_s",
]

SURGE_WINDOW_S: Final = 30.0
"""Window of the ground-truth surge criterion (s), as in DESIGN.md: +20 bpm within 30 s."""
SURGE_RISE_BPM: Final = 20.0
"""Rise of the ground-truth surge criterion (bpm)."""


@dataclass(frozen=True, slots=True)
class GaitSample:
    """The athlete's state at one instant, as a footpod and a strap would sense it.

    Attributes:
        time_s: session time (s since the start of the workout).
        speed_mps: speed (m/s).
        cadence_spm: cadence in steps per minute (both feet); 0 when standing.
        step_length_m: one step, foot strike to the next foot strike (m); 0 when standing.
        distance_m: cumulative distance (m).
        hr_bpm: model heart rate (bpm).
        running: gait: running (True) or walking/standing (False), the RSC walking/running bit.
    """

    time_s: float
    speed_mps: float
    cadence_spm: float
    step_length_m: float
    distance_m: float
    hr_bpm: float
    running: bool


@dataclass(frozen=True, eq=False)
class AthleteTrace:
    """A whole simulated session, precomputed. Arrays are read-only.

    Attributes:
        dt_s: sampling step of the gridded arrays (s), :data:`DT_S`.
        time_s: sample times 0, dt, 2·dt, … (s).
        speed_mps: speed (m/s).
        cadence_spm: cadence, steps per minute; 0 when standing.
        step_length_m: one step, foot strike to foot strike (m); 0 when standing.
        distance_m: cumulative distance, integrated speed (m).
        hr_bpm: model heart rate (bpm).
        running: True while running, False while walking or standing.
        beat_times_s: time of each beat a strap would detect, artifacts included (s).
        rr_s: RR interval ending at each beat (s): ``beat_times_s[i] − beat_times_s[i − 1]``,
            the first relative to an implied beat before the session start.
        truth: the ground truth.
    """

    dt_s: float
    time_s: FloatArray
    speed_mps: FloatArray
    cadence_spm: FloatArray
    step_length_m: FloatArray
    distance_m: FloatArray
    hr_bpm: FloatArray
    running: BoolArray
    beat_times_s: FloatArray
    rr_s: FloatArray
    truth: GroundTruth
    _inv_dt: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inv_dt", 1.0 / self.dt_s)

    @property
    def duration_s(self) -> float:
        """Session length (s)."""
        return float(self.time_s[-1])

    def sample_at(self, t: float) -> GaitSample:
        """State at time ``t`` (s), linearly interpolated; ``t`` is clamped to the session.

        Speed, cadence, distance and HR are interpolated; step length is derived from the
        interpolated speed and cadence so ``speed == cadence / 60 · step length`` still holds;
        ``running`` is taken from the nearest sample.

        Raises:
            ValueError: ``t`` is NaN or infinite.
        """
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        pos = min(max(t, 0.0), self.duration_s) * self._inv_dt
        k = min(int(pos), len(self.time_s) - 2)
        f = pos - k

        def lerp(a: FloatArray) -> float:
            return float(a[k] + (a[k + 1] - a[k]) * f)

        speed = lerp(self.speed_mps)
        cadence = lerp(self.cadence_spm)
        return GaitSample(
            time_s=float(self.time_s[k] + f * self.dt_s),
            speed_mps=speed,
            cadence_spm=cadence,
            step_length_m=speed * 60.0 / cadence if cadence > 0 else 0.0,
            distance_m=lerp(self.distance_m),
            hr_bpm=lerp(self.hr_bpm),
            running=bool(self.running[k if f < 0.5 else k + 1]),
        )

    def beats_between(self, t0: float, t1: float) -> IntArray:
        """Indices of the beats with ``t0 < beat time <= t1`` (s), ascending."""
        lo = int(np.searchsorted(self.beat_times_s, t0, side="right"))
        hi = int(np.searchsorted(self.beat_times_s, t1, side="right"))
        return np.arange(lo, max(lo, hi), dtype=np.intp)


def simulate(
    workout: Workout,
    *,
    seed: int = 0,
    low_hrv: bool = False,
    params: AthleteParams = AthleteParams(),  # noqa: B008 (frozen: sharing the default is safe)
    artifact_rate: float = 0.0,
) -> AthleteTrace:
    """Simulate one session of ``workout``.

    Args:
        workout: what the athlete does.
        seed: seed of the numpy Generator behind every random draw; same inputs, same trace.
        low_hrv: a day with low HRV: lower resting RMSSD, slightly higher HR, and HR rising fast
            with an overshoot at the start of each run.
        params: the athlete.
        artifact_rate: probability per beat of a strap artifact (missed or extra beat, equally
            likely), in [0, 0.2]. Artifacts never touch neighbouring beats.

    Raises:
        ValueError: ``artifact_rate`` out of range, or a workout that never ends.
    """
    if not 0.0 <= artifact_rate <= 0.2:
        raise ValueError(f"artifact_rate must be in [0, 0.2], got {artifact_rate}")
    beat_seq, artifact_seq = np.random.SeedSequence(seed).spawn(2)

    # Independent streams: artifacts never change the underlying beats for the same seed.
    speed, phase_of, bounds = kinematics(workout.phases, params)
    n = len(speed)
    time = np.arange(n, dtype=np.float64) * DT_S
    distance = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * DT_S)))
    accel = np.array([workout.phases[p].accelerate for p in phase_of], dtype=bool)
    kind_running = np.array([workout.phases[p].kind in ("run", "sprint") for p in phase_of])
    moving = speed > 0
    running = moving & (kind_running | (speed >= params.walk_run_speed_mps))
    cadence = cadence_spm(speed, running, accel, params)
    step = np.zeros(n)
    step[moving] = speed[moving] * 60.0 / cadence[moving]

    hr = heart_rate(time, speed, running, low_hrv, params)
    rng = np.random.default_rng(beat_seq)
    clean_times, prev_beat_s = beats(hr, low_hrv, params, rng)
    beat_times, artifacts = inject_artifacts(
        clean_times, artifact_rate, np.random.default_rng(artifact_seq)
    )
    rr = np.diff(beat_times, prepend=prev_beat_s)

    truth = GroundTruth(
        duration_s=float(time[-1]),
        distance_m=float(distance[-1]),
        segments=segments(workout.phases, bounds, time, distance),
        accelerations=accelerations(workout.phases, bounds, time, speed, cadence, step, distance),
        surge_time_s=surge_time_s(time, hr),
        artifact_beat_indices=artifacts,
        resting_rmssd_ms=resting_rmssd_ms(workout.phases, bounds, time, clean_times, prev_beat_s),
    )
    arrays = (time, speed, cadence, step, distance, hr, running, beat_times, rr)
    for a in arrays:
        a.setflags(write=False)
    return AthleteTrace(
        dt_s=DT_S,
        time_s=time,
        speed_mps=speed,
        cadence_spm=cadence,
        step_length_m=step,
        distance_m=distance,
        hr_bpm=hr,
        running=running,
        beat_times_s=beat_times,
        rr_s=rr,
        truth=truth,
    )


def surge_time_s(time_s: FloatArray, hr_bpm: FloatArray) -> float | None:
    """First t (s) with HR(t) − min(HR over [t − 30 s, t]) ≥ 20 bpm, or ``None``.

    The ground-truth form of the HR-surge criterion of DESIGN.md, on a regular time grid.

    >>> t = np.arange(0, 60, 1.0)
    >>> surge_time_s(t, np.where(t < 20, 100.0, 100.0 + 2 * (t - 20)))
    30.0
    >>> surge_time_s(t, 100.0 + 0.5 * t) is None
    True
    """
    if len(time_s) < 2:
        return None
    dt = float(time_s[1] - time_s[0])
    window = round(SURGE_WINDOW_S / dt)
    padded = np.concatenate((np.full(window, np.inf), hr_bpm))
    lows = np.lib.stride_tricks.sliding_window_view(padded, window + 1).min(axis=1)
    hits = np.flatnonzero(hr_bpm - lows >= SURGE_RISE_BPM - 1e-9)
    return float(time_s[hits[0]]) if hits.size else None
