"""A virtual BLE radio: bumble's in-process ``LocalLink`` with one central and N peripherals.

Example::

    async with VirtualRadio() as radio:
        strap = await radio.add_peripheral(
            name="HRM-Pro", services=[HRS], advertised_service_uuids=[HRS.uuid]
        )
        async with BleakClient(strap.address, backend=radio.client_backend) as client:
            await client.start_notify(HRM_UUID, on_frame)
            await strap.notify(HRM_UUID, bytes((0, 142)))

Everything runs on the current event loop, in one thread (bumble controllers create futures
on the running loop and the link delivers with ``call_soon``, notes trap 1). Timeouts follow
``loop.time()`` only, so a loop with a virtual clock runs long workouts in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from ingest.background import BackgroundTask
from ingest.virtual.bleak_backend import (
    VirtualBleakClient,
    VirtualBleakScanner,
    make_backend_classes,
)
from ingest.virtual.central import VirtualCentral
from ingest.virtual.peripheral import CharacteristicSpec, ServiceSpec, VirtualPeripheral

__all__ = ["CharacteristicSpec", "ServiceSpec", "VirtualPeripheral", "VirtualRadio"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_bumble_logger = logging.getLogger("bumble")

JOB_QUEUE_SIZE: Final = 1024
"""Background jobs pending at most (advertising restarts, refused/orphan links): at most
one restart per peripheral is queued, so this bound is never reached in practice."""

JOB_TIMEOUT_S: Final = 5.0
"""A background job (a few HCI round trips on an ideal link) that takes longer is stuck;
abandon it rather than stall the jobs behind it."""

CENTRAL_ADDRESS: Final = "F0:00:00:00:00:01"
"""Static random address of the central (top two bits set, as static addresses require)."""

_PERIPHERAL_ADDRESS_PREFIX: Final = 0xD0
_radio_ids = itertools.count(1)


class _QuietController(Controller):
    """bumble's controller without the eager debug f-strings on the packet path.

    bumble formats every HCI packet into a debug string even with logging off (notes, trap
    7); skip that when debug logging is disabled, otherwise behave exactly like the parent.
    """

    def on_hci_packet(self, packet: Any) -> None:
        if _bumble_logger.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: Any) -> None:
        if _bumble_logger.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
            return
        if self.host:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


class _QuietHost(Host):
    """bumble's host without the eager debug f-strings on the packet path (trap 7)."""

    def send_hci_packet(self, packet: Any) -> None:
        if _bumble_logger.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
            return
        if self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))

    def on_hci_packet(self, packet: Any) -> None:
        if _bumble_logger.isEnabledFor(logging.DEBUG) or self.snooper:
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        elif isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        else:
            super().on_hci_packet(packet)


def _build_stack(link: Any, name: str, address: str) -> tuple[Any, Any]:
    """Builds controller + host + device on ``link`` (inside the running loop, trap 1)."""
    controller = _QuietController(name, link=link)
    # Sensors use legacy advertising; without the extended feature bit bumble uses the
    # legacy advertiser, whose connection handling needs no advertising-set bookkeeping.
    controller.le_features &= ~hci.LeFeatureMask.LE_EXTENDED_ADVERTISING
    controller.random_address = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
    host = _QuietHost(controller, AsyncPipeSink(controller))
    device = Device(name=name, address=hci.Address(address), host=host)
    return controller, device


def _peripheral_address(radio_id: int, index: int) -> str:
    """Deterministic static random address, unique per radio and peripheral index."""
    raw = bytes(
        (_PERIPHERAL_ADDRESS_PREFIX, 0, (radio_id >> 8) & 0xFF, radio_id & 0xFF)
    ) + index.to_bytes(2, "big")
    return ":".join(f"{b:02X}" for b in raw)


def _check_static_address(address: str) -> str:
    try:
        parsed = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
    except Exception as exc:  # bumble raises assorted errors for bad strings
        raise ValueError(f"not a Bluetooth address: {address!r}") from exc
    if not parsed.is_static:
        raise ValueError(
            f"{address} is not a static random address (the top two bits must be 1, "
            "e.g. C0:..-FF:..)"
        )
    return str(parsed.to_string(False))


