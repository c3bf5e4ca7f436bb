"""Heart Rate Measurement (0x2A37) codec: pure, no I/O.

Wire format (Heart Rate Service HRS 1.0, section 3.1; GATT Specification Supplement, "Heart
Rate Measurement"), little endian::

    flags        uint8
    heart rate   uint8, or uint16 when flags bit 0 is set          (beats per minute)
    energy       uint16, present when flags bit 3 is set           (kJ since reset, saturates)
    RR intervals uint16 each, when flags bit 4 is set: every       (1/1024 s, oldest first)
                 remaining byte pair of the frame, zero or more

Flags bits 1-2 are the sensor contact status: bit 2 = contact detection supported, bit 1 =
contact detected. ``0b10`` (supported, not detected) means *no* contact; with bit 2 clear the
strap does not report contact and bit 1 carries no meaning (``0b01`` is decoded as
:attr:`Contact.UNSUPPORTED` like ``0b00`` and is the one non-canonical form: it re-encodes as
``0b00``). Bits 5-7 are reserved for future use: tolerated and kept in ``reserved_flags``.

RR intervals stay integer ticks of 1/1024 s (``rr_ticks``); ``ticks / 1024`` in seconds is exact
as a float. Treating them as milliseconds, or ignoring bit 3 (which shifts every RR by two
bytes), are the classic bugs this module is tested against.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ingest.errors import GattDecodeError, GattEncodeError
from ingest.records import Contact

CHARACTERISTIC: Final = "heart_rate_measurement"
"""Short name used in :class:`GattDecodeError` and the registry."""

RR_TICKS_PER_S: Final = 1024
"""RR interval resolution: 1/1024 s per tick (HRS 1.0, 3.1.1.5)."""

MAX_RR_IN_20_BYTE_FRAME: Final = 9
"""RR values that fit a default-MTU notification (ATT_MTU 23 -> 20 value bytes) with a uint8 heart
rate and no energy field: 1 flags + 1 HR + 9 x 2. With energy or a uint16 HR it is 8, with both 7.
Longer frames (larger MTU) are decoded all the same."""

RESERVED_FLAGS_MASK: Final = 0xE0
"""Flags bits 5-7, reserved for future use (HRS 1.0, 3.1.1.1)."""


class HeartRateFlag(enum.IntFlag):
    """Heart Rate Measurement flags byte (HRS 1.0, 3.1.1.1)."""

    HR_UINT16 = 0x01
    """Heart rate value format: uint16 (else uint8)."""
    CONTACT_DETECTED = 0x02
    """Sensor contact detected (meaningful only with ``CONTACT_SUPPORTED``)."""
    CONTACT_SUPPORTED = 0x04
    """Sensor contact feature supported."""
    ENERGY_EXPENDED = 0x08
    """Energy expended field (uint16 kJ) present."""
    RR_INTERVALS = 0x10
    """One or more RR interval fields (uint16, 1/1024 s) present."""


_CONTACT_BITS: Final = {
    Contact.UNSUPPORTED: 0x00,
    Contact.NOT_DETECTED: HeartRateFlag.CONTACT_SUPPORTED.value,
    Contact.DETECTED: HeartRateFlag.CONTACT_SUPPORTED.value | HeartRateFlag.CONTACT_DETECTED.value,
}
_CONTACT_FROM_BITS: Final = (
    Contact.UNSUPPORTED,  # 0b00
    Contact.UNSUPPORTED,  # 0b01: bit 1 without bit 2, non-canonical
    Contact.NOT_DETECTED,  # 0b10
    Contact.DETECTED,  # 0b11
)


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement frame, values exactly as on the wire.

    ``bytes(m)`` re-encodes it; for every canonical frame ``bytes(from_bytes(b)) == b`` (see the
    module docstring for the one non-canonical contact code). Values are range-checked when
    encoding (:class:`GattEncodeError`), not at construction.
    """

    heart_rate_bpm: int
    """Heart rate, beats per minute, as sent (0 means the sensor has no value)."""
    contact: Contact
    """Skin contact status from flags bits 1-2."""
    energy_kj: int | None
    """Energy expended since the last reset, kJ (uint16, saturates at 65535); None if absent."""
    rr_ticks: tuple[int, ...]
    """RR intervals in 1/1024 s ticks (uint16 each), oldest first; usually 0..9 per frame."""
    hr_uint16: bool = False
    """Flags bit 0: the heart rate was (is to be) sent as uint16; kept for exact re-encoding."""
    reserved_flags: int = 0
    """Flags bits 5-7 as received, in place (``flags & 0xE0``); 0 from conforming sensors."""
    rr_flag_empty: bool = False
    """Flags bit 4 set but no RR values in the frame (a normal frame between beats); kept for
    exact re-encoding. Bit 4 is always set when ``rr_ticks`` is non-empty."""

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        """RR intervals in seconds, ``ticks / 1024`` (exact in binary floating point)."""
        return tuple([t / RR_TICKS_PER_S for t in self.rr_ticks])

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> HeartRateMeasurement:
        """Decode one frame; raises :class:`GattDecodeError` (with the byte offset) if malformed."""
        return decode_heart_rate(data)

    def __bytes__(self) -> bytes:
        """Encode; raises :class:`GattEncodeError` for values that do not fit their field."""
        return encode_heart_rate(self)


