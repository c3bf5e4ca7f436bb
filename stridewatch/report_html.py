"""The post-run report as one self-contained HTML page.

No external resources: no scripts, no fonts, no stylesheets, no CDN. Plots are matplotlib PNGs
inlined as ``data:`` URIs, and a Content-Security-Policy ``<meta>`` (``default-src 'none'``,
images only from ``data:``, inline styles only) makes the browser refuse anything else, so a
report opened from an e-mail or a USB stick can never reach the network. Every piece of text
from the data (athlete names, sources, alert messages) goes through :func:`html.escape`.

matplotlib is used through its object-oriented API (:class:`~matplotlib.figure.Figure` and the
Agg canvas), never pyplot: no global state, no GUI backend, safe in threads.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from stridewatch.report import FloatArray, Timeseries
from stridewatch.report_text import MISSING, fmt_duration, fmt_num, fmt_pace

__all__ = ["CSP", "PLOT_IDS", "render_html"]

CSP: Final = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)
"""The page's Content-Security-Policy: nothing but inline styles and ``data:`` images."""
PLOT_IDS: Final = ("plot-hr", "plot-hrv", "plot-gait", "plot-pace")
"""``id`` of each plot's ``<img>``."""

_DPI: Final = 110
_WIDTH_IN: Final = 10.0
_ZONE_COLOURS: Final = ("#e8f1fb", "#e6f4ea", "#fff6d6", "#ffe8d4", "#fde0e0")
_SEGMENT_COLOURS: Final = {
    "stand": "#eeeeee", "walk": "#dcebf7", "run": "#fde3c8", "sprint": "#f8c9c9",
}  # fmt: skip
_LINE: Final = "#1f4e79"
_ACCENT: Final = "#c0392b"
_SEVERITY_COLOURS: Final = {"info": "#2c7fb8", "warning": "#e67e22", "critical": "#c0392b"}
_PACE_LIMITS_S: Final = (150.0, 900.0)
"""Pace axis range, s/km (2:30–15:00 /km): slower than that is standing, not pace."""


# --------------------------------------------------------------------------------- plots


def _minutes(t_s: FloatArray) -> FloatArray:
    return t_s / 60.0


def _new_figure(rows: int, height_in: float) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0].tolist()
    for ax in axes:
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(labelsize=9)
    axes[-1].set_xlabel("time from start (min)", fontsize=9)
    return fig, axes


def _png_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this session", transform=ax.transAxes, ha="center",
            va="center", fontsize=11, color="#777777")  # fmt: skip
    ax.set_yticks([])


def _has(values: FloatArray) -> bool:
    return bool(np.any(np.isfinite(values)))


def _segment_bands(ax: Axes, report: Mapping[str, Any]) -> None:
    for seg in report["segments"]:
        if seg["start_s"] is None or seg["end_s"] is None:
            continue
        ax.axvspan(seg["start_s"] / 60.0, seg["end_s"] / 60.0, linewidth=0,
                   color=_SEGMENT_COLOURS.get(seg["kind"], "#eeeeee"), zorder=0)  # fmt: skip


def _plot_hr(report: Mapping[str, Any], series: Timeseries) -> Figure:
    fig, (ax,) = _new_figure(1, 3.4)
    t, hr = series.get("hr_t_s"), series.get("hr_bpm")
    if t is None or hr is None or not _has(hr):
        _no_data(ax, "heart rate")
        return fig
    bounds = list(report["heart_rate"]["zone_lower_bounds_bpm"])
    low = min(float(np.nanmin(hr)) - 10.0, bounds[0] - 10.0)
    high = max(float(np.nanmax(hr)) + 10.0, bounds[-1] + 10.0)
    edges = [low, *bounds, high]
    for zone, (a, b) in enumerate(itertools.pairwise(edges), start=1):
        ax.axhspan(a, b, color=_ZONE_COLOURS[zone - 1], linewidth=0, zorder=0)
        ax.text(1.005, (a + b) / 2, f"Z{zone}", transform=ax.get_yaxis_transform(),
                fontsize=8, color="#666666", va="center")
    ax.plot(_minutes(t), hr, color=_ACCENT, linewidth=1.2, label="heart rate")
    for alert in report["alerts"]:
        if alert["time_s"] is None:
            continue
        x = alert["time_s"] / 60.0
        colour = _SEVERITY_COLOURS.get(alert["severity"], _ACCENT)
        ax.axvline(x, color=colour, linewidth=1.0, linestyle="--")
        ax.plot([x], [high - 4.0], marker="v", color=colour, markersize=8)
    ax.set_ylim(low, high)
    ax.set_ylabel("heart rate (bpm)", fontsize=9)
    return fig


