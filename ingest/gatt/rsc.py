"""RSC Measurement (0x2A53) and RSC Feature (0x2A54) codecs: pure, no I/O.

Wire format of RSC Measurement (Running Speed and Cadence Service RSCS 1.0, section 3.1; GATT
Specification Supplement, "RSC Measurement"), little endian::

    flags            uint8
    speed            uint16   1/256 m/s
    cadence          uint8    1/min, as sent (steps/min or strides/min depending on the device)
    stride length    uint16   1/100 m, present when flags bit 0 is set
    total distance   uint32   1/10 m,  present when flags bit 1 is set (can reset)

Flags bit 2 is walking (0) / running (1), meaningful only when RSC Feature bit 2 says the sensor
supports it. Bits 3-7 are reserved: tolerated and kept in ``reserved_flags``.

Decoded values are ``raw / scale`` floats; encoding uses ``round(value * scale)`` (half to
even), so a value that came from the wire re-encodes to the same integer.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ingest.errors import GattDecodeError, GattEncodeError

CHARACTERISTIC: Final = "rsc_measurement"
"""Short name used in :class:`GattDecodeError` and the registry."""
FEATURE_CHARACTERISTIC: Final = "rsc_feature"

SPEED_PER_MPS: Final = 256
"""Instantaneous speed resolution: 1/256 m/s (RSCS 1.0, 3.1.1.2)."""
STRIDE_LENGTH_PER_M: Final = 100
"""Instantaneous stride length resolution: 1/100 m (RSCS 1.0, 3.1.1.4)."""
TOTAL_DISTANCE_PER_M: Final = 10
"""Total distance resolution: 1/10 m (RSCS 1.0, 3.1.1.5)."""

RESERVED_FLAGS_MASK: Final = 0xF8
"""RSC Measurement flags bits 3-7, reserved for future use."""


class RscFlag(enum.IntFlag):
    """RSC Measurement flags byte (RSCS 1.0, 3.1.1.1)."""

    STRIDE_LENGTH = 0x01
    """Instantaneous stride length present (uint16, 1/100 m)."""
    TOTAL_DISTANCE = 0x02
    """Total distance present (uint32, 1/10 m)."""
    RUNNING = 0x04
    """Walking (0) or running (1) status."""


class RscFeature(enum.IntFlag):
    """RSC Feature characteristic (0x2A54), a 16-bit flags value (RSCS 1.0, 3.2).

    Bits 5-15 are reserved; unknown bits are kept (``IntFlag`` boundary ``KEEP``) and named
    ``reserved_bit_<n>`` by :func:`names`.
    """

    INSTANTANEOUS_STRIDE_LENGTH = 0x0001
    """Bit 0: instantaneous stride length measurement supported."""
    TOTAL_DISTANCE = 0x0002
    """Bit 1: total distance measurement supported."""
    WALKING_OR_RUNNING_STATUS = 0x0004
    """Bit 2: walking or running status supported (else the RSC flags bit 2 means nothing)."""
    CALIBRATION_PROCEDURE = 0x0008
    """Bit 3: calibration procedure supported."""
    MULTIPLE_SENSOR_LOCATIONS = 0x0010
    """Bit 4: multiple sensor locations supported."""


_FEATURE_NAMES: Final = {m.value: str(m.name).lower() for m in RscFeature}


def names(flags: int) -> tuple[str, ...]:
    """Snake_case names of the set RSC Feature bits, lowest bit first.

    >>> names(RscFeature.TOTAL_DISTANCE | RscFeature.WALKING_OR_RUNNING_STATUS)
    ('total_distance', 'walking_or_running_status')
    >>> names(0x0101)
    ('instantaneous_stride_length', 'reserved_bit_8')
    """
    value = int(flags)
    out: list[str] = []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            out.append(_FEATURE_NAMES.get(1 << bit, f"reserved_bit_{bit}"))
        bit += 1
    return tuple(out)


def decode_rsc_feature(data: bytes | bytearray) -> RscFeature:
    """Decode the RSC Feature value (uint16 little endian, exactly 2 bytes).

    Raises:
        GattDecodeError: the value is not 2 bytes long.
    """
    if len(data) != 2:
        offset = min(len(data), 2)
        raise GattDecodeError(
            FEATURE_CHARACTERISTIC,
            offset,
            f"expected 2 bytes (uint16), got {len(data)}",
            bytes(data),
        )
    return RscFeature(int.from_bytes(data, "little"))


def encode_rsc_feature(f: RscFeature | int) -> bytes:
    """Encode RSC Feature flags as uint16 little endian; raises :class:`GattEncodeError`."""
    value = int(f)
    if not 0 <= value <= 0xFFFF:
        raise GattEncodeError(f"{FEATURE_CHARACTERISTIC}: {value:#x} out of range 0..0xffff")
    return value.to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class RscMeasurement:
    """One RSC Measurement frame, values as sent, scaled to SI units.

    ``bytes(m)`` re-encodes it; for every frame ``bytes(from_bytes(b)) == b``. Values are
    range-checked when encoding (:class:`GattEncodeError`), not at construction.
    """

    speed_mps: float
    """Instantaneous speed, m/s (wire uint16, 1/256 m/s: 0..255.996)."""
    cadence_per_min: int
    """Instantaneous cadence as sent, 1/min (uint8): steps/min on some devices, strides/min
    (one foot) on others."""
    stride_length_m: float | None
    """The sensor's "instantaneous stride length", metres (wire uint16, 1/100 m); None if
    absent. Devices differ on whether it is a stride or a step."""
    total_distance_m: float | None
    """Total distance since the sensor's reset, metres (wire uint32, 1/10 m); None if absent."""
    running: bool
    """Flags bit 2: running (True) or walking (False); only meaningful if RSC Feature bit 2."""
    reserved_flags: int = 0
    """Flags bits 3-7 as received, in place (``flags & 0xF8``); 0 from conforming sensors."""

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> RscMeasurement:
        """Decode one frame; raises :class:`GattDecodeError` (with the byte offset) if malformed."""
        return decode_rsc(data)

    def __bytes__(self) -> bytes:
        """Encode; raises :class:`GattEncodeError` for values that do not fit their field."""
        return encode_rsc(self)


