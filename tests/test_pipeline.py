"""The processing pipeline end to end: virtual athletes through the whole ingest path.

bumble GATT servers → bleak backend → collector → :class:`Pipeline`, on virtual time, checked
against the athlete model's ground truth.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.clock import LoopClock
from ingest.records import Contact, HeartRateReading, LinkEvent, LinkState, Reading, StrideReading
from ingest.virtual import timewarp
from ingest.virtual.sensors import SensorOptions, VirtualFleet, virtual_fleet
from processing.pipeline import AthleteHistory, Pipeline
from processing.records import (
    Alert,
    AlertKind,
    Metric,
    MetricGroup,
    ProcessingOutput,
    Segment,
    SegmentKind,
)

EPOCH = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


@functools.cache
def _run(
    workout: str,
    *,
    low_hrv: bool = False,
    history: AthleteHistory | None = None,
    options: SensorOptions | None = None,
    seed: int = 0,
) -> tuple[tuple[ProcessingOutput, ...], VirtualFleet]:
    pipeline = Pipeline(history={"athlete-1": history} if history else None)
    out: list[ProcessingOutput] = []

    def sink(record: Reading) -> None:
        out.extend(pipeline.process(record))

    async def main() -> VirtualFleet:
        async with virtual_fleet(workout, low_hrv=low_hrv, options=options, seed=seed) as fleet:
            await fleet.collect(sink, clock=LoopClock(EPOCH))
            return fleet

    fleet = timewarp.run(main(), speed=None)
    out.extend(pipeline.finish())
    return tuple(out), fleet


def _metrics(out: Sequence[ProcessingOutput], group: MetricGroup) -> list[Metric]:
    return [m for m in out if isinstance(m, Metric) and m.group is group]


def _workout_s(fleet: VirtualFleet, t_mono: float) -> float:
    start = fleet.athletes[0].start_s
    assert start is not None
    return t_mono - start


def test_morning_5k_segments_distance_and_splits_match_the_model() -> None:
    out, fleet = _run("morning-5k")
    truth = fleet.athletes[0].trace.truth
    segments = [s for s in out if isinstance(s, Segment)]
    moving = [s for s in segments if s.kind is not SegmentKind.STAND]
    assert [s.kind for s in moving] == [SegmentKind.WALK, SegmentKind.RUN, SegmentKind.WALK]
    truth_moving = [s for s in truth.segments if s.kind != "stand"]
    for ours, theirs in zip(moving, truth_moving, strict=True):
        assert abs(ours.start_m - theirs.start_m) <= 20.0
        assert abs(ours.end_m - theirs.end_m) <= 20.0
    final = [m for m in _metrics(out, MetricGroup.SESSION) if m.values.get("final")]
    assert len(final) == 1
    distance = final[0].values["distance_m"]
    assert isinstance(distance, float)
    assert distance == pytest.approx(truth.distance_m, rel=0.01)
    splits = _metrics(out, MetricGroup.SPLIT)
    full = [s for s in splits if s.values["distance_m"] == pytest.approx(1000.0, abs=1.0)]
    assert [s.values["index"] for s in full] == [1, 2, 3, 4, 5]
    # The run km (3rd) is faster than the walking kms.
    paces = [s.values["pace_s_per_km"] for s in full]
    assert isinstance(paces[2], float)
    assert all(isinstance(p, float) and p > paces[2] * 2 for i, p in enumerate(paces) if i != 2)


def test_low_hrv_morning_surge_alert_within_a_second_and_low_readiness() -> None:
    history = AthleteHistory(resting_rmssd_ms=(52.0, 48.0, 55.0, 50.0))
    out, fleet = _run("morning-5k", low_hrv=True, history=history)
    truth = fleet.athletes[0].trace.truth
    assert truth.surge_time_s is not None
    alerts = [a for a in out if isinstance(a, Alert)]
    surges = [a for a in alerts if a.kind in (AlertKind.HR_SURGE, AlertKind.EARLY_SURGE)]
    assert surges, [a.message for a in alerts]
    first = min(_workout_s(fleet, a.time_mono_s) for a in surges)
    assert abs(first - truth.surge_time_s) <= 1.0
    readiness = [a for a in alerts if a.kind is AlertKind.LOW_READINESS]
    assert len(readiness) == 1
    # Reported at the warm-up: before the run starts at 2 km.
    run_start = next(s for s in truth.segments if s.kind == "run").start_s
    assert _workout_s(fleet, readiness[0].time_mono_s) < run_start
    assert "RMSSD" in readiness[0].message
    ids = [a.id for a in alerts]
    assert len(ids) == len(set(ids))


def test_normal_morning_without_history_says_no_baseline_yet() -> None:
    out, _ = _run("morning-5k")
    final = next(m for m in _metrics(out, MetricGroup.SESSION) if m.values.get("final"))
    assert final.values["readiness"] == "no_baseline_yet"
    resting = final.values["resting_rmssd_ms"]
    assert isinstance(resting, float)
    assert 30.0 < resting < 80.0


@pytest.mark.parametrize("seed", [0, 1])
def test_easy_8k_raises_no_alert(seed: int) -> None:
    out, _ = _run("easy-8k", seed=seed)
    alerts = [a for a in out if isinstance(a, Alert)]
    assert alerts == []
    hrv = _metrics(out, MetricGroup.HRV)
    alpha = [m.values["dfa_alpha1"] for m in hrv if m.values["dfa_alpha1"] is not None]
    assert alpha
    assert all(isinstance(a, float) and math.isfinite(a) for a in alpha)


def test_start_practice_finds_all_accelerations_within_3_percent() -> None:
    out, fleet = _run("start-practice")
    truth = fleet.athletes[0].trace.truth.accelerations
    found = _metrics(out, MetricGroup.ACCELERATION)
    assert len(found) == len(truth) == 6
    for ours, theirs in zip(found, truth, strict=True):
        step = ours.values["peak_step_length_m"]
        cadence = ours.values["peak_cadence_spm"]
        assert isinstance(step, float)
        assert isinstance(cadence, float)
        assert step == pytest.approx(theirs.peak_step_length_m, rel=0.03)
        assert cadence == pytest.approx(theirs.peak_cadence_spm, rel=0.03)
        # The runner's "stride" above 1.70 m is one step; a full stride is twice that.
        assert step > 1.70
        assert ours.values["peak_stride_length_m"] == pytest.approx(2 * step, rel=1e-6)


def test_strides_per_minute_and_steps_per_minute_footpods_agree() -> None:
    steps, _ = _run("easy-8k", options=SensorOptions(cadence_unit="steps", length_unit="step"))
    strides, _ = _run(
        "easy-8k", options=SensorOptions(cadence_unit="strides", length_unit="stride")
    )

    def cadence(out: Sequence[ProcessingOutput]) -> list[float]:
        return [
            float(c)
            for m in _metrics(out, MetricGroup.GAIT)
            if isinstance(c := m.values["cadence_spm"], float) and c > 0
        ]

    a, b = cadence(steps), cadence(strides)
    assert len(a) == len(b)
    tail = slice(len(a) // 10, None)  # after the convention is locked
    # A strides/min pod can only say even steps/min (the uint8 is whole strides): within 1 spm.
    assert max(abs(x - y) for x, y in zip(a[tail], b[tail], strict=True)) <= 1.0


def _hr(sensor: str, t: float, bpm: int = 120, rr: tuple[float, ...] = ()) -> HeartRateReading:
    return HeartRateReading(
        athlete="a",
        sensor=sensor,
        time_utc=EPOCH + timedelta(seconds=t),
        time_mono_s=t,
        heart_rate_bpm=bpm,
        rr_intervals_s=rr,
        beat_times_mono_s=tuple(t - sum(rr[i + 1:]) for i in range(len(rr))),
        contact=Contact.DETECTED,
        energy_kj=None,
        raw=b"",
    )


def test_second_hr_source_takes_over_within_5_s_and_hands_back() -> None:
    pipeline = Pipeline()
    used: list[tuple[float, str]] = []
    for i in range(120):
        t = float(i)
        readings = [_hr("watch", t + 0.3, 121)]
        if not 30 <= i < 60:  # the strap drops out for 30 s
            readings.insert(0, _hr("strap", t, 120))
        for r in readings:
            for m in pipeline.process(r):
                if isinstance(m, Metric) and m.group is MetricGroup.HEART:
                    sensor = m.values["sensor"]
                    assert isinstance(sensor, str)
                    used.append((m.time_mono_s, sensor))
    during = [s for t, s in used if 35 <= t < 60]
    assert during
    assert set(during) == {"watch"}
    takeover = min(t for t, s in used if s == "watch" and t >= 29)
    assert takeover - 29.0 <= 5.0
    assert {s for t, s in used if t >= 63} == {"strap"}


def _stride(sensor: str, t: float) -> StrideReading:
    return StrideReading(athlete="a", sensor=sensor, time_utc=EPOCH + timedelta(seconds=t),
                         time_mono_s=t, speed_mps=3.0, cadence_per_min=170,
                         stride_length_m=None, total_distance_m=None, running=True, raw=b"")


def test_a_strap_that_disconnects_and_stays_away_raises_sensor_lost() -> None:
    """The strap's ``disconnected`` opens an outage; the footpod keeps the athlete's clock
    going; 10 s later (``sensor_lost_s``) the alert fires, once. (The disconnect itself once
    counted as the strap "delivering", ending its own outage: the alert never fired.)"""
    pipeline = Pipeline()
    for i in range(20):
        pipeline.process(_hr("strap", float(i), 130))
        pipeline.process(_stride("pod", i + 0.5))
    down = LinkEvent(athlete="a", sensor="strap", time_utc=EPOCH + timedelta(seconds=20),
                     time_mono_s=20.0, state=LinkState.DISCONNECTED)
    alerts = [o for o in pipeline.process(down) if isinstance(o, Alert)]
    for i in range(21, 60):
        alerts += [o for o in pipeline.process(_stride("pod", float(i))) if isinstance(o, Alert)]
    lost = [a for a in alerts if a.kind is AlertKind.SENSOR_LOST]
    assert len(lost) == 1
    assert lost[0].time_mono_s == 30.0  # sensor_lost_s after the disconnect
    assert "strap" in lost[0].message


def test_late_readings_are_dropped_and_counted() -> None:
    pipeline = Pipeline()
    pipeline.process(_hr("strap", 100.0))
    assert pipeline.process(_hr("strap", 90.0)) == []
    assert pipeline.athletes["a"].counters.late_dropped == 1
    assert pipeline.process(_hr("strap", 99.0))  # within the 2 s tolerance: processed


_event = st.sampled_from(["hr", "hr_rr", "stride", "gap", "drop", "garbage_hr"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_event, st.floats(0.05, 3.0), st.integers(0, 260), st.floats(0, 12)),
        min_size=1,
        max_size=300,
    )
)
def test_random_streams_never_crash_or_produce_nan(
    events: list[tuple[str, float, int, float]],
) -> None:
    pipeline = Pipeline()
    t = 0.0
    distance = 0.0
    out: list[ProcessingOutput] = []
    for kind, dt, value, speed in events:
        t += dt
        utc = EPOCH + timedelta(seconds=t)
        record: Reading
        if kind == "gap":
            t += 30.0
            continue
        if kind == "drop":
            record = LinkEvent(athlete="a", sensor="strap", time_utc=utc, time_mono_s=t,
                               state=LinkState.DISCONNECTED)
        elif kind == "stride":
            distance += speed * dt
            record = StrideReading(athlete="a", sensor="pod", time_utc=utc, time_mono_s=t,
                                   speed_mps=speed, cadence_per_min=min(value, 255),
                                   stride_length_m=speed / 2 if value else None,
                                   total_distance_m=distance, running=None, raw=b"")
        else:
            rr = (60.0 / max(value, 1), 0.01) if kind == "garbage_hr" else (
                (60.0 / max(value, 30),) if kind == "hr_rr" else ()
            )
            record = _hr("strap", t, value, rr)
        out.extend(pipeline.process(record))
    out.extend(pipeline.finish())
    for item in out:
        if isinstance(item, Metric):
            for key, v in item.values.items():
                if isinstance(v, float):
                    assert math.isfinite(v), (item.group, key, v)
        elif isinstance(item, Alert):
            for v in (item.value, item.threshold):
                assert v is None or math.isfinite(v)
