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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from ingest.virtual.workouts import Phase, Workout

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

DT_S: Final = 0.25
"""Sampling step of the trace (s): 4 Hz is finer than any sensor reports (HR ~1 Hz, RSC ~2 Hz)
and fine enough to resolve a sprint start (τ ≈ 1.3 s)."""

SURGE_WINDOW_S: Final = 30.0
"""Window of the ground-truth surge criterion (s), as in DESIGN.md: +20 bpm within 30 s."""
SURGE_RISE_BPM: Final = 20.0
"""Rise of the ground-truth surge criterion (bpm)."""

# Heart-rate target as a fraction of heart-rate reserve (HRR) by speed (m/s). Walking costs less
# than running at the same speed, so the two gaits have their own curves. With the default
# 55/190 bpm: 6 km/h walk ≈ 105 bpm, 4:40 /km ≈ 157 bpm, 4:10 /km ≈ 165, 3:30 /km ≈ 178.
_WALK_HRR_SPEED_MPS: Final = np.array([0.0, 0.5, 1.0, 1000 / 600, 2.5])
_WALK_HRR_FRACTION: Final = np.array([0.0, 0.10, 0.20, 0.37, 0.55])
_RUN_HRR_SPEED_MPS: Final = np.array([1.5, 2.5, 1000 / 280, 1000 / 250, 1000 / 210, 6.0])
_RUN_HRR_FRACTION: Final = np.array([0.50, 0.62, 0.756, 0.815, 0.91, 1.0])