def _plot_hrv(report: Mapping[str, Any], series: Timeseries) -> Figure:
    fig, (ax_rr, ax_rmssd, ax_dfa) = _new_figure(3, 5.6)
    rr_t, rr = series.get("rr_t_s"), series.get("rr_ms")
    if rr_t is None or rr is None or not _has(rr):
        for ax in (ax_rr, ax_rmssd, ax_dfa):
            _no_data(ax, "RR intervals")
        return fig
    ax_rr.plot(_minutes(rr_t), rr, ".", markersize=1.5, color=_LINE)
    ax_rr.set_ylabel("RR (ms)", fontsize=9)
    t = series["hrv_t_s"]
    rmssd, alpha = series["rmssd_60s_ms"], series["dfa_alpha1"]
    if _has(rmssd):
        ax_rmssd.plot(_minutes(t), rmssd, color="#2e8b57", linewidth=1.2)
        ax_rmssd.set_ylim(bottom=0)
    else:
        _no_data(ax_rmssd, "RMSSD")
    ax_rmssd.set_ylabel("RMSSD 60 s (ms)", fontsize=9)
    if _has(alpha):
        ax_dfa.axhspan(0.0, 0.5, color="#fde0e0", linewidth=0, zorder=0)
        ax_dfa.axhspan(0.5, 0.75, color="#fff6d6", linewidth=0, zorder=0)
        for level in (0.75, 0.5):
            ax_dfa.axhline(level, color="#999999", linewidth=0.8, linestyle=":")
        ax_dfa.plot(_minutes(t), alpha, color="#6a3d9a", linewidth=1.2)
        ax_dfa.set_ylim(0.0, max(1.6, float(np.nanmax(alpha)) + 0.1))
    else:
        _no_data(ax_dfa, "DFA α1")
    ax_dfa.set_ylabel("DFA α1", fontsize=9)
    return fig


def _plot_gait(report: Mapping[str, Any], series: Timeseries) -> Figure:
    fig, (ax_c, ax_s) = _new_figure(2, 4.2)
    t = series.get("gait_t_s")
    if t is None or t.size == 0:
        for ax in (ax_c, ax_s):
            _no_data(ax, "footpod data")
        return fig
    for ax, key, label, colour in (
        (ax_c, "cadence_spm", "cadence (steps/min)", "#d35400"),
        (ax_s, "step_length_m", "step length (m)", "#16a085"),
    ):
        values = series[key]
        _segment_bands(ax, report)
        if _has(values):
            ax.plot(_minutes(t), values, color=colour, linewidth=1.0)
            ax.set_ylim(bottom=0)
        else:
            _no_data(ax, label.split(" (")[0])
        ax.set_ylabel(label, fontsize=9)
    return fig


def _pace_label(s_per_km: float, _pos: float) -> str:
    minutes, secs = divmod(round(s_per_km), 60)
    return f"{minutes}:{secs:02d}"


def _plot_pace(report: Mapping[str, Any], series: Timeseries) -> Figure:
    fig, (ax,) = _new_figure(1, 3.2)
    t, pace = series.get("gait_t_s"), series.get("pace_s_per_km")
    if t is None or pace is None or not _has(pace):
        _no_data(ax, "pace")
        return fig
    _segment_bands(ax, report)
    lo, hi = _PACE_LIMITS_S
    shown = np.where((pace >= lo) & (pace <= hi), pace, np.nan)
    ax.plot(_minutes(t), shown, color=_LINE, linewidth=1.2)
    for split in report["splits"]:
        if split["end_s"] is not None:
            ax.axvline(split["end_s"] / 60.0, color="#888888", linewidth=0.7, linestyle=":")
            ax.text(split["end_s"] / 60.0, 0.98, f" km {split['km']}", fontsize=7,
                    color="#555555", transform=ax.get_xaxis_transform(), va="top")  # fmt: skip
    finite = shown[np.isfinite(shown)]
    if finite.size:
        slow, fast = min(hi, float(finite.max()) + 30.0), max(lo, float(finite.min()) - 30.0)
        ax.set_ylim(slow, fast)  # faster pace up
        ax.yaxis.set_major_locator(MultipleLocator(60.0 if slow - fast <= 480.0 else 120.0))
    ax.yaxis.set_major_formatter(FuncFormatter(_pace_label))
    ax.set_ylabel("pace (min/km)", fontsize=9)
    return fig


