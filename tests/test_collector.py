"""The collector end to end: bumble GATT servers → bleak backend → collector, on virtual time.

These run the real bleak code path (``BleakScanner``/``BleakClient`` with the virtual backend)
against real GATT servers; faults are injected in the virtual sensors.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ingest.clock import LoopClock
from ingest.collector import Collector
from ingest.collector_settings import CollectorSettings
from ingest.gatt import uuids
from ingest.records import (
    BatteryReading,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
    StrideReading,
)
from ingest.sensor_map import SensorAssignment, SensorMap
from ingest.virtual import timewarp
from ingest.virtual.sensors import Fault, VirtualFleet, virtual_fleet

EPOCH = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def _collect(
    workout: str,
    *,
    athletes: int = 1,
    faults: Sequence[Fault] = (),
    stop_at_s: float | None = None,
    settings: CollectorSettings | None = None,
    speed: float | None = None,
) -> tuple[list[Reading], VirtualFleet, Collector]:
    records: list[Reading] = []

    async def main() -> tuple[VirtualFleet, Collector]:
        async with virtual_fleet(
            workout, athletes=athletes, faults=faults, record_sent=True
        ) as fleet:
            collector = await fleet.collect(
                records.append, clock=LoopClock(EPOCH), settings=settings, stop_at_s=stop_at_s
            )
            return fleet, collector

    fleet, collector = timewarp.run(main(), speed=speed)
    return records, fleet, collector


def _by_sensor(records: Sequence[Reading]) -> dict[str, list[Reading]]:
    out: dict[str, list[Reading]] = collections.defaultdict(list)
    for r in records:
        out[r.sensor].append(r)
    return out


def test_twenty_sensors_connecting_at_once_at_high_speed_never_time_out() -> None:
    """At 300× (the demo's --speed), twenty sensors connect at once: the CPU work of twenty
    GATT discoveries takes no virtual time, so no 10 s connect timeout fires (with a plain
    scaled clock, every one did: 100 ms of CPU is 30 virtual seconds)."""
    records, _fleet, collector = _collect("easy-8k", athletes=10, stop_at_s=60.0, speed=300.0)
    counters = collector.counters()
    assert len(counters) == 20
    for address, c in counters.items():
        assert c.connects == 1, address
        assert c.connect_failures == 0, address
    assert len(_by_sensor(records)) == 20


def test_twenty_sensors_ten_minutes_every_frame_exact_and_in_order() -> None:
    records, fleet, collector = _collect("easy-8k", athletes=10, stop_at_s=600.0)
    by_sensor = _by_sensor(records)
    assert len(by_sensor) == 20
    total_sent = 0
    for athlete in fleet.athletes:
        assert athlete.sent is not None
        assert athlete.strap is not None
        assert athlete.footpod is not None
        for peripheral, uuid, kind in (
            (athlete.strap, uuids.HEART_RATE_MEASUREMENT, HeartRateReading),
            (athlete.footpod, uuids.RSC_MEASUREMENT, StrideReading),
        ):
            sent = [
                f.data for f in athlete.sent if f.sensor == peripheral.address and f.uuid == uuid
            ]
            got = by_sensor[peripheral.address]
            received = [r.raw for r in got if isinstance(r, kind)]
            assert received == sent  # every frame, byte-exact, in order
            assert all(r.athlete == athlete.name for r in got)
            total_sent += len(sent)
    # 10 minutes: 600 HR frames and 1200 footpod frames per athlete.
    assert total_sent == 10 * (600 + 1200)
    counters = collector.counters()
    assert sum(c.frames for c in counters.values()) == total_sent
    assert sum(c.bad_frames for c in counters.values()) == 0
    assert collector.dropped == 0


def test_decoded_values_equal_what_the_sensor_encoded() -> None:
    records, fleet, _ = _collect("morning-5k", stop_at_s=120.0)
    athlete = fleet.athletes[0]
    hr = [r for r in records if isinstance(r, HeartRateReading)]
    assert hr
    for reading in hr:
        t = reading.time_mono_s - (athlete.start_s or 0.0)
        model = athlete.trace.sample_at(t)
        assert reading.heart_rate_bpm == round(model.hr_bpm)
    # RR intervals are the model's beats, exact to the 1/1024 s tick.
    rr = [x for r in hr for x in r.rr_intervals_s]
    beats = athlete.trace.rr_s[: len(rr)]
    assert rr == [round(x * 1024) / 1024 for x in beats]
    info = [r for r in records if isinstance(r, SensorInfo)]
    assert {i.kind for i in info} == {SensorKind.HEART_RATE, SensorKind.FOOTPOD}
    assert any(i.body_sensor_location == "chest" for i in info)
    assert [r.level_pct for r in records if isinstance(r, BatteryReading)] == [87, 87]


def test_dropped_link_reconnects_marks_the_rr_gap_and_invents_nothing() -> None:
    faults = [Fault("drop", "strap", at_s=60.0, duration_s=15.0)]
    records, fleet, collector = _collect("easy-8k", faults=faults, stop_at_s=180.0)
    strap = fleet.athletes[0].strap
    assert strap is not None
    mine = [r for r in records if r.sensor == strap.address]
    states = [r.state for r in mine if isinstance(r, LinkEvent)]
    assert states.count(LinkState.CONNECTED) == 2
    assert LinkState.DISCONNECTED in states
    assert LinkState.RR_GAP in states
    first_drop = states.index(LinkState.DISCONNECTED)
    assert states.index(LinkState.RR_GAP) > first_drop
    # No reading between the disconnect and the reconnect, and never an HR of 0.
    down = next(r for r in mine if isinstance(r, LinkEvent) and r.state is LinkState.DISCONNECTED)
    up = [r for r in mine if isinstance(r, LinkEvent) and r.state is LinkState.CONNECTED][1]
    between = [
        r for r in mine
        if isinstance(r, HeartRateReading) and down.time_mono_s < r.time_mono_s < up.time_mono_s
    ]
    assert between == []
    hr = [r for r in mine if isinstance(r, HeartRateReading)]
    assert all(r.heart_rate_bpm > 0 for r in hr)
    # Reconnected within the backoff (first retry ≤ 1 s after the sensor is back in range).
    start = fleet.athletes[0].start_s
    assert start is not None
    assert up.time_mono_s - start == pytest.approx(75.0, abs=2.5)
    gap = next(r for r in mine if isinstance(r, LinkEvent) and r.state is LinkState.RR_GAP)
    assert "missing" in gap.detail
    # Beat times stay ordered across the gap.
    beats = [b for r in hr for b in r.beat_times_mono_s]
    assert beats == sorted(beats)
    c = collector.counters()[strap.address]
    assert (c.connects, c.disconnects, c.rr_gaps) == (2, 1, 1)


def test_garbage_frames_are_counted_and_skipped() -> None:
    faults = [
        Fault("garbage", "strap", at_s=20.2),
        Fault("garbage", "footpod", at_s=30.2),
    ]
    records, fleet, collector = _collect("easy-8k", faults=faults, stop_at_s=60.0)
    bad = [r for r in records if isinstance(r, LinkEvent) and r.state is LinkState.BAD_FRAME]
    assert len(bad) == 2
    assert {r.raw.hex() for r in bad} == {"104801", "0001"}
    assert all("at byte" in r.detail for r in bad)
    counters = collector.counters()
    assert sum(c.bad_frames for c in counters.values()) == 2
    # The stream goes on after the garbage: readings up to the end from both sensors.
    athlete = fleet.athletes[0]
    assert athlete.start_s is not None
    for kind in (HeartRateReading, StrideReading):
        last = max(r.time_mono_s for r in records if isinstance(r, kind))
        assert last - athlete.start_s >= 59.0


def test_silent_link_is_detected_and_reconnected() -> None:
    faults = [Fault("silent", "footpod", at_s=30.0, duration_s=12.0)]
    settings = CollectorSettings(scan_s=1.0, silence_timeout_s=5.0)
    records, fleet, collector = _collect(
        "easy-8k", faults=faults, stop_at_s=90.0, settings=settings
    )
    pod = fleet.athletes[0].footpod
    assert pod is not None
    states = [r.state for r in records if isinstance(r, LinkEvent) and r.sensor == pod.address]
    assert LinkState.SILENT in states
    assert states.count(LinkState.CONNECTED) >= 2
    assert collector.counters()[pod.address].silences >= 1
    late = [r for r in records if isinstance(r, StrideReading) and r.sensor == pod.address]
    assert late[-1].time_mono_s - (fleet.athletes[0].start_s or 0.0) >= 89.0


def test_contact_loss_and_low_battery_are_reported() -> None:
    faults = [
        Fault("no_contact", "strap", at_s=20.0, duration_s=5.0),
        Fault("low_battery", "footpod", at_s=30.0),
    ]
    records, _, _ = _collect("easy-8k", faults=faults, stop_at_s=45.0)
    states = [r.state for r in records if isinstance(r, LinkEvent)]
    assert states.index(LinkState.NO_CONTACT) < states.index(LinkState.CONTACT)
    assert 8 in [r.level_pct for r in records if isinstance(r, BatteryReading)]


def test_unassigned_sensors_are_ignored() -> None:
    async def main() -> list[Reading]:
        async with virtual_fleet("easy-8k", athletes=2) as fleet:
            only_first = SensorMap(fleet.athletes[0].assignments())
            got: list[Reading] = []
            collector = Collector(
                only_first,
                clock=LoopClock(EPOCH),
                settings=CollectorSettings(scan_s=1.0),
                scanner_backend=fleet.radio.scanner_backend,
                client_backend=fleet.radio.client_backend,
            )
            async with collector:
                async for r in collector:
                    got.append(r)
                    if len(got) >= 40:
                        collector.stop()
            return got

    got = timewarp.run(main(), speed=None)
    assert {r.athlete for r in got} == {"athlete-1"}


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="connect_timeout_s"):
        CollectorSettings(connect_timeout_s=2.0)
    with pytest.raises(ValueError, match="address or a name"):
        SensorAssignment("a", SensorKind.HEART_RATE)


def test_adapter_that_goes_and_comes_back_keeps_the_session_and_reconnects_every_sensor() -> None:
    """The collector's adapter disappears for 20 s (a USB dongle pulled, ``hciconfig reset``)
    through bleak over bumble: the session goes on, every sensor gets ADAPTER_LOST and
    ADAPTER_BACK link events and reconnects, and readings resume on both."""
    faults = [Fault("adapter_gone", "strap", at_s=60.0, duration_s=20.0)]
    records, fleet, collector = _collect("easy-8k", faults=faults, stop_at_s=150.0)
    athlete = fleet.athletes[0]
    assert athlete.start_s is not None
    assert athlete.strap is not None
    assert athlete.footpod is not None
    start = athlete.start_s
    assert fleet.radio.adapter_present
    for peripheral, kind in ((athlete.strap, HeartRateReading), (athlete.footpod, StrideReading)):
        mine = [r for r in records if r.sensor == peripheral.address]
        events = [r for r in mine if isinstance(r, LinkEvent)]
        states = [e.state for e in events]
        assert states.count(LinkState.ADAPTER_LOST) == 1, states
        assert states.count(LinkState.ADAPTER_BACK) == 1, states
        assert states.count(LinkState.CONNECTED) == 2, states
        lost = next(e for e in events if e.state is LinkState.ADAPTER_LOST)
        back = next(e for e in events if e.state is LinkState.ADAPTER_BACK)
        assert "No Bluetooth adapter found" in lost.detail
        assert "session stays open" in lost.detail
        # The link dropped when the adapter went; it was noticed within a rescan interval.
        down = next(e for e in events if e.state is LinkState.DISCONNECTED)
        assert down.time_mono_s - start == pytest.approx(60.0, abs=1.0)
        assert lost.time_mono_s - start == pytest.approx(60.0, abs=1.0)  # a scan probes at once
        # Back within a probe interval of the adapter's return, reconnected right after.
        assert 80.0 <= back.time_mono_s - start <= 80.0 + 6.0
        up = [e for e in events if e.state is LinkState.CONNECTED][1]
        assert 0.0 <= up.time_mono_s - back.time_mono_s <= 2.0
        # Nothing while it was gone; readings up to the end after it came back.
        readings = [r for r in mine if isinstance(r, kind)]
        assert not [r for r in readings if down.time_mono_s < r.time_mono_s < up.time_mono_s]
        assert readings[-1].time_mono_s - start >= 149.0
        c = collector.counters()[peripheral.address]
        assert c.connects == 2
    assert collector.adapter_problem is None
