"""The post-run report as plain text: a summary and tables with aligned columns.

Input is the dict of :func:`stridewatch.report.build_report`; missing values print as ``-``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["fmt_duration", "fmt_num", "fmt_pace", "render_text", "table"]

MISSING: Final = "-"
"""What a value the data does not have prints as."""


def fmt_num(value: Any, digits: int = 0, unit: str = "") -> str:
    """A number with ``digits`` decimals and an optional unit; ``-`` for None.

    >>> fmt_num(51.73, 1, " ms"), fmt_num(None)
    ('51.7 ms', '-')
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:,.{digits}f}{unit}"


def fmt_duration(seconds: Any) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour); ``-`` for None.

    >>> fmt_duration(2684.6), fmt_duration(59.5), fmt_duration(3725)
    ('44:45', '1:00', '1:02:05')
    """
    if seconds is None or not isinstance(seconds, int | float):
        return MISSING
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def fmt_pace(s_per_km: Any) -> str:
    """Pace as ``m:ss /km``; ``-`` for None.

    >>> fmt_pace(225.6), fmt_pace(None)
    ('3:46 /km', '-')
    """
    if s_per_km is None or not isinstance(s_per_km, int | float):
        return MISSING
    minutes, secs = divmod(round(float(s_per_km)), 60)
    return f"{minutes}:{secs:02d} /km"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: str | None = None,
    indent: str = "  ",
) -> str:
    """Columns aligned: ``align`` has one ``l`` or ``r`` per column (default: the first
    left, the others right, as for numbers).

    >>> print(table(["km", "pace"], [["1", "10:01 /km"], ["2", "3:46 /km"]]))
      km        pace
      1    10:01 /km
      2     3:46 /km
    """
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    sides = align or "l" + "r" * (len(headers) - 1)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(w) if side == "l" else cell.rjust(w)
            for cell, w, side in zip(cells, widths, sides, strict=True)
        ]
        return (indent + "   ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


_Column = tuple[str, Callable[[Mapping[str, Any]], str]]


def _rows(
    items: Sequence[Mapping[str, Any]], columns: Sequence[_Column], align: str | None
) -> str:
    return table(
        [h for h, _ in columns], [[f(item) for _, f in columns] for item in items], align=align
    )


_SPLITS: Final[Sequence[_Column]] = (
    ("km", lambda s: str(s["km"])),
    ("start", lambda s: fmt_duration(s["start_s"])),
    ("time", lambda s: fmt_duration(s["duration_s"])),
    ("distance", lambda s: fmt_num(s["distance_m"], 0, " m")),
    ("pace", lambda s: fmt_pace(s["pace_s_per_km"])),
    ("avg HR", lambda s: fmt_num(s["avg_hr_bpm"], 0, " bpm")),
    ("cadence", lambda s: fmt_num(s["avg_cadence_spm"], 0, " spm")),
)
_SEGMENTS: Final[Sequence[_Column]] = (
    ("segment", lambda s: str(s["kind"])),
    ("start", lambda s: fmt_duration(s["start_s"])),
    ("time", lambda s: fmt_duration(s["duration_s"])),
    ("from", lambda s: fmt_num(s["start_m"], 0, " m")),
    ("distance", lambda s: fmt_num(s["distance_m"], 0, " m")),
    ("pace", lambda s: fmt_pace(s["avg_pace_s_per_km"])),
    ("avg HR", lambda s: fmt_num(s["avg_hr_bpm"], 0, " bpm")),
    ("max HR", lambda s: fmt_num(s["max_hr_bpm"], 0, " bpm")),
    ("cadence", lambda s: fmt_num(s["avg_cadence_spm"], 0, " spm")),
    ("step", lambda s: fmt_num(s["avg_step_length_m"], 2, " m")),
)
_ACCELERATIONS: Final[Sequence[_Column]] = (
    ("#", lambda a: str(a["index"])),
    ("start", lambda a: fmt_duration(a["start_s"])),
    ("to 90 %", lambda a: fmt_num(a["time_to_90pct_s"], 1, " s")),
    ("in", lambda a: fmt_num(a["distance_to_90pct_m"], 1, " m")),
    ("peak speed", lambda a: fmt_num(a["peak_speed_mps"], 2, " m/s")),
    ("peak cadence", lambda a: fmt_num(a["peak_cadence_spm"], 0, " spm")),
    ("peak step", lambda a: fmt_num(a["peak_step_length_m"], 2, " m")),
    ("steps", lambda a: fmt_num(a["steps"], 0)),
)
_ALERTS: Final[Sequence[_Column]] = (
    ("time", lambda a: fmt_duration(a["time_s"])),
    ("severity", lambda a: str(a["severity"])),
    ("kind", lambda a: str(a["kind"])),
    ("message", lambda a: str(a["message"])),
)


def _summary(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    s, hr, hrv = report["session"], report["heart_rate"], report["hrv"]
    zones = hr["time_in_zones_s"]
    zone_text = (
        "  ".join(f"Z{i} {fmt_duration(z)}" for i, z in enumerate(zones, start=1))
        if zones is not None else MISSING
    )  # fmt: skip
    return [
        ("Duration", fmt_duration(s["duration_s"])),
        ("Moving time", fmt_duration(s["moving_time_s"])),
        ("Distance", fmt_num(s["distance_m"] / 1000.0 if s["distance_m"] is not None else None,
                             2, " km")),
        ("Avg pace (moving)", fmt_pace(report["pace"]["avg_s_per_km"])),
        ("Avg cadence (moving)", fmt_num(report["cadence"]["avg_spm"], 0, " spm")),
        ("Heart rate", f"avg {fmt_num(hr['avg_bpm'], 0, ' bpm')}, "
                       f"max {fmt_num(hr['max_bpm'], 0, ' bpm')}"),
        ("Time in zones", zone_text),
        ("TRIMP", fmt_num(hr["trimp"], 1)),
        ("HRV (whole session)", f"RMSSD {fmt_num(hrv['rmssd_ms'], 1, ' ms')}, "
                                f"SDNN {fmt_num(hrv['sdnn_ms'], 1, ' ms')}, "
                                f"pNN50 {fmt_num(hrv['pnn50_pct'], 1, ' %')}"),
        ("DFA α1", f"{fmt_num(hrv['dfa_alpha1'], 2)} "
                   f"(artifacts {fmt_num(hrv['artifact_pct'], 1, ' %')})"),
        ("HR-pace decoupling", fmt_num(report["decoupling_pct"], 1, " %")),
    ]  # fmt: skip


def render_text(report: Mapping[str, Any]) -> str:
    """The report (of :func:`~stridewatch.report.build_report`) as readable plain text."""
    s = report["session"]
    out = [
        f"stridewatch report: {s['athlete']}",
        f"Session {s['id']} ({s['source']}), started {s['start']}",
        "",
    ]
    pairs = _summary(report)
    width = max(len(k) for k, _ in pairs)
    out += [f"  {k.ljust(width)}  {v}" for k, v in pairs]

    r, a1 = report["readiness"], report["alpha1_thresholds"]
    out += ["", "Readiness"]
    out.append(f"  resting RMSSD {fmt_num(r['resting_rmssd_ms'], 1, ' ms')}, baseline "
               f"{fmt_num(r['baseline_rmssd_ms'], 1, ' ms')} ({r['baseline_sessions']} "
               f"session(s)), status {r['status'] or MISSING}")  # fmt: skip
    if r["message"]:
        out.append(f"  {r['message']}")
    out.append(f"  DFA α1 thresholds: HR at α1 0.75 {fmt_num(a1['hr_at_075_bpm'], 0, ' bpm')}, "
               f"at 0.50 {fmt_num(a1['hr_at_050_bpm'], 0, ' bpm')} "
               f"(fit r² {fmt_num(a1['r2'], 2)}"
               f"{', ' + a1['reason'] if a1['reason'] else ''})")  # fmt: skip

    sections: list[tuple[str, Sequence[Mapping[str, Any]], Sequence[_Column], str | None]] = [
        ("Splits", report["splits"], _SPLITS, None),
        ("Segments", report["segments"], _SEGMENTS, None),
        ("Accelerations", report["accelerations"], _ACCELERATIONS, None),
        ("Alerts", report["alerts"], _ALERTS, "rlll"),
    ]
    for title, items, columns, align in sections:
        out += ["", title]
        out.append(_rows(items, columns, align) if items else "  none")
    return "\n".join(out) + "\n"