def seconds_to_ticks(rr_s: float, *, exact: bool = True) -> int:
    """Convert an RR interval in seconds to 1/1024 s ticks.

    Args:
        rr_s: RR interval, seconds.
        exact: if True (default), ``rr_s`` must be a whole number of ticks, otherwise
            :class:`ValueError`; if False the value is rounded to the nearest tick (half to even).

    >>> seconds_to_ticks(0.75)
    768
    >>> seconds_to_ticks(0.8, exact=False)
    819
    """
    if not math.isfinite(rr_s):
        raise ValueError(f"RR interval must be finite, got {rr_s!r}")
    scaled = rr_s * RR_TICKS_PER_S
    ticks = round(scaled)
    if exact and ticks != scaled:
        raise ValueError(
            f"RR interval {rr_s!r} s is not a whole number of 1/1024 s ticks "
            f"({scaled!r}); pass exact=False to round"
        )
    return ticks


# --- decoding ------------------------------------------------------------------------------

_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_U8_U16: Final = struct.Struct("<BH")
_U16_U16: Final = struct.Struct("<HH")

_Layout = tuple[struct.Struct, int, Contact, bool, bool, bool, int]
"""Per flags byte: header struct (at offset 1), end of header, contact, has energy, has RR,
uint16 HR, reserved bits."""


def _layout(flags: int) -> _Layout:
    hr16 = bool(flags & HeartRateFlag.HR_UINT16)
    energy = bool(flags & HeartRateFlag.ENERGY_EXPENDED)
    header = (_U16_U16 if hr16 else _U8_U16) if energy else (_U16 if hr16 else _U8)
    return (
        header,
        1 + header.size,
        _CONTACT_FROM_BITS[(flags >> 1) & 0b11],
        energy,
        bool(flags & HeartRateFlag.RR_INTERVALS),
        hr16,
        flags & RESERVED_FLAGS_MASK,
    )


_LAYOUTS: Final = tuple(_layout(f) for f in range(256))
_RR_STRUCTS: Final = tuple(struct.Struct(f"<{n}H") for n in range(256))
"""Unpackers for 0..255 RR values (a 512-byte maximum attribute value holds at most 255)."""


def _fast_constructor() -> Callable[
    [int, Contact, int | None, tuple[int, ...], bool, int, bool], HeartRateMeasurement
]:
    """Build instances without the frozen dataclass ``__init__`` (one ``object.__setattr__``
    per field); the slot descriptors are set directly: twice as fast, same result."""
    new = object.__new__
    cls = HeartRateMeasurement
    slots = cls.__dict__
    s_hr = slots["heart_rate_bpm"].__set__
    s_contact = slots["contact"].__set__
    s_energy = slots["energy_kj"].__set__
    s_rr = slots["rr_ticks"].__set__
    s_hr16 = slots["hr_uint16"].__set__
    s_res = slots["reserved_flags"].__set__
    s_empty = slots["rr_flag_empty"].__set__

    def make(
        hr: int,
        contact: Contact,
        energy: int | None,
        rr: tuple[int, ...],
        hr16: bool,
        reserved: int,
        empty: bool,
    ) -> HeartRateMeasurement:
        m = new(cls)
        s_hr(m, hr)
        s_contact(m, contact)
        s_energy(m, energy)
        s_rr(m, rr)
        s_hr16(m, hr16)
        s_res(m, reserved)
        s_empty(m, empty)
        return m

    return make


_make: Final = _fast_constructor()


def _error(offset: int, reason: str, data: bytes | bytearray) -> GattDecodeError:
    return GattDecodeError(CHARACTERISTIC, offset, reason, bytes(data))


def _truncated(data: bytes | bytearray, layout: _Layout) -> GattDecodeError:
    n = len(data)
    hr16 = layout[5]
    hr_end = 3 if hr16 else 2
    if n < hr_end:
        fmt = "uint16" if hr16 else "uint8"
        return _error(
            1, f"truncated heart rate: {fmt} needs {hr_end - 1} byte(s), {n - 1} present", data
        )
    return _error(
        hr_end, f"truncated energy expended: uint16 needs 2 bytes, {n - hr_end} present", data
    )


