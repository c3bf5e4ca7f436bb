"""Virtual BLE peripherals: real bumble GATT servers advertising on an in-process link.

A :class:`VirtualPeripheral` is made by :meth:`ingest.virtual.radio.VirtualRadio.add_peripheral`;
it owns one bumble ``Device`` (with its own controller on the radio's ``LocalLink``), serves the
GATT database described by :class:`ServiceSpec` and advertises with legacy advertising PDUs,
like the heart-rate straps and footpods it stands in for.

Fault injection lives here, on the sensor side, so tests see what real radios do:
:meth:`VirtualPeripheral.drop_link` (the link is lost), :meth:`VirtualPeripheral.set_reachable`
(out of range: no advertising, connections refused).

bumble is untyped; every bumble object is held as ``Any`` in private attributes of this module.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_lib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bumble import att, core, gatt, hci

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())
_bumble_logger = logging.getLogger("bumble")

ScheduleJob = Callable[[str, Callable[[], Awaitable[None]]], None]
"""Hands a named background job to the radio's worker (``schedule(name, factory)``)."""

BLUETOOTH_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
"""SIG base UUID: a 128-bit UUID ending like this has a 16-bit (or 32-bit) short form."""

ADVERTISING_INTERVAL_MS: Final = 20.0
"""Advertising interval. A connection forms only on the peripheral's next advertisement, so
this bounds connect latency; 20 ms is the shortest legal legacy interval."""

LEGACY_ADV_DATA_MAX_BYTES: Final = 31
"""Legacy advertising PDUs carry at most 31 bytes of AD structures."""

DROP_REASON: Final = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
"""HCI reason used for a simulated radio drop (supervision timeout, as a real link loss)."""

_ATT_HANDLE_VALUE_NOTIFICATION: Final = bytes((0x1B,))  # ATT opcode, Core Vol 3 Part F 3.4.7.1
_AD_FLAGS: Final = 0x01
_AD_INCOMPLETE_16: Final = 0x02
_AD_COMPLETE_16: Final = 0x03
_AD_INCOMPLETE_128: Final = 0x06
_AD_COMPLETE_128: Final = 0x07
_AD_SHORT_NAME: Final = 0x08
_AD_COMPLETE_NAME: Final = 0x09
_FLAGS_LE_GENERAL_DISCOVERABLE_BR_EDR_NOT_SUPPORTED: Final = 0x06


@dataclass(frozen=True)
class CharacteristicSpec:
    """One characteristic of a virtual GATT server.

    Attributes:
        uuid: 128-bit lower-case UUID string, e.g. ``"00002a37-0000-1000-8000-00805f9b34fb"``.
        value: initial value returned by reads.
        read: whether reads are permitted (otherwise ATT "Read Not Permitted").
        notify: whether the characteristic notifies (gets a CCCD).
        write: whether writes (with and without response) are permitted; a write sets the value.
    """

    uuid: str
    value: bytes = b""
    read: bool = True
    notify: bool = False
    write: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """One primary service of a virtual GATT server.

    Attributes:
        uuid: 128-bit lower-case service UUID string.
        characteristics: the characteristics, in handle order.
    """

    uuid: str
    characteristics: tuple[CharacteristicSpec, ...]


def normalize_uuid(value: str) -> str:
    """Returns the 128-bit lower-case form of a UUID string (16-bit short forms accepted).

    >>> normalize_uuid("180D")
    '0000180d-0000-1000-8000-00805f9b34fb'
    """
    if len(value) == 4:
        return f"0000{value.lower()}{BLUETOOTH_BASE_UUID_SUFFIX}"
    return str(uuid_lib.UUID(value))


def short_uuid(value: str) -> int | None:
    """Returns the 16-bit short form of a SIG-base UUID, or ``None`` if it has none.

    >>> hex(short_uuid("0000180d-0000-1000-8000-00805f9b34fb") or 0)
    '0x180d'
    >>> short_uuid("6e400001-b5a3-f393-e0a9-e50e24dcca9e") is None
    True
    """
    full = normalize_uuid(value)
    if full.startswith("0000") and full.endswith(BLUETOOTH_BASE_UUID_SUFFIX):
        return int(full[4:8], 16)
    return None


