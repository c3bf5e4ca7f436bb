"""A sensor's frames to records without Bluetooth (:mod:`ingest.sensor_frames`): the bytes a
strap or footpod notifies, hand-built from the GATT specifications (Heart Rate Service 1.0
§3.1, RSCS 1.0 §3.1), in; readings and the link events they imply out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorKind,
    StrideReading,
)
from ingest.sensor_frames import SensorFrames

T0 = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)


class StepClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def monotonic_s(self) -> float:
        return self.now_s

    def utc(self) -> datetime:
        return T0 + timedelta(seconds=self.now_s)


def _frames(kind: SensorKind) -> tuple[SensorFrames, StepClock, list[Reading]]:
    clock, out = StepClock(), []
    frames = SensorFrames(address="AA:BB", name="strap", athlete="ann", kind=kind, clock=clock,
                          emit=out.append)
    return frames, clock, out


# Flags 0x16: HR as uint8, sensor contact supported and detected (bits 1-2 = 0b11), RR
# intervals present (bit 4); 0x14: contact supported, not detected. RR in 1/1024 s, LE.
HR_150_RR_410 = bytes([0x16, 150, 0x9A, 0x01])
HR_150_NO_CONTACT = bytes([0x14, 150, 0x9A, 0x01])


def test_a_heart_rate_frame_becomes_a_stamped_reading_with_its_beats_placed() -> None:
    frames, clock, out = _frames(SensorKind.HEART_RATE)
    frames.heart_rate(HR_150_RR_410)
    (reading,) = out
    assert isinstance(reading, HeartRateReading)
    assert (reading.heart_rate_bpm, reading.rr_intervals_s) == (150, (410 / 1024,))
    assert (reading.time_mono_s, reading.time_utc) == (clock.now_s, clock.utc())
    assert reading.beat_times_mono_s == (clock.now_s,)  # the last beat ends at arrival
    assert reading.raw == HR_150_RR_410
    assert (frames.counters.frames, frames.last_notification_s) == (1, clock.now_s)


def test_contact_lost_and_regained_are_link_events_once_each() -> None:
    frames, clock, out = _frames(SensorKind.HEART_RATE)
    for raw in (HR_150_RR_410, HR_150_NO_CONTACT, HR_150_NO_CONTACT, HR_150_RR_410):
        clock.now_s += 0.4
        frames.heart_rate(raw)
    events = [(r.state, r.detail) for r in out if isinstance(r, LinkEvent)]
    assert [state for state, _ in events] == [LinkState.NO_CONTACT, LinkState.CONTACT]
    readings = [r for r in out if isinstance(r, HeartRateReading)]
    assert [r.contact for r in readings] == [Contact.DETECTED, Contact.NOT_DETECTED,
                                             Contact.NOT_DETECTED, Contact.DETECTED]


def test_a_frame_that_does_not_decode_is_a_bad_frame_event_with_its_bytes() -> None:
    frames, _, out = _frames(SensorKind.HEART_RATE)
    frames.heart_rate(bytes([0x01, 150]))  # uint16 HR announced, one byte present
    (event,) = out
    assert isinstance(event, LinkEvent)
    assert event.state is LinkState.BAD_FRAME
    assert event.raw == bytes([0x01, 150])
    assert event.detail  # what is wrong, from the codec
    assert (frames.counters.frames, frames.counters.bad_frames) == (1, 1)


def test_a_gap_in_the_beats_is_an_rr_gap_event() -> None:
    frames, clock, out = _frames(SensorKind.HEART_RATE)
    frames.heart_rate(HR_150_RR_410)
    clock.now_s += 30.0  # 30 s of frames lost, then one beat of 0.4 s
    frames.heart_rate(HR_150_RR_410)
    assert [r.state for r in out if isinstance(r, LinkEvent)] == [LinkState.RR_GAP]
    assert frames.counters.rr_gaps == 1


def test_the_running_bit_counts_only_when_the_footpod_says_it_supports_it() -> None:
    # Flags 0x04: walking/running status bit set (running); speed uint16 1/256 m/s, cadence.
    running = bytes([0x04, 0x00, 0x03, 170])
    frames, _, out = _frames(SensorKind.FOOTPOD)
    frames.rsc(running)
    frames.running_supported = True
    frames.rsc(running)
    first, second = out
    assert isinstance(first, StrideReading)
    assert isinstance(second, StrideReading)
    assert (first.running, second.running) == (None, True)
    assert (second.speed_mps, second.cadence_per_min) == (3.0, 170)


def test_a_battery_level_becomes_a_reading() -> None:
    frames, _, out = _frames(SensorKind.FOOTPOD)
    frames.battery(bytes([87]))
    (reading,) = out
    assert isinstance(reading, BatteryReading)
    assert reading.level_pct == 87
