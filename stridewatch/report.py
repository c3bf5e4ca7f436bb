"""The post-run report: one session of the store as JSON-ready data (schema in docs/report.md).

:func:`build_report` reads a stored session (readings, metrics, alerts, segments, summary) and
returns a plain ``dict`` of JSON types only: ``json.dumps(report, allow_nan=False)`` always
works because every non-finite number becomes ``None``. :func:`build_timeseries` returns the
downsampled numpy series the HTML report plots. :func:`stridewatch.report_render.render_report`
produces the ``stridewatch report SESSION --format html|json|text`` output.

Definitions (all stated again in docs/report.md):

* **Session start**: the time of the session's first stored reading. Every ``*_s`` time in the
  report counts seconds from it, computed on the monotonic clock of the records
  (``time_mono_s − start_mono_s``); monotonic times stored in metric values (splits,
  accelerations) convert the same way.
* **Moving**: a footpod (GAIT) sample with ``speed_mps ≥ 0.5`` or ``cadence_spm > 0``. Each
  sample holds until the next one, for at most :data:`MAX_HOLD_S` (a gap after a lost footpod
  counts as not observed, not as moving). Average cadence and pace are time-weighted over the
  moving time.
* **Whole-session HRV** over the stored RR metrics: clean beats are those with a
  ``clean_rr_ms``; successive differences only between consecutive clean beats (the previous
  beat clean and less than 1.5 × the interval before it, as :mod:`processing.hrv`). DFA α1
  over the whole clean series (:func:`processing.dfa.dfa_alpha1_batch`), ``None`` with fewer
  than 50 clean beats or ≥ 3 % artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from outputs.errors import UnknownSessionError
from outputs.store import SessionRow, SessionStore
from processing.dfa import dfa_alpha1_batch
from processing.readiness import assess_readiness
from processing.records import Metric, MetricGroup, MetricValue
from processing.settings import ProcessingSettings

__all__ = [
    "MAX_HOLD_S",
    "MAX_POINTS",
    "MIN_SPLIT_M",
    "MOVING_SPEED_MPS",
    "SCHEMA_VERSION",
    "FloatArray",
    "ReportFormat",
    "Timeseries",
    "build_report",
    "build_timeseries",
]

SCHEMA_VERSION: Final = 1
"""Version of the report's JSON schema (docs/report.md). Bumped only for incompatible changes;
new keys may be added within a version."""
MOVING_SPEED_MPS: Final = 0.5
"""Speed at or above which a footpod sample counts as moving, m/s (also: any cadence > 0)."""
MAX_HOLD_S: Final = 5.0
"""Longest time one footpod sample stands for, seconds: footpods notify at 1–4 Hz, so a
longer gap is a dropout whose time is not credited to any value."""
MIN_SPLIT_M: Final = 10.0
"""A final partial split shorter than this (metres) is left out: the few seconds between the
last km mark and the stop button are not a split worth a table row."""
DFA_MIN_BEATS: Final = 50
"""Fewest clean beats for a whole-session DFA α1."""
DFA_MAX_ARTIFACT_PCT: Final = 3.0
"""DFA α1 is suppressed at or above this artifact share (%), as the live metric is."""
MAX_POINTS: Final = 2_000
"""Most points per plotted series (bucket means beyond that): keeps the HTML small."""
_GAP_FACTOR: Final = 1.5
"""Two clean beats are consecutive when less than this × the later interval apart."""
_RESTING_HISTORY: Final = 30
"""Past sessions in the readiness baseline (as :func:`processing.readiness.assess_readiness`)."""

FloatArray = npt.NDArray[np.float64]
Timeseries = dict[str, FloatArray]
ReportFormat = Literal["html", "json", "text"]

_SPLIT_KEYS: Final = ("start_s", "end_s", "duration_s", "distance_m", "pace_s_per_km",
                      "avg_hr_bpm", "avg_cadence_spm")  # fmt: skip
_ACCEL_KEYS: Final = ("start_m", "time_to_90pct_s", "distance_to_90pct_m", "peak_speed_mps",
                      "peak_cadence_spm", "peak_step_length_m", "peak_stride_length_m",
                      "steps")  # fmt: skip


# --------------------------------------------------------------------------------- helpers


def _num(value: object) -> float | None:
    """A finite float, or None (bools, strings, NaN and ±inf are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: Any) -> Any:
    """Recursively replace non-finite floats with None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Clock:
    """Seconds from the session start for monotonic or UTC times."""

    def __init__(self, start_mono_s: float | None, start_utc: datetime) -> None:
        self.start_mono_s = start_mono_s
        self.start_utc = start_utc

    def mono(self, t_mono_s: float, utc: datetime | None = None) -> float:
        if self.start_mono_s is not None:
            return t_mono_s - self.start_mono_s
        if utc is not None:
            return self.utc(utc)
        return math.nan

    def utc(self, utc: datetime) -> float:
        return (utc - self.start_utc).total_seconds()


def _session_clock(store: SessionStore, row: SessionRow) -> _Clock:
    """The clock whose zero is the first stored reading (else the first metric, else the row)."""
    for first in (next(store.readings(row.id), None), next(store.metrics(row.id), None)):
        if first is not None:
            return _Clock(first.time_mono_s, first.time_utc)
    return _Clock(None, row.start_utc)


def _require(store: SessionStore, session_id: str) -> SessionRow:
    row = store.session(session_id)
    if row is None:
        raise UnknownSessionError(store.path, session_id)
    return row


def _final(sessions: Sequence[Metric]) -> Mapping[str, MetricValue]:
    """The final SESSION metric's values (the pipeline's totals), or the last periodic one."""
    for metric in reversed(sessions):
        if metric.values.get("final") is True:
            return metric.values
    return sessions[-1].values if sessions else {}


# --------------------------------------------------------------------------------- gait


def _gait_arrays(gait: Sequence[Metric], clock: _Clock) -> dict[str, FloatArray]:
    def column(key: str) -> FloatArray:
        return np.array([_num(m.values.get(key)) for m in gait], dtype=np.float64)

    return {
        "t_s": np.array([clock.mono(m.time_mono_s, m.time_utc) for m in gait], dtype=np.float64),
        "cadence_spm": column("cadence_spm"),
        "step_length_m": column("step_length_m"),
        "speed_mps": column("speed_mps"),
        "pace_s_per_km": column("pace_s_per_km"),
        "distance_m": column("distance_m"),
    }


def _moving(g: Mapping[str, FloatArray]) -> dict[str, float | None]:
    """Moving time, distance, time-weighted cadence and pace (see the module docstring)."""
    t = g["t_s"]
    if t.size < 2:
        return {"moving_time_s": None, "moving_distance_m": None, "avg_cadence_spm": None,
                "avg_pace_s_per_km": None, "avg_speed_mps": None}  # fmt: skip
    hold = np.minimum(np.diff(t), MAX_HOLD_S)
    speed, cadence = g["speed_mps"][:-1], g["cadence_spm"][:-1]
    with np.errstate(invalid="ignore"):
        moving = (speed >= MOVING_SPEED_MPS) | (cadence > 0.0)
    moving_time = float(hold[moving].sum())
    step = np.diff(g["distance_m"])
    step = np.where(np.isfinite(step) & (step > 0.0), step, 0.0)
    moving_distance = float(step[moving].sum())
    has_cadence = moving & np.isfinite(cadence)
    cadence_time = float(hold[has_cadence].sum())
    avg_cadence = (
        float((cadence[has_cadence] * hold[has_cadence]).sum()) / cadence_time
        if cadence_time > 0.0 else None
    )  # fmt: skip
    moving_ok = moving_time > 0.0 and moving_distance > 0.0
    return {
        "moving_time_s": moving_time if bool(np.any(np.isfinite(speed))) else None,
        "moving_distance_m": moving_distance,
        "avg_cadence_spm": avg_cadence,
        "avg_pace_s_per_km": 1000.0 * moving_time / moving_distance if moving_ok else None,
        "avg_speed_mps": moving_distance / moving_time if moving_ok else None,
    }


# --------------------------------------------------------------------------------- HRV


def _hrv(rr: Sequence[Metric]) -> dict[str, Any]:
    """Whole-session time-domain HRV and DFA α1 from the per-beat RR metrics."""
    empty: dict[str, Any] = {
        "rmssd_ms": None, "sdnn_ms": None, "pnn50_pct": None, "dfa_alpha1": None,
        "artifact_pct": None, "beats": len(rr), "clean_beats": 0, "dfa_reason": "no_rr",
    }  # fmt: skip
    if not rr:
        return empty
    clean: list[float] = []
    diffs: list[float] = []
    prev_clean: float | None = None
    prev_t = -math.inf
    for m in rr:
        value = _num(m.values.get("clean_rr_ms"))
        t = m.time_mono_s
        if value is None:
            prev_clean = None
        else:
            clean.append(value)
            if prev_clean is not None and t - prev_t < _GAP_FACTOR * value / 1000.0:
                diffs.append(value - prev_clean)
            prev_clean = value
        prev_t = t
    artifact_pct = 100.0 * (len(rr) - len(clean)) / len(rr)
    x = np.asarray(clean, dtype=np.float64)
    d = np.asarray(diffs, dtype=np.float64)
    dfa: float | None = None
    if len(clean) < DFA_MIN_BEATS:
        reason: str | None = "too_few_beats"
    elif artifact_pct >= DFA_MAX_ARTIFACT_PCT:
        reason = "artifacts"
    else:
        dfa = _num(dfa_alpha1_batch(x / 1000.0))
        reason = None if dfa is not None else "flat_series"
    return {
        "rmssd_ms": float(np.sqrt(np.mean(d * d))) if d.size else None,
        "sdnn_ms": float(np.std(x, ddof=1)) if x.size >= 2 else None,
        "pnn50_pct": 100.0 * float(np.count_nonzero(np.abs(d) > 50.0)) / x.size
        if d.size else None,
        "dfa_alpha1": dfa,
        "artifact_pct": artifact_pct,
        "beats": len(rr),
        "clean_beats": len(clean),
        "dfa_reason": reason,
    }


# --------------------------------------------------------------------------------- readiness


def _prior_resting(store: SessionStore, row: SessionRow) -> list[float]:
    """Resting RMSSD of the athlete's sessions that started before this one, oldest first.

    Like :meth:`SessionStore.resting_rmssd_history` with ``exclude_session`` (this session is
    never in its own baseline), but also without later sessions, so a report made today for
    last month's run shows the baseline of that day.
    """
    values: list[float] = []
    for s in store.sessions(row.athlete):
        if (s.start_utc, s.id) >= (row.start_utc, row.id):
            break
        value = _num(store.session_summary(s.id).get("resting_rmssd_ms"))
        if value is not None and value > 0.0:
            values.append(value)
    return values[-_RESTING_HISTORY:]


def _readiness(
    store: SessionStore, row: SessionRow, final: Mapping[str, MetricValue]
) -> dict[str, Any]:
    resting = _num(store.session_summary(row.id).get("resting_rmssd_ms"))
    if resting is None:
        resting = _num(final.get("resting_rmssd_ms"))
    past = _prior_resting(store, row)
    baseline = math.exp(math.fsum(math.log(v) for v in past) / len(past)) if past else None
    status: str | None = None
    ratio: float | None = None
    message: str | None = None
    if resting is not None and resting > 0.0:
        result = assess_readiness(resting, past)
        status, ratio, message = result.status, result.ratio, result.message
    return {
        "resting_rmssd_ms": resting,
        "baseline_rmssd_ms": baseline,
        "baseline_sessions": len(past),
        "ratio": ratio,
        "status": status,
        "live_status": _text(final.get("readiness")),
        "message": message,
    }


# --------------------------------------------------------------------------------- report


def _heart(
    heart: Sequence[Metric], final: Mapping[str, MetricValue], zone_bounds: Sequence[float]
) -> dict[str, Any]:
    hr = [v for m in heart if (v := _num(m.values.get("heart_rate_bpm"))) is not None]
    zones = [_num(final.get(f"zone{z}_s")) for z in range(1, 6)]
    avg = _num(final.get("avg_hr_bpm"))
    peak = _num(final.get("max_hr_bpm"))
    return {
        "avg_bpm": avg if avg is not None else (math.fsum(hr) / len(hr) if hr else None),
        "max_bpm": peak if peak is not None else (max(hr) if hr else None),
        "time_in_zones_s": [z or 0.0 for z in zones] if hr else None,
        "zone_lower_bounds_bpm": list(zone_bounds),
        "trimp": _num(final.get("trimp")) if hr else None,
        "samples": len(hr),
    }


def _segments(store: SessionStore, session_id: str, clock: _Clock) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in store.segments(session_id):
        sm = s.summary
        out.append({
            "kind": str(s.kind),
            "start_s": clock.mono(s.start_mono_s, s.start_utc),
            "end_s": clock.mono(s.end_mono_s, s.end_utc),
            "start_m": s.start_m,
            "end_m": s.end_m,
            "duration_s": sm.duration_s,
            "distance_m": sm.distance_m,
            "avg_speed_mps": sm.avg_speed_mps,
            "avg_pace_s_per_km": sm.avg_pace_s_per_km,
            "avg_hr_bpm": sm.avg_hr_bpm,
            "max_hr_bpm": sm.max_hr_bpm,
            "avg_cadence_spm": sm.avg_cadence_spm,
            "avg_step_length_m": sm.avg_step_length_m,
        })  # fmt: skip
    out.sort(key=lambda seg: seg["start_s"])
    return out


def _mono_value(values: Mapping[str, MetricValue], key: str, clock: _Clock) -> float | None:
    value = _num(values.get(key))
    return clock.mono(value) if value is not None else None


def _splits(splits: Sequence[Metric], clock: _Clock) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in splits:
        v = m.values
        distance = _num(v.get("distance_m"))
        if distance is None or distance < MIN_SPLIT_M:
            continue
        row: dict[str, Any] = {"km": int(_num(v.get("index")) or len(out) + 1)}
        row.update({k: _num(v.get(k)) for k in _SPLIT_KEYS})
        row["start_s"] = _mono_value(v, "start_s", clock)
        row["end_s"] = _mono_value(v, "end_s", clock)
        out.append(row)
    return out


def _accelerations(accs: Sequence[Metric], clock: _Clock) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(accs, start=1):
        v = m.values
        row: dict[str, Any] = {"index": i, "start_s": _mono_value(v, "start_s", clock),
                               "end_s": _mono_value(v, "end_s", clock)}  # fmt: skip
        row.update({k: _num(v.get(k)) for k in _ACCEL_KEYS})
        out.append(row)
    return out


def _alerts(store: SessionStore, session_id: str, clock: _Clock) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "kind": str(a.kind),
            "severity": str(a.severity),
            "time_s": clock.mono(a.time_mono_s, a.time_utc),
            "time_utc": _iso(a.time_utc),
            "value": _num(a.value),
            "threshold": _num(a.threshold),
            "message": a.message,
        }
        for a in store.alerts(session_id)
    ]


def _metrics(store: SessionStore, session_id: str, group: MetricGroup) -> list[Metric]:
    return list(store.metrics(session_id, group))


def _end_s(clock: _Clock, row: SessionRow, groups: Iterable[Sequence[Metric]]) -> float | None:
    last = [clock.mono(g[-1].time_mono_s, g[-1].time_utc) for g in groups if g]
    if last:
        return max(last)
    if row.end_utc is not None:
        return clock.utc(row.end_utc)
    return None


def build_report(
    store: SessionStore, session_id: str, *, settings: ProcessingSettings | None = None
) -> dict[str, Any]:
    """The report of one stored session: JSON types only, non-finite numbers as ``None``.

    Args:
        store: the session store.
        session_id: the session.
        settings: processing settings, for the athlete's HR zone bounds (defaults otherwise).

    Returns:
        The report (docs/report.md): ``schema_version``, ``session``, ``heart_rate``,
        ``cadence``, ``pace``, ``hrv``, ``readiness``, ``alpha1_thresholds``, ``segments``,
        ``splits``, ``accelerations``, ``alerts``, ``decoupling_pct``.

    Raises:
        UnknownSessionError: no such session.
    """
    row = _require(store, session_id)
    clock = _session_clock(store, row)
    heart = _metrics(store, session_id, MetricGroup.HEART)
    rr = _metrics(store, session_id, MetricGroup.RR)
    gait = _metrics(store, session_id, MetricGroup.GAIT)
    sessions = _metrics(store, session_id, MetricGroup.SESSION)
    final = _final(sessions)
    athlete = (settings or ProcessingSettings()).athlete(row.athlete)
    zone_bounds = [athlete.max_hr_bpm * pct / 100.0 for pct in athlete.zone_bounds_pct_max]

    g = _gait_arrays(gait, clock)
    moving = _moving(g)
    distance = _num(final.get("distance_m"))
    if distance is None and gait:
        finite = g["distance_m"][np.isfinite(g["distance_m"])]
        distance = float(finite[-1]) if finite.size else None
    end_s = _end_s(clock, row, (heart, rr, gait, sessions))
    start_utc = clock.start_utc
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "session": {
            "id": row.id,
            "athlete": row.athlete,
            "source": row.source,
            "start": _iso(start_utc),
            "end": _iso(start_utc + timedelta(seconds=end_s)) if end_s is not None else None,
            "duration_s": end_s,
            "distance_m": distance,
            "moving_time_s": moving["moving_time_s"],
        },
        "heart_rate": _heart(heart, final, zone_bounds),
        "cadence": {
            # An imported file's own average (devices' rules, issue #11), else the moving one.
            "avg_spm": _num(final.get("avg_cadence_spm")) if "avg_cadence_spm" in final
            else moving["avg_cadence_spm"],
            "moving_speed_mps": MOVING_SPEED_MPS,
        },
        "pace": {
            "avg_s_per_km": moving["avg_pace_s_per_km"],
            "avg_speed_mps": moving["avg_speed_mps"],
            "moving_distance_m": moving["moving_distance_m"] if gait else None,
        },
        "hrv": _hrv(rr),
        "readiness": _readiness(store, row, final),
        "alpha1_thresholds": {
            "hr_at_075_bpm": _num(final.get("hr_at_alpha1_075_bpm")),
            "hr_at_050_bpm": _num(final.get("hr_at_alpha1_050_bpm")),
            "speed_at_075_mps": _num(final.get("speed_at_alpha1_075_mps")),
            "speed_at_050_mps": _num(final.get("speed_at_alpha1_050_mps")),
            "r2": _num(final.get("alpha1_fit_r2")),
            "reason": _text(final.get("alpha1_fit_reason")),
        },
        "segments": _segments(store, session_id, clock),
        "splits": _splits(_metrics(store, session_id, MetricGroup.SPLIT), clock),
        "accelerations": _accelerations(
            _metrics(store, session_id, MetricGroup.ACCELERATION), clock
        ),
        "alerts": _alerts(store, session_id, clock),
        "decoupling_pct": _num(final.get("decoupling_pct")),
    }
    cleaned: dict[str, Any] = _clean(report)
    return cleaned


# --------------------------------------------------------------------------------- series


def _downsample(
    t: FloatArray, columns: Mapping[str, FloatArray], max_points: int
) -> dict[str, FloatArray]:
    """Bucket means (NaN-aware) of ``t`` and every column, at most ``max_points`` buckets."""
    n = t.size
    if n <= max_points:
        return {"t_s": t, **columns}
    starts = np.unique(np.linspace(0, n, max_points, endpoint=False).astype(np.intp))

    def mean(v: FloatArray) -> FloatArray:
        valid = np.isfinite(v)
        sums = np.add.reduceat(np.where(valid, v, 0.0), starts)
        counts = np.add.reduceat(valid.astype(np.float64), starts)
        out = np.full(starts.size, np.nan)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out

    return {"t_s": mean(t), **{k: mean(v) for k, v in columns.items()}}


def build_timeseries(
    store: SessionStore, session_id: str, *, max_points: int = MAX_POINTS
) -> Timeseries:
    """Plot series of one session, seconds from the session start, NaN where undefined.

    Keys (every group shares its time axis ``<group>_t_s``):

    * ``hr_t_s``, ``hr_bpm``;
    * ``rr_t_s``, ``rr_ms`` (clean beats only);
    * ``hrv_t_s``, ``rmssd_60s_ms``, ``dfa_alpha1`` (the live rolling values);
    * ``gait_t_s``, ``cadence_spm``, ``step_length_m``, ``speed_mps``, ``pace_s_per_km``,
      ``distance_m``.

    Each group has at most ``max_points`` points (bucket means of consecutive samples).

    Raises:
        UnknownSessionError: no such session.
    """
    row = _require(store, session_id)
    clock = _session_clock(store, row)
    series: Timeseries = {}

    def add(prefix: str, metrics: Sequence[Metric], keys: Mapping[str, str]) -> None:
        t = np.array([clock.mono(m.time_mono_s, m.time_utc) for m in metrics], dtype=np.float64)
        cols = {
            name: np.array([_num(m.values.get(key)) for m in metrics], dtype=np.float64)
            for name, key in keys.items()
        }
        for name, values in _downsample(t, cols, max_points).items():
            series[f"{prefix}_t_s" if name == "t_s" else name] = values

    add("hr", _metrics(store, session_id, MetricGroup.HEART), {"hr_bpm": "heart_rate_bpm"})
    rr = [m for m in store.metrics(session_id, MetricGroup.RR)
          if _num(m.values.get("clean_rr_ms")) is not None]  # fmt: skip
    add("rr", rr, {"rr_ms": "clean_rr_ms"})
    add("hrv", _metrics(store, session_id, MetricGroup.HRV),
        {"rmssd_60s_ms": "rmssd_60s_ms", "dfa_alpha1": "dfa_alpha1"})  # fmt: skip
    add("gait", _metrics(store, session_id, MetricGroup.GAIT),
        {k: k for k in ("cadence_spm", "step_length_m", "speed_mps", "pace_s_per_km",
                        "distance_m")})  # fmt: skip
    return series


# --------------------------------------------------------------------------------- output
