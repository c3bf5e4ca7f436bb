"""The processing pipeline: readings in, metrics, alerts and segments out, per athlete.

:class:`Pipeline` routes each record to its athlete's :class:`AthleteProcessor`, a streaming
state machine that returns, in the same step, everything the record produced. Pure: no I/O, no
clock; event time is the readings' ``time_mono_s`` (intervals) and ``time_utc`` (labels).

Late and out-of-order readings: each athlete keeps the latest event time seen. A reading older
than that by more than ``late_tolerance_s`` (2 s) is dropped and counted (``late_dropped``): the
live metrics have moved on and re-ordering would need unbounded buffers. Within the tolerance a
reading is processed in arrival order; time-based state (windows, rise rates) clamps its time to
the latest seen so it never runs backwards. Per-sensor order is guaranteed by the collector.

State is bounded: ring buffers and running sums (see each component); nothing keeps the session.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from math import isfinite
from typing import Any

from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    StrideReading,
    is_session_end,
    session_end,
)
from processing.accelerations import Acceleration, AccelerationDetector
from processing.alerts import AlertEngine, EarlyRiseHistory
from processing.dfa import RollingDfa, zone_for_alpha1
from processing.failover import SourceSelector
from processing.gait import GaitSample, GaitTracker
from processing.heart import Decoupling, HrQuality, RiseRate, Trimp, ZoneTimer
from processing.hrv import HrvStats, RollingHrv
from processing.readiness import ReadinessResult, WarmupRmssd, assess_readiness
from processing.records import (
    Metric,
    MetricGroup,
    MetricValue,
    ProcessingOutput,
    Segment,
    SegmentKind,
    new_metric,
)
from processing.rr_cleaning import RrCleaner
from processing.segments import SegmentTracker
from processing.settings import ProcessingSettings
from processing.splits import Split, SplitTracker
from processing.thresholds import Alpha1Thresholds

log = logging.getLogger(__name__)

# HRV and session metrics are emitted at most once per second of event time: enough for a live
# view and for dashboards, and it keeps the per-beat cost to the incremental updates.
HRV_EMIT_INTERVAL_S = 1.0
SESSION_EMIT_INTERVAL_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class AthleteHistory:
    """What processing needs from the athlete's past sessions (loaded from the store)."""

    resting_rmssd_ms: tuple[float, ...] = ()
    """Warm-up RMSSD of past sessions, oldest first."""
    early_rise_bpm: tuple[float, ...] = ()
    """HR rise in the first 90 s of past run segments."""


@dataclasses.dataclass(slots=True)
class Counters:
    """Per-athlete data-quality counters."""

    readings: int = 0
    late_dropped: int = 0
    hr_rejected: int = 0
    beats: int = 0
    beats_out_of_order: int = 0
    not_selected: int = 0


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@functools.cache
def _hrv_keys(prefix: str) -> tuple[str, str, str, str]:
    """The HRV metric's field names for one window label (e.g. ``60s``)."""
    return (
        f"rmssd_{prefix}_ms",
        f"sdnn_{prefix}_ms",
        f"pnn50_{prefix}_pct",
        f"coverage_{prefix}",
    )


def _hrv_values(values: dict[str, MetricValue], prefix: str, stats: HrvStats | None) -> None:
    """Add one window's RMSSD, SDNN (ms), pNN50 (%) and coverage (0..1) to ``values``."""
    rmssd, sdnn, pnn50, coverage = _hrv_keys(prefix)
    if stats is None:
        values[rmssd] = values[sdnn] = values[pnn50] = values[coverage] = None
        return
    values[rmssd] = _finite(stats.rmssd_ms)
    values[sdnn] = _finite(stats.sdnn_ms)
    values[pnn50] = _finite(stats.pnn50_pct)
    values[coverage] = _finite(stats.coverage)


_ZONE_KEYS: tuple[str, ...] = tuple(f"zone{zone}_s" for zone in range(1, 6))


