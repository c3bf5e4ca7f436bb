"""Plain bleak code against virtual peripherals on bumble's in-process link."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)

from ingest.virtual.advertising import parse_advertising_data
from ingest.virtual.peripheral import (
    CharacteristicSpec,
    ServiceSpec,
    VirtualPeripheral,
    build_advertising_data,
)
from ingest.virtual.radio import VirtualRadio

HRS = "0000180d-0000-1000-8000-00805f9b34fb"
HRM = "00002a37-0000-1000-8000-00805f9b34fb"
BODY_SENSOR_LOCATION = "00002a38-0000-1000-8000-00805f9b34fb"
RSCS = "00001814-0000-1000-8000-00805f9b34fb"
RSC_MEASUREMENT = "00002a53-0000-1000-8000-00805f9b34fb"
CONTROL_POINT = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"
MISSING = "00002a99-0000-1000-8000-00805f9b34fb"

HEART_RATE = ServiceSpec(
    HRS,
    (
        CharacteristicSpec(HRM, read=False, notify=True),
        CharacteristicSpec(BODY_SENSOR_LOCATION, value=b"\x01"),
        CharacteristicSpec(CONTROL_POINT, read=False, write=True),
    ),
)
RUNNING_SPEED = ServiceSpec(RSCS, (CharacteristicSpec(RSC_MEASUREMENT, read=False, notify=True),))

WAIT_S = 5.0  # generous upper bound for anything that should take milliseconds


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as r:
        yield r


async def add_strap(radio: VirtualRadio, name: str = "HRM-Pro") -> VirtualPeripheral:
    return await radio.add_peripheral(
        name=name, services=[HEART_RATE], advertised_service_uuids=[HRS]
    )


class Frames:
    """Notification sink as the collector builds it: sync callback, ``put_nowait`` on a
    bounded queue, drops counted."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def callback(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            self.queue.put_nowait(bytes(data))
        except asyncio.QueueFull:
            self.dropped += 1

    async def take(self, n: int) -> list[bytes]:
        async with asyncio.timeout(WAIT_S):
            return [await self.queue.get() for _ in range(n)]


def seq(i: int) -> bytes:
    return i.to_bytes(4, "little")


# A virtual-time loop of the tests' own (independent of ingest.virtual.timewarp).


class _VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks: when nothing is ready, jumps the clock to the next timer."""

    def __init__(self, clock: _VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if not events and timeout is not None and timeout > 0:
            self._clock.now += timeout
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._clock = _VirtualClock()
        super().__init__(_JumpingSelector(self._clock))

    def time(self) -> float:
        return self._clock.now


def run_virtual(main: Callable[[], Any]) -> Any:
    """Runs ``main()`` on :class:`VirtualTimeLoop`: its timeouts, sleeps and scan windows are
    virtual time, so "scan for 0.1 s" is exactly five advertising intervals however slow the
    machine is. Everything here is in-process, so nothing is owed real time."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


# ---------------------------------------------------------------------- advertising data


@pytest.mark.parametrize(
    ("name", "uuids", "expected_name"),
    [
        pytest.param("HRM-Pro", [HRS], "HRM-Pro", id="16-bit"),
        pytest.param("Stryd", [CONTROL_POINT], "Stryd", id="128-bit"),
        pytest.param("Polar H10 ABCDEFGHIJ", [CONTROL_POINT], "Polar H1", id="shortened"),
        pytest.param("", [HRS, RSCS], None, id="no-name"),
    ],
)
def test_advertising_data_round_trip(
    name: str, uuids: list[str], expected_name: str | None
) -> None:
    data = build_advertising_data(name, uuids)
    assert len(data) <= 31
    parsed_name, parsed_uuids, *_ = parse_advertising_data(data)
    assert parsed_name == expected_name
    assert parsed_uuids == uuids


def test_advertising_data_too_many_uuids() -> None:
    with pytest.raises(ValueError, match="31"):
        build_advertising_data("x", [CONTROL_POINT, "6e400003-b5a3-f393-e0a9-e50e24dcca9e"])


# ---------------------------------------------------------------------- scanning


def test_scan_finds_peripherals_filtered_by_service() -> None:
    async def main() -> None:
        async with VirtualRadio() as radio:
            await scan_finds_peripherals_filtered_by_service(radio)

    run_virtual(main)


