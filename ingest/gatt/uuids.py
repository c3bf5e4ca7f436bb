"""GATT UUIDs as bleak spells them: 128-bit, lower case, on the Bluetooth Base UUID.

The 16-bit assigned numbers are from the Bluetooth SIG "Assigned Numbers" document (sections
3.4 GATT Services and 3.8 Characteristics); services and characteristics are specified in the
Heart Rate Service (HRS 1.0), Running Speed and Cadence Service (RSCS 1.0), Battery Service
(BAS 1.0) and Device Information Service (DIS 1.1).
"""

from __future__ import annotations

from typing import Final

BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
"""Tail of the Bluetooth Base UUID ``0000xxxx-0000-1000-8000-00805f9b34fb`` (Core 5.x, Vol 3,
Part B, 2.5.1)."""


def uuid16(n: int) -> str:
    """The 128-bit UUID string of the 16-bit assigned number ``n`` (lower case, as bleak).

    >>> uuid16(0x2A37)
    '00002a37-0000-1000-8000-00805f9b34fb'

    Raises:
        ValueError: ``n`` is not in 0..0xFFFF.
    """
    if not 0 <= n <= 0xFFFF:
        raise ValueError(f"a 16-bit UUID must be in 0..0xFFFF, got {n:#x}")
    return f"{n:08x}{BASE_UUID_SUFFIX}"


# Services
HEART_RATE_SERVICE: Final = uuid16(0x180D)
"""Heart Rate Service (HRS 1.0)."""
RSC_SERVICE: Final = uuid16(0x1814)
"""Running Speed and Cadence Service (RSCS 1.0)."""
BATTERY_SERVICE: Final = uuid16(0x180F)
"""Battery Service (BAS 1.0)."""
DEVICE_INFORMATION_SERVICE: Final = uuid16(0x180A)
"""Device Information Service (DIS 1.1)."""

# Characteristics
HEART_RATE_MEASUREMENT: Final = uuid16(0x2A37)
"""Heart Rate Measurement (notify)."""
BODY_SENSOR_LOCATION: Final = uuid16(0x2A38)
"""Body Sensor Location (read, uint8 enum)."""
RSC_MEASUREMENT: Final = uuid16(0x2A53)
"""RSC Measurement (notify)."""
RSC_FEATURE: Final = uuid16(0x2A54)
"""RSC Feature (read, 16-bit flags)."""
BATTERY_LEVEL: Final = uuid16(0x2A19)
"""Battery Level (read/notify, uint8 percent)."""
MANUFACTURER_NAME: Final = uuid16(0x2A29)
"""Manufacturer Name String (read, UTF-8)."""
MODEL_NUMBER: Final = uuid16(0x2A24)
"""Model Number String (read, UTF-8)."""
FIRMWARE_REVISION: Final = uuid16(0x2A26)
"""Firmware Revision String (read, UTF-8)."""
