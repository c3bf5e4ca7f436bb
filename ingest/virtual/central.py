"""The central side of a virtual radio: one bumble ``Device`` shared by every bleak scanner
and client bound to it.

:class:`VirtualCentral` scans (merging advertisements into :class:`Advertisement`), connects
and simulates the adapter going away; the bleak backend classes in
:mod:`ingest.virtual.bleak_backend` are thin adapters over it.

Traps handled here (see ``shared/notes/bleak-over-bumble.md``): connects are serialised (one
pending LE connection per controller, trap 3); a timed-out connect clears the controller's
pending connection, which bumble's connection-cancel command leaves set (trap 4); the
controller's double report (advertisement + identical scan response) is merged (trap 6).
Timeouts use the event loop's clock only, so a virtual-time loop drives them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, Final

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDeviceNotFoundError,
    BleakError,
)
from bumble import core, hci

from ingest.virtual.advertising import Advertisement, parse_advertising_data
from ingest.virtual.error_translation import bleak_errors
from ingest.virtual.peripheral import ScheduleJob

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

DISCONNECT_TIMEOUT_S: Final = 5.0
"""Bound on a requested disconnect (one LL round trip on the ideal link); past it the link is
considered gone, as OS stacks do."""

_REPORT_SCAN_RSP_LEGACY: Final = 0x04
_REPORT_SCAN_RSP_EXTENDED_BIT: Final = 0x08

ScanListener = Callable[[Advertisement], None]
"""Receives each merged advertisement while scanning."""


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
                    with bleak_errors():
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
