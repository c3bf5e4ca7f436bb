"""Heart Rate Measurement (0x2A37) codec: exhaustive flags, hand vectors, errors, properties."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import GattDecodeError, GattEncodeError
from ingest.gatt.heart_rate import (
    MAX_RR_IN_20_BYTE_FRAME,
    HeartRateMeasurement,
    decode_heart_rate,
    encode_heart_rate,
    seconds_to_ticks,
)
from ingest.records import Contact

# Contact -> flags bits 1-2, written out from HRS 1.0 3.1.1.1 (independent of the module's table).
CONTACT_BITS = {Contact.UNSUPPORTED: 0b000, Contact.NOT_DETECTED: 0b100, Contact.DETECTED: 0b110}


def build_frame(
    hr: int,
    contact: Contact,
    energy: int | None,
    rr: tuple[int, ...],
    *,
    hr16: bool,
    rr_flag: bool,
    reserved: int = 0,
) -> bytes:
    """A frame assembled field by field, the way a strap firmware would."""
    flags = CONTACT_BITS[contact] | reserved
    body = b""
    if hr16:
        flags |= 0x01
        body += hr.to_bytes(2, "little")
    else:
        body += bytes([hr])
    if energy is not None:
        flags |= 0x08
        body += energy.to_bytes(2, "little")
    if rr_flag:
        flags |= 0x10
        for t in rr:
            body += t.to_bytes(2, "little")
    return bytes([flags]) + body


# --- exhaustive flag combinations ----------------------------------------------------------

RR_SAMPLE = (800, 1023, 1024, 1, 65535, 700, 512, 2048, 999)  # 9 values, not ms, not round


@pytest.mark.parametrize(
    ("hr16", "contact", "with_energy", "rr_count", "rr_flag"),
    [
        (hr16, contact, energy, n, rr_flag)
        for hr16, contact, energy, n, rr_flag in itertools.product(
            (False, True), tuple(Contact), (False, True), range(10), (False, True)
        )
        if rr_flag or n == 0  # RR values need the flag; the flag alone (0 RR) is legal
    ],
)
def test_every_flag_combination_decodes_and_reencodes(
    hr16: bool, contact: Contact, with_energy: bool, rr_count: int, rr_flag: bool
) -> None:
    hr = 300 if hr16 else 172
    energy = 0xFFFF if with_energy else None
    rr = RR_SAMPLE[:rr_count]
    frame = build_frame(hr, contact, energy, rr, hr16=hr16, rr_flag=rr_flag)

    m = decode_heart_rate(frame)

    assert m == HeartRateMeasurement(
        heart_rate_bpm=hr,
        contact=contact,
        energy_kj=energy,
        rr_ticks=rr,
        hr_uint16=hr16,
        reserved_flags=0,
        rr_flag_empty=rr_flag and rr_count == 0,
    )
    assert m.rr_intervals_s == tuple(t / 1024 for t in rr)
    assert bytes(m) == frame
    assert HeartRateMeasurement.from_bytes(bytearray(frame)) == m


@pytest.mark.parametrize("reserved", [0x20, 0x40, 0x80, 0xE0], ids=lambda r: f"bits_{r:#04x}")
@pytest.mark.parametrize("contact", tuple(Contact))
def test_reserved_bits_are_tolerated_and_reported(reserved: int, contact: Contact) -> None:
    frame = build_frame(65, contact, 12, (900,), hr16=False, rr_flag=True, reserved=reserved)
    m = decode_heart_rate(frame)
    assert m.reserved_flags == reserved
    assert (m.heart_rate_bpm, m.contact, m.energy_kj, m.rr_ticks) == (65, contact, 12, (900,))
    assert bytes(m) == frame


def test_contact_bit1_without_bit2_is_unsupported_and_non_canonical() -> None:
    # 0b01 in bits 1-2: contact "detected" but feature "not supported" -> the spec says not
    # supported; decoded as UNSUPPORTED, re-encoded canonically as 0b00.
    m = decode_heart_rate(bytes.fromhex("02 48"))
    assert m.contact is Contact.UNSUPPORTED
    assert bytes(m) == bytes.fromhex("00 48")


# --- hand-written vectors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_frame", "expected"),
    [
        pytest.param(
            "16 48 01 04",
            # 0x16 = RR | contact supported | detected; HR 0x48 = 72; RR 0x0401 = 1025 ticks
            HeartRateMeasurement(72, Contact.DETECTED, None, (1025,)),
            id="hr72-detected-one-rr",
        ),
        pytest.param("06 48", HeartRateMeasurement(72, Contact.DETECTED, None, ()), id="no-rr"),
        pytest.param(
            "04 8c", HeartRateMeasurement(140, Contact.NOT_DETECTED, None, ()), id="no-contact"
        ),
        pytest.param("00 00", HeartRateMeasurement(0, Contact.UNSUPPORTED, None, ()), id="hr-zero"),
        pytest.param(
            "1e 4b 0a 00 00 03 00 04",
            # energy 0x000a = 10 kJ then RR 0x0300 = 768, 0x0400 = 1024: NOT shifted by 2 bytes
            HeartRateMeasurement(75, Contact.DETECTED, 10, (768, 1024)),
            id="energy-then-rr",
        ),
        pytest.param(
            "19 2c 01 ff ff 00 02",
            # uint16 HR 0x012c = 300, energy saturated 65535 kJ, RR 0x0200 = 512 ticks
            HeartRateMeasurement(300, Contact.UNSUPPORTED, 65535, (512,), hr_uint16=True),
            id="uint16-hr-saturated-energy",
        ),
        pytest.param(
            "07 48 00",
            HeartRateMeasurement(72, Contact.DETECTED, None, (), hr_uint16=True),
            id="uint16-format-small-value",
        ),
        pytest.param(
            "10 50",
            HeartRateMeasurement(80, Contact.UNSUPPORTED, None, (), rr_flag_empty=True),
            id="rr-flag-zero-rr",
        ),
        pytest.param(
            "e6 48",
            HeartRateMeasurement(72, Contact.DETECTED, None, (), reserved_flags=0xE0),
            id="reserved-bits",
        ),
    ],
)
def test_known_vectors(hex_frame: str, expected: HeartRateMeasurement) -> None:
    frame = bytes.fromhex(hex_frame)
    assert decode_heart_rate(frame) == expected
    assert bytes(expected) == frame


def test_energy_present_does_not_shift_rr_and_rr_is_ticks_not_ms() -> None:
    m = decode_heart_rate(bytes.fromhex("1e 4b 0a 00 00 03 00 04"))
    assert m.energy_kj == 10
    assert m.rr_ticks == (768, 1024)  # a parser ignoring bit 3 would give (10, 768, 1024)
    assert m.rr_intervals_s == (0.75, 1.0)  # ticks/1024, not 0.768 s (ticks as ms)
    assert decode_heart_rate(bytes.fromhex("16 48 01 04")).rr_intervals_s == (1.0009765625,)


def test_full_20_byte_frame_carries_nine_rr() -> None:
    rr = tuple(range(700, 709))
    frame = build_frame(70, Contact.DETECTED, None, rr, hr16=False, rr_flag=True)
    assert len(frame) == 20
    assert len(decode_heart_rate(frame).rr_ticks) == MAX_RR_IN_20_BYTE_FRAME == 9


def test_longer_frames_from_a_larger_mtu_are_decoded() -> None:
    rr = tuple(range(300))
    frame = build_frame(70, Contact.DETECTED, None, rr, hr16=False, rr_flag=True)
    assert decode_heart_rate(frame).rr_ticks == rr


# --- malformed frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_frame", "offset", "reason"),
    [
        pytest.param("", 0, "empty frame", id="empty"),
        pytest.param("00", 1, "truncated heart rate: uint8", id="uint8-hr-missing"),
        pytest.param("01", 1, "truncated heart rate: uint16", id="uint16-hr-missing"),
        pytest.param("01 48", 1, "truncated heart rate: uint16", id="uint16-hr-one-byte"),
        pytest.param("08 48", 2, "truncated energy expended", id="energy-missing"),
        pytest.param("08 48 01", 2, "truncated energy expended", id="energy-one-byte"),
        pytest.param("09 48 00 01", 3, "truncated energy expended", id="uint16-hr-energy-one-byte"),
        pytest.param("18 48 01", 2, "truncated energy expended", id="energy-rr-truncated"),
        pytest.param("10 48 00", 2, "odd number of RR bytes (1)", id="rr-one-byte"),
        pytest.param("10 48 00 03 01", 4, "odd number of RR bytes (3)", id="rr-three-bytes"),
        pytest.param("18 48 0a 00 00 03 00", 6, "odd number of RR bytes (3)", id="energy-rr-odd"),
        pytest.param("06 48 00 03", 2, "RR flag (bit 4) is clear", id="trailing-without-rr-flag"),
    ],
)
def test_malformed_frames_raise_with_offset(hex_frame: str, offset: int, reason: str) -> None:
    frame = bytes.fromhex(hex_frame)
    with pytest.raises(GattDecodeError, match=rf"at byte {offset}\b") as info:
        decode_heart_rate(frame)
    err = info.value
    assert err.characteristic == "heart_rate_measurement"
    assert err.offset == offset
    assert reason in err.reason
    assert err.data == frame
    assert isinstance(err, ValueError)


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "match"),
    [
        pytest.param(
            HeartRateMeasurement(256, Contact.DETECTED, None, ()), "hr_uint16", id="hr-256-u8"
        ),
        pytest.param(
            HeartRateMeasurement(65536, Contact.DETECTED, None, (), hr_uint16=True),
            "out of range",
            id="hr-too-big",
        ),
        pytest.param(
            HeartRateMeasurement(-1, Contact.DETECTED, None, ()), "out of range", id="hr-neg"
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, 65536, ()), "energy_kj", id="energy"
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (65536,)), "rr_ticks", id="rr-big"
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (-1,)), "rr_ticks", id="rr-neg"
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (0.75,)),  # type: ignore[arg-type]
            "must be an int",
            id="rr-seconds-not-ticks",
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (768.0,)),  # type: ignore[arg-type]
            "must be an int",
            id="rr-float-ticks",
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (768,), rr_flag_empty=True),
            "rr_flag_empty",
            id="empty-flag-with-rr",
        ),
        pytest.param(
            HeartRateMeasurement(60, Contact.DETECTED, None, (), reserved_flags=0x10),
            "outside 5-7",
            id="reserved-not-reserved",
        ),
        pytest.param(
            HeartRateMeasurement(60, "detected?", None, ()),  # type: ignore[arg-type]
            "contact",
            id="bad-contact",
        ),
    ],
)
def test_encode_rejects_out_of_range(message: HeartRateMeasurement, match: str) -> None:
    with pytest.raises(GattEncodeError, match=match):
        bytes(message)


def test_seconds_to_ticks_is_explicit_about_rounding() -> None:
    assert seconds_to_ticks(0.75) == 768
    assert seconds_to_ticks(1025 / 1024) == 1025
    with pytest.raises(ValueError, match="not a whole number of 1/1024 s ticks"):
        seconds_to_ticks(0.8)  # 819.2 ticks
    assert seconds_to_ticks(0.8, exact=False) == 819
    assert seconds_to_ticks(0.9999, exact=False) == 1024  # rounds (bumble's int() gives 1023)
    with pytest.raises(ValueError, match="finite"):
        seconds_to_ticks(float("nan"))


# --- properties ----------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
contacts = st.sampled_from(tuple(Contact))


@st.composite
def canonical_frames(draw: st.DrawFn) -> bytes:
    hr16 = draw(st.booleans())
    hr = draw(u16 if hr16 else st.integers(0, 0xFF))
    energy = draw(st.none() | u16)
    rr = tuple(draw(st.lists(u16, max_size=12)))
    rr_flag = bool(rr) or draw(st.booleans())
    reserved = draw(st.sampled_from([0, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0xE0]))
    contact = draw(contacts)
    return build_frame(hr, contact, energy, rr, hr16=hr16, rr_flag=rr_flag, reserved=reserved)


@st.composite
def messages(draw: st.DrawFn) -> HeartRateMeasurement:
    hr16 = draw(st.booleans())
    rr = tuple(draw(st.lists(u16, max_size=12)))
    return HeartRateMeasurement(
        heart_rate_bpm=draw(u16 if hr16 else st.integers(0, 0xFF)),
        contact=draw(contacts),
        energy_kj=draw(st.none() | u16),
        rr_ticks=rr,
        hr_uint16=hr16,
        reserved_flags=draw(st.integers(0, 7)) << 5,
        rr_flag_empty=not rr and draw(st.booleans()),
    )


@settings(max_examples=500)
@given(canonical_frames())
def test_canonical_frames_round_trip_bytes(frame: bytes) -> None:
    assert bytes(decode_heart_rate(frame)) == frame


@settings(max_examples=500)
@given(messages())
def test_messages_round_trip(m: HeartRateMeasurement) -> None:
    assert decode_heart_rate(encode_heart_rate(m)) == m


@settings(max_examples=1000)
@given(st.binary(max_size=24))
def test_arbitrary_bytes_decode_or_raise_decode_error(frame: bytes) -> None:
    try:
        m = decode_heart_rate(frame)
    except GattDecodeError as err:
        error: GattDecodeError | None = err
    else:
        error = None
    if error is not None:
        assert 0 <= error.offset <= len(frame)
        assert error.data == frame
        return
    canonical = frame[:1] if (frame[0] >> 1) & 0b11 != 0b01 else bytes([frame[0] & ~0x02])
    assert bytes(m) == canonical + frame[1:]


@given(u16)
def test_rr_intervals_s_are_exact(ticks: int) -> None:
    m = HeartRateMeasurement(60, Contact.DETECTED, None, (ticks,))
    (seconds,) = m.rr_intervals_s
    assert seconds * 1024 == ticks
    assert seconds_to_ticks(seconds) == ticks


@given(st.floats(0, 63.99, allow_nan=False))
def test_rr_seconds_off_the_tick_grid_are_rejected_or_rounded_explicitly(rr_s: float) -> None:
    scaled = rr_s * 1024
    if scaled != int(scaled):
        with pytest.raises(ValueError, match="1/1024"):
            seconds_to_ticks(rr_s)
    ticks = seconds_to_ticks(rr_s, exact=False)
    assert abs(ticks - scaled) <= 0.5
    frame = bytes(HeartRateMeasurement(60, Contact.DETECTED, None, (ticks,)))
    assert struct.unpack_from("<H", frame, 2) == (ticks,)
