"""Kinematics of the virtual athlete: speed, distance-bounded phases and cadence on the grid.

Steps 1 and 2 of the model described in :mod:`ingest.virtual.athlete`:

1. **Speed.** Each phase has a target speed (constant or a linear ramp over the phase). Actual
   speed follows it with a first-order lag (``speed_change_tau_s``); ``accelerate`` phases use
   ``accel_tau_s``, which from standstill gives the exponential approach
   ``v(t) = v_peak · (1 − exp(−t/τ))`` of a sprint start. Distance-defined phases end when their
   distance is covered, so totals are exact to one step.
2. **Gait.** Cadence (steps/min) is a function of speed and gait: walking ∝ √speed, running
   linear in speed, accelerations saturating near ``sprint_cadence_max_spm``. Step length is
   derived from speed and cadence by :func:`ingest.virtual.athlete.simulate`.

Pure functions of the workout phases and :class:`~ingest.virtual.athlete_params.AthleteParams`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from ingest.virtual.athlete_params import AthleteParams
from ingest.virtual.time_grid import DT_S, BoolArray, FloatArray, IntArray
from ingest.virtual.workouts import Phase

# No workout is longer than this; it guards against a phase that never completes.
_MAX_SESSION_S: Final = 24 * 3600.0


def kinematics(
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


def cadence_spm(
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