def build_advertising_data(name: str, service_uuids: Sequence[str]) -> bytes:
    """Builds legacy advertising data: flags, service UUID lists, then the local name.

    The name is shortened (AD type 0x08) when the whole does not fit in 31 bytes, as real
    sensors do.

    Raises:
        ValueError: if the flags and service UUIDs alone exceed 31 bytes.
    """
    uuids16 = [s for s in (short_uuid(u) for u in service_uuids) if s is not None]
    uuids128 = [normalize_uuid(u) for u in service_uuids if short_uuid(u) is None]
    out = bytearray((2, _AD_FLAGS, _FLAGS_LE_GENERAL_DISCOVERABLE_BR_EDR_NOT_SUPPORTED))
    if uuids16:
        payload = b"".join(u.to_bytes(2, "little") for u in uuids16)
        out += bytes((len(payload) + 1, _AD_COMPLETE_16)) + payload
    if uuids128:
        payload = b"".join(uuid_lib.UUID(u).bytes[::-1] for u in uuids128)
        out += bytes((len(payload) + 1, _AD_COMPLETE_128)) + payload
    if len(out) > LEGACY_ADV_DATA_MAX_BYTES:
        raise ValueError(
            f"advertised service UUIDs need {len(out)} bytes, legacy advertising carries "
            f"{LEGACY_ADV_DATA_MAX_BYTES}: advertise fewer (or 16-bit) UUIDs"
        )
    encoded = name.encode()
    room = LEGACY_ADV_DATA_MAX_BYTES - len(out) - 2
    if encoded and room > 0:
        ad_type = _AD_COMPLETE_NAME if len(encoded) <= room else _AD_SHORT_NAME
        shortened = encoded[:room].decode(errors="ignore").encode()
        out += bytes((len(shortened) + 1, ad_type)) + shortened
    return bytes(out)


def _bumble_uuid(value: str) -> Any:
    """bumble UUID for a spec UUID: the 16-bit form for SIG-base UUIDs, as real sensors use."""
    short = short_uuid(value)
    return core.UUID.from_16_bits(short) if short is not None else core.UUID(value)


class _CharacteristicState:
    """Value store and access rules of one characteristic (read by bumble's GATT server)."""

    def __init__(self, spec: CharacteristicSpec) -> None:
        self.spec = spec
        self.value = spec.value
        self.attribute: Any = None  # the bumble Characteristic, set when built

    def on_read(self, _connection: Any) -> bytes:
        # bumble does not enforce Characteristic permissions (notes, trap 8): do it here.
        if not self.spec.read:
            raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)
        return self.value

    def on_write(self, _connection: Any, value: bytes) -> None:
        if not self.spec.write:
            raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)
        self.value = bytes(value)

    def build(self) -> Any:
        props = gatt.Characteristic.Properties(0)
        permissions = gatt.Characteristic.Permissions(0)
        if self.spec.read:
            props |= gatt.Characteristic.Properties.READ
            permissions |= gatt.Characteristic.Permissions.READABLE
        if self.spec.notify:
            props |= gatt.Characteristic.Properties.NOTIFY
        if self.spec.write:
            props |= gatt.Characteristic.Properties.WRITE
            props |= gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            permissions |= gatt.Characteristic.Permissions.WRITEABLE
        self.attribute = gatt.Characteristic(
            _bumble_uuid(self.spec.uuid),
            props,
            permissions,
            gatt.CharacteristicValue(read=self.on_read, write=self.on_write),
        )
        return self.attribute


