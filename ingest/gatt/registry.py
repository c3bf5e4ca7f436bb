"""Table of the characteristics stridewatch reads, by short name and UUID, plus JSON decoding.

Used by the collector (UUIDs), the CLI (``decode heart_rate_measurement "16 48 01 04"``) and the
tests. Pure: no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ingest.gatt import uuids
from ingest.gatt.heart_rate import decode_heart_rate
from ingest.gatt.rsc import decode_rsc, decode_rsc_feature, names
from ingest.gatt.simple import (
    decode_battery_level,
    decode_body_sensor_location,
    decode_string,
)

JsonDecoder = Callable[[bytes], dict[str, object]]


@dataclass(frozen=True, slots=True)
class Characteristic:
    """One known characteristic."""

    name: str
    """Short snake_case name (``"heart_rate_measurement"``)."""
    uuid: str
    """128-bit UUID, lower case, as bleak uses it."""
    uuid16: int
    """The 16-bit assigned number (``0x2A37``)."""
    service_uuid: str
    """UUID of the service that holds it."""
    title: str
    """Name in the Bluetooth Assigned Numbers / GATT Specification Supplement."""
    decode_json: JsonDecoder
    """Decode a value into a JSON-ready dict; raises :class:`GattDecodeError`."""


def _heart_rate_json(data: bytes) -> dict[str, object]:
    m = decode_heart_rate(data)
    return {
        "heart_rate_bpm": m.heart_rate_bpm,
        "contact": m.contact.value,
        "energy_kj": m.energy_kj,
        "rr_intervals_s": list(m.rr_intervals_s),
        "rr_ticks": list(m.rr_ticks),
        "hr_uint16": m.hr_uint16,
        "reserved_flags": m.reserved_flags,
    }


def _rsc_json(data: bytes) -> dict[str, object]:
    m = decode_rsc(data)
    return {
        "speed_mps": m.speed_mps,
        "cadence_per_min": m.cadence_per_min,
        "stride_length_m": m.stride_length_m,
        "total_distance_m": m.total_distance_m,
        "running": m.running,
        "reserved_flags": m.reserved_flags,
    }


def _rsc_feature_json(data: bytes) -> dict[str, object]:
    f = decode_rsc_feature(data)
    return {"features": list(names(f)), "value": int(f)}


def _battery_json(data: bytes) -> dict[str, object]:
    return {"level_pct": decode_battery_level(data)}


def _location_json(data: bytes) -> dict[str, object]:
    return {"body_sensor_location": decode_body_sensor_location(data)}


def _string_json(key: str) -> JsonDecoder:
    def decode(data: bytes) -> dict[str, object]:
        return {key: decode_string(data)}

    return decode


def _char(name: str, number: int, service: str, title: str, decode: JsonDecoder) -> Characteristic:
    return Characteristic(name, uuids.uuid16(number), number, service, title, decode)


CHARACTERISTICS: Final = (
    _char(
        "heart_rate_measurement",
        0x2A37,
        uuids.HEART_RATE_SERVICE,
        "Heart Rate Measurement",
        _heart_rate_json,
    ),
    _char(
        "body_sensor_location",
        0x2A38,
        uuids.HEART_RATE_SERVICE,
        "Body Sensor Location",
        _location_json,
    ),
    _char("rsc_measurement", 0x2A53, uuids.RSC_SERVICE, "RSC Measurement", _rsc_json),
    _char("rsc_feature", 0x2A54, uuids.RSC_SERVICE, "RSC Feature", _rsc_feature_json),
    _char("battery_level", 0x2A19, uuids.BATTERY_SERVICE, "Battery Level", _battery_json),
    # JSON keys of the strings follow ``SensorInfo`` (manufacturer, model, firmware).
    _char(
        "manufacturer_name",
        0x2A29,
        uuids.DEVICE_INFORMATION_SERVICE,
        "Manufacturer Name String",
        _string_json("manufacturer"),
    ),
    _char(
        "model_number",
        0x2A24,
        uuids.DEVICE_INFORMATION_SERVICE,
        "Model Number String",
        _string_json("model"),
    ),
    _char(
        "firmware_revision",
        0x2A26,
        uuids.DEVICE_INFORMATION_SERVICE,
        "Firmware Revision String",
        _string_json("firmware"),
    ),
)
"""Every known characteristic."""

_BY_NAME: Final = {c.name: c for c in CHARACTERISTICS}
_BY_UUID: Final = {c.uuid: c for c in CHARACTERISTICS}
_UUID128: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UUID16: Final = re.compile(r"^(?:0x)?([0-9a-f]{4})$")


def lookup(name_or_uuid: str) -> Characteristic:
    """Find a characteristic by short name, 16-bit UUID (``2a37``, ``0x2A37``) or full UUID.

    Case-insensitive; surrounding whitespace is ignored.

    Raises:
        KeyError: unknown name or UUID; the message lists the valid names.
    """
    key = name_or_uuid.strip().lower()
    found = _BY_NAME.get(key)
    if found is None:
        m16 = _UUID16.match(key)
        if m16:
            key = uuids.uuid16(int(m16.group(1), 16))
        if m16 or _UUID128.match(key):
            found = _BY_UUID.get(key)
    if found is None:
        valid = ", ".join(f"{c.name} ({c.uuid16:#06x})" for c in CHARACTERISTICS)
        raise KeyError(f"unknown characteristic {name_or_uuid!r}; valid names: {valid}")
    return found


def decode_to_json(name_or_uuid: str, data: bytes | bytearray) -> dict[str, object]:
    """Decode ``data`` as the named characteristic into a JSON-ready dict.

    Keys are the record field names (``heart_rate_bpm``, ``rr_intervals_s``, ``speed_mps``, ...);
    absent optional fields are ``None``; enums are their string values.

    Raises:
        KeyError: unknown characteristic (see :func:`lookup`).
        GattDecodeError: malformed value.
    """
    return lookup(name_or_uuid).decode_json(bytes(data))


_SEPARATORS: Final = re.compile(r"[\s:,\-]+")
_HEX_DIGITS: Final = frozenset(string.hexdigits)


def parse_hex(text: str) -> bytes:
    """Parse bytes written as hex: ``"1e 4b 00"``, ``"1e4b00"``, ``"1E:4B:00"``, ``"0x1e 0x4b"``.

    Tokens are separated by whitespace, ``:``, ``,`` or ``-``, may carry a ``0x`` prefix, and hold
    an even number of hex digits (a lone digit between separators is one byte: ``"0x1"`` is
    ``01``). An empty string gives ``b""``.

    >>> parse_hex("16 48 01 04").hex(" ")
    '16 48 01 04'

    Raises:
        ValueError: anything else, naming the offending token.
    """
    out = bytearray()
    tokens = [t for t in _SEPARATORS.split(text.strip()) if t]
    for token in tokens:
        digits = token[2:] if token[:2].lower() == "0x" else token
        if not digits or not _HEX_DIGITS.issuperset(digits):
            raise ValueError(
                f"not hex: {token!r} in {text!r} (expected e.g. '1e 4b 00' or '1e4b00')"
            )
        if len(digits) == 1:
            digits = "0" + digits
        elif len(digits) % 2:
            raise ValueError(
                f"odd number of hex digits in {token!r} of {text!r}: cannot split into bytes"
            )
        out += bytes.fromhex(digits)
    return bytes(out)
