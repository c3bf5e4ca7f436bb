"""AlertEngine: surge, ceiling, early surge, sensors, battery, readiness (processing/alerts.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import BatteryReading, Contact, LinkEvent, LinkState
from ingest.virtual.athlete import simulate
from ingest.virtual.workouts import load_workout
from processing.alerts import AlertEngine, EarlyRiseHistory
from processing.heart import HrQuality, RiseRate
from processing.readiness import assess_readiness
from processing.records import Alert, AlertKind, SegmentKind, Severity
from processing.settings import AlertSettings, AthleteSettings

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
A = AthleteSettings()  # max 190, rest 55: ceiling (zone 5) 171 bpm
CFG = AlertSettings()


def utc(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def feed(engine: AlertEngine, samples: Sequence[tuple[float, float]]) -> list[Alert]:
    out: list[Alert] = []
    for t, hr in samples:
        out += engine.on_heart_rate(t, utc(t), hr)
    return out


def ramp(t0: float, t1: float, hr0: float, hr1: float) -> list[tuple[float, float]]:
    """1-Hz samples from t0 to t1 inclusive, HR linear (rounded as a strap sends)."""
    n = int(t1 - t0)
    return [(t0 + i, float(round(hr0 + (hr1 - hr0) * i / n))) for i in range(n + 1)]


# ------------------------------------------------------------------ the virtual athlete


def run_model(
    workout: str, *, low_hrv: bool, seed: int, history: EarlyRiseHistory | None = None
) -> tuple[list[Alert], float | None, AlertEngine]:
    """Feed the model's HR at 1 Hz (rounded ints, as a strap sends) through the quality gate,
    a RiseRate and the engine, with on_segment_start at the truth run segment starts."""
    trace = simulate(load_workout(workout), low_hrv=low_hrv, seed=seed)
    engine = AlertEngine("ann", A, CFG, history)
    quality, rise = HrQuality(A), RiseRate(CFG.surge_window_s)
    starts = [s.start_s for s in trace.truth.segments if s.kind == "run"]
    alerts: list[Alert] = []
    for k in range(int(trace.duration_s) + 1):
        t = float(k)
        for s in starts:
            if t - 1.0 < s <= t:
                alerts += engine.on_segment_start(s, SegmentKind.RUN)
        hr = round(trace.sample_at(t).hr_bpm)
        assert quality.check(t, hr, Contact.DETECTED, rr_count=1).accepted
        rise.update(t, hr)
        alerts += engine.on_heart_rate(t, utc(t), hr)
        alerts += engine.tick(t, utc(t))
    return alerts, trace.truth.surge_time_s, engine


@pytest.mark.parametrize("seed", [0, 1])
def test_low_hrv_morning_surge_alert_within_one_second_of_truth(seed: int) -> None:
    alerts, surge_s, engine = run_model("morning-5k", low_hrv=True, seed=seed)
    assert surge_s is not None
    surges = [a for a in alerts if a.kind in (AlertKind.HR_SURGE, AlertKind.EARLY_SURGE)]
    assert surges
    first = surges[0]
    assert first.kind is AlertKind.HR_SURGE
    assert 0.0 <= first.time_mono_s - surge_s <= 1.0  # measured: 1269.0 vs 1268.75
    assert first.message == "HR rose 21 bpm in 30 s (to 130 bpm)"
    assert first.id == "ann:hr_surge:1"
    assert first.time_utc == utc(first.time_mono_s)
    # early surge (no history: absolute 35 bpm within 60 s) follows within seconds
    early = [a for a in alerts if a.kind is AlertKind.EARLY_SURGE]
    assert len(early) == 1
    assert early[0].time_mono_s - surge_s < 10
    assert engine.early_rise_bpm() == pytest.approx(70, abs=1)


@pytest.mark.parametrize("seed", range(5))
def test_normal_easy_8k_raises_no_alert(seed: int) -> None:
    alerts, surge_s, engine = run_model("easy-8k", low_hrv=False, seed=seed)
    assert surge_s is None
    assert alerts == []
    rise = engine.early_rise_bpm()
    assert rise is not None
    assert 35 < rise < 40


def test_early_surge_against_own_history() -> None:
    # normal mornings rise ~44 bpm in the first 90 s: 1.3 × 44 = 57 bpm threshold
    history = EarlyRiseHistory([44.0, 45.0, 44.0, 46.0])
    alerts, _, _ = run_model("morning-5k", low_hrv=True, seed=0, history=history)
    early = [a for a in alerts if a.kind is AlertKind.EARLY_SURGE]
    assert len(early) == 1
    assert early[0].threshold == pytest.approx(1.3 * 44.5)
    assert early[0].value is not None
    assert early[0].value >= 1.3 * 44.5
    assert "you usually rise 44 bpm" in early[0].message
    # a normal morning stays under the athlete's own threshold
    alerts, _, _ = run_model("morning-5k", low_hrv=False, seed=0, history=history)
    assert not [a for a in alerts if a.kind is AlertKind.EARLY_SURGE]


# ------------------------------------------------------------------ surge


def test_surge_fires_on_the_crossing_reading_and_rearms_with_hysteresis() -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=0))
    assert feed(e, ramp(0, 60, 100, 100)) == []
    assert feed(e, ramp(61, 69, 102, 118)) == []  # rise 18 bpm
    out = e.on_heart_rate(70, utc(70), 120)  # rise 20: this reading crosses
    assert [a.kind for a in out] == [AlertKind.HR_SURGE]
    assert out[0].time_mono_s == 70
    assert out[0].value == 20
    assert out[0].threshold == 20
    assert out[0].severity is Severity.WARNING
    # still climbing: one climb, one alert
    assert feed(e, ramp(71, 90, 121, 140)) == []
    # plateau: rise falls below 10 (re-arm) after 30 s; a new climb alerts again
    assert feed(e, ramp(91, 140, 140, 140)) == []
    out = feed(e, ramp(141, 151, 142, 162))  # 160 bpm at t = 150: 20 above the 140 plateau
    assert [(a.kind, a.time_mono_s, a.id) for a in out] == [
        (AlertKind.HR_SURGE, 150, "ann:hr_surge:2")
    ]


def test_surge_without_rearm_does_not_repeat() -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=0))
    # rise stays >= 10 bpm the whole time (steady climb of 0.7 bpm/s): one alert only
    out = feed(e, [(float(t), 80 + 0.7 * t) for t in range(120)])
    assert len(out) == 1


def test_surge_cooldown_defers_but_does_not_lose() -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=120))
    assert len(feed(e, ramp(0, 30, 100, 125))) == 1  # at t = 24
    feed(e, ramp(31, 70, 125, 100))  # back down: re-armed
    out = feed(e, ramp(71, 100, 100, 130))  # rise 20 at t = 91 < 24 + 120: cooldown
    assert out == []
    # still a surge when the cooldown ends (rise ≥ 20 over 30 s at t ≥ 144)
    out = feed(e, ramp(101, 150, 130, 190))
    assert len(out) == 1
    assert out[0].time_mono_s >= 144


# ------------------------------------------------------------------ ceiling


def test_ceiling_hold_clear_and_gap() -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=0, ceiling_bpm=170, surge_rise_bpm=99))
    assert feed(e, [(float(t), 172) for t in range(30)]) == []  # 29 s above
    out = e.on_heart_rate(30, utc(30), 173)  # 30 s above: this reading
    assert [(a.kind, a.value, a.threshold) for a in out] == [(AlertKind.HR_CEILING, 173, 170)]
    assert out[0].message == "HR above 170 bpm for 30 s (now 173 bpm)"
    # dips to 168 (not below 170 − 3): not re-armed; back above for long: no new alert
    assert feed(e, [(31.0, 168.0)] + [(float(t), 175.0) for t in range(32, 100)]) == []
    # below 167: re-armed, then above again for 30 s → second alert
    assert feed(e, [(100.0, 160)]) == []
    out = feed(e, [(float(t), 175) for t in range(101, 140)])
    assert [a.time_mono_s for a in out] == [131]


def test_ceiling_hold_restarts_after_data_gap() -> None:
    e = AlertEngine("ann", A, AlertSettings(ceiling_bpm=170, surge_rise_bpm=99))
    assert feed(e, [(float(t), 175) for t in range(20)]) == []
    # 10-s gap: the hold restarts at 30
    assert feed(e, [(float(t), 175) for t in range(30, 59)]) == []
    assert len(feed(e, [(60.0, 175)])) == 1


def test_default_ceiling_is_zone_5() -> None:
    assert AlertEngine("ann", A, CFG).ceiling_bpm == pytest.approx(171.0)


# ------------------------------------------------------------------ early surge


def test_early_surge_only_in_window_once_per_segment() -> None:
    e = AlertEngine("ann", A, AlertSettings(surge_rise_bpm=99, cooldown_s=0))
    feed(e, ramp(0, 10, 100, 100))
    assert e.on_segment_start(10.0, SegmentKind.RUN) == []
    assert e.early_rise_bpm() is None
    out = feed(e, ramp(11, 46, 101, 136))  # 1 bpm/s: +35 (135 bpm) at t = 45
    assert [(a.kind, a.time_mono_s, a.value, a.threshold) for a in out] == [
        (AlertKind.EARLY_SURGE, 45, 35, 35)
    ]
    assert "HR rose 35 bpm in the first 35 s of the run (to 135 bpm" in out[0].message
    assert feed(e, ramp(47, 100, 137, 150)) == []  # once per segment
    assert e.early_rise_bpm() == 50.0  # window (90 s) complete at t = 100
    # a walk segment does not start a window; a late rise (after 60 s) is not alerted
    assert e.on_segment_start(200.0, SegmentKind.WALK) == []
    feed(e, ramp(150, 300, 150, 100))
    e.on_segment_start(300.0, SegmentKind.RUN)
    assert feed(e, ramp(301, 360, 100, 130)) == []  # +30 in 60 s: below 35
    assert feed(e, ramp(361, 390, 131, 145)) == []  # +45 but after the 60-s fallback window
    assert e.early_rise_bpm() == 45.0


def test_early_rise_none_for_a_short_run() -> None:
    e = AlertEngine("ann", A, CFG)
    feed(e, ramp(0, 5, 100, 100))
    e.on_segment_start(5.0, SegmentKind.RUN)
    feed(e, ramp(6, 40, 101, 120))
    assert e.early_rise_bpm() is None


def test_early_rise_history() -> None:
    assert EarlyRiseHistory([10.0, math.nan, 30.0, 20.0]).typical_bpm() == 20.0
    assert EarlyRiseHistory([10.0, 20.0]).typical_bpm() is None
    assert EarlyRiseHistory([10.0, 20.0]).typical_bpm(min_sessions=2) == 15.0
    # a tiny typical rise (sprints) is floored at 20 bpm
    e = AlertEngine("ann", A, CFG, EarlyRiseHistory([3.0, 3.0, 3.0]))
    assert e.early_threshold_bpm == 20.0


# ------------------------------------------------------------------ sensors


def link(sensor: str, t: float, state: LinkState) -> LinkEvent:
    return LinkEvent(athlete="ann", sensor=sensor, time_utc=utc(t), time_mono_s=t, state=state)


def test_sensor_lost_reported_on_first_reading_after_deadline_once() -> None:
    e = AlertEngine("ann", A, CFG)  # sensor_lost_s 10
    assert e.on_link(link("strap", 100.0, LinkState.DISCONNECTED)) == []
    assert e.tick(109.5, utc(109.5)) == []
    out = e.tick(110.2, utc(110.2))  # e.g. a footpod frame
    assert [(a.kind, a.id, a.threshold) for a in out] == [
        (AlertKind.SENSOR_LOST, "ann:sensor_lost:1", 10.0)
    ]
    assert out[0].value == pytest.approx(10.2)
    assert out[0].message == "Sensor strap lost: no data for 10 s"
    assert e.tick(200.0, utc(200.0)) == []  # once per outage
    # reconnect, then a new outage (after the cooldown): reported again
    e.on_link(link("strap", 201.0, LinkState.CONNECTED))
    e.on_link(link("strap", 300.0, LinkState.SILENT))
    assert len(e.tick(311.0, utc(311.0))) == 1


def test_sensor_back_before_deadline_is_not_lost() -> None:
    e = AlertEngine("ann", A, CFG)
    e.on_link(link("strap", 0.0, LinkState.DISCONNECTED))
    e.on_link(link("strap", 4.0, LinkState.CONNECTED))
    e.on_link(link("pod", 5.0, LinkState.SILENT))
    assert e.tick(8.0, utc(8.0), sensor="pod") == []  # the pod delivered: it is back
    assert e.tick(30.0, utc(30.0)) == []


def test_two_sensors_lost_are_both_reported() -> None:
    e = AlertEngine("ann", A, CFG)
    e.on_link(link("strap", 0.0, LinkState.DISCONNECTED))
    e.on_link(link("pod", 1.0, LinkState.DISCONNECTED))
    out = e.tick(12.0, utc(12.0))
    assert sorted(a.id for a in out) == ["ann:sensor_lost:1", "ann:sensor_lost:2"]


def test_no_contact_hold_and_flicker() -> None:
    e = AlertEngine("ann", A, CFG)
    e.on_link(link("strap", 0.0, LinkState.NO_CONTACT))
    e.on_link(link("strap", 2.0, LinkState.CONTACT))  # flicker: no alert
    assert e.tick(10.0, utc(10.0)) == []
    e.on_link(link("strap", 20.0, LinkState.NO_CONTACT))
    assert e.tick(24.9, utc(24.9)) == []
    out = e.tick(25.0, utc(25.0))
    assert [a.kind for a in out] == [AlertKind.NO_CONTACT]
    assert e.tick(40.0, utc(40.0)) == []


def battery(sensor: str, t: float, level: int) -> BatteryReading:
    return BatteryReading(
        athlete="ann", sensor=sensor, time_utc=utc(t), time_mono_s=t, level_pct=level, raw=b""
    )


def test_low_battery_once_per_sensor_unless_recovered() -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=0))  # low below 15 %
    assert e.on_battery(battery("strap", 0, 15)) == []
    out = e.on_battery(battery("strap", 1, 14))
    assert [(a.kind, a.severity, a.value) for a in out] == [
        (AlertKind.LOW_BATTERY, Severity.INFO, 14)
    ]
    assert e.on_battery(battery("strap", 2, 10)) == []
    assert e.on_battery(battery("strap", 3, 19)) == []  # not recovered (< 20)
    assert e.on_battery(battery("strap", 4, 13)) == []
    assert len(e.on_battery(battery("pod", 5, 3))) == 1  # other sensor: its own alert
    assert e.on_battery(battery("strap", 6, 95)) == []  # battery swapped
    out = e.on_battery(battery("strap", 7, 4))
    assert [a.severity for a in out] == [Severity.WARNING]


# ------------------------------------------------------------------ readiness, ids


def test_low_readiness_once_per_session() -> None:
    e = AlertEngine("ann", A, CFG, id_prefix="s42")
    normal = assess_readiness(48.0, [50.0, 52.0, 49.0])
    assert e.on_readiness(60.0, utc(60), normal) == []
    assert e.on_readiness(60.0, utc(60), assess_readiness(19.0, [])) == []  # no baseline
    low = assess_readiness(19.0, [50.0, 52.0, 49.0])
    out = e.on_readiness(61.0, utc(61), low)
    assert [(a.id, a.kind, a.severity) for a in out] == [
        ("s42:ann:low_readiness:1", AlertKind.LOW_READINESS, Severity.WARNING)
    ]
    assert out[0].value == 19.0
    assert out[0].threshold == pytest.approx(0.75 * low.baseline_rmssd_ms)  # type: ignore[operator]
    assert "RMSSD 19 ms" in out[0].message
    assert e.on_readiness(62.0, utc(62), low) == []
    mild = assess_readiness(36.0, [50.0, 50.0, 50.0])  # 72 %: info
    e2 = AlertEngine("ann", A, CFG)
    assert [a.severity for a in e2.on_readiness(0.0, utc(0), mild)] == [Severity.INFO]


# ------------------------------------------------------------------ robustness


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 60.0, allow_nan=False),
            st.one_of(st.integers(1, 230).map(float), st.floats(allow_nan=True)),
            st.sampled_from(["hr", "run", "walk", "lost", "back", "nocontact", "contact"]),
        ),
        max_size=200,
    )
)
def test_random_streams_never_crash_and_alerts_are_finite(
    stream: list[tuple[float, float, str]],
) -> None:
    e = AlertEngine("ann", A, AlertSettings(cooldown_s=5), EarlyRiseHistory([30.0, 31, 29]))
    t = 0.0
    out: list[Alert] = []
    for dt, hr, what in stream:
        t += dt
        match what:
            case "hr":
                out += e.on_heart_rate(t, utc(t), hr)
            case "run" | "walk":
                out += e.on_segment_start(t, SegmentKind(what))
            case "lost":
                out += e.on_link(link("strap", t, LinkState.DISCONNECTED))
            case "back":
                out += e.on_link(link("strap", t, LinkState.CONNECTED))
            case "nocontact":
                out += e.on_link(link("strap", t, LinkState.NO_CONTACT))
            case _:
                out += e.on_link(link("strap", t, LinkState.CONTACT))
        out += e.tick(t, utc(t))
    for a in out:
        assert a.value is None or math.isfinite(a.value)
        assert a.threshold is None or math.isfinite(a.threshold)
        assert "nan" not in a.message
        assert "inf" not in a.message
    assert len({a.id for a in out}) == len(out)
    rise = e.early_rise_bpm()
    assert rise is None or math.isfinite(rise)
