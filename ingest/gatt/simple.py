"""Small characteristics: Battery Level, Body Sensor Location, Device Information strings.

Pure codecs, no I/O. References: Battery Service BAS 1.0 (3.1 Battery Level, uint8 percent
0..100), Heart Rate Service HRS 1.0 (3.2 Body Sensor Location, uint8 enum), Device Information
Service DIS 1.1 (3.2-3.9 UTF-8 strings) and the GATT Specification Supplement.
"""

from __future__ import annotations

import enum
from typing import Final

from ingest.errors import GattDecodeError, GattEncodeError

BATTERY_LEVEL: Final = "battery_level"
BODY_SENSOR_LOCATION: Final = "body_sensor_location"

BATTERY_LEVEL_MAX_PCT: Final = 100
"""Battery Level is a percentage, 0..100; 101..255 are prohibited (BAS 1.0, 3.1)."""


def _one_byte(characteristic: str, data: bytes | bytearray) -> int:
    if len(data) != 1:
        raise GattDecodeError(
            characteristic,
            min(len(data), 1),
            f"expected 1 byte (uint8), got {len(data)}",
            bytes(data),
        )
    return data[0]


def decode_battery_level(data: bytes | bytearray) -> int:
    """Battery level in percent (uint8, 0..100).

    Raises:
        GattDecodeError: not exactly one byte, or a value above 100.
    """
    level = _one_byte(BATTERY_LEVEL, data)
    if level > BATTERY_LEVEL_MAX_PCT:
        raise GattDecodeError(
            BATTERY_LEVEL, 0, f"battery level {level} % is above 100", bytes(data)
        )
    return level


def encode_battery_level(level_pct: int) -> bytes:
    """Encode a battery level in percent; raises :class:`GattEncodeError` outside 0..100."""
    if isinstance(level_pct, bool) or not isinstance(level_pct, int):
        raise GattEncodeError(f"{BATTERY_LEVEL}: level must be an int, got {level_pct!r}")
    if not 0 <= level_pct <= BATTERY_LEVEL_MAX_PCT:
        raise GattEncodeError(f"{BATTERY_LEVEL}: level {level_pct} out of range 0..100")
    return bytes((level_pct,))


class BodySensorLocation(enum.IntEnum):
    """Body Sensor Location codes (HRS 1.0, 3.2.1.1); 7..255 are reserved.

    Decoding is open: unknown codes become ``"unknown_<n>"`` (see
    :func:`decode_body_sensor_location`), never an error.
    """

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


_LOCATION_NAMES: Final = {loc.value: loc.name.lower() for loc in BodySensorLocation}


def decode_body_sensor_location(data: bytes | bytearray) -> str:
    """The snake_case location name (``"chest"``), or ``"unknown_<n>"`` for a reserved code.

    Raises:
        GattDecodeError: not exactly one byte.
    """
    code = _one_byte(BODY_SENSOR_LOCATION, data)
    return _LOCATION_NAMES.get(code, f"unknown_{code}")


def encode_body_sensor_location(loc: BodySensorLocation | int) -> bytes:
    """Encode a location code (uint8); raises :class:`GattEncodeError` outside 0..255."""
    if isinstance(loc, bool) or not isinstance(loc, int) or not 0 <= loc <= 0xFF:
        raise GattEncodeError(f"{BODY_SENSOR_LOCATION}: code must be an int 0..255, got {loc!r}")
    return bytes((int(loc),))


def decode_string(data: bytes | bytearray) -> str:
    """A Device Information string (UTF-8): trailing NULs stripped (some devices pad with them),
    invalid UTF-8 replaced by U+FFFD rather than raising."""
    return bytes(data).rstrip(b"\x00").decode("utf-8", errors="replace")


def encode_string(text: str) -> bytes:
    """Encode a Device Information string as UTF-8 (no terminator)."""
    return text.encode("utf-8")