def decode_heart_rate(data: bytes | bytearray) -> HeartRateMeasurement:
    """Decode one Heart Rate Measurement frame (the fast path; same as ``from_bytes``).

    Raises:
        GattDecodeError: empty frame, truncated heart rate or energy field, an odd number of RR
            bytes, or bytes after the header while the RR flag (bit 4) is clear.
    """
    n = len(data)
    if not n:
        raise _error(0, "empty frame: no flags byte", data)
    layout = _LAYOUTS[data[0]]
    header, end, contact, has_energy, has_rr, hr16, reserved = layout
    if n < end:
        raise _truncated(data, layout)
    if has_energy:
        hr, energy = header.unpack_from(data, 1)
    else:
        hr = header.unpack_from(data, 1)[0]
        energy = None
    rest = n - end
    if not rest:
        return _make(hr, contact, energy, (), hr16, reserved, has_rr)
    if not has_rr:
        raise _error(
            end, f"{rest} unexpected byte(s) after the header: RR flag (bit 4) is clear", data
        )
    if rest & 1:
        raise _error(
            n - 1, f"odd number of RR bytes ({rest}): the last RR interval is truncated", data
        )
    count = rest >> 1
    rr_struct = _RR_STRUCTS[count] if count < 256 else struct.Struct(f"<{count}H")
    return _make(hr, contact, energy, rr_struct.unpack_from(data, end), hr16, reserved, False)


# --- encoding ------------------------------------------------------------------------------


def _check_uint(name: str, value: object, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise GattEncodeError(f"{CHARACTERISTIC}: {name} must be an int, got {value!r}")
    if not 0 <= value <= maximum:
        raise GattEncodeError(f"{CHARACTERISTIC}: {name}={value} out of range 0..{maximum}")
    return value


def encode_heart_rate(m: HeartRateMeasurement) -> bytes:
    """Encode ``m`` exactly as described by its fields (see :class:`HeartRateMeasurement`).

    RR values are integer ticks, so encoding is exact; convert seconds with
    :func:`seconds_to_ticks` first. The frame length is not limited here (it depends on the MTU:
    see :data:`MAX_RR_IN_20_BYTE_FRAME`).

    Raises:
        GattEncodeError: a value outside its field (heart rate above 255 without ``hr_uint16``,
            negative values, non-integer ticks, reserved bits outside 5-7, ``rr_flag_empty``
            with RR values, an unknown contact value).
    """
    flags = 0
    if m.hr_uint16:
        flags |= HeartRateFlag.HR_UINT16
        fmt = "<BH"
        _check_uint("heart_rate_bpm", m.heart_rate_bpm, 0xFFFF)
    else:
        fmt = "<BB"
        hr = _check_uint("heart_rate_bpm", m.heart_rate_bpm, 0xFFFF)
        if hr > 0xFF:
            raise GattEncodeError(
                f"{CHARACTERISTIC}: heart_rate_bpm={hr} does not fit uint8; set hr_uint16=True"
            )
    try:
        flags |= _CONTACT_BITS[m.contact]
    except KeyError:
        raise GattEncodeError(
            f"{CHARACTERISTIC}: contact must be a Contact, got {m.contact!r}"
        ) from None
    values: list[int] = [0, m.heart_rate_bpm]
    if m.energy_kj is not None:
        flags |= HeartRateFlag.ENERGY_EXPENDED
        fmt += "H"
        values.append(_check_uint("energy_kj", m.energy_kj, 0xFFFF))
    if not isinstance(m.rr_ticks, tuple):
        raise GattEncodeError(f"{CHARACTERISTIC}: rr_ticks must be a tuple of int ticks")
    if m.rr_ticks:
        if m.rr_flag_empty:
            raise GattEncodeError(f"{CHARACTERISTIC}: rr_flag_empty=True but rr_ticks is not empty")
        flags |= HeartRateFlag.RR_INTERVALS
        fmt += f"{len(m.rr_ticks)}H"
        for i, t in enumerate(m.rr_ticks):
            values.append(_check_uint(f"rr_ticks[{i}]", t, 0xFFFF))
    elif m.rr_flag_empty:
        flags |= HeartRateFlag.RR_INTERVALS
    reserved = _check_uint("reserved_flags", m.reserved_flags, 0xFF)
    if reserved & ~RESERVED_FLAGS_MASK:
        raise GattEncodeError(
            f"{CHARACTERISTIC}: reserved_flags={reserved:#04x} has bits outside 5-7 (mask 0xe0)"
        )
    values[0] = flags | reserved
    return struct.pack(fmt, *values)