class VirtualRadio:
    """An in-process BLE radio: a bumble ``LocalLink``, a central for bleak, and peripherals.

    An async context manager; build it inside the running loop. Several radios may coexist
    (each has its own link and its own bound backend classes).

    Attributes:
        scanner_backend: pass as ``BleakScanner(..., backend=radio.scanner_backend)``.
        client_backend: pass as ``BleakClient(device, backend=radio.client_backend)``.
    """

    scanner_backend: type[VirtualBleakScanner]
    client_backend: type[VirtualBleakClient]

    def __init__(self) -> None:
        self._id = next(_radio_ids)
        self._peripherals: dict[str, VirtualPeripheral] = {}
        self._link: Any = None
        self._central_device: Any = None
        self._central: VirtualCentral | None = None
        self._jobs: asyncio.Queue[tuple[str, Callable[[], Awaitable[None]]]] | None = None
        self._worker = BackgroundTask("VirtualRadio")
        self._running = False

    @property
    def peripherals(self) -> tuple[VirtualPeripheral, ...]:
        """The peripherals, in creation order."""
        return tuple(self._peripherals.values())

    async def __aenter__(self) -> Self:
        if self._running:
            raise RuntimeError("VirtualRadio is not reentrant")
        self._jobs = asyncio.Queue(maxsize=JOB_QUEUE_SIZE)
        self._worker.start(self._run_jobs(), name=f"virtual-radio-{self._id}-jobs")
        try:
            self._link = LocalLink()  # type: ignore[no-untyped-call]  # bumble edge
            controller, device = _build_stack(self._link, f"central-{self._id}", CENTRAL_ADDRESS)
            self._central_device = device
            await device.power_on()
            central = VirtualCentral(
                device=device, controller=controller, link=self._link, schedule=self._schedule
            )
            self._central = central
            self.scanner_backend, self.client_backend = make_backend_classes(
                central, label=str(self._id)
            )
        except BaseException:
            await self._stop_worker()
            raise
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        try:
            for peripheral in self._peripherals.values():
                await peripheral._close()
            device = self._central_device
            if device is not None and device.is_scanning:
                await device.stop_scanning()
            # Drop remaining links so no controller keeps state (or timers) for them.
            if device is not None:
                for connection in list(device.connections.values()):
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(JOB_TIMEOUT_S):
                            await connection.disconnect()
        finally:
            await self._stop_worker()

    async def add_peripheral(
        self,
        *,
        name: str,
        services: Sequence[ServiceSpec],
        advertised_service_uuids: Sequence[str],
        address: str | None = None,
    ) -> VirtualPeripheral:
        """Adds a powered-on, advertising peripheral (20 ms interval; it advertises again
        after every disconnect so it is reconnectable).

        Args:
            name: advertised local name.
            services: the GATT database.
            advertised_service_uuids: service UUIDs put in the advertisement (scan filters
                match these).
            address: static random address; generated deterministically when ``None``.

        Raises:
            ValueError: bad or duplicate address, or advertising data over 31 bytes.
            RuntimeError: the radio is not running.
        """
        if not self._running:
            raise RuntimeError("VirtualRadio is not running: use 'async with VirtualRadio()'")
        if address is None:
            index = len(self._peripherals) + 1
            address = _peripheral_address(self._id, index)
            while address in self._peripherals:
                index += 1
                address = _peripheral_address(self._id, index)
        address = _check_static_address(address)
        if address in self._peripherals or address == CENTRAL_ADDRESS:
            raise ValueError(f"address {address} is already used on this radio")
        _, device = _build_stack(self._link, name, address)
        peripheral = VirtualPeripheral(
            device=device,
            name=name,
            address=address,
            services=services,
            advertised_service_uuids=advertised_service_uuids,
            schedule=self._schedule,
        )
        self._peripherals[address] = peripheral
        await peripheral._start()
        return peripheral

    # -------------------------------------------------------------- faults

    @property
    def adapter_present(self) -> bool:
        """Whether the central's adapter is there (see :meth:`set_adapter_present`)."""
        central = self._central
        return central is None or central.present

    async def set_adapter_present(self, present: bool) -> None:
        """Removes the central's adapter (``False``: a USB dongle pulled, ``hciconfig reset``, a
        controller crash) or brings it back (``True``). Removed, every link drops and bleak
        scans and connects fail as on BlueZ without an adapter; back, they work again.
        Peripherals are unaffected (they advertise again after their link dropped).

        Raises:
            RuntimeError: the radio is not running.
        """
        if not self._running or self._central is None:
            raise RuntimeError("VirtualRadio is not running: use 'async with VirtualRadio()'")
        if present:
            await self._central.restore_adapter()
        else:
            await self._central.remove_adapter()

    # -------------------------------------------------------------- background jobs

    def _schedule(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        if self._jobs is None or not self._running:
            return
        try:
            self._jobs.put_nowait((name, job))
        except asyncio.QueueFull:
            logger.warning("virtual radio %d: job queue full, dropping %s", self._id, name)

    async def _run_jobs(self) -> None:
        assert self._jobs is not None
        while True:
            name, job = await self._jobs.get()
            try:
                async with asyncio.timeout(JOB_TIMEOUT_S):
                    await job()
            except Exception:
                logger.exception("virtual radio %d: job %s failed", self._id, name)

    async def _stop_worker(self) -> None:
        await self._worker.stop()
