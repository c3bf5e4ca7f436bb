"""Our Heart Rate Measurement codec against bumble's independent implementation.

bumble (``bumble.profiles.heart_rate_service``) encodes RR intervals given in seconds with
``int(rr * 1024)`` (truncation), so it is only fed exact multiples of 1/1024 s here; its
quirks are pinned in separate tests so a change in bumble shows up.
"""

from __future__ import annotations

import pytest
from bumble import gatt as bumble_gatt
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.gatt import uuids
from ingest.gatt.heart_rate import HeartRateMeasurement, decode_heart_rate, seconds_to_ticks
from ingest.gatt.simple import BodySensorLocation, decode_body_sensor_location
from ingest.records import Contact

BumbleHRM = HeartRateService.HeartRateMeasurement

u16 = st.integers(0, 0xFFFF)
# bumble: None = contact not supported, False = supported but not detected, True = detected
CONTACT_FROM_BUMBLE = {
    None: Contact.UNSUPPORTED,
    False: Contact.NOT_DETECTED,
    True: Contact.DETECTED,
}
BUMBLE_FROM_CONTACT = {v: k for k, v in CONTACT_FROM_BUMBLE.items()}


@st.composite
def bumble_measurements(draw: st.DrawFn) -> tuple[object, int, list[int] | None]:
    hr = draw(u16)
    contact = draw(st.sampled_from([None, False, True]))
    energy = draw(st.none() | u16)
    ticks = draw(st.none() | st.lists(u16, max_size=9))
    rr = None if ticks is None else [t / 1024 for t in ticks]  # exact multiples of 1/1024 s
    m = BumbleHRM(
        heart_rate=hr, sensor_contact_detected=contact, energy_expended=energy, rr_intervals=rr
    )
    return m, hr, ticks


@settings(max_examples=500)
@given(bumble_measurements())
def test_bumble_encoded_frames_decode_identically(
    case: tuple[object, int, list[int] | None],
) -> None:
    bm, hr, ticks = case
    frame = bytes(bm)  # type: ignore[call-overload]

    ours = decode_heart_rate(frame)

    assert ours.heart_rate_bpm == hr
    assert ours.contact is CONTACT_FROM_BUMBLE[bm.sensor_contact_detected]  # type: ignore[attr-defined]
    assert ours.energy_kj == bm.energy_expended  # type: ignore[attr-defined]
    assert ours.rr_ticks == tuple(ticks or ())
    assert ours.rr_intervals_s == tuple(bm.rr_intervals or ())  # type: ignore[attr-defined]
    assert ours.hr_uint16 == (hr > 0xFF)  # bumble picks uint16 only when it must
    assert ours.rr_flag_empty == (ticks == [])
    assert ours.reserved_flags == 0
    assert bytes(ours) == frame


@st.composite
def our_measurements(draw: st.DrawFn) -> HeartRateMeasurement:
    hr16 = draw(st.booleans())
    rr = tuple(draw(st.lists(u16, max_size=9)))
    return HeartRateMeasurement(
        heart_rate_bpm=draw(u16 if hr16 else st.integers(0, 0xFF)),
        contact=draw(st.sampled_from(tuple(Contact))),
        energy_kj=draw(st.none() | u16),
        rr_ticks=rr,
        hr_uint16=hr16,
        rr_flag_empty=not rr and draw(st.booleans()),
    )


@settings(max_examples=500)
@given(our_measurements())
def test_our_frames_decode_identically_in_bumble(m: HeartRateMeasurement) -> None:
    bm = BumbleHRM.from_bytes(bytes(m))

    assert bm.heart_rate == m.heart_rate_bpm
    assert bm.sensor_contact_detected is BUMBLE_FROM_CONTACT[m.contact]
    assert bm.energy_expended == m.energy_kj
    if m.rr_ticks or m.rr_flag_empty:
        assert tuple(bm.rr_intervals) == m.rr_intervals_s
    else:
        assert bm.rr_intervals is None


def test_hand_vector_agrees_with_bumble() -> None:
    frame = bytes.fromhex("1e 4b 0a 00 00 03 00 04")
    bm = BumbleHRM.from_bytes(frame)
    ours = decode_heart_rate(frame)
    assert (bm.heart_rate, bm.energy_expended, tuple(bm.rr_intervals)) == (75, 10, (0.75, 1.0))
    assert (ours.heart_rate_bpm, ours.energy_kj, ours.rr_intervals_s) == (75, 10, (0.75, 1.0))


@pytest.mark.parametrize(
    ("rr_s", "bumble_ticks", "our_rounded_ticks"),
    [(0.8, 819, 819), (0.9999, 1023, 1024), (0.5 + 0.7 / 1024, 512, 513)],
    ids=["0.8s", "0.9999s", "0.5007s"],
)
def test_bumble_truncates_rr_seconds_we_refuse_or_round(
    rr_s: float, bumble_ticks: int, our_rounded_ticks: int
) -> None:
    frame = bytes(BumbleHRM(heart_rate=60, rr_intervals=[rr_s]))
    assert decode_heart_rate(frame).rr_ticks == (bumble_ticks,)  # bumble's int() truncation
    with pytest.raises(ValueError, match="1/1024"):
        seconds_to_ticks(rr_s)  # we refuse an inexact conversion by default...
    assert seconds_to_ticks(rr_s, exact=False) == our_rounded_ticks  # ...or round explicitly


def test_uuids_and_body_sensor_locations_agree_with_bumble() -> None:
    assert (
        str(bumble_gatt.GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC.to_hex_str()).lower() == "2a37"
    )
    assert uuids.uuid16(0x2A37) == uuids.HEART_RATE_MEASUREMENT
    for loc in HeartRateService.BodySensorLocation:
        assert BodySensorLocation(int(loc)).name == loc.name
        assert decode_body_sensor_location(bytes([int(loc)])) == loc.name.lower()
