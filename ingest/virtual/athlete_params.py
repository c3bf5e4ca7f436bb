"""The virtual athlete's physiology and gait parameters (:class:`AthleteParams`).

One frozen dataclass holds every constant of the athlete model: heart-rate range and kinetics,
the low-HRV-day variant, RMSSD and DFA α1 by intensity, cadence by gait and speed, and the time
constants of speed changes. It sits in its own module because the kinematics, the heart model
and :func:`ingest.virtual.athlete.simulate` all read it, and the model modules must not import
:mod:`ingest.virtual.athlete` (no import cycles between sibling modules).
"""

from __future__ import annotations

from dataclasses import dataclass


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
