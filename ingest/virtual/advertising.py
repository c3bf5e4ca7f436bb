"""BLE advertising-data parsing: the AD structures a central receives, as bleak reports them.

Pure (no bumble, no event loop): :func:`parse_advertising_data` turns the AD structures of an
advertisement or scan response (Core Specification Supplement, Part A) into name, service
UUIDs, manufacturer data, service data and TX power, the fields bleak's ``AdvertisementData``
carries; :class:`Advertisement` is one merged advertisement as the virtual central sees it.
Kept apart from the central so the parsing can be tested and reused without a radio.
"""

from __future__ import annotations

import uuid as uuid_lib
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Advertisement:
    """One merged advertisement as seen by the central.

    Attributes:
        address: advertiser address, upper-case ``AA:BB:CC:DD:EE:FF``.
        local_name: complete or shortened local name, ``None`` if absent.
        service_uuids: 128-bit lower-case service UUIDs, in order, without duplicates.
        manufacturer_data: company identifier → payload.
        service_data: 128-bit service UUID → payload.
        tx_power_dbm: advertised TX power level in dBm, ``None`` if absent.
        rssi_dbm: received signal strength in dBm.
    """

    address: str
    local_name: str | None
    service_uuids: tuple[str, ...]
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    tx_power_dbm: int | None = None
    rssi_dbm: int = -127


_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


def _uuid16(value: int) -> str:
    return f"{value:08x}{_BASE_UUID_SUFFIX}"


def parse_advertising_data(
    data: bytes,
) -> tuple[str | None, list[str], dict[int, bytes], dict[str, bytes], int | None]:
    """Parses AD structures into (local_name, service_uuids, manufacturer_data, service_data,
    tx_power_dbm). Malformed trailing bytes are ignored, as OS stacks do.

    >>> parse_advertising_data(bytes.fromhex("020106 03030d18 0409414243"))[:2]
    ('ABC', ['0000180d-0000-1000-8000-00805f9b34fb'])
    """
    name: str | None = None
    short_name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    offset = 0
    while offset + 1 < len(data):
        length = data[offset]
        if length == 0 or offset + 1 + length > len(data):
            break
        ad_type = data[offset + 1]
        value = data[offset + 2 : offset + 1 + length]
        offset += 1 + length
        match ad_type:
            case 0x02 | 0x03:
                uuids += [
                    _uuid16(int.from_bytes(value[i : i + 2], "little"))
                    for i in range(0, len(value) - 1, 2)
                ]
            case 0x04 | 0x05:
                uuids += [
                    _uuid16(int.from_bytes(value[i : i + 4], "little"))
                    for i in range(0, len(value) - 3, 4)
                ]
            case 0x06 | 0x07:
                uuids += [
                    str(uuid_lib.UUID(bytes=value[i : i + 16][::-1]))
                    for i in range(0, len(value) - 15, 16)
                ]
            case 0x08:
                short_name = value.decode(errors="replace")
            case 0x09:
                name = value.decode(errors="replace")
            case 0x0A if len(value) == 1:
                tx_power = int.from_bytes(value, "little", signed=True)
            case 0x16 if len(value) >= 2:
                service_data[_uuid16(int.from_bytes(value[:2], "little"))] = bytes(value[2:])
            case 0xFF if len(value) >= 2:
                manufacturer[int.from_bytes(value[:2], "little")] = bytes(value[2:])
            case _:
                pass
    return name or short_name, list(dict.fromkeys(uuids)), manufacturer, service_data, tx_power