# --- decoding ------------------------------------------------------------------------------

_STRUCTS: Final = (
    struct.Struct("<BHB"),
    struct.Struct("<BHBH"),
    struct.Struct("<BHBI"),
    struct.Struct("<BHBHI"),
)
"""Whole-frame unpackers indexed by flags bits 0-1."""


def _fast_constructor() -> Callable[
    [float, int, float | None, float | None, bool, int], RscMeasurement
]:
    """Build instances by setting the slot descriptors directly (see heart_rate)."""
    new = object.__new__
    cls = RscMeasurement
    slots = cls.__dict__
    s_speed = slots["speed_mps"].__set__
    s_cad = slots["cadence_per_min"].__set__
    s_stride = slots["stride_length_m"].__set__
    s_dist = slots["total_distance_m"].__set__
    s_run = slots["running"].__set__
    s_res = slots["reserved_flags"].__set__

    def make(
        speed: float,
        cadence: int,
        stride: float | None,
        distance: float | None,
        running: bool,
        reserved: int,
    ) -> RscMeasurement:
        m = new(cls)
        s_speed(m, speed)
        s_cad(m, cadence)
        s_stride(m, stride)
        s_dist(m, distance)
        s_run(m, running)
        s_res(m, reserved)
        return m

    return make


_make: Final = _fast_constructor()


def _error(offset: int, reason: str, data: bytes | bytearray) -> GattDecodeError:
    return GattDecodeError(CHARACTERISTIC, offset, reason, bytes(data))


