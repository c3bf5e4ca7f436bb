"""Registry, UUIDs, JSON decoding, hex parsing and the small characteristics."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ingest.gatt as gatt
from ingest.errors import GattDecodeError, GattEncodeError
from ingest.gatt import uuids
from ingest.gatt.registry import CHARACTERISTICS, decode_to_json, lookup, parse_hex
from ingest.gatt.simple import (
    BodySensorLocation,
    decode_battery_level,
    decode_body_sensor_location,
    decode_string,
    encode_battery_level,
    encode_body_sensor_location,
)

# --- UUIDs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constant", "expected"),
    [
        (uuids.HEART_RATE_SERVICE, "0000180d-0000-1000-8000-00805f9b34fb"),
        (uuids.HEART_RATE_MEASUREMENT, "00002a37-0000-1000-8000-00805f9b34fb"),
        (uuids.BODY_SENSOR_LOCATION, "00002a38-0000-1000-8000-00805f9b34fb"),
        (uuids.RSC_SERVICE, "00001814-0000-1000-8000-00805f9b34fb"),
        (uuids.RSC_MEASUREMENT, "00002a53-0000-1000-8000-00805f9b34fb"),
        (uuids.RSC_FEATURE, "00002a54-0000-1000-8000-00805f9b34fb"),
        (uuids.BATTERY_SERVICE, "0000180f-0000-1000-8000-00805f9b34fb"),
        (uuids.BATTERY_LEVEL, "00002a19-0000-1000-8000-00805f9b34fb"),
        (uuids.DEVICE_INFORMATION_SERVICE, "0000180a-0000-1000-8000-00805f9b34fb"),
        (uuids.MANUFACTURER_NAME, "00002a29-0000-1000-8000-00805f9b34fb"),
        (uuids.MODEL_NUMBER, "00002a24-0000-1000-8000-00805f9b34fb"),
        (uuids.FIRMWARE_REVISION, "00002a26-0000-1000-8000-00805f9b34fb"),
    ],
)
def test_uuid_constants(constant: str, expected: str) -> None:
    assert constant == expected


def test_uuid16_matches_bleak_normalisation() -> None:
    from bleak.uuids import normalize_uuid_16

    for n in (0x0000, 0x180D, 0x2A37, 0xFFFF):
        assert uuids.uuid16(n) == normalize_uuid_16(n)
    with pytest.raises(ValueError, match="16-bit"):
        uuids.uuid16(0x10000)
    with pytest.raises(ValueError, match="16-bit"):
        uuids.uuid16(-1)


# --- lookup --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "heart_rate_measurement",
        "HEART_RATE_MEASUREMENT",
        " heart_rate_measurement ",
        "2a37",
        "2A37",
        "0x2a37",
        "0X2A37",
        "00002a37-0000-1000-8000-00805f9b34fb",
        "00002A37-0000-1000-8000-00805F9B34FB",
    ],
)
def test_lookup_accepts_names_and_uuids(key: str) -> None:
    c = lookup(key)
    assert c.name == "heart_rate_measurement"
    assert c.uuid == uuids.HEART_RATE_MEASUREMENT
    assert c.uuid16 == 0x2A37
    assert c.service_uuid == uuids.HEART_RATE_SERVICE


def test_every_characteristic_is_found_by_each_key() -> None:
    expected = {
        "heart_rate_measurement": 0x2A37,
        "body_sensor_location": 0x2A38,
        "rsc_measurement": 0x2A53,
        "rsc_feature": 0x2A54,
        "battery_level": 0x2A19,
        "manufacturer_name": 0x2A29,
        "model_number": 0x2A24,
        "firmware_revision": 0x2A26,
    }
    assert {c.name: c.uuid16 for c in CHARACTERISTICS} == expected
    for c in CHARACTERISTICS:
        assert lookup(c.name) is lookup(c.uuid) is lookup(f"{c.uuid16:04x}") is c


@pytest.mark.parametrize(
    "key",
    ["heart_rate", "2a3", "2a370", "0x", "", "180d", uuids.HEART_RATE_SERVICE, "0xzzzz"],
    ids=[
        "bad-name",
        "3-digits",
        "5-digits",
        "prefix-only",
        "empty",
        "service",
        "service-uuid",
        "not-hex",
    ],
)
def test_lookup_unknown_lists_valid_names(key: str) -> None:
    with pytest.raises(KeyError) as info:
        lookup(key)
    message = str(info.value)
    assert "unknown characteristic" in message
    for c in CHARACTERISTICS:
        assert c.name in message


# --- decode_to_json ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hex_value", "expected"),
    [
        pytest.param(
            "2a37",
            "1e 4b 0a 00 00 03 00 04",
            {
                "heart_rate_bpm": 75,
                "contact": "detected",
                "energy_kj": 10,
                "rr_intervals_s": [0.75, 1.0],
                "rr_ticks": [768, 1024],
                "hr_uint16": False,
                "reserved_flags": 0,
            },
            id="heart-rate",
        ),
        pytest.param(
            "heart_rate_measurement",
            "04 00",
            {
                "heart_rate_bpm": 0,
                "contact": "not_detected",
                "energy_kj": None,
                "rr_intervals_s": [],
                "rr_ticks": [],
                "hr_uint16": False,
                "reserved_flags": 0,
            },
            id="heart-rate-no-contact",
        ),
        pytest.param(
            "0x2A53",
            "07 80 02 5a 8c 00 e8 03 00 00",
            {
                "speed_mps": 2.5,
                "cadence_per_min": 90,
                "stride_length_m": 1.4,
                "total_distance_m": 100.0,
                "running": True,
                "reserved_flags": 0,
            },
            id="rsc",
        ),
        pytest.param(
            "rsc_measurement",
            "00 00 03 b4",
            {
                "speed_mps": 3.0,
                "cadence_per_min": 180,
                "stride_length_m": None,
                "total_distance_m": None,
                "running": False,
                "reserved_flags": 0,
            },
            id="rsc-minimal",
        ),
        pytest.param(
            "rsc_feature",
            "07 00",
            {
                "features": [
                    "instantaneous_stride_length",
                    "total_distance",
                    "walking_or_running_status",
                ],
                "value": 7,
            },
            id="rsc-feature",
        ),
        pytest.param("battery_level", "55", {"level_pct": 85}, id="battery"),
        pytest.param("2a38", "01", {"body_sensor_location": "chest"}, id="location"),
        pytest.param("2a38", "09", {"body_sensor_location": "unknown_9"}, id="location-unknown"),
        pytest.param(
            "manufacturer_name", "50 6f 6c 61 72 00", {"manufacturer": "Polar"}, id="manufacturer"
        ),
        pytest.param("model_number", "48 31 30", {"model": "H10"}, id="model"),
        pytest.param("firmware_revision", "35 2e 30 2e 30", {"firmware": "5.0.0"}, id="firmware"),
    ],
)
def test_decode_to_json(key: str, hex_value: str, expected: dict[str, object]) -> None:
    out = decode_to_json(key, bytes.fromhex(hex_value))
    assert out == expected
    assert json.loads(json.dumps(out)) == expected  # JSON-ready: null for None, lists


def test_decode_to_json_propagates_errors() -> None:
    with pytest.raises(GattDecodeError, match="at byte 2"):
        decode_to_json("heart_rate_measurement", bytes.fromhex("10 48 00"))
    with pytest.raises(KeyError, match="valid names"):
        decode_to_json("cycling_power", b"\x00")


# --- parse_hex -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e 4b 00", "1e4b00"),
        ("1e4b00", "1e4b00"),
        ("1E:4B:00", "1e4b00"),
        ("0x1e 0x4b", "1e4b"),
        ("0X1E,0X4B", "1e4b"),
        ("  16 48\t01 04\n", "16480104"),
        ("1e-4b-00", "1e4b00"),
        ("0x16480104", "16480104"),
        ("0x1 0xa", "010a"),
        ("", ""),
    ],
)
def test_parse_hex(text: str, expected: str) -> None:
    assert parse_hex(text) == bytes.fromhex(expected)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1e4", "odd number of hex digits"),
        ("zz", "not hex"),
        ("1e 4g", "not hex"),
        ("0x", "not hex"),
        ("1e;4b", "not hex"),
        ("0x0x1e", "not hex"),
    ],
)
def test_parse_hex_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_hex(text)


@given(st.binary(max_size=40))
def test_parse_hex_round_trip(data: bytes) -> None:
    assert parse_hex(data.hex()) == data
    assert parse_hex(data.hex(" ")) == data
    assert parse_hex(data.hex(":").upper()) == data
    assert parse_hex(" ".join(f"0x{b:02x}" for b in data)) == data


# --- simple characteristics ----------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 50, 100])
def test_battery_level_round_trip(level: int) -> None:
    assert decode_battery_level(encode_battery_level(level)) == level


@pytest.mark.parametrize(
    ("hex_value", "offset", "match"),
    [
        ("", 0, "expected 1 byte"),
        ("64 00", 1, "expected 1 byte"),
        ("65", 0, "above 100"),
        ("ff", 0, "above 100"),
    ],
    ids=["empty", "two-bytes", "101", "255"],
)
def test_battery_level_errors(hex_value: str, offset: int, match: str) -> None:
    with pytest.raises(GattDecodeError, match=match) as info:
        decode_battery_level(bytes.fromhex(hex_value))
    assert info.value.offset == offset
    assert info.value.characteristic == "battery_level"


@pytest.mark.parametrize("level", [-1, 101, True, 50.0])
def test_battery_level_encode_errors(level: object) -> None:
    with pytest.raises(GattEncodeError):
        encode_battery_level(level)  # type: ignore[arg-type]


def test_body_sensor_location_codes() -> None:
    expected = ["other", "chest", "wrist", "finger", "hand", "ear_lobe", "foot"]
    for code, name in enumerate(expected):
        assert decode_body_sensor_location(bytes([code])) == name
        assert encode_body_sensor_location(BodySensorLocation(code)) == bytes([code])
    for code in range(7, 256):
        assert decode_body_sensor_location(bytes([code])) == f"unknown_{code}"
    with pytest.raises(GattDecodeError, match="expected 1 byte"):
        decode_body_sensor_location(b"")
    with pytest.raises(GattEncodeError):
        encode_body_sensor_location(256)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Polar Electro Oy", "Polar Electro Oy"),
        (b"Garmin\x00\x00\x00", "Garmin"),
        (b"", ""),
        (b"\x00", ""),
        ("Stryd Ü".encode(), "Stryd Ü"),
        (b"bad\xff\xfeutf8", "bad\ufffd\ufffdutf8"),
        (b"mid\x00null", "mid\x00null"),
    ],
    ids=["plain", "nul-padded", "empty", "only-nul", "utf8", "invalid-utf8", "inner-nul-kept"],
)
def test_decode_string(raw: bytes, expected: str) -> None:
    assert decode_string(raw) == expected


def test_package_reexports() -> None:
    for name in gatt.__all__:
        assert hasattr(gatt, name), name
    from ingest.gatt import rsc

    assert gatt.rsc_feature_names is rsc.names