class AthleteProcessor:
    """The streaming state machine of one athlete.

    A :data:`~ingest.records.LinkState.SESSION_END` event ends the session: it returns what
    :meth:`finish` returns and sets :attr:`ended`; the athlete's next session needs a new
    processor (:class:`Pipeline` and the scale-out worker make one)."""

    ended: bool = False
    """Whether a SESSION_END event has closed the session (a class default, so processors
    pickled before the attribute existed load as not ended)."""

    def __init__(
        self,
        athlete: str,
        settings: ProcessingSettings | None = None,
        *,
        history: AthleteHistory | None = None,
        id_prefix: str = "",
    ) -> None:
        self.athlete = athlete
        self.settings = settings or ProcessingSettings()
        a = self.settings.athlete(athlete)
        self._a = a
        hist = history or AthleteHistory()
        self.history = hist
        self.counters = Counters()
        self._latest_s = -math.inf
        self._latest_utc: datetime | None = None
        self._clocks: dict[str, tuple[datetime, float]] = {}
        """Each sensor's last accepted (UTC, monotonic) stamp: :meth:`clock_restarted`."""
        # heart
        self._hr_source = SourceSelector(a.sensor_priority, self.settings.failover_s)
        self._quality = HrQuality(a)
        self._rise = RiseRate(self.settings.alerts.surge_window_s)
        self._zones = ZoneTimer(a)
        self._trimp = Trimp(a)
        self._cleaner = RrCleaner()
        short_s, long_s = self.settings.hrv_windows_s
        self._hrv_short = RollingHrv(short_s)
        self._hrv_long = RollingHrv(long_s)
        self._dfa = RollingDfa(self.settings.dfa_window_s)
        self._short_label = f"{short_s:.0f}s"
        self._long_label = f"{long_s:.0f}s"
        self._last_beat_s = -math.inf
        self._last_hrv_emit_s = -math.inf
        self._last_hr_bpm: float | None = None
        self._hr_sum = 0.0
        self._hr_n = 0
        self._hr_max: float | None = None
        self._warmup = WarmupRmssd()
        self.readiness: ReadinessResult | None = None
        self._thresholds = Alpha1Thresholds()
        self._last_threshold_feed_s = -math.inf
        # gait
        self._gait_source = SourceSelector(a.sensor_priority, self.settings.failover_s)
        self._gait: dict[str, GaitTracker] = {}
        self._last_gait: GaitSample | None = None
        self._distance_offset_m = 0.0
        self._last_distance_m = 0.0
        self._segments = SegmentTracker(athlete)
        self._splits = SplitTracker()
        self._accelerations = AccelerationDetector()
        self._decoupling: Decoupling | None = None
        self._run_start_s: float | None = None
        self._segment: SegmentKind | None = None
        # alerts
        self._alerts = AlertEngine(
            athlete,
            a,
            self.settings.alerts,
            EarlyRiseHistory(list(hist.early_rise_bpm)),
            id_prefix=id_prefix,
        )
        self.early_rises_bpm: list[float] = []
        self.decoupling_pct: list[float] = []
        self._last_session_emit_s = -math.inf

    # ------------------------------------------------------------------ entry point

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_clocks", {})  # processors pickled before it existed
        self.__dict__.update(state)

    def clock_restarted(self, record: Reading) -> bool:
        """Whether ``record`` comes from its collector's clock started again: its monotonic
        time is behind the session's (it would be dropped as late), and against the same
        sensor's last record the monotonic and UTC clocks disagree (the UTC went on, the
        monotonic clock began anew). A collector that crashed or rebooted without ending its
        sessions does that (a gateway's monotonic clock counts from boot); its records belong
        to a new session, not to the late-data bin. Late data from a running clock moves both
        clocks alike, and another gateway's sensor has no record here to compare with."""
        tolerance = self.settings.late_tolerance_s
        if not record.time_mono_s < self._latest_s - tolerance:
            return False
        seen = self._clocks.get(record.sensor)
        if seen is None or is_session_end(record):
            return False
        utc_s = (record.time_utc - seen[0]).total_seconds()
        return utc_s > 0 and abs(utc_s - (record.time_mono_s - seen[1])) > tolerance

    def process(self, record: Reading) -> list[ProcessingOutput]:
        """Everything ``record`` produces, in order."""
        counters = self.counters
        counters.readings += 1
        t = record.time_mono_s
        latest = self._latest_s
        if t < latest - self.settings.late_tolerance_s and not is_session_end(record):
            counters.late_dropped += 1  # (an end is never dropped: the session must end)
            return []
        utc = record.time_utc
        self._clocks[record.sensor] = (utc, t)
        if t > latest:
            self._latest_s = latest = t
            self._latest_utc = utc
        t = latest
        out: list[ProcessingOutput] = []
        back: str | None = record.sensor  # a sensor that delivers data is evidently back
        match record:  # the classes are disjoint: the most frequent first
            case StrideReading():
                self._stride(record, t, out)
            case HeartRateReading():
                self._heart(record, t, out)
            case BatteryReading():
                out.extend(self._alerts.on_battery(record))
            case LinkEvent():
                if record.state is LinkState.SESSION_END:
                    self.ended = True
                    return self.finish() if counters.readings > 1 else []  # none: no session
                self._link(record, out)
                back = None  # not data: a sensor's own "disconnected" must not end its outage
            case SensorInfo():
                pass
        alerts = self._alerts.tick(t, utc, sensor=back)
        if alerts:
            out.extend(alerts)
        if not t - self._last_session_emit_s < SESSION_EMIT_INTERVAL_S:
            self._session_metric(utc, t, out)
        return out

    # ------------------------------------------------------------------ heart

    def _heart(self, r: HeartRateReading, t: float, out: list[ProcessingOutput]) -> None:
        used, switch = self._hr_source.offer(r.sensor, t)
        if switch is not None:
            out.append(self._event(r.time_utc, t, "hr_source_switch", switch.from_sensor,
                                   switch.to_sensor, switch.reason))
        if not used:
            self.counters.not_selected += 1
            return
        verdict = self._quality.check(
            t, r.heart_rate_bpm, r.contact, rr_count=len(r.rr_intervals_s)
        )
        if r.contact is not Contact.NOT_DETECTED:
            self._beats(r, out)
        if not verdict.accepted:
            self.counters.hr_rejected += 1
            out.append(self._event(r.time_utc, t, "hr_rejected", r.sensor, None, verdict.reason))
            return
        hr = float(r.heart_rate_bpm)
        self._last_hr_bpm = hr
        self._hr_sum += hr
        self._hr_n += 1
        self._hr_max = hr if self._hr_max is None else max(self._hr_max, hr)
        rise = self._rise.update(t, hr)
        self._zones.update(t, hr)
        self._trimp.update(t, hr)
        if self._decoupling is not None and self._last_gait is not None:
            self._decoupling.update(t, self._last_gait.speed_mps, hr)
        out.append(
            new_metric(
                self.athlete,
                r.time_utc,
                t,
                MetricGroup.HEART,
                {
                    "heart_rate_bpm": hr,
                    "zone": self._a.zone_of(hr),
                    "rise_30s_bpm": rise if isfinite(rise) else None,
                    "contact": r.contact.value,
                    "sensor": r.sensor,
                },
            )
        )
        alerts = self._alerts.on_heart_rate(t, r.time_utc, hr)
        if alerts:
            out.extend(alerts)

    def _beats(self, r: HeartRateReading, out: list[ProcessingOutput]) -> None:
        offset = r.time_mono_s  # beat times are on the reading's monotonic clock
        utc = r.time_utc
        athlete = self.athlete
        counters = self.counters
        clean_update = self._cleaner.update
        short_update = self._hrv_short.update
        long_update = self._hrv_long.update
        dfa_update = self._dfa.update
        append = out.append
        group = MetricGroup.RR
        last_beat_s = self._last_beat_s
        for rr, beat_mono in zip(r.rr_intervals_s, r.beat_times_mono_s, strict=False):
            if beat_mono < last_beat_s:
                counters.beats_out_of_order += 1
                continue
            self._last_beat_s = last_beat_s = beat_mono
            counters.beats += 1
            clean = clean_update(rr)
            kind = clean.artifact
            artifact = kind is not None
            value = clean.rr_s
            if value is None:
                value = rr
            short_update(beat_mono, value, artifact)
            long_update(beat_mono, value, artifact)
            dfa_update(beat_mono, value, artifact)
            beat_utc = utc - timedelta(0, offset - beat_mono)  # (days, seconds)
            append(
                new_metric(
                    athlete,
                    beat_utc,
                    beat_mono,
                    group,
                    {
                        "rr_ms": rr * 1000.0,
                        "clean_rr_ms": None if artifact else value * 1000.0,
                        "artifact": None if kind is None else kind.value,
                    },
                )
            )
            if beat_mono - self._last_hrv_emit_s >= HRV_EMIT_INTERVAL_S:
                self._last_hrv_emit_s = beat_mono
                self._hrv_metric(beat_utc, beat_mono, out)

    def _hrv_metric(self, utc: datetime, t: float, out: list[ProcessingOutput]) -> None:
        short = self._hrv_short.get()
        dfa = self._dfa.get()
        values: dict[str, MetricValue] = {}
        _hrv_values(values, self._short_label, short)
        _hrv_values(values, self._long_label, self._hrv_long.get())
        alpha1 = _finite(dfa.alpha1)
        values["dfa_alpha1"] = alpha1
        values["dfa_reason"] = dfa.reason
        values["alpha1_zone"] = zone_for_alpha1(alpha1) if alpha1 is not None else None
        values["artifact_pct"] = _finite(dfa.artifact_pct)
        out.append(new_metric(self.athlete, utc, t, MetricGroup.HRV, values))
        feed_due = t - self._last_threshold_feed_s >= 1.0
        if alpha1 is not None and self._last_hr_bpm is not None and feed_due:
            self._last_threshold_feed_s = t
            speed = self._last_gait.speed_mps if self._last_gait is not None else None
            self._thresholds.add(self._last_hr_bpm, speed, alpha1)
        if self.readiness is None:
            rmssd = short.rmssd_ms if short is not None and short.coverage >= 0.8 else None
            warm = self._warmup.update(t, _finite(rmssd), self._segment)
            if warm is not None:
                self.readiness = assess_readiness(
                    warm,
                    self.history.resting_rmssd_ms,
                    low_ratio=self.settings.alerts.low_readiness_ratio,
                )
                out.extend(self._alerts.on_readiness(t, utc, self.readiness))

    # ------------------------------------------------------------------ gait

    def _stride(self, r: StrideReading, t: float, out: list[ProcessingOutput]) -> None:
        sensor = r.sensor
        utc = r.time_utc
        used, switch = self._gait_source.offer(sensor, t)
        if switch is not None:
            out.append(self._event(utc, t, "gait_source_switch", switch.from_sensor,
                                   switch.to_sensor, switch.reason))
        if not used:
            self.counters.not_selected += 1
            return
        tracker = self._gait.get(sensor)
        if tracker is None:
            tracker = self._gait[sensor] = GaitTracker(self._a.cadence_unit.get(sensor))
        g = tracker.update(r)
        if switch is not None and self._last_gait is not None:
            # Each footpod counts its own distance: continue the session's from where it was.
            self._distance_offset_m = self._last_distance_m - g.distance_m
        distance = g.distance_m + self._distance_offset_m
        self._last_distance_m = distance
        self._last_gait = g
        cadence, step, speed = g.cadence_spm, g.step_length_m, g.speed_mps
        stride, pace = g.stride_length_m, g.pace_s_per_km
        segment = self._segment
        out.append(
            new_metric(
                self.athlete,
                utc,
                t,
                MetricGroup.GAIT,
                {  # optional values through _finite(), inline
                    "cadence_spm": cadence if isfinite(cadence) else None,
                    "step_length_m": step if step is not None and isfinite(step) else None,
                    "stride_length_m": stride if stride is not None and isfinite(stride) else None,
                    "speed_mps": speed if isfinite(speed) else None,
                    "pace_s_per_km": pace if pace is not None and isfinite(pace) else None,
                    "distance_m": distance if isfinite(distance) else None,
                    "running": g.running,
                    "cadence_unit": g.cadence_unit,
                    "segment": segment.value if segment else None,
                },
            )
        )
        hr = self._last_hr_bpm
        segments = self._segments
        closed = segments.update(
            t,
            utc,
            speed_mps=speed,
            distance_m=distance,
            heart_rate_bpm=hr,
            cadence_spm=cadence,
            step_length_m=step,
        )
        if closed or segments.current is not segment:
            self._segment_changes(closed, t, out)
        split = self._splits.update(t, distance, hr, cadence)
        if split is not None:
            out.append(self._split_metric(utc, t, split))
            # An update that returns no split has none left over (SplitTracker.update pops
            # the queue's first), so the rest is only looked for here.
            for s in self._splits.flush():
                out.append(self._split_metric(utc, t, s))
        acc = self._accelerations.update(t, distance, speed, cadence, step)
        if acc is not None:
            out.append(self._acceleration_metric(utc, t, acc))

    def _segment_changes(
        self, closed: Sequence[Segment], t: float, out: list[ProcessingOutput]
    ) -> None:
        for segment in closed:
            out.append(segment)
            if segment.kind is SegmentKind.RUN:
                self._close_run()
        current = self._segments.current
        if current is not self._segment:
            self._segment = current
            if current is SegmentKind.RUN:
                self._run_start_s = t
                self._decoupling = Decoupling()
                out.extend(self._alerts.on_segment_start(t, current))

    def _close_run(self) -> None:
        rise = self._alerts.early_rise_bpm()
        if rise is not None:
            self.early_rises_bpm.append(rise)
        if self._decoupling is not None:
            pct = self._decoupling.result()
            if pct is not None:
                self.decoupling_pct.append(pct)
        self._decoupling = None

    # ------------------------------------------------------------------ link, events

    def _link(self, e: LinkEvent, out: list[ProcessingOutput]) -> None:
        self._hr_source.on_link(e)
        self._gait_source.on_link(e)
        out.extend(self._alerts.on_link(e))
        if e.state in (LinkState.RR_GAP, LinkState.DISCONNECTED):
            out.append(self._event(e.time_utc, e.time_mono_s, e.state.value, e.sensor, None,
                                   e.detail))

    def _event(
        self,
        utc: datetime,
        t: float,
        kind: str,
        sensor: str | None,
        other: str | None,
        detail: str | None,
    ) -> Metric:
        return Metric(
            athlete=self.athlete,
            time_utc=utc,
            time_mono_s=t,
            group=MetricGroup.EVENT,
            values={"event": kind, "sensor": sensor, "to_sensor": other, "detail": detail},
        )

    def _split_metric(self, utc: datetime, t: float, s: Split) -> Metric:
        return Metric(
            athlete=self.athlete,
            time_utc=utc,
            time_mono_s=t,
            group=MetricGroup.SPLIT,
            values={f.name: getattr(s, f.name) for f in dataclasses.fields(s)},
        )

    def _acceleration_metric(self, utc: datetime, t: float, a: Acceleration) -> Metric:
        return Metric(
            athlete=self.athlete,
            time_utc=utc,
            time_mono_s=t,
            group=MetricGroup.ACCELERATION,
            values={f.name: getattr(a, f.name) for f in dataclasses.fields(a)},
        )

    def _session_metric(self, utc: datetime, t: float, out: list[ProcessingOutput]) -> None:
        """The SESSION metric; :meth:`process` calls it at most once per
        ``SESSION_EMIT_INTERVAL_S`` of event time."""
        self._last_session_emit_s = t
        values: dict[str, MetricValue] = {
            "segment": self._segment.value if self._segment else None,
            "trimp": _finite(self._trimp.value),
        }
        values.update(zip(_ZONE_KEYS, self._zones.seconds, strict=True))
        out.append(new_metric(self.athlete, utc, t, MetricGroup.SESSION, values))

    # ------------------------------------------------------------------ end of session

    def finish(self) -> list[ProcessingOutput]:
        """Close the open segment and the last split; the session totals as a SESSION metric."""
        out: list[ProcessingOutput] = []
        if self._latest_utc is None:
            return out
        t, utc = self._latest_s, self._latest_utc
        closed = self._segments.finish(t, utc)
        for segment in closed:
            out.append(segment)
            if segment.kind is SegmentKind.RUN:
                self._close_run()
        for split in self._splits.flush():
            out.append(self._split_metric(utc, t, split))
        last = self._splits.finish()
        if last is not None:
            out.append(self._split_metric(utc, t, last))
        acc = self._accelerations.finish()
        if acc is not None:
            out.append(self._acceleration_metric(utc, t, acc))
        estimate = self._thresholds.estimate()
        values: dict[str, MetricValue] = {
            "final": True,
            "avg_hr_bpm": self._hr_sum / self._hr_n if self._hr_n else None,
            "max_hr_bpm": self._hr_max,
            "distance_m": self._last_distance_m if self._last_gait else None,
            "trimp": _finite(self._trimp.value),
            "resting_rmssd_ms": self.readiness.today_rmssd_ms if self.readiness else None,
            "readiness": self.readiness.status if self.readiness else None,
            "early_rise_bpm": self.early_rises_bpm[0] if self.early_rises_bpm else None,
            "decoupling_pct": self.decoupling_pct[0] if self.decoupling_pct else None,
            "hr_at_alpha1_075_bpm": estimate.hr_at_075_bpm,
            "hr_at_alpha1_050_bpm": estimate.hr_at_050_bpm,
            "speed_at_alpha1_075_mps": estimate.speed_at_075_mps,
            "speed_at_alpha1_050_mps": estimate.speed_at_050_mps,
            "alpha1_fit_r2": estimate.r2,
            "alpha1_fit_reason": estimate.reason,
            "hr_rejected": self.counters.hr_rejected,
            "late_dropped": self.counters.late_dropped,
            "beats": self.counters.beats,
        }
        for key, seconds in zip(_ZONE_KEYS, self._zones.seconds, strict=True):
            values[key] = seconds
        out.append(
            Metric(athlete=self.athlete, time_utc=utc, time_mono_s=t, group=MetricGroup.SESSION,
                   values=values)
        )
        return out