_Plot = tuple[str, str, str, Callable[[Mapping[str, Any], Timeseries], Figure]]
_PLOTS: Final[Sequence[_Plot]] = (
    ("plot-hr", "Heart rate",
     "Heart rate over time with HR zone bands (Z1–Z5) and alerts as dashed lines", _plot_hr),
    ("plot-hrv", "RR intervals, RMSSD and DFA α1",
     "Clean RR intervals, rolling 60-second RMSSD and DFA alpha1 over time", _plot_hrv),
    ("plot-gait", "Cadence and step length",
     "Cadence in steps per minute and step length in metres over time, shaded by segment",
     _plot_gait),
    ("plot-pace", "Pace",
     "Pace in minutes per kilometre over time, shaded by segment, with kilometre marks",
     _plot_pace),
)  # fmt: skip


# --------------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    if not rows:
        return '<p class="none">None in this session.</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _card(label: str, value: str, sub: str = "") -> str:
    sub_html = f'<div class="sub">{_e(sub)}</div>' if sub else ""
    return (f'<div class="card"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div>{sub_html}</div>')  # fmt: skip


def _summary(report: Mapping[str, Any]) -> str:
    s, hr, hrv = report["session"], report["heart_rate"], report["hrv"]
    km = s["distance_m"] / 1000.0 if s["distance_m"] is not None else None
    cards = [
        _card("Distance", fmt_num(km, 2, " km")),
        _card("Duration", fmt_duration(s["duration_s"]),
              f"moving {fmt_duration(s['moving_time_s'])}"),
        _card("Avg pace", fmt_pace(report["pace"]["avg_s_per_km"]), "over moving time"),
        _card("Avg cadence", fmt_num(report["cadence"]["avg_spm"], 0, " spm"),
              "over moving time"),
        _card("Heart rate", fmt_num(hr["avg_bpm"], 0, " bpm"),
              f"max {fmt_num(hr['max_bpm'], 0, ' bpm')}"),
        _card("TRIMP", fmt_num(hr["trimp"], 1)),
        _card("RMSSD", fmt_num(hrv["rmssd_ms"], 1, " ms"),
              f"SDNN {fmt_num(hrv['sdnn_ms'], 1, ' ms')} · pNN50 "
              f"{fmt_num(hrv['pnn50_pct'], 1, ' %')}"),
        _card("DFA α1", fmt_num(hrv["dfa_alpha1"], 2),
              f"artifacts {fmt_num(hrv['artifact_pct'], 1, ' %')}"),
        _card("Decoupling", fmt_num(report["decoupling_pct"], 1, " %"), "HR vs pace"),
    ]  # fmt: skip
    zones = hr["time_in_zones_s"]
    zone_html = ""
    if zones:
        total = sum(zones) or 1.0
        bars = "".join(
            f'<div class="zone z{i}" style="width:{100.0 * z / total:.2f}%" '
            f'title="Z{i}: {_e(fmt_duration(z))}"></div>'
            for i, z in enumerate(zones, start=1)
        )
        legend = " ".join(
            f'<span class="zl"><i class="z{i}"></i>Z{i} {_e(fmt_duration(z))}</span>'
            for i, z in enumerate(zones, start=1)
        )
        zone_html = (f'<h3>Time in HR zones</h3><div class="zonebar">{bars}</div>'
                     f'<div class="zonelegend">{legend}</div>')  # fmt: skip
    return f'<div class="cards">{"".join(cards)}</div>{zone_html}'


def _readiness(report: Mapping[str, Any]) -> str:
    r, a1 = report["readiness"], report["alpha1_thresholds"]
    status = r["status"] or "unknown"
    ratio = fmt_num(100.0 * r["ratio"], 0, " %") if r["ratio"] is not None else MISSING
    rows = [
        ["Resting RMSSD (warm-up)", fmt_num(r["resting_rmssd_ms"], 1, " ms")],
        ["Baseline (geometric mean)",
         f"{fmt_num(r['baseline_rmssd_ms'], 1, ' ms')} from {r['baseline_sessions']} "
         "earlier session(s)"],
        ["Today vs baseline", ratio],
        ["HR at DFA α1 = 0.75", fmt_num(a1["hr_at_075_bpm"], 0, " bpm")],
        ["HR at DFA α1 = 0.50", fmt_num(a1["hr_at_050_bpm"], 0, " bpm")],
        ["α1 fit", f"r² {fmt_num(a1['r2'], 2)}" + (f" ({a1['reason']})" if a1["reason"] else "")],
    ]  # fmt: skip
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    message = f"<p>{_e(r['message'])}</p>" if r["message"] else ""
    return (f'<p><span class="badge {_e(status)}">{_e(status.replace("_", " "))}</span></p>'
            f'{message}<table class="kv">{body}</table>')  # fmt: skip


