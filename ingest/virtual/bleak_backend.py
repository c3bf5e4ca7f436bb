"""A bleak backend (scanner + client) over a bumble central on an in-process ``LocalLink``.

Plain bleak code runs unchanged against virtual peripherals::

    async with VirtualRadio() as radio:
        device = await BleakScanner.find_device_by_address(addr, backend=radio.scanner_backend)
        async with BleakClient(device, backend=radio.client_backend) as client:
            await client.start_notify(HRM_UUID, on_frame)

:class:`VirtualCentral` owns the central bumble ``Device``; :func:`make_backend_classes` returns
bleak backend classes bound to one central (several radios may coexist in a process).

Traps handled here (see ``shared/notes/bleak-over-bumble.md``): connects are serialised (one
pending LE connection per controller, trap 3); a timed-out connect clears the controller's
pending connection, which bumble's connection-cancel command leaves set (trap 4); the
controller's double report (advertisement + identical scan response) is merged (trap 6); ATT
errors become bleak errors (trap 8). Timeouts use the event loop's clock only, so a
virtual-time loop drives them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_lib
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)
from bumble import att, core, hci
from bumble.device import Peer

from ingest.virtual.peripheral import ScheduleJob

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

REQUESTED_ATT_MTU: Final = 247
"""ATT MTU the client asks for after connecting, as BlueZ/CoreBluetooth do; with the default
23 bumble silently truncates notifications to 20 bytes."""

DISCONNECT_TIMEOUT_S: Final = 5.0
"""Bound on a requested disconnect (one LL round trip on the ideal link); past it the link is
considered gone, as OS stacks do."""

_REPORT_SCAN_RSP_LEGACY: Final = 0x04
_REPORT_SCAN_RSP_EXTENDED_BIT: Final = 0x08

ScanListener = Callable[["Advertisement"], None]


# ---------------------------------------------------------------------- advertising data


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

    >>> parse_advertising_data(bytes.fromhex("020106 03030d18 0509414243"))[:2]
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


# ---------------------------------------------------------------------- errors


def translate_error(exc: BaseException) -> BaseException:
    """Maps a bumble exception to the bleak exception a user of bleak expects.

    ATT error responses become :class:`BleakGATTProtocolError` (code kept); bumble connection
    and protocol errors become :class:`BleakError`; anything else is returned unchanged.
    """
    if isinstance(exc, att.ATT_Error):
        return BleakGATTProtocolError(int(exc.error_code))
    if isinstance(exc, core.BaseBumbleError):
        return BleakError(f"virtual radio: {exc}")
    return exc


@contextmanager
def _bleak_errors() -> Iterator[None]:
    """Translates bumble errors at the edge; also the ``CancelledError`` bumble raises in a
    pending GATT request when the link drops (the task itself is not being cancelled)."""
    try:
        yield
    except (att.ATT_Error, core.BaseBumbleError) as exc:
        raise translate_error(exc) from exc
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            raise BleakError("Not connected: the link was lost during the operation") from exc
        raise


# ---------------------------------------------------------------------- central


class VirtualCentral:
    """The central side of a virtual radio: one bumble ``Device`` shared by every bleak
    scanner and client bound to it.

    Args:
        device: the powered-on central bumble ``Device``.
        controller: its bumble ``Controller`` (to clear a stale pending connection).
        link: the bumble ``LocalLink`` (to tell unknown addresses from unreachable ones).
        schedule: hands a background job to the radio's worker.
    """

    def __init__(self, *, device: Any, controller: Any, link: Any, schedule: ScheduleJob) -> None:
        self._device = device
        self._controller = controller
        self._link = link
        self._schedule = schedule
        self._connect_lock = asyncio.Lock()
        self._scan_lock = asyncio.Lock()
        self._scan_listeners: dict[Hashable, ScanListener] = {}
        self._last_adv_data: dict[str, bytes] = {}
        self._expecting: Any = None  # bumble Address of the connect in progress
        self._claimed: set[int] = set()  # connection handles owned by a client
        self._present = True
        device.host.on("advertising_report", self._on_advertising_report)
        device.on("connection", self._on_connection)

    # -------------------------------------------------------------- the adapter

    @property
    def present(self) -> bool:
        """Whether the adapter is there (see :meth:`remove_adapter`)."""
        return self._present

    async def remove_adapter(self) -> None:
        """The adapter goes away (USB dongle pulled, controller reset or crash).

        Every link drops (clients get their disconnected callback), scanning stops, and until
        :meth:`restore_adapter` bleak calls fail as on BlueZ without the adapter: a scan start
        with ``BleakBluetoothNotAvailableError`` (``NO_BLUETOOTH``, "No Bluetooth adapters
        found."), a connect with ``BleakError("device 'dev_…' not found")``. Idempotent.
        """
        if not self._present:
            return
        self._present = False
        async with self._scan_lock:
            if self._device.is_scanning:
                await self._device.stop_scanning()
        for connection in list(self._device.connections.values()):
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await connection.disconnect(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)
            except (TimeoutError, core.BaseBumbleError) as exc:
                logger.debug("virtual central: dropping %s: %s", connection.peer_address, exc)

    async def restore_adapter(self) -> None:
        """The adapter is back: scanners still registered hear advertisements again;
        connects work. Idempotent."""
        if self._present:
            return
        self._present = True
        async with self._scan_lock:
            if self._scan_listeners and not self._device.is_scanning:
                self._last_adv_data.clear()
                await self._device.start_scanning(active=True, filter_duplicates=False)

    def _require_adapter(self) -> None:
        if not self._present:
            raise BleakBluetoothNotAvailableError(
                "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
            )

    # -------------------------------------------------------------- scanning

    async def add_scan_listener(self, token: Hashable, listener: ScanListener) -> None:
        """Registers a listener; starts scanning if it is the first.

        Raises:
            BleakBluetoothNotAvailableError: the adapter is gone.
        """
        self._require_adapter()
        async with self._scan_lock:
            self._scan_listeners[token] = listener
            if not self._device.is_scanning:
                self._last_adv_data.clear()
                await self._device.start_scanning(active=True, filter_duplicates=False)

    async def remove_scan_listener(self, token: Hashable) -> None:
        """Unregisters a listener; stops scanning after the last one."""
        async with self._scan_lock:
            self._scan_listeners.pop(token, None)
            if not self._scan_listeners and self._present and self._device.is_scanning:
                await self._device.stop_scanning()

    def _on_advertising_report(self, report: Any) -> None:
        if not self._scan_listeners:
            return
        address = report.address.to_string(False)
        data = bytes(report.data)
        event_type = int(report.event_type)
        is_extended = isinstance(report, hci.HCI_LE_Extended_Advertising_Report_Event.Report)
        is_scan_rsp = (
            bool(event_type & _REPORT_SCAN_RSP_EXTENDED_BIT)
            if is_extended
            else event_type == _REPORT_SCAN_RSP_LEGACY
        )
        if is_scan_rsp:
            # The virtual controller answers every advertisement with a scan response that
            # repeats the advertising data (notes, trap 6): merge, i.e. drop the echo.
            previous = self._last_adv_data.get(address, b"")
            if data == previous or not data:
                return
            data = previous + data
        else:
            self._last_adv_data[address] = data
        name, uuids, manufacturer, service_data, tx_power = parse_advertising_data(data)
        advertisement = Advertisement(
            address=address,
            local_name=name,
            service_uuids=tuple(uuids),
            manufacturer_data=manufacturer,
            service_data=service_data,
            tx_power_dbm=tx_power,
            rssi_dbm=int(report.rssi),
        )
        for listener in list(self._scan_listeners.values()):
            listener(advertisement)

    # -------------------------------------------------------------- connections

    def knows(self, address: str) -> bool:
        """Whether a controller with this address is on the link (reachable or not)."""
        wanted = address.upper()
        return any(
            c.random_address.to_string(False) == wanted for c in list(self._link.controllers)
        )

    async def connect(self, address: str, timeout_s: float) -> Any:
        """Connects to ``address`` within ``timeout_s`` seconds (loop clock); returns the
        bumble ``Connection``. Concurrent calls are serialised.

        Raises:
            BleakDeviceNotFoundError: no peripheral with this address on the radio.
            BleakError: the adapter is gone (BlueZ's "device '…' not found").
            TimeoutError: no connection in time (e.g. peripheral out of range).
        """
        if not self._present:
            raise BleakError(f"device 'dev_{address.upper().replace(':', '_')}' not found")
        if not self.knows(address):
            raise BleakDeviceNotFoundError(
                address, f"Device with address {address} was not found on the virtual radio"
            )
        peer_address = hci.Address(address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with asyncio.timeout_at(deadline):
            await self._connect_lock.acquire()
        try:
            self._expecting = peer_address
            try:
                async with asyncio.timeout_at(deadline):
                    with _bleak_errors():
                        connection = await self._device.connect_le(peer_address, timeout=None)
            except BaseException:
                # Timeout, or the caller's own cancellation (bleak-retry-connector wraps
                # connect in a timeout): either way the attempt is abandoned.
                self._abandon_connect(peer_address)
                raise
            self._claimed.add(connection.handle)
            connection.once("disconnection", lambda _r: self._claimed.discard(connection.handle))
            return connection
        finally:
            self._expecting = None
            self._connect_lock.release()

    def _abandon_connect(self, peer_address: Any) -> None:
        # bumble's controller accepts LE Create Connection Cancel but does nothing; its
        # pending connection would make every later connect fail with COMMAND_DISALLOWED
        # (notes, trap 4). A real controller drops it: do the same. Synchronous on purpose:
        # this runs while the task is being cancelled.
        self._controller.pending_le_connection = None
        self._expecting = None
        # A connection that completed in the same loop iteration as the timeout is an
        # orphan; one the host learns of later is caught by _on_connection.
        for connection in list(self._device.connections.values()):
            if (
                connection.peer_address == peer_address
                and connection.role == hci.Role.CENTRAL
                and connection.handle not in self._claimed
            ):
                self._schedule(f"orphan-{connection.handle}", connection.disconnect)

    def _on_connection(self, connection: Any) -> None:
        if connection.role != hci.Role.CENTRAL:
            return
        if self._expecting is not None and connection.peer_address == self._expecting:
            return
        # The host learnt of a connection after its connect timed out: drop it.
        logger.debug("virtual central: dropping orphan connection to %s", connection.peer_address)
        self._schedule(f"orphan-{connection.handle}", connection.disconnect)


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
                with _bleak_errors():
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
                with _bleak_errors():
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
        with _bleak_errors():
            return bytearray(await peer.read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Reads a descriptor value (see :meth:`read_gatt_char`)."""
        peer = self._require_peer()
        with _bleak_errors():
            return bytearray(await peer.read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Writes a characteristic value, with or without response.

        Raises:
            BleakGATTProtocolError: the peripheral answered with an ATT error (with response).
        """
        peer = self._require_peer()
        with _bleak_errors():
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Writes a descriptor value (with response)."""
        peer = self._require_peer()
        with _bleak_errors():
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
        with _bleak_errors():
            await peer.subscribe(proxy, on_value, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disables notifications on a characteristic."""
        peer = self._require_peer()
        on_value = self._notify_callbacks.pop(characteristic.handle, None)
        with _bleak_errors():
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