class VirtualPeripheral:
    """A BLE sensor on a :class:`~ingest.virtual.radio.VirtualRadio`.

    Made by :meth:`VirtualRadio.add_peripheral`, not directly.

    Attributes:
        address: static random address, upper-case ``"D0:00:00:00:00:01"`` form (what bleak
            reports as ``BLEDevice.address``).
        name: advertised local name (may be shortened in the advertisement if too long).
    """

    def __init__(
        self,
        *,
        device: Any,
        name: str,
        address: str,
        services: Sequence[ServiceSpec],
        advertised_service_uuids: Sequence[str],
        schedule: ScheduleJob,
    ) -> None:
        self.address = address
        self.name = name
        self._device = device
        self._schedule = schedule
        self._adv_data = build_advertising_data(name, advertised_service_uuids)
        self._chars: dict[str, _CharacteristicState] = {}
        self._services: list[Any] = []
        for service in services:
            states = [_CharacteristicState(c) for c in service.characteristics]
            for state in states:
                key = normalize_uuid(state.spec.uuid)
                if key in self._chars:
                    raise ValueError(f"{name}: characteristic {key} defined twice")
                self._chars[key] = state
            self._services.append(
                gatt.Service(_bumble_uuid(service.uuid), [s.build() for s in states])
            )
        self._reachable = True
        self._closed = False
        self._connection: Any = None
        self._subscribed_handles: set[int] = set()
        self._advertising_lock = asyncio.Lock()
        self._restart_pending = False

    def __repr__(self) -> str:
        return f"VirtualPeripheral(name={self.name!r}, address={self.address!r})"

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """Whether a central is connected."""
        return self._connection is not None

    @property
    def subscribed(self) -> bool:
        """Whether the central enabled notifications (CCCD) on any notify characteristic."""
        return bool(self._subscribed_handles)

    @property
    def reachable(self) -> bool:
        """``False`` while out of range (see :meth:`set_reachable`)."""
        return self._reachable

    # ------------------------------------------------------------------ values

    def set_value(self, uuid: str, value: bytes) -> None:
        """Sets the value returned by subsequent reads of ``uuid``.

        Raises:
            KeyError: if the peripheral has no such characteristic.
        """
        self._state(uuid).value = bytes(value)

    async def notify(self, uuid: str, value: bytes) -> None:
        """Sets the value of ``uuid`` and notifies the central if it subscribed.

        A no-op (apart from the value) while not connected or not subscribed, like a sensor
        that measures whether or not anyone listens.

        Raises:
            KeyError: if the peripheral has no such characteristic.
        """
        state = self._state(uuid)
        state.value = bytes(value)
        connection = self._connection
        if connection is None or state.attribute.handle not in self._subscribed_handles:
            return
        if _bumble_logger.isEnabledFor(logging.DEBUG):
            # force=True skips bumble's CCCD lookup (subscriptions are tracked here).
            await self._device.gatt_server.notify_subscriber(
                connection, state.attribute, state.value, True
            )
            return
        # Hot path (thousands/s): bumble's notify formats the PDU into a debug string even
        # with logging off (notes, trap 7), so put the ATT PDU on the bearer directly.
        pdu = (
            _ATT_HANDLE_VALUE_NOTIFICATION
            + state.attribute.handle.to_bytes(2, "little")
            + state.value[: connection.att_mtu - 3]  # truncated to the MTU, as bumble does
        )
        self._device.gatt_server.send_gatt_pdu(connection, pdu)

    def _state(self, uuid: str) -> _CharacteristicState:
        state = self._chars.get(uuid)  # fast path: already the 128-bit lower-case form
        if state is not None:
            return state
        try:
            return self._chars[normalize_uuid(uuid)]
        except (KeyError, ValueError):
            raise KeyError(f"{self.name}: no characteristic {uuid}") from None

    # ------------------------------------------------------------------ faults

    async def drop_link(self) -> None:
        """Drops the link from the peripheral side, like a radio loss (reason: connection
        timeout). The central sees an unsolicited disconnect. A no-op when not connected."""
        connection = self._connection
        if connection is not None:
            await connection.disconnect(DROP_REASON)

    async def set_reachable(self, reachable: bool) -> None:
        """Goes out of range (``False``) or comes back (``True``).

        Out of range: advertising stops, any link drops, and connection attempts time out.
        Back in range: advertising resumes (if not connected).
        """
        self._reachable = reachable
        if reachable:
            await self._ensure_advertising()
            return
        async with self._advertising_lock:
            if self._device.is_advertising:
                await self._device.stop_advertising()
        await self.drop_link()

    # ------------------------------------------------------------------ lifecycle (radio)

    async def _start(self) -> None:
        """Powers on, publishes the GATT database and starts advertising."""
        device = self._device
        device.on("connection", self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        await device.power_on()
        device.add_services(self._services)
        await self._ensure_advertising()

    async def _close(self) -> None:
        """Stops advertising (cancels the controller's advertising timer)."""
        self._closed = True
        async with self._advertising_lock:
            if self._device.is_advertising:
                await self._device.stop_advertising()

    async def _ensure_advertising(self) -> None:
        async with self._advertising_lock:
            self._restart_pending = False
            device = self._device
            if (
                self._closed
                or not self._reachable
                or self._connection is not None
                or device.is_advertising
            ):
                return
            await device.start_advertising(
                advertising_data=self._adv_data,
                scan_response_data=b"",
                advertising_interval_min=ADVERTISING_INTERVAL_MS,
                advertising_interval_max=ADVERTISING_INTERVAL_MS,
                auto_restart=False,  # bumble's restart is an untracked task: we schedule ours
            )

    def _on_connection(self, connection: Any) -> None:
        if not self._reachable or self._closed or self._connection is not None:
            # Out of range: nobody can really be connected; refuse the link at once.
            logger.debug("%s - %s: refusing connection", self.name, self.address)
            self._schedule(
                f"refuse-{self.address}",
                lambda: connection.disconnect(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR),
            )
            return
        self._connection = connection
        self._subscribed_handles.clear()
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Any) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._subscribed_handles.clear()
        # bumble's legacy advertiser is stopped by the controller on connect: restart it so
        # the peripheral is reconnectable (notes, trap 5).
        if self._reachable and not self._closed and not self._restart_pending:
            self._restart_pending = True
            self._schedule(f"advertise-{self.address}", self._ensure_advertising)

    def _on_subscription(
        self, connection: Any, characteristic: Any, notify_enabled: bool, _indicate: bool
    ) -> None:
        if connection is not self._connection:
            return
        if notify_enabled:
            self._subscribed_handles.add(characteristic.handle)
        else:
            self._subscribed_handles.discard(characteristic.handle)