def _length_error(data: bytes | bytearray, layout: int) -> GattDecodeError:
    n = len(data)
    fields = [("speed", 1, 2), ("cadence", 3, 1)]
    offset = 4
    if layout & RscFlag.STRIDE_LENGTH:
        fields.append(("stride length", offset, 2))
        offset += 2
    if layout & RscFlag.TOTAL_DISTANCE:
        fields.append(("total distance", offset, 4))
        offset += 4
    if n > offset:
        return _error(offset, f"{n - offset} unexpected byte(s) after the last field", data)
    for name, start, size in fields:
        if n < start + size:
            return _error(
                start, f"truncated {name}: needs {size} byte(s), {max(n - start, 0)} present", data
            )
    raise AssertionError("unreachable")  # pragma: no cover


def decode_rsc(data: bytes | bytearray) -> RscMeasurement:
    """Decode one RSC Measurement frame (the fast path; same as ``from_bytes``).

    Raises:
        GattDecodeError: empty frame, a truncated field, or bytes after the last field.
    """
    if not data:
        raise _error(0, "empty frame: no flags byte", data)
    flags = data[0]
    layout = flags & 0x03
    st = _STRUCTS[layout]
    if len(data) != st.size:
        raise _length_error(data, layout)
    if layout == 0:
        _, speed, cadence = st.unpack_from(data)
        return _make(speed / 256, cadence, None, None, bool(flags & 0x04), flags & 0xF8)
    if layout == 3:
        _, speed, cadence, stride, dist = st.unpack_from(data)
        return _make(
            speed / 256, cadence, stride / 100, dist / 10, bool(flags & 0x04), flags & 0xF8
        )
    if layout == 1:
        _, speed, cadence, stride = st.unpack_from(data)
        return _make(speed / 256, cadence, stride / 100, None, bool(flags & 0x04), flags & 0xF8)
    _, speed, cadence, dist = st.unpack_from(data)
    return _make(speed / 256, cadence, None, dist / 10, bool(flags & 0x04), flags & 0xF8)


# --- encoding ------------------------------------------------------------------------------


def _scaled(name: str, value: object, scale: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GattEncodeError(f"{CHARACTERISTIC}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise GattEncodeError(f"{CHARACTERISTIC}: {name}={value!r} is not finite")
    raw = round(value * scale)
    if not 0 <= raw <= maximum:
        raise GattEncodeError(
            f"{CHARACTERISTIC}: {name}={value!r} out of range 0..{maximum / scale:g} "
            f"(wire {raw} in units of 1/{scale})"
        )
    return raw


def encode_rsc(m: RscMeasurement) -> bytes:
    """Encode ``m``: scaled values are ``round(value * scale)`` (half to even), range-checked.

    Raises:
        GattEncodeError: a value outside its field, non-finite, or reserved bits outside 3-7.
    """
    flags = RscFlag.RUNNING.value if m.running else 0
    reserved = m.reserved_flags
    if isinstance(reserved, bool) or not isinstance(reserved, int) or not 0 <= reserved <= 0xFF:
        raise GattEncodeError(f"{CHARACTERISTIC}: reserved_flags must be an int 0..0xff")
    if reserved & ~RESERVED_FLAGS_MASK:
        raise GattEncodeError(
            f"{CHARACTERISTIC}: reserved_flags={reserved:#04x} has bits outside 3-7 (mask 0xf8)"
        )
    cadence = m.cadence_per_min
    if isinstance(cadence, bool) or not isinstance(cadence, int) or not 0 <= cadence <= 0xFF:
        raise GattEncodeError(f"{CHARACTERISTIC}: cadence_per_min={cadence!r} not an int 0..255")
    fmt = "<BHB"
    values = [0, _scaled("speed_mps", m.speed_mps, SPEED_PER_MPS, 0xFFFF), cadence]
    if m.stride_length_m is not None:
        flags |= RscFlag.STRIDE_LENGTH
        fmt += "H"
        values.append(_scaled("stride_length_m", m.stride_length_m, STRIDE_LENGTH_PER_M, 0xFFFF))
    if m.total_distance_m is not None:
        flags |= RscFlag.TOTAL_DISTANCE
        fmt += "I"
        values.append(
            _scaled("total_distance_m", m.total_distance_m, TOTAL_DISTANCE_PER_M, 0xFFFFFFFF)
        )
    values[0] = flags | reserved
    return struct.pack(fmt, *values)