async def scan_finds_peripherals_filtered_by_service(radio: VirtualRadio) -> None:
    straps = [await add_strap(radio, f"HR {i}") for i in range(5)]
    pods = [
        await radio.add_peripheral(
            name=f"Pod {i}", services=[RUNNING_SPEED], advertised_service_uuids=[RSCS]
        )
        for i in range(3)
    ]
    seen: dict[str, AdvertisementData] = {}
    all_seen = asyncio.Event()

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        seen[device.address] = adv
        if len(seen) == len(straps):
            all_seen.set()

    # The radio hands each report to every scanner in the same call: once an unfiltered
    # scanner has seen each pod advertise a few times, the filtered one was offered them too.
    pod_reports = dict.fromkeys((p.address for p in pods), 0)
    pods_advertised = asyncio.Event()

    def witness(device: BLEDevice, _adv: AdvertisementData) -> None:
        if device.address in pod_reports:
            pod_reports[device.address] += 1
            if min(pod_reports.values()) >= 3:
                pods_advertised.set()

    async with BleakScanner(on_adv, service_uuids=[HRS], backend=radio.scanner_backend):
        async with asyncio.timeout(WAIT_S):
            await all_seen.wait()
        async with BleakScanner(witness, backend=radio.scanner_backend):
            async with asyncio.timeout(WAIT_S):
                await pods_advertised.wait()

    assert set(seen) == {s.address for s in straps}  # still only straps
    for strap in straps:
        adv = seen[strap.address]
        assert adv.local_name == strap.name
        assert adv.service_uuids == [HRS]  # merged: the echoed scan response adds nothing
        assert isinstance(adv.rssi, int)

    found = await BleakScanner.discover(
        timeout=0.1, return_adv=True, service_uuids=[RSCS], backend=radio.scanner_backend
    )
    assert {addr: adv.local_name for addr, (_, adv) in found.items()} == {
        p.address: p.name for p in pods
    }

    device = await BleakScanner.find_device_by_address(
        pods[1].address.lower(), timeout=WAIT_S, backend=radio.scanner_backend
    )
    assert device is not None
    assert device.name == pods[1].name


def test_two_radios_are_independent() -> None:
    async def main() -> None:
        async with VirtualRadio() as a, VirtualRadio() as b:
            strap_a = await add_strap(a, "A")
            strap_b = await add_strap(b, "B")
            assert a.client_backend is not b.client_backend
            assert strap_a.address != strap_b.address
            found = await BleakScanner.discover(timeout=0.1, backend=a.scanner_backend)
            assert [d.address for d in found] == [strap_a.address]

    run_virtual(main)


# ---------------------------------------------------------------------- GATT


async def test_connect_discover_read_and_notify_in_order(radio: VirtualRadio) -> None:
    strap = await add_strap(radio)
    device = await BleakScanner.find_device_by_address(
        strap.address, timeout=WAIT_S, backend=radio.scanner_backend
    )
    assert device is not None
    frames = Frames()
    async with BleakClient(device, backend=radio.client_backend, timeout=10.0) as client:
        assert strap.connected
        assert client.name == strap.name
        hrs = client.services.get_service(HRS)
        assert hrs is not None
        hrm = hrs.get_characteristic(HRM)
        assert hrm is not None
        assert hrm.properties == ["notify"]
        assert hrm.descriptors[0].uuid == "00002902-0000-1000-8000-00805f9b34fb"
        assert await client.read_gatt_char(BODY_SENSOR_LOCATION) == bytearray(b"\x01")
        strap.set_value(BODY_SENSOR_LOCATION, b"\x02")
        assert await client.read_gatt_char(BODY_SENSOR_LOCATION) == bytearray(b"\x02")

        await client.write_gatt_char(CONTROL_POINT, b"\x05", response=True)
        await client.write_gatt_char(CONTROL_POINT, b"\x06", response=False)

        assert not strap.subscribed
        await client.start_notify(HRM, frames.callback)
        assert strap.subscribed
        for i in range(1000):
            await strap.notify(HRM, seq(i))
        assert await frames.take(1000) == [seq(i) for i in range(1000)]
        assert frames.dropped == 0

        await client.stop_notify(HRM)
        assert not strap.subscribed
        await strap.notify(HRM, seq(1000))
        # A round trip on the same link: a notification sent before the read request would
        # reach the callback before the read response does.
        assert await client.read_gatt_char(BODY_SENSOR_LOCATION) == bytearray(b"\x02")
        assert frames.queue.empty()
    assert not strap.connected or not client.is_connected