def _alerts_timeline(report: Mapping[str, Any]) -> str:
    alerts = report["alerts"]
    duration = report["session"]["duration_s"] or 0.0
    if not alerts:
        return '<p class="none">No alerts in this session.</p>'
    marks = []
    for a in alerts:
        if a["time_s"] is None or duration <= 0:
            continue
        left = min(100.0, max(0.0, 100.0 * a["time_s"] / duration))
        marks.append(
            f'<div class="mark {_e(a["severity"])}" style="left:{left:.2f}%" '
            f'title="{_e(fmt_duration(a["time_s"]))} {_e(a["message"])}"></div>'
        )
    segs = []
    for seg in report["segments"]:
        if duration <= 0 or seg["start_s"] is None or seg["end_s"] is None:
            continue
        left = max(0.0, 100.0 * seg["start_s"] / duration)
        width = max(0.0, 100.0 * (seg["end_s"] - seg["start_s"]) / duration)
        segs.append(f'<div class="seg {_e(seg["kind"])}" style="left:{left:.2f}%;'
                    f'width:{width:.2f}%">{_e(seg["kind"])}</div>')  # fmt: skip
    timeline = (f'<div class="timeline">{"".join(segs)}{"".join(marks)}</div>'
                f'<div class="tl-axis"><span>0:00</span><span>{_e(fmt_duration(duration))}'
                "</span></div>")  # fmt: skip
    rows = [[fmt_duration(a["time_s"]), a["severity"], a["kind"], a["message"]] for a in alerts]
    return timeline + _table(["time", "severity", "kind", "message"], rows, "alerts")


_CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: #1d2733;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .meta { color: #5a6878; font-size: 14px; }
section { background: #fff; border-radius: 10px; padding: 18px 22px; margin-top: 18px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { margin: 0 0 12px; font-size: 18px; color: #1f4e79; }
h3 { margin: 16px 0 6px; font-size: 14px; color: #5a6878; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; }
.card { border: 1px solid #e3e8ee; border-radius: 8px; padding: 10px 12px; }
.card .label { font-size: 12px; color: #5a6878; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 650; margin-top: 2px; }
.card .sub { font-size: 12px; color: #5a6878; }
.zonebar { display: flex; height: 16px; border-radius: 4px; overflow: hidden; }
.z1 { background: #9ecae1; } .z2 { background: #74c476; } .z3 { background: #fdd049; }
.z4 { background: #fd8d3c; } .z5 { background: #e34a33; }
.zonelegend { font-size: 13px; color: #444; margin-top: 6px; }
.zl { margin-right: 14px; white-space: nowrap; }
.zl i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 14px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e8ecf0; text-align: right;
  white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f3f6; color: #3b4856; font-weight: 600; font-size: 13px; }
table.kv { width: auto; } table.kv th { text-align: left; font-weight: 500; color: #5a6878; }
table.kv td { text-align: left; }
table.alerts td:nth-child(n+2), table.alerts th:nth-child(n+2) { text-align: left; }
table.alerts td:last-child { white-space: normal; }
.none { color: #777; font-style: italic; margin: 4px 0; }
.badge { display: inline-block; padding: 3px 10px; border-radius: 12px; font-weight: 600;
  font-size: 13px; background: #e3e8ee; text-transform: capitalize; }
.badge.normal { background: #d8f0dc; color: #1b5e20; } .badge.low { background: #fbd5d5;
  color: #8e1b1b; } .badge.high { background: #fff0c2; color: #7a5b00; }
.timeline { position: relative; height: 30px; background: #f0f3f6; border-radius: 4px;
  margin: 8px 0 2px; overflow: hidden; }
.seg { position: absolute; top: 0; bottom: 0; font-size: 11px; color: #3b4856;
  padding: 7px 4px 0; overflow: hidden; border-right: 1px solid #fff; }
.seg.stand { background: #e4e4e4; } .seg.walk { background: #dcebf7; }
.seg.run { background: #fde3c8; } .seg.sprint { background: #f8c9c9; }
.mark { position: absolute; top: 0; bottom: 0; width: 3px; margin-left: -1px;
  background: #c0392b; }
.mark.info { background: #2c7fb8; } .mark.warning { background: #e67e22; }
.tl-axis { display: flex; justify-content: space-between; font-size: 11px; color: #777;
  margin-bottom: 10px; }
figure { margin: 0 0 14px; } figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: #5a6878; margin-bottom: 4px; font-weight: 600; }
.scroll { overflow-x: auto; }
footer { color: #8a96a3; font-size: 12px; margin-top: 18px; }
"""


def _splits(report: Mapping[str, Any]) -> str:
    rows = [[str(s["km"]), fmt_duration(s["start_s"]), fmt_duration(s["duration_s"]),
             fmt_num(s["distance_m"], 0, " m"), fmt_pace(s["pace_s_per_km"]),
             fmt_num(s["avg_hr_bpm"], 0, " bpm"), fmt_num(s["avg_cadence_spm"], 0, " spm")]
            for s in report["splits"]]  # fmt: skip
    return _table(["km", "start", "time", "distance", "pace", "avg HR", "cadence"], rows)


def _segments(report: Mapping[str, Any]) -> str:
    rows = [[s["kind"], fmt_duration(s["start_s"]), fmt_duration(s["duration_s"]),
             f"{fmt_num(s['start_m'], 0)}–{fmt_num(s['end_m'], 0)} m",
             fmt_num(s["distance_m"], 0, " m"), fmt_pace(s["avg_pace_s_per_km"]),
             fmt_num(s["avg_hr_bpm"], 0, " bpm"), fmt_num(s["max_hr_bpm"], 0, " bpm"),
             fmt_num(s["avg_cadence_spm"], 0, " spm"), fmt_num(s["avg_step_length_m"], 2, " m")]
            for s in report["segments"]]  # fmt: skip
    return _table(["segment", "start", "time", "from–to", "distance", "pace", "avg HR",
                   "max HR", "cadence", "step"], rows)  # fmt: skip


def _accelerations(report: Mapping[str, Any]) -> str:
    rows = [[str(a["index"]), fmt_duration(a["start_s"]), fmt_num(a["time_to_90pct_s"], 1, " s"),
             fmt_num(a["distance_to_90pct_m"], 1, " m"), fmt_num(a["peak_speed_mps"], 2, " m/s"),
             fmt_num(a["peak_cadence_spm"], 0, " spm"), fmt_num(a["peak_step_length_m"], 2, " m"),
             fmt_num(a["peak_stride_length_m"], 2, " m"), fmt_num(a["steps"], 0)]
            for a in report["accelerations"]]  # fmt: skip
    return _table(["#", "start", "to 90 % speed", "distance", "peak speed", "peak cadence",
                   "peak step", "peak stride", "steps"], rows)  # fmt: skip


def render_html(report: Mapping[str, Any], series: Timeseries) -> str:
    """One self-contained HTML page for a report and its plot series.

    Args:
        report: from :func:`stridewatch.report.build_report`.
        series: from :func:`stridewatch.report.build_timeseries`.

    Returns:
        The page (UTF-8 text). Plots are ``<img id="plot-…">`` with ``data:image/png`` sources
        (see :data:`PLOT_IDS`); a plot without data shows "no … in this session".
    """
    s = report["session"]
    figures = []
    for plot_id, title, alt, draw in _PLOTS:
        uri = _png_uri(draw(report, series))
        figures.append(
            f'<figure><figcaption>{_e(title)}</figcaption>'
            f'<img id="{plot_id}" src="{uri}" alt="{_e(alt)}"></figure>'
        )
    sections = [
        ("summary", "Summary", _summary(report)),
        ("readiness", "Readiness and HRV thresholds", _readiness(report)),
        ("plots", "Plots", "".join(figures)),
        ("splits", "Splits (per km)", f'<div class="scroll">{_splits(report)}</div>'),
        ("segments", "Segments", f'<div class="scroll">{_segments(report)}</div>'),
        ("accelerations", "Accelerations from standstill",
         f'<div class="scroll">{_accelerations(report)}</div>'),
        ("alerts", "Alerts", _alerts_timeline(report)),
    ]  # fmt: skip
    body = "".join(
        f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>'
        for sid, title, content in sections
    )
    title = f"{s['athlete']} – {s['start'][:10]} – stridewatch report"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><header><h1>{_e(s['athlete'])}</h1>"
        f'<div class="meta">{_e(s["start"])} · {_e(s["source"])} · session '
        f"<code>{_e(s['id'])}</code></div></header>"
        f"{body}"
        f"<footer>stridewatch report, schema version {_e(report['schema_version'])}. "
        "Times are from the first reading; averages of cadence and pace are over moving time "
        f"(speed ≥ {_e(report['cadence']['moving_speed_mps'])} m/s or cadence &gt; 0)."
        "</footer></main></body></html>\n"
    )
