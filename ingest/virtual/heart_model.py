"""Heart model of the virtual athlete: heart rate, beat-to-beat (RR) intervals and artifacts.

Steps 3 to 5 of the model described in :mod:`ingest.virtual.athlete`:

3. **Heart rate.** First-order approach to a speed-dependent target (a fraction of heart-rate
   reserve), with different time constants up and down and a cap on the rate of rise (so a
   normal day never shows +20 bpm in 30 s). On a low-HRV day HR is a little higher, and while
   running it rises much faster and overshoots at the start of each run: the case the HR-surge
   alert has to catch.
4. **Beats.** RR intervals are drawn beat by beat around ``60 / HR(t)``. The variability has an
   anti-correlated white part and an AR(1) part; their mix sets DFA α1 (≈ 1.0 at rest and easy
   intensity, ≈ 0.5 near maximum), their scale sets RMSSD (≈ 50 ms at rest, ≈ 20 ms on a low-HRV
   day, a few ms at high intensity).
5. **Artifacts.** Optionally, missed beats (two RR merged) and extra beats (one RR split) at a
   given rate, with their indices returned for the ground truth.

The HRV tests (RMSSD, DFA α1, artifact cleaning) need beats whose statistics are known, which is
why the generator is calibrated rather than merely noisy. Pure functions: all randomness comes
from the numpy Generator passed in.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from ingest.virtual.athlete_params import AthleteParams
from ingest.virtual.time_grid import DT_S, BoolArray, FloatArray

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


def heart_rate(
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


def beats(
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


def inject_artifacts(
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
