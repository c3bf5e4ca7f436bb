"""Alerts of one athlete: a pure state machine that returns :class:`Alert` events.

:class:`AlertEngine` never logs, publishes or reads a clock (STYLE.md house style 5–6): each
method takes one input and returns the alerts that input raised, so an alert is emitted by the
very reading that crosses its threshold and delivery latency is the pipeline's alone. Event
time is the readings' ``time_mono_s`` (intervals, cooldowns) and ``time_utc`` (labels).

Alerts (thresholds in :class:`~processing.settings.AlertSettings`; DESIGN.md "Alerts"):

``hr_surge`` (warning)
    The rise ``HR now − min HR over the last surge_window_s`` (30 s, :class:`RiseRate`)
    reaches ``surge_rise_bpm`` (20). Hysteresis: after firing it re-arms only once the rise
    has fallen below ``surge_rearm_bpm`` (10), so one climb raises one alert.
``hr_ceiling`` (warning)
    HR above the ceiling (``ceiling_bpm``, default the lower bound of zone 5) continuously
    for ``ceiling_hold_s`` (30 s; a data gap > 5 s restarts the hold). Re-arms once HR is
    below ``ceiling − ceiling_clear_bpm``.
``early_surge`` (warning)
    In the first ``early_surge_window_s`` (90 s) of a run segment, the rise from the HR at
    the segment start reaches the athlete's own threshold: ``early_surge_history_factor``
    (1.3) × the median early rise of past sessions (:class:`EarlyRiseHistory`, at least
    ``early_surge_min_history`` = 3 of them, floored at ``early_surge_min_bpm`` = 20 bpm).
    Without enough history the absolute ``early_surge_fallback_bpm`` (35 bpm) applies, but
    only within the first ``early_surge_fallback_window_s`` (60 s): a normal on-transient
    from a walk to a run already rises 35–45 bpm in 90 s (walk ~105 bpm → easy run ~157 bpm;
    on the virtual athlete the normal easy-8k jog-in rises 37.5 bpm in 90 s), while a
    normal rise is capped near 0.5 bpm/s, i.e. ≤ 30 bpm in 60 s. Once per run segment.
``low_readiness`` (info; warning below ``low_readiness_ratio − 0.15``)
    Today's resting RMSSD is below ``low_readiness_ratio`` (0.75) × the baseline
    (:func:`~processing.readiness.assess_readiness`); once per session.
``sensor_lost`` (warning)
    A sensor disconnected or went silent (:class:`LinkEvent`) and has not come back
    (``connected``) within ``sensor_lost_s`` (10 s) of that event. Reported by
    :meth:`AlertEngine.tick`, which the pipeline calls on every record of the athlete, so
    the first record after the deadline (from any other sensor) carries it; at most once
    per outage.
``no_contact`` (warning)
    The strap reported no skin contact and did not report it back for ``no_contact_hold_s``
    (5 s): straps flicker between contact and none for a beat or two when the electrodes dry
    or shift, which is not worth an alert. Also via :meth:`tick`; once per episode.
``low_battery`` (info; warning at ≤ 5 %)
    Battery below ``low_battery_pct``; once per sensor and session unless the level recovers
    to ``low_battery_pct + 5`` (a swapped battery) or more.

Cooldown: two alerts of the same kind are at least ``cooldown_s`` (120 s) apart. For the
sensor-scoped kinds (sensor lost, no contact, low battery) the cooldown is per kind *and
sensor*, so losing the strap does not hide losing the footpod. An alert suppressed by the
cooldown is not lost: hr_surge, hr_ceiling and early_surge stay armed and fire on the first
reading after the cooldown that still meets the condition.

Ids: ``f"{id_prefix}:{athlete}:{kind}:{n}"`` (without the prefix part when it is empty), n
counting alerts of that kind in this engine from 1. Deterministic for a replay; unique
across sessions when the pipeline passes a session id as ``id_prefix``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from ingest.records import BatteryReading, LinkEvent, LinkState
from processing.heart import MAX_GAP_S, RiseRate
from processing.readiness import ReadinessResult
from processing.records import Alert, AlertKind, SegmentKind, Severity
from processing.settings import AlertSettings, AthleteSettings

__all__ = ["AlertEngine", "EarlyRiseHistory"]

_BATTERY_RECOVER_PCT: Final = 5
"""A battery alert re-arms once the level is this much above the threshold (percent)."""
_BATTERY_CRITICAL_PCT: Final = 5
_READINESS_WARNING_MARGIN: Final = 0.15
_HISTORY_MAX: Final = 30
"""Only the last this many past early rises count (the athlete changes over months)."""


@dataclasses.dataclass(frozen=True, slots=True)
class EarlyRiseHistory:
    """The athlete's HR rise in the first seconds of past run segments (bpm, oldest first).

    One value per past session (the pipeline stores :meth:`AlertEngine.early_rise_bpm`).
    """

    rises_bpm: Sequence[float] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rises_bpm", tuple(self.rises_bpm))

    def typical_bpm(self, min_sessions: int = 3) -> float | None:
        """Median of the last 30 finite, non-negative rises (bpm); None with fewer than
        ``min_sessions`` of them.

        >>> EarlyRiseHistory([30.0, 40.0, 35.0]).typical_bpm()
        35.0
        >>> EarlyRiseHistory([30.0]).typical_bpm() is None
        True
        """
        good = [v for v in self.rises_bpm if math.isfinite(v) and v >= 0][-_HISTORY_MAX:]
        if len(good) < max(1, min_sessions):
            return None
        return float(statistics.median(good))


@dataclasses.dataclass(slots=True)
class _Outage:
    since_s: float
    reported: bool = False


class AlertEngine:
    """Alert state machine of one athlete (see the module docstring for each alert).

    Args:
        athlete: athlete name (in ids and alerts).
        settings: the athlete's physiology (ceiling default from zone 5).
        alerts: thresholds, hysteresis and cooldowns.
        history: past early rises for the early-surge alert; None: no history.
        id_prefix: prefix of alert ids (e.g. the session id) for uniqueness across sessions.
        no_contact_hold_s: no skin contact this long before alerting (s).
        early_surge_min_history: past sessions needed before the history threshold is used.
        early_surge_min_bpm: floor of the history threshold (bpm).
        early_surge_fallback_window_s: the absolute fallback only applies this long into a run
            segment (s).
    """

    def __init__(
        self,
        athlete: str,
        settings: AthleteSettings,
        alerts: AlertSettings,
        history: EarlyRiseHistory | None = None,
        *,
        id_prefix: str = "",
        no_contact_hold_s: float = 5.0,
        early_surge_min_history: int = 3,
        early_surge_min_bpm: float = 20.0,
        early_surge_fallback_window_s: float = 60.0,
    ) -> None:
        self.athlete = athlete
        self._cfg = alerts
        self._prefix = f"{id_prefix}:" if id_prefix else ""
        self._seq: dict[AlertKind, int] = {}
        self._last_alert_s: dict[tuple[AlertKind, str], float] = {}
        # surge
        self._rise = RiseRate(alerts.surge_window_s)
        self._surge_armed = True
        # ceiling
        if alerts.ceiling_bpm is not None:
            self.ceiling_bpm = alerts.ceiling_bpm
        else:
            self.ceiling_bpm = settings.max_hr_bpm * settings.zone_bounds_pct_max[-1] / 100.0
        self._ceiling_armed = True
        self._above_since: float | None = None
        self._last_hr_t: float | None = None
        self._last_hr: float | None = None
        # early surge
        typical = (history or EarlyRiseHistory()).typical_bpm(early_surge_min_history)
        self.typical_early_rise_bpm = typical
        """Median early rise of past sessions (bpm); None: not enough history."""
        if typical is None:
            self.early_threshold_bpm = alerts.early_surge_fallback_bpm
            self._early_window_s = min(early_surge_fallback_window_s, alerts.early_surge_window_s)
        else:
            self.early_threshold_bpm = max(
                early_surge_min_bpm, alerts.early_surge_history_factor * typical
            )
            self._early_window_s = alerts.early_surge_window_s
        self._run_start_s: float | None = None
        self._run_base_bpm: float | None = None
        self._early_max_rise: float | None = None
        self._early_complete = False
        self._early_fired = False
        # readiness
        self._readiness_done = False
        # sensors
        self._no_contact_hold_s = no_contact_hold_s
        self._outages: dict[str, _Outage] = {}
        self._no_contact: dict[str, _Outage] = {}
        self._battery_alerted: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def _cooled(self, kind: AlertKind, t: float, scope: str = "") -> bool:
        last = self._last_alert_s.get((kind, scope))
        return last is None or t - last >= self._cfg.cooldown_s

    def _alert(
        self,
        kind: AlertKind,
        severity: Severity,
        t: float,
        utc: datetime,
        value: float | None,
        threshold: float | None,
        message: str,
        scope: str = "",
    ) -> Alert:
        n = self._seq.get(kind, 0) + 1
        self._seq[kind] = n
        self._last_alert_s[(kind, scope)] = t
        return Alert(
            id=f"{self._prefix}{self.athlete}:{kind.value}:{n}",
            athlete=self.athlete,
            time_utc=utc,
            time_mono_s=t,
            kind=kind,
            severity=severity,
            value=value,
            threshold=threshold,
            message=message,
        )

    # ------------------------------------------------------------------ heart rate

    def on_heart_rate(self, time_mono_s: float, time_utc: datetime, hr_bpm: float) -> list[Alert]:
        """An accepted HR value (bpm) at ``time_mono_s`` (s): surge, ceiling, early surge."""
        out: list[Alert] = []
        if not math.isfinite(hr_bpm):
            return out
        t = time_mono_s
        if self._last_hr_t is not None:
            t = max(t, self._last_hr_t)  # never run backwards
        gap = self._last_hr_t is None or t - self._last_hr_t > MAX_GAP_S
        self._surge(t, time_utc, hr_bpm, out)
        self._ceiling(t, time_utc, hr_bpm, gap, out)
        self._early(t, time_utc, hr_bpm, out)
        self._last_hr_t = t
        self._last_hr = hr_bpm
        return out

    def _surge(self, t: float, utc: datetime, hr: float, out: list[Alert]) -> None:
        cfg = self._cfg
        rise = self._rise.update(t, hr)
        if rise < cfg.surge_rearm_bpm:
            self._surge_armed = True
        if self._surge_armed and rise >= cfg.surge_rise_bpm and self._cooled(AlertKind.HR_SURGE, t):
            self._surge_armed = False
            out.append(
                self._alert(
                    AlertKind.HR_SURGE,
                    Severity.WARNING,
                    t,
                    utc,
                    rise,
                    cfg.surge_rise_bpm,
                    f"HR rose {rise:.0f} bpm in {cfg.surge_window_s:.0f} s (to {hr:.0f} bpm)",
                )
            )

    def _ceiling(self, t: float, utc: datetime, hr: float, gap: bool, out: list[Alert]) -> None:
        cfg = self._cfg
        ceiling = self.ceiling_bpm
        if hr > ceiling:
            if self._above_since is None or gap:
                self._above_since = t
            held = t - self._above_since
            if (
                self._ceiling_armed
                and held >= cfg.ceiling_hold_s
                and self._cooled(AlertKind.HR_CEILING, t)
            ):
                self._ceiling_armed = False
                out.append(
                    self._alert(
                        AlertKind.HR_CEILING,
                        Severity.WARNING,
                        t,
                        utc,
                        hr,
                        ceiling,
                        f"HR above {ceiling:.0f} bpm for {held:.0f} s (now {hr:.0f} bpm)",
                    )
                )
        else:
            self._above_since = None
            if hr < ceiling - cfg.ceiling_clear_bpm:
                self._ceiling_armed = True

    def on_segment_start(self, time_mono_s: float, kind: SegmentKind) -> list[Alert]:
        """A segment of ``kind`` started at ``time_mono_s`` (s); a run starts the early-surge
        window. The HR at the start is the last accepted HR if it is at most 5 s old,
        otherwise the first one after. Returns no alerts (the list keeps the call shape of
        the other inputs)."""
        if kind is not SegmentKind.RUN:
            return []
        self._run_start_s = time_mono_s
        recent = self._last_hr_t is not None and abs(time_mono_s - self._last_hr_t) <= MAX_GAP_S
        self._run_base_bpm = self._last_hr if recent else None
        self._early_max_rise = None
        self._early_complete = False
        self._early_fired = False
        return []

    def _early(self, t: float, utc: datetime, hr: float, out: list[Alert]) -> None:
        start = self._run_start_s
        if start is None or self._early_complete:
            return
        if self._run_base_bpm is None:
            self._run_base_bpm = hr
        elapsed = t - start
        if elapsed > self._cfg.early_surge_window_s:
            self._early_complete = True
            return
        rise = hr - self._run_base_bpm
        if self._early_max_rise is None or rise > self._early_max_rise:
            self._early_max_rise = rise
        if (
            not self._early_fired
            and elapsed <= self._early_window_s
            and rise >= self.early_threshold_bpm
            and self._cooled(AlertKind.EARLY_SURGE, t)
        ):
            self._early_fired = True
            if self.typical_early_rise_bpm is None:
                usual = f"more than {self.early_threshold_bpm:.0f} bpm expected"
            else:
                usual = f"you usually rise {self.typical_early_rise_bpm:.0f} bpm"
            out.append(
                self._alert(
                    AlertKind.EARLY_SURGE,
                    Severity.WARNING,
                    t,
                    utc,
                    rise,
                    self.early_threshold_bpm,
                    f"HR rose {rise:.0f} bpm in the first {max(elapsed, 0.0):.0f} s of the run "
                    f"(to {hr:.0f} bpm; {usual})",
                )
            )
        if elapsed >= self._cfg.early_surge_window_s:
            self._early_complete = True

    def early_rise_bpm(self) -> float | None:
        """Largest HR rise from the start of the latest run segment over its first
        ``early_surge_window_s`` (bpm), once that window has passed with HR data; None before
        (or for a run shorter than the window). The pipeline stores it per session for
        :class:`EarlyRiseHistory`."""
        return self._early_max_rise if self._early_complete else None

    # ------------------------------------------------------------------ links, battery

    def on_link(self, event: LinkEvent) -> list[Alert]:
        """A link or contact event of one sensor."""
        s = event.sensor
        match event.state:
            case LinkState.DISCONNECTED | LinkState.SILENT:
                if s not in self._outages:
                    self._outages[s] = _Outage(event.time_mono_s)
                self._no_contact.pop(s, None)
            case LinkState.CONNECTED:
                self._outages.pop(s, None)
            case LinkState.NO_CONTACT:
                if s not in self._no_contact:
                    self._no_contact[s] = _Outage(event.time_mono_s)
            case LinkState.CONTACT:
                self._no_contact.pop(s, None)
            case _:
                pass
        return self.tick(event.time_mono_s, event.time_utc)

    def tick(
        self, time_mono_s: float, time_utc: datetime, sensor: str | None = None
    ) -> list[Alert]:
        """Time check, called on every record of the athlete: sensor lost, no contact.

        ``sensor``, when given, is the sensor that just delivered a reading: it is evidently
        back, so its outage (if any) ends.
        """
        if sensor is not None:
            self._outages.pop(sensor, None)
        out: list[Alert] = []
        if not self._outages and not self._no_contact:
            return out  # nothing to wait for: nearly every call
        t = time_mono_s
        lost_s = self._cfg.sensor_lost_s
        for s, o in self._outages.items():
            waited = t - o.since_s
            if not o.reported and waited >= lost_s and self._cooled(AlertKind.SENSOR_LOST, t, s):
                o.reported = True
                out.append(
                    self._alert(
                        AlertKind.SENSOR_LOST,
                        Severity.WARNING,
                        t,
                        time_utc,
                        waited,
                        lost_s,
                        f"Sensor {s} lost: no data for {waited:.0f} s",
                        scope=s,
                    )
                )
        hold = self._no_contact_hold_s
        for s, o in self._no_contact.items():
            waited = t - o.since_s
            if not o.reported and waited >= hold and self._cooled(AlertKind.NO_CONTACT, t, s):
                o.reported = True
                out.append(
                    self._alert(
                        AlertKind.NO_CONTACT,
                        Severity.WARNING,
                        t,
                        time_utc,
                        waited,
                        hold,
                        f"Strap {s} has no skin contact for {waited:.0f} s: moisten the "
                        "electrodes or tighten the strap",
                        scope=s,
                    )
                )
        return out

    def on_battery(self, reading: BatteryReading) -> list[Alert]:
        """A battery level: low_battery once per sensor unless it recovers."""
        s, level = reading.sensor, reading.level_pct
        low = self._cfg.low_battery_pct
        if level >= low + _BATTERY_RECOVER_PCT:
            self._battery_alerted.discard(s)
            return []
        if level >= low or s in self._battery_alerted:
            return []
        t = reading.time_mono_s
        if not self._cooled(AlertKind.LOW_BATTERY, t, s):
            return []
        self._battery_alerted.add(s)
        severity = Severity.WARNING if level <= _BATTERY_CRITICAL_PCT else Severity.INFO
        return [
            self._alert(
                AlertKind.LOW_BATTERY,
                severity,
                t,
                reading.time_utc,
                float(level),
                float(low),
                f"Battery of {s} at {level} % (below {low} %)",
                scope=s,
            )
        ]

    # ------------------------------------------------------------------ readiness

    def on_readiness(
        self, time_mono_s: float, time_utc: datetime, result: ReadinessResult
    ) -> list[Alert]:
        """Today's readiness: low_readiness once per session when today's RMSSD is below
        ``low_readiness_ratio`` × baseline (value: today's RMSSD, threshold: that product, ms).
        """
        ratio, baseline = result.ratio, result.baseline_rmssd_ms
        low = self._cfg.low_readiness_ratio
        if self._readiness_done or ratio is None or baseline is None or not ratio < low:
            return []
        self._readiness_done = True
        warn = ratio < low - _READINESS_WARNING_MARGIN
        return [
            self._alert(
                AlertKind.LOW_READINESS,
                Severity.WARNING if warn else Severity.INFO,
                time_mono_s,
                time_utc,
                result.today_rmssd_ms,
                baseline * low,
                result.message + " Consider an easy session; HR may rise fast today.",
            )
        ]