async def test_twenty_concurrent_connects(radio: VirtualRadio) -> None:
    straps = [await add_strap(radio, f"HR {i:02d}") for i in range(20)]
    clients = [BleakClient(s.address, backend=radio.client_backend, timeout=10.0) for s in straps]
    sinks = [Frames() for _ in straps]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        assert all(c.is_connected for c in clients)
        for client, sink in zip(clients, sinks, strict=True):
            await client.start_notify(HRM, sink.callback)

        async def feed(strap: VirtualPeripheral) -> None:
            for i in range(100):
                await strap.notify(HRM, seq(i))
                await asyncio.sleep(0)

        await asyncio.gather(*(feed(s) for s in straps))
        for sink in sinks:
            assert await sink.take(100) == [seq(i) for i in range(100)]
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients))


async def test_missing_characteristic_and_att_errors(radio: VirtualRadio) -> None:
    strap = await add_strap(radio)
    async with BleakClient(strap.address, backend=radio.client_backend) as client:
        with pytest.raises(BleakCharacteristicNotFoundError):
            await client.read_gatt_char(MISSING)
        # bumble's server does not enforce permissions; the virtual peripheral does.
        with pytest.raises(BleakGATTProtocolError) as read_error:
            await client.read_gatt_char(HRM)
        assert read_error.value.code == BleakGATTProtocolErrorCode.READ_NOT_PERMITTED
        with pytest.raises(BleakGATTProtocolError) as write_error:
            await client.write_gatt_char(BODY_SENSOR_LOCATION, b"\x03", response=True)
        assert write_error.value.code == BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
        # Stale handle, as after a database change: the ATT error maps too.
        hrm = client.services.get_characteristic(HRM)
        hrs = client.services.get_service(HRS)
        assert hrm is not None
        assert hrs is not None
        stale = BleakGATTCharacteristic(hrm.obj, 0x0FFF, MISSING, ["read"], lambda: 20, hrs)
        with pytest.raises(BleakError):
            await client.read_gatt_char(stale)


async def test_unknown_address_is_not_found(radio: VirtualRadio) -> None:
    client = BleakClient("C1:23:45:67:89:AB", backend=radio.client_backend, timeout=0.5)
    with pytest.raises(BleakDeviceNotFoundError):
        await client.connect()


# ---------------------------------------------------------------------- faults


async def test_drop_link_fires_callback_and_reconnect_resumes(radio: VirtualRadio) -> None:
    strap = await add_strap(radio)
    disconnected: asyncio.Future[BleakClient] = asyncio.get_running_loop().create_future()
    frames = Frames()
    client = BleakClient(
        strap.address,
        backend=radio.client_backend,
        timeout=10.0,
        disconnected_callback=disconnected.set_result,
    )
    await client.connect()
    await client.start_notify(HRM, frames.callback)
    await strap.notify(HRM, seq(0))
    assert await frames.take(1) == [seq(0)]

    await strap.drop_link()
    async with asyncio.timeout(WAIT_S):
        assert await disconnected is client
    assert not client.is_connected
    assert not strap.connected
    assert not strap.subscribed
    await strap.notify(HRM, seq(1))  # nobody listens: a no-op

    fresh = BleakClient(strap.address, backend=radio.client_backend, timeout=10.0)
    await fresh.connect()
    try:
        await fresh.start_notify(HRM, frames.callback)
        for i in range(2, 12):
            await strap.notify(HRM, seq(i))
        assert await frames.take(10) == [seq(i) for i in range(2, 12)]
    finally:
        await fresh.disconnect()
    assert not disconnected.cancelled()


def test_unreachable_times_out_then_recovers() -> None:
    """On the virtual clock, so the connect timeout's duration is checked exactly."""

    async def main() -> None:
        async with VirtualRadio() as radio:
            await unreachable_times_out_then_recovers(radio)

    run_virtual(main)


async def unreachable_times_out_then_recovers(radio: VirtualRadio) -> None:
    strap = await add_strap(radio, "far")
    near = await add_strap(radio, "near")
    loop = asyncio.get_running_loop()

    await strap.set_reachable(False)
    for _ in range(2):  # the second attempt must time out too, not fail with a stale state
        client = BleakClient(strap.address, backend=radio.client_backend, timeout=0.5)
        started = loop.time()
        with pytest.raises(TimeoutError):
            await client.connect()
        assert loop.time() - started == pytest.approx(0.5)  # virtual seconds
        assert not client.is_connected

    # Trap 4: the controller's pending connection is cleared, other connects work.
    async with BleakClient(near.address, backend=radio.client_backend, timeout=10.0) as other:
        assert other.is_connected

    await strap.set_reachable(True)
    lost = asyncio.Event()
    client = BleakClient(
        strap.address,
        backend=radio.client_backend,
        timeout=10.0,
        disconnected_callback=lambda _c: lost.set(),
    )
    await client.connect()
    assert strap.connected

    # Going out of range while connected drops the link (unsolicited disconnect).
    await strap.set_reachable(False)
    async with asyncio.timeout(WAIT_S):
        await lost.wait()
    assert not client.is_connected