# RR variability generator (calibrated offline with a DFA α1 over 4-16-beat boxes on 300-beat
# series, 400 repetitions each). AR(1) coefficient per beat of the correlated part, and the
# MA(1) coefficient that makes the white part slightly anti-correlated so α1 reaches 0.5.
_AR_PHI: Final = 0.9
_MA_THETA: Final = 0.15
# Mean DFA α1 as a function of the share of successive-difference variance given to the AR part.
_ALPHA1_OF_SHARE: Final = np.array([0.491, 0.604, 0.696, 0.772, 0.831, 0.915, 0.985, 1.037])
_SHARE: Final = np.array([0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25])
# Physiological bounds on one RR interval (s): 240 bpm and 24 bpm. Noise never gets near them
# with sane parameters; the clamp only keeps absurd parameters from producing negative RR.
_RR_MIN_S: Final = 0.25
_RR_MAX_S: Final = 2.5
# An extra beat splits an RR interval somewhere in its middle, as a T wave or motion spike does.
_EXTRA_BEAT_SPLIT: Final = (0.3, 0.7)
# No workout is longer than this; it guards against a phase that never completes.
_MAX_SESSION_S: Final = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class AthleteParams:
    """Physiology and gait of the virtual athlete. Defaults: a trained recreational runner.

    Attributes:
        max_hr_bpm: maximal heart rate (bpm).
        resting_hr_bpm: heart rate standing at rest (bpm), the target while standing.
        hr_tau_up_s: time constant of HR rising toward a higher target (s).
        hr_tau_down_s: time constant of HR falling toward a lower target (s); recovery is slower.
        hr_max_rise_bpm_per_s: cap on the rate of rise on a normal day (bpm/s). 0.5 bpm/s is
            at most 15 bpm in 30 s, so a +20 bpm / 30 s surge detector stays quiet on normal
            days whatever the workout does.
        low_hrv_hr_tau_up_s: rise time constant while running on a low-HRV day (s): HR
            "shoots up" as soon as the run starts. Walking keeps the normal kinetics.
        low_hrv_max_rise_bpm_per_s: rise cap while running on a low-HRV day (bpm/s).
        low_hrv_overshoot_bpm: extra HR target at the start of each run on a low-HRV day (bpm).
        low_hrv_overshoot_decay_s: time constant of that overshoot's decay (s).
        low_hrv_hr_offset_bpm: HR raised everywhere on a low-HRV day (bpm), a common sign of
            incomplete recovery.
        rmssd_rest_ms: RMSSD at rest on a normal day (ms).
        low_hrv_rmssd_rest_ms: RMSSD at rest on a low-HRV day (ms).
        rmssd_floor_ms: RMSSD approached at maximal intensity (ms).
        rmssd_decay_hrr: HRR fraction over which RMSSD above the floor falls by a factor e.
        alpha1_rest: DFA α1 at rest and low intensity.
        alpha1_max_intensity: DFA α1 at maximal intensity.
        alpha1_knee_hrr: HRR fraction up to which α1 stays at ``alpha1_rest``.
        alpha1_floor_hrr: HRR fraction from which α1 is ``alpha1_max_intensity``; in between it
            falls linearly. With the defaults an easy run (4:40 /km) sits at α1 ≈ 0.8, just
            above the 0.75 aerobic threshold, and tempo (4:10 /km) at ≈ 0.7, below it.
        walk_cadence_spm: walking cadence at ``walk_ref_speed_mps`` (steps/min).
        walk_ref_speed_mps: reference walking speed (m/s), 6 km/h.
        walk_min_cadence_spm: lowest cadence while moving (first steps from standstill).
        run_cadence_slow_spm: running cadence at ``run_slow_speed_mps`` (steps/min).
        run_slow_speed_mps: speed of ``run_cadence_slow_spm`` (m/s).
        run_cadence_fast_spm: running cadence at ``run_fast_speed_mps`` (steps/min).
        run_fast_speed_mps: speed of ``run_cadence_fast_spm`` (m/s); cadence is linear between
            and clipped to [``run_cadence_min_spm``, ``run_cadence_max_spm``].
        run_cadence_min_spm: lowest running cadence (steps/min).
        run_cadence_max_spm: highest steady-running cadence (steps/min).
        sprint_cadence_start_spm: cadence of the first steps of an acceleration (steps/min).
        sprint_cadence_max_spm: cadence an acceleration saturates at (steps/min).
        sprint_cadence_speed_scale_mps: speed scale of that saturation (m/s).
        walk_run_speed_mps: speed above which the gait is running whatever the phase (m/s).
        accel_tau_s: time constant of an acceleration from standstill (s).
        speed_change_tau_s: time constant of ordinary speed changes between phases (s).
        stop_tau_s: time constant of stopping (s).
        stop_speed_mps: below this speed a stopping athlete is standing (m/s).
    """

    max_hr_bpm: float = 190.0
    resting_hr_bpm: float = 55.0
    hr_tau_up_s: float = 30.0
    hr_tau_down_s: float = 50.0
    hr_max_rise_bpm_per_s: float = 0.5
    low_hrv_hr_tau_up_s: float = 12.0
    low_hrv_max_rise_bpm_per_s: float = 3.0
    low_hrv_overshoot_bpm: float = 10.0
    low_hrv_overshoot_decay_s: float = 90.0
    low_hrv_hr_offset_bpm: float = 4.0
    rmssd_rest_ms: float = 50.0
    low_hrv_rmssd_rest_ms: float = 20.0
    rmssd_floor_ms: float = 3.0
    rmssd_decay_hrr: float = 0.25
    alpha1_rest: float = 1.0
    alpha1_max_intensity: float = 0.5
    alpha1_knee_hrr: float = 0.65
    alpha1_floor_hrr: float = 0.95
    walk_cadence_spm: float = 122.0
    walk_ref_speed_mps: float = 6.0 / 3.6
    walk_min_cadence_spm: float = 60.0
    run_cadence_slow_spm: float = 165.0
    run_slow_speed_mps: float = 3.0
    run_cadence_fast_spm: float = 190.0
    run_fast_speed_mps: float = 5.5
    run_cadence_min_spm: float = 150.0
    run_cadence_max_spm: float = 200.0
    sprint_cadence_start_spm: float = 150.0
    sprint_cadence_max_spm: float = 210.0
    sprint_cadence_speed_scale_mps: float = 1.5
    walk_run_speed_mps: float = 2.1
    accel_tau_s: float = 1.3
    speed_change_tau_s: float = 1.5
    stop_tau_s: float = 0.7
    stop_speed_mps: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.resting_hr_bpm < self.max_hr_bpm:
            raise ValueError(
                f"need 0 < resting_hr_bpm < max_hr_bpm, got {self.resting_hr_bpm}, "
                f"{self.max_hr_bpm}"
            )
        positive = (
            "hr_tau_up_s", "hr_tau_down_s", "hr_max_rise_bpm_per_s", "low_hrv_hr_tau_up_s",
            "low_hrv_max_rise_bpm_per_s", "low_hrv_overshoot_decay_s", "rmssd_rest_ms",
            "low_hrv_rmssd_rest_ms", "rmssd_decay_hrr", "walk_cadence_spm", "walk_ref_speed_mps",
            "walk_min_cadence_spm", "run_cadence_min_spm", "sprint_cadence_start_spm",
            "sprint_cadence_speed_scale_mps", "accel_tau_s", "speed_change_tau_s", "stop_tau_s",
        )  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.alpha1_knee_hrr < self.alpha1_floor_hrr:
            raise ValueError("alpha1_knee_hrr must be below alpha1_floor_hrr")
        if not self.run_slow_speed_mps < self.run_fast_speed_mps:
            raise ValueError("run_slow_speed_mps must be below run_fast_speed_mps")


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
    params: AthleteParams = AthleteParams(),  # frozen, so sharing the default is safe
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
    speed, phase_of, bounds = _kinematics(workout.phases, params)
    n = len(speed)
    time = np.arange(n, dtype=np.float64) * DT_S
    distance = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * DT_S)))
    accel = np.array([workout.phases[p].accelerate for p in phase_of], dtype=bool)
    kind_running = np.array([workout.phases[p].kind in ("run", "sprint") for p in phase_of])
    moving = speed > 0
    running = moving & (kind_running | (speed >= params.walk_run_speed_mps))
    cadence = _cadence_spm(speed, running, accel, params)
    step = np.zeros(n)
    step[moving] = speed[moving] * 60.0 / cadence[moving]

    hr = _heart_rate(time, speed, running, low_hrv, params)
    rng = np.random.default_rng(beat_seq)
    clean_times, prev_beat_s = _beats(hr, low_hrv, params, rng)
    beat_times, artifacts = _inject_artifacts(
        clean_times, artifact_rate, np.random.default_rng(artifact_seq)
    )
    rr = np.diff(beat_times, prepend=prev_beat_s)

    truth = GroundTruth(
        duration_s=float(time[-1]),
        distance_m=float(distance[-1]),
        segments=_segments(workout.phases, bounds, time, distance),
        accelerations=_accelerations(workout.phases, bounds, time, speed, cadence, step, distance),
        surge_time_s=surge_time_s(time, hr),
        artifact_beat_indices=artifacts,
        resting_rmssd_ms=_resting_rmssd_ms(workout.phases, bounds, time, clean_times, prev_beat_s),
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


def _kinematics(
    phases: tuple[Phase, ...], params: AthleteParams
) -> tuple[FloatArray, IntArray, list[tuple[int, int]]]:
    """Speed on the grid, the phase driving each sample, and each phase's sample range.

    Sample ``k + 1`` belongs to the phase that was active during the step from ``k``; a phase
    spans samples ``[start, end]`` where ``end`` is the first sample at which it is complete.
    """
    decay_accel = math.exp(-DT_S / params.accel_tau_s)
    decay_change = math.exp(-DT_S / params.speed_change_tau_s)
    decay_stop = math.exp(-DT_S / params.stop_tau_s)
    max_steps = int(_MAX_SESSION_S / DT_S)
    speeds = [0.0]
    owner = [0]
    bounds: list[tuple[int, int]] = []
    v, d, k = 0.0, 0.0, 0
    for index, phase in enumerate(phases):
        t0_k, d0 = k, d
        while True:
            if phase.duration_s is not None:
                progress = (k - t0_k) * DT_S / phase.duration_s
            else:
                assert phase.distance_m is not None  # guaranteed by the workout parser
                progress = (d - d0) / phase.distance_m
            if progress >= 1.0 - 1e-12:
                break
            target = phase.target_speed_mps(progress)
            if phase.accelerate:
                decay = decay_accel
            elif target == 0.0:
                decay = decay_stop
            else:
                decay = decay_change
            v_next = target + (v - target) * decay
            if target == 0.0 and v_next < params.stop_speed_mps:
                v_next = 0.0
            d += 0.5 * (v + v_next) * DT_S
            v = v_next
            k += 1
            speeds.append(v)
            owner.append(index)
            if k > max_steps:
                raise ValueError(f"phase {index} of the workout does not end within 24 h")
        bounds.append((t0_k, k))
    return np.array(speeds), np.array(owner, dtype=np.intp), bounds


def _cadence_spm(
    speed: FloatArray, running: BoolArray, accel: BoolArray, p: AthleteParams
) -> FloatArray:
    """Cadence (steps/min) by gait: walking ∝ √speed, running linear, accelerations saturating."""
    moving = speed > 0
    cadence = np.zeros_like(speed)
    walk = moving & ~running & ~accel
    cadence[walk] = np.maximum(
        p.walk_min_cadence_spm, p.walk_cadence_spm * np.sqrt(speed[walk] / p.walk_ref_speed_mps)
    )
    run = moving & running & ~accel
    slope = (p.run_cadence_fast_spm - p.run_cadence_slow_spm) / (
        p.run_fast_speed_mps - p.run_slow_speed_mps
    )
    cadence[run] = np.clip(
        p.run_cadence_slow_spm + slope * (speed[run] - p.run_slow_speed_mps),
        p.run_cadence_min_spm,
        p.run_cadence_max_spm,
    )
    sprint = moving & accel
    cadence[sprint] = p.sprint_cadence_max_spm - (
        p.sprint_cadence_max_spm - p.sprint_cadence_start_spm
    ) * np.exp(-speed[sprint] / p.sprint_cadence_speed_scale_mps)
    return cadence


def _heart_rate(
    time: FloatArray, speed: FloatArray, running: BoolArray, low_hrv: bool, p: AthleteParams
) -> FloatArray:
    """Model HR (bpm): first-order toward a speed-dependent target, rise-rate capped."""
    reserve = p.max_hr_bpm - p.resting_hr_bpm
    fraction = np.where(
        running,
        np.interp(speed, _RUN_HRR_SPEED_MPS, _RUN_HRR_FRACTION),
        np.interp(speed, _WALK_HRR_SPEED_MPS, _WALK_HRR_FRACTION),
    )
    target = p.resting_hr_bpm + reserve * fraction
    if low_hrv:
        target += p.low_hrv_hr_offset_bpm
        # Overshoot that decays from each start of running (a rising edge of `running`).
        starts = np.flatnonzero(running & ~np.concatenate(([False], running[:-1])))
        last_start = np.full(len(time), -np.inf)
        last_start[starts] = time[starts]
        last_start = np.maximum.accumulate(last_start)
        since = np.where(running, time - last_start, np.inf)
        target += p.low_hrv_overshoot_bpm * np.exp(-since / p.low_hrv_overshoot_decay_s)
    target = np.minimum(target, p.max_hr_bpm)

    # On a low-HRV day only running starts are fast: walking still ramps HR up gently.
    fast = running if low_hrv else np.zeros(len(time), dtype=bool)
    decay_up = np.where(
        fast, math.exp(-DT_S / p.low_hrv_hr_tau_up_s), math.exp(-DT_S / p.hr_tau_up_s)
    ).tolist()
    rise_cap = (
        np.where(fast, p.low_hrv_max_rise_bpm_per_s, p.hr_max_rise_bpm_per_s) * DT_S
    ).tolist()
    decay_down = math.exp(-DT_S / p.hr_tau_down_s)
    out = [float(target[0])]  # the session starts at rest
    h = out[0]
    for k, tgt in enumerate(target[:-1].tolist()):
        if tgt > h:
            h = min(tgt + (h - tgt) * decay_up[k], h + rise_cap[k])
        else:
            h = tgt + (h - tgt) * decay_down
        out.append(h)
    return np.array(out)


def _beats(
    hr: FloatArray, low_hrv: bool, p: AthleteParams, rng: np.random.Generator
) -> tuple[FloatArray, float]:
    """Artifact-free beat times (s) in (0, duration], and the implied beat before the first.

    Each RR interval is ``60 / HR(t_prev)`` plus variability scaled to the intensity at
    ``t_prev``: RMSSD from the rest value down to the floor, DFA α1 from ``alpha1_rest`` down to
    ``alpha1_max_intensity``, set by the share of the AR(1) part (see ``_ALPHA1_OF_SHARE``).
    """
    duration = (len(hr) - 1) * DT_S
    reserve = p.max_hr_bpm - p.resting_hr_bpm
    x = np.clip((hr - p.resting_hr_bpm) / reserve, 0.0, 1.0)
    rest_ms = p.low_hrv_rmssd_rest_ms if low_hrv else p.rmssd_rest_ms
    rmssd_s = p.rmssd_floor_ms + (rest_ms - p.rmssd_floor_ms) * np.exp(-x / p.rmssd_decay_hrr)
    rmssd_s /= 1000.0
    alpha1 = np.interp(
        x,
        [p.alpha1_knee_hrr, p.alpha1_floor_hrr],
        [p.alpha1_rest, p.alpha1_max_intensity],
    )
    share = np.interp(alpha1, _ALPHA1_OF_SHARE, _SHARE)
    # Unit white part and AR part, each with E[(Δ)²] = 2, so RMSSD = rmssd / √2 · √2.
    white_norm = math.sqrt((1 + (1 + _MA_THETA) ** 2 + _MA_THETA**2) / 2)
    ar_norm = math.sqrt(1 - _AR_PHI)
    white_gain = (rmssd_s / math.sqrt(2) * np.sqrt(1 - share) / white_norm).tolist()
    ar_gain = (rmssd_s / math.sqrt(2) * np.sqrt(share) / ar_norm).tolist()
    mean_rr = (60.0 / hr).tolist()

    n_max = int(duration / _RR_MIN_S) + 16
    white = rng.standard_normal(n_max + 1).tolist()
    innov = (rng.standard_normal(n_max) * math.sqrt(1 - _AR_PHI**2)).tolist()
    a = float(rng.standard_normal())
    t = -float(rng.uniform(0.0, 1.0)) * mean_rr[0]
    prev = t
    inv_dt = 1.0 / DT_S
    last_k = len(hr) - 1
    times: list[float] = []
    for i in range(n_max):
        pos = max(t, 0.0) * inv_dt
        k = min(int(pos), last_k - 1)
        f = pos - k
        base = mean_rr[k] + (mean_rr[k + 1] - mean_rr[k]) * f
        a = _AR_PHI * a + innov[i]
        w = white[i + 1] - _MA_THETA * white[i]
        rr = base + white_gain[k] * w + ar_gain[k] * a
        rr = min(max(rr, _RR_MIN_S), _RR_MAX_S)
        if t + rr > duration:
            break
        if t + rr <= 0.0:
            prev = t + rr
        t += rr
        if t > 0.0:
            times.append(t)
    return np.array(times), prev


def _inject_artifacts(
    clean: FloatArray, rate: float, rng: np.random.Generator
) -> tuple[FloatArray, tuple[int, ...]]:
    """Missed beats (beat removed: two RR merged) and extra beats (one RR split) at ``rate``."""
    n = len(clean)
    hit = rng.random(n) < rate
    missed = rng.random(n) < 0.5
    split = rng.uniform(*_EXTRA_BEAT_SPLIT, size=n)
    if rate == 0.0 or n < 3:
        return clean.copy(), ()
    out: list[float] = []
    artifacts: list[int] = []
    values = clean.tolist()
    flag_next = False
    last_event = -10
    for j, tj in enumerate(values):
        if flag_next:
            artifacts.append(len(out))
            out.append(tj)
            flag_next = False
            continue
        if hit[j] and 1 <= j < n - 1 and j - last_event > 2:
            last_event = j
            if missed[j]:
                flag_next = True  # beat j is lost; beat j + 1 ends a double-length RR
                continue
            artifacts.append(len(out))
            out.append(values[j - 1] + float(split[j]) * (tj - values[j - 1]))
        out.append(tj)
    return np.array(out), tuple(artifacts)


def _segments(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    distance: FloatArray,
) -> tuple[TruthSegment, ...]:
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


def _accelerations(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    speed: FloatArray,
    cadence: FloatArray,
    step: FloatArray,
    distance: FloatArray,
) -> tuple[TruthAcceleration, ...]:
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


def _resting_rmssd_ms(
    phases: tuple[Phase, ...],
    bounds: list[tuple[int, int]],
    time: FloatArray,
    clean: FloatArray,
    prev_beat_s: float,
) -> float:
    end = float(time[bounds[0][1]]) if phases[0].kind == "stand" else _DEFAULT_REST_WINDOW_S
    rr = np.diff(clean[clean <= end], prepend=prev_beat_s)
    if len(rr) < 2:
        return float("nan")
    return float(np.sqrt(np.mean(np.diff(rr) ** 2)) * 1000.0)