class Pipeline:
    """Routes records to per-athlete processors (created on first sight)."""

    def __init__(
        self,
        settings: ProcessingSettings | None = None,
        *,
        history: Mapping[str, AthleteHistory] | Callable[[str], AthleteHistory] | None = None,
        id_prefix: str | Callable[[str], str] = "",
    ) -> None:
        """``history``: past sessions per athlete, or a loader called once per new athlete.

        ``id_prefix``: prefix of alert ids, or athlete → prefix, called once per new athlete
        (the app passes the athlete's session id, so ids are unique across sessions and the
        same on a replay of the session: issue #10).
        """
        self.settings = settings or ProcessingSettings()
        self._history = history or {}
        self._id_prefix = id_prefix
        self.athletes: dict[str, AthleteProcessor] = {}

    def processor(self, athlete: str) -> AthleteProcessor:
        p = self.athletes.get(athlete)
        if p is None:
            h = self._history
            history = h(athlete) if callable(h) else h.get(athlete)
            prefix = self._id_prefix(athlete) if callable(self._id_prefix) else self._id_prefix
            p = self.athletes[athlete] = AthleteProcessor(
                athlete, self.settings, history=history, id_prefix=prefix
            )
        return p

    def process(self, record: Reading) -> list[ProcessingOutput]:
        """What ``record`` produces. A SESSION_END ends the athlete's processor (its final
        outputs are returned) and their next record starts a new one, with history and id
        prefix asked for again. A record from a restarted collector clock
        (:meth:`AthleteProcessor.clock_restarted`) ends the session as a SESSION_END would
        and begins the next."""
        p = self.athletes.get(record.athlete)
        if p is None:
            if is_session_end(record):  # no session to end (ended already, or never began)
                return []
            p = self.processor(record.athlete)
        elif p.clock_restarted(record):  # the collector restarted: a new session
            ended = p.process(session_end(record))
            del self.athletes[record.athlete]
            return ended + self.process(record)
        out = p.process(record)
        if p.ended:
            del self.athletes[record.athlete]
        return out

    def process_all(self, records: Iterable[Reading]) -> list[ProcessingOutput]:
        out: list[ProcessingOutput] = []
        for r in records:
            out.extend(self.process(r))
        return out

    def finish(self) -> list[ProcessingOutput]:
        out: list[ProcessingOutput] = []
        for p in self.athletes.values():
            out.extend(p.finish())
        return out