async def test_cancelled_connect_leaves_no_pending_state(radio: VirtualRadio) -> None:
    """bleak-retry-connector style: the caller's own timeout cancels ``connect()``."""
    far = await add_strap(radio, "far")
    near = await add_strap(radio, "near")
    await far.set_reachable(False)
    client = BleakClient(far.address, backend=radio.client_backend, timeout=30.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.connect()
    async with BleakClient(near.address, backend=radio.client_backend, timeout=2.0) as other:
        assert other.is_connected


async def test_exit_leaves_no_tasks_behind() -> None:
    before = asyncio.all_tasks()
    async with VirtualRadio() as radio:
        strap = await add_strap(radio)
        client = BleakClient(strap.address, backend=radio.client_backend)
        await client.connect()
        await client.start_notify(HRM, lambda _s, _d: None)
        await strap.drop_link()  # schedules an advertising restart
        await BleakScanner.discover(timeout=0.05, backend=radio.scanner_backend)
        await add_strap(radio, "still connected")
        await BleakClient(radio.peripherals[-1].address, backend=radio.client_backend).connect()
    assert asyncio.all_tasks() == before


# ---------------------------------------------------------------------- virtual time


def test_runs_on_a_virtual_time_loop() -> None:
    simulated_s = 600

    async def main() -> tuple[float, list[bytes]]:
        loop = asyncio.get_running_loop()
        frames = Frames()
        async with VirtualRadio() as radio:
            strap = await add_strap(radio)
            far = await add_strap(radio, "far")
            await far.set_reachable(False)
            with pytest.raises(TimeoutError):
                await BleakClient(far.address, backend=radio.client_backend, timeout=30).connect()
            async with BleakClient(strap.address, backend=radio.client_backend) as client:
                await client.start_notify(HRM, frames.callback)
                start = loop.time()
                for i in range(simulated_s):
                    await strap.notify(HRM, seq(i))
                    await asyncio.sleep(1.0)
                elapsed = loop.time() - start
                received = await frames.take(simulated_s)
        return elapsed, received

    elapsed, received = run_virtual(main)
    assert elapsed == pytest.approx(simulated_s, abs=1.0)
    assert received == [seq(i) for i in range(simulated_s)]


async def test_adapter_removed_drops_links_and_fails_like_bluez_until_it_is_back(
    radio: VirtualRadio,
) -> None:
    """The central's adapter goes (dongle pulled): the link drops with bleak's disconnected
    callback, scans fail with what bleak's BlueZ backend raises without an adapter
    (``BleakBluetoothNotAvailableError`` NO_BLUETOOTH), connects with BlueZ's "device not
    found"; back, the same peripheral is found and connected again."""
    strap = await add_strap(radio)
    lost = asyncio.Event()
    client = BleakClient(strap.address, disconnected_callback=lambda _c: lost.set(),
                         backend=radio.client_backend)
    await client.connect()
    assert strap.connected
    await radio.set_adapter_present(False)
    assert not radio.adapter_present
    async with asyncio.timeout(WAIT_S):
        await lost.wait()
    assert not client.is_connected
    with pytest.raises(BleakBluetoothNotAvailableError) as info:
        async with BleakScanner(backend=radio.scanner_backend):
            pass
    assert info.value.reason is BleakBluetoothNotAvailableReason.NO_BLUETOOTH
    with pytest.raises(BleakError, match=r"device 'dev_.*' not found"):
        await BleakClient(strap.address, backend=radio.client_backend).connect()
    await radio.set_adapter_present(False)  # idempotent
    await radio.set_adapter_present(True)
    device = await BleakScanner.find_device_by_address(
        strap.address, timeout=WAIT_S, backend=radio.scanner_backend
    )
    assert device is not None
    async with BleakClient(device, backend=radio.client_backend) as again:
        assert again.is_connected
        assert strap.connected
