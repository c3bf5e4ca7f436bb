"""RSC Measurement (0x2A53) and RSC Feature (0x2A54) codecs."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import GattDecodeError, GattEncodeError
from ingest.gatt.rsc import (
    RscFeature,
    RscMeasurement,
    decode_rsc,
    decode_rsc_feature,
    encode_rsc,
    encode_rsc_feature,
    names,
)


def build_frame(
    speed_raw: int,
    cadence: int,
    stride_raw: int | None,
    distance_raw: int | None,
    *,
    running: bool,
    reserved: int = 0,
) -> bytes:
    """A frame assembled field by field from RSCS 1.0 3.1."""
    flags = reserved | (0x04 if running else 0)
    body = speed_raw.to_bytes(2, "little") + bytes([cadence])
    if stride_raw is not None:
        flags |= 0x01
        body += stride_raw.to_bytes(2, "little")
    if distance_raw is not None:
        flags |= 0x02
        body += distance_raw.to_bytes(4, "little")
    return bytes([flags]) + body


# --- exhaustive flag combinations ----------------------------------------------------------


@pytest.mark.parametrize(
    ("with_stride", "with_distance", "running", "reserved"),
    list(itertools.product((False, True), (False, True), (False, True), (0, 0x08, 0x80, 0xF8))),
)
def test_every_flag_combination(
    with_stride: bool, with_distance: bool, running: bool, reserved: int
) -> None:
    stride_raw = 123 if with_stride else None
    distance_raw = 0xFFFFFFFF if with_distance else None
    frame = build_frame(781, 178, stride_raw, distance_raw, running=running, reserved=reserved)
    m = decode_rsc(frame)
    assert m == RscMeasurement(
        speed_mps=781 / 256,
        cadence_per_min=178,
        stride_length_m=1.23 if with_stride else None,
        total_distance_m=429496729.5 if with_distance else None,
        running=running,
        reserved_flags=reserved,
    )
    assert bytes(m) == frame
    assert RscMeasurement.from_bytes(bytearray(frame)) == m


# --- hand-written vectors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_frame", "expected"),
    [
        pytest.param(
            "00 00 03 b4",  # speed 0x0300/256 = 3.0 m/s, cadence 0xb4 = 180, walking
            RscMeasurement(3.0, 180, None, None, running=False),
            id="speed-cadence-only",
        ),
        pytest.param(
            # running; speed 0x0280/256 = 2.5 m/s; cadence 90; stride 0x008c = 1.40 m;
            # distance 0x000003e8 = 1000 x 0.1 m = 100.0 m
            "07 80 02 5a 8c 00 e8 03 00 00",
            RscMeasurement(2.5, 90, 1.4, 100.0, running=True),
            id="all-fields",
        ),
        pytest.param(
            "02 00 01 a0 10 27 00 00",  # 1.0 m/s, 160/min, distance 10000 x 0.1 = 1000.0 m
            RscMeasurement(1.0, 160, None, 1000.0, running=False),
            id="distance-only",
        ),
        pytest.param(
            "05 c0 03 b6 50 00",  # running, 0x03c0/256 = 3.75 m/s, 182/min, stride 0.80 m
            RscMeasurement(3.75, 182, 0.8, None, running=True),
            id="stride-only",
        ),
    ],
)
def test_known_vectors(hex_frame: str, expected: RscMeasurement) -> None:
    frame = bytes.fromhex(hex_frame)
    assert decode_rsc(frame) == expected
    assert bytes(expected) == frame


# --- malformed frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_frame", "offset", "reason"),
    [
        pytest.param("", 0, "empty frame", id="empty"),
        pytest.param("00", 1, "truncated speed", id="speed-missing"),
        pytest.param("00 00", 1, "truncated speed", id="speed-one-byte"),
        pytest.param("00 00 03", 3, "truncated cadence", id="cadence-missing"),
        pytest.param("01 00 03 5a", 4, "truncated stride length", id="stride-missing"),
        pytest.param("01 00 03 5a 8c", 4, "truncated stride length", id="stride-one-byte"),
        pytest.param("02 00 03 5a e8 03 00", 4, "truncated total distance", id="distance-3-bytes"),
        pytest.param("03 00 03 5a 8c 00 e8 03", 6, "truncated total distance", id="both-cut"),
        pytest.param("00 00 03 5a ff", 4, "unexpected byte", id="trailing-byte"),
        pytest.param("01 00 03 5a 8c 00 00", 6, "unexpected byte", id="odd-trailing"),
    ],
)
def test_malformed_frames_raise_with_offset(hex_frame: str, offset: int, reason: str) -> None:
    frame = bytes.fromhex(hex_frame)
    with pytest.raises(GattDecodeError, match=rf"at byte {offset}\b") as info:
        decode_rsc(frame)
    assert info.value.characteristic == "rsc_measurement"
    assert info.value.offset == offset
    assert reason in info.value.reason
    assert info.value.data == frame


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "match"),
    [
        pytest.param(RscMeasurement(-0.01, 90, None, None, False), "speed_mps", id="speed-neg"),
        pytest.param(RscMeasurement(256.0, 90, None, None, False), "speed_mps", id="speed-big"),
        pytest.param(RscMeasurement(math.nan, 90, None, None, False), "not finite", id="nan"),
        pytest.param(RscMeasurement(3.0, 256, None, None, False), "cadence", id="cadence-big"),
        pytest.param(RscMeasurement(3.0, -1, None, None, False), "cadence", id="cadence-neg"),
        pytest.param(RscMeasurement(3.0, 90, 655.36, None, False), "stride", id="stride-big"),
        pytest.param(RscMeasurement(3.0, 90, None, 429496729.6, False), "total_dist", id="dist"),
        pytest.param(RscMeasurement(3.0, 90, None, math.inf, False), "not finite", id="dist-inf"),
        pytest.param(RscMeasurement(3.0, 90, None, None, False, 0x01), "outside 3-7", id="resv"),
    ],
)
def test_encode_rejects_out_of_range(message: RscMeasurement, match: str) -> None:
    with pytest.raises(GattEncodeError, match=match):
        bytes(message)


def test_encode_rounds_half_to_even() -> None:
    # 1.5 and 2.5 units of 1/256 m/s: round() goes to the even neighbour
    assert encode_rsc(RscMeasurement(1.5 / 256, 0, None, None, False))[1:3] == b"\x02\x00"
    assert encode_rsc(RscMeasurement(2.5 / 256, 0, None, None, False))[1:3] == b"\x02\x00"
    assert encode_rsc(RscMeasurement(3.0, 0, 1.234, None, False))[4:6] == (123).to_bytes(
        2, "little"
    )


# --- properties ----------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def raw_fields(draw: st.DrawFn) -> tuple[int, int, int | None, int | None, bool, int]:
    return (
        draw(u16),
        draw(st.integers(0, 0xFF)),
        draw(st.none() | u16),
        draw(st.none() | u32),
        draw(st.booleans()),
        draw(st.integers(0, 31)) << 3,
    )


@settings(max_examples=500)
@given(raw_fields())
def test_frames_round_trip_bytes(
    fields: tuple[int, int, int | None, int | None, bool, int],
) -> None:
    speed, cadence, stride, distance, running, reserved = fields
    frame = build_frame(speed, cadence, stride, distance, running=running, reserved=reserved)
    assert bytes(decode_rsc(frame)) == frame


@settings(max_examples=500)
@given(raw_fields())
def test_messages_round_trip(fields: tuple[int, int, int | None, int | None, bool, int]) -> None:
    speed, cadence, stride, distance, running, reserved = fields
    m = RscMeasurement(
        speed_mps=speed / 256,
        cadence_per_min=cadence,
        stride_length_m=None if stride is None else stride / 100,
        total_distance_m=None if distance is None else distance / 10,
        running=running,
        reserved_flags=reserved,
    )
    assert decode_rsc(encode_rsc(m)) == m


@settings(max_examples=1000)
@given(st.binary(max_size=14))
def test_arbitrary_bytes_decode_exactly_or_raise(frame: bytes) -> None:
    try:
        m = decode_rsc(frame)
    except GattDecodeError as err:
        error: GattDecodeError | None = err
    else:
        error = None
    if error is not None:
        assert 0 <= error.offset <= len(frame)
        assert error.data == frame
        return
    assert bytes(m) == frame


# --- RSC Feature ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_value", "expected"),
    [
        pytest.param("00 00", (), id="none"),
        pytest.param(
            "1f 00",
            (
                "instantaneous_stride_length",
                "total_distance",
                "walking_or_running_status",
                "calibration_procedure",
                "multiple_sensor_locations",
            ),
            id="all-five",
        ),
        pytest.param("06 00", ("total_distance", "walking_or_running_status"), id="x06"),
        pytest.param(
            "01 81",
            ("instantaneous_stride_length", "reserved_bit_8", "reserved_bit_15"),
            id="reserved-bits-kept",
        ),
    ],
)
def test_feature_names(hex_value: str, expected: tuple[str, ...]) -> None:
    data = bytes.fromhex(hex_value)
    feature = decode_rsc_feature(data)
    assert names(feature) == expected
    assert encode_rsc_feature(feature) == data


def test_feature_flags_are_the_spec_bits() -> None:
    assert RscFeature.INSTANTANEOUS_STRIDE_LENGTH == 1 << 0
    assert RscFeature.TOTAL_DISTANCE == 1 << 1
    assert RscFeature.WALKING_OR_RUNNING_STATUS == 1 << 2
    assert RscFeature.CALIBRATION_PROCEDURE == 1 << 3
    assert RscFeature.MULTIPLE_SENSOR_LOCATIONS == 1 << 4
    assert RscFeature.WALKING_OR_RUNNING_STATUS in decode_rsc_feature(b"\x04\x00")


@pytest.mark.parametrize("hex_value", ["", "04", "04 00 00"], ids=["empty", "one", "three"])
def test_feature_wrong_length(hex_value: str) -> None:
    with pytest.raises(GattDecodeError, match="expected 2 bytes") as info:
        decode_rsc_feature(bytes.fromhex(hex_value))
    assert info.value.characteristic == "rsc_feature"


def test_feature_encode_range() -> None:
    with pytest.raises(GattEncodeError):
        encode_rsc_feature(0x10000)


@given(u16)
def test_feature_round_trip(value: int) -> None:
    data = value.to_bytes(2, "little")
    assert encode_rsc_feature(decode_rsc_feature(data)) == data
    assert len(names(value)) == value.bit_count()
