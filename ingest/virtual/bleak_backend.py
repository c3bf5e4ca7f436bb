"""A bleak backend (scanner + client) over a bumble central on an in-process ``LocalLink``.

Plain bleak code runs unchanged against virtual peripherals::

    async with VirtualRadio() as radio:
        device = await BleakScanner.find_device_by_address(addr, backend=radio.scanner_backend)
        async with BleakClient(device, backend=radio.client_backend) as client:
            await client.start_notify(HRM_UUID, on_frame)

:func:`make_backend_classes` returns bleak backend classes bound to one
:class:`~ingest.virtual.central.VirtualCentral` (several radios may coexist in a process); the
central owns the bumble ``Device`` and handles scanning and connecting, and bumble errors
become bleak errors at this edge (:mod:`ingest.virtual.error_translation`).

Traps handled here (see ``shared/notes/bleak-over-bumble.md``): the client asks for a large
ATT MTU, as OS stacks do, so notifications are not truncated; notifications bypass bumble's
per-PDU debug formatting (trap 7). Timeouts use the event loop's clock only, so a virtual-time
loop drives them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any, Final, Literal

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.device import Peer

from ingest.virtual.advertising import Advertisement
from ingest.virtual.central import DISCONNECT_TIMEOUT_S, VirtualCentral
from ingest.virtual.error_translation import bleak_errors

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

REQUESTED_ATT_MTU: Final = 247
"""ATT MTU the client asks for after connecting, as BlueZ/CoreBluetooth do; with the default
23 bumble silently truncates notifications to 20 bytes."""


# ---------------------------------------------------------------------- bleak scanner


class VirtualBleakScanner(BaseBleakScanner):
    """bleak scanner backend; use the subclass bound to a radio (``radio.scanner_backend``).

    Scanning is always active (the virtual controller answers scan requests for free);
    ``scanning_mode`` is accepted for compatibility.
    """

    _central: VirtualCentral  # set on the bound subclass

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._scanning_mode = scanning_mode
        self._token = object()

    async def start(self) -> None:
        """Starts scanning; ``seen_devices`` is cleared."""
        self.seen_devices = {}
        await self._central.add_scan_listener(self._token, self._on_advertisement)

    async def stop(self) -> None:
        """Stops scanning."""
        await self._central.remove_scan_listener(self._token)

    def _on_advertisement(self, adv: Advertisement) -> None:
        uuids = list(adv.service_uuids)
        if not self.is_allowed_uuid(uuids):
            return
        data = AdvertisementData(
            local_name=adv.local_name,
            manufacturer_data=dict(adv.manufacturer_data),
            service_data=dict(adv.service_data),
            service_uuids=uuids,
            tx_power=adv.tx_power_dbm,
            rssi=adv.rssi_dbm,
            platform_data=(adv,),
        )
        device = self.create_or_update_device(adv.address, adv.address, adv.local_name, adv, data)
        self.call_detection_callbacks(device, data)


# ---------------------------------------------------------------------- bleak client


def _bleak_uuid(bumble_uuid: Any) -> str:
    return str(uuid_lib.UUID(bytes=bytes(bumble_uuid.to_bytes(force_128=True))[::-1]))


_ATT_HANDLE_VALUE_NOTIFICATION: Final = 0x1B
_bumble_logger = logging.getLogger("bumble")


def _quiet_notifications(gatt_client: Any) -> None:
    """Routes notifications straight to the subscribers of ``gatt_client``.

    bumble's ``Client.on_gatt_pdu`` formats every PDU into a debug string even with logging
    off (notes, trap 7); that is a third of the CPU at thousands of notifications/s. Other
    PDUs, and everything when bumble debug logging is on, take bumble's path.
    """
    original = gatt_client.on_gatt_pdu
    deliver = gatt_client.on_att_handle_value_notification

    def on_gatt_pdu(att_pdu: Any) -> None:
        if att_pdu.op_code == _ATT_HANDLE_VALUE_NOTIFICATION and not _bumble_logger.isEnabledFor(
            logging.DEBUG
        ):
            deliver(att_pdu)
        else:
            original(att_pdu)

    gatt_client.on_gatt_pdu = on_gatt_pdu


class VirtualBleakClient(BaseBleakClient):
    """bleak client backend; use the subclass bound to a radio (``radio.client_backend``)."""

    _central: VirtualCentral  # set on the bound subclass

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=disconnected_callback,
            timeout=timeout,
        )
        self._name = (
            address_or_ble_device.name
            if isinstance(address_or_ble_device, BLEDevice) and address_or_ble_device.name
            else self.address
        )
        self._service_filter = services
        self._connection: Any = None
        self._peer: Any = None
        self._disconnecting = False
        self._notify_callbacks: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The device name (from the scan) or the address."""
        return self._name

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        if self._connection is None:
            return 23
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connects, exchanges MTU and discovers services within the client's timeout.

        Raises:
            BleakDeviceNotFoundError: no such peripheral on the radio.
            TimeoutError: the peripheral did not connect in time (e.g. out of range).
            BleakError: the link failed during discovery.
        """
        if self._connection is not None:
            return
        if pair:
            logger.debug("%s: pairing is not simulated, connecting without it", self.address)
        timeout = float(kwargs.get("timeout", self._timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = await self._central.connect(self.address, timeout)
        _quiet_notifications(connection.gatt_client)
        self._connection = connection
        self._disconnecting = False
        connection.on("disconnection", self._on_disconnection)
        try:
            async with asyncio.timeout_at(deadline):
                with bleak_errors():
                    peer = Peer(connection)
                    await peer.request_mtu(REQUESTED_ATT_MTU)
                    self.services = await self._discover(peer)
                    self._peer = peer
        except BaseException:
            await self.disconnect()
            raise

    async def _discover(self, peer: Any) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        await peer.discover_services()
        for service in peer.services:
            service_uuid = _bleak_uuid(service.uuid)
            if self._service_filter is not None and service_uuid not in self._service_filter:
                continue
            await peer.discover_characteristics(service=service)
            bleak_service = BleakGATTService(service, service.handle, service_uuid)
            collection.add_service(bleak_service)
            for char in service.characteristics:
                await peer.discover_descriptors(characteristic=char)
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    _bleak_uuid(char.uuid),
                    list(gatt_char_props_to_strs(int(char.properties))),
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, _bleak_uuid(desc.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, _reason: int) -> None:
        requested = self._disconnecting
        self._connection = None
        self._peer = None
        self._notify_callbacks.clear()
        if not requested and self._disconnected_callback is not None:
            # bleak: fires for disconnects the user did not ask for, scheduled on the loop.
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def disconnect(self) -> None:
        """Disconnects (no disconnected callback). A no-op when not connected."""
        connection = self._connection
        if connection is None:
            return
        self._disconnecting = True
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                with bleak_errors():
                    await connection.disconnect()
        except TimeoutError:
            logger.warning("%s - %s: disconnect timed out", self._name, self.address)
        finally:
            self._connection = None
            self._peer = None
            self._notify_callbacks.clear()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not simulated: virtual sensors need no bonding."""
        raise BleakError("pairing is not supported by the virtual radio")

    async def unpair(self) -> None:
        """Not simulated: virtual sensors need no bonding."""
        raise BleakError("pairing is not supported by the virtual radio")

    def _require_peer(self) -> Any:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Reads a characteristic value.

        Raises:
            BleakGATTProtocolError: the peripheral answered with an ATT error.
            BleakError: not connected.
        """
        peer = self._require_peer()
        with bleak_errors():
            return bytearray(await peer.read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Reads a descriptor value (see :meth:`read_gatt_char`)."""
        peer = self._require_peer()
        with bleak_errors():
            return bytearray(await peer.read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Writes a characteristic value, with or without response.

        Raises:
            BleakGATTProtocolError: the peripheral answered with an ATT error (with response).
        """
        peer = self._require_peer()
        with bleak_errors():
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Writes a descriptor value (with response)."""
        peer = self._require_peer()
        with bleak_errors():
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enables notifications; ``callback(bytearray)`` runs synchronously per frame, in
        order."""
        peer = self._require_peer()
        proxy = characteristic.obj

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._notify_callbacks[characteristic.handle] = on_value
        with bleak_errors():
            await peer.subscribe(proxy, on_value, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disables notifications on a characteristic."""
        peer = self._require_peer()
        on_value = self._notify_callbacks.pop(characteristic.handle, None)
        with bleak_errors():
            await peer.unsubscribe(characteristic.obj, on_value)


def make_backend_classes(
    central: VirtualCentral, *, label: str
) -> tuple[type[VirtualBleakScanner], type[VirtualBleakClient]]:
    """Returns scanner and client backend classes bound to ``central``.

    ``label`` names them (bleak reports ``backend.__name__`` as the backend id).
    """
    scanner = type(f"VirtualBleakScanner_{label}", (VirtualBleakScanner,), {"_central": central})
    client = type(f"VirtualBleakClient_{label}", (VirtualBleakClient,), {"_central": central})
    return scanner, client
