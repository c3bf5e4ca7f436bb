"""Bluetooth that fails with advice (issue 11, item 4): every failure at the BLE edge becomes a
typed error whose ``str`` is one line: the cause and what to do.

The Linux cases that this machine can cause are caused for real, through bleak's BlueZ backend:
no system bus at all (dbus-fast's ``FileNotFoundError``), and a real system bus
(``dbus-daemon`` from Debian's ``dbus``, :mod:`dbus_server`) without bluetoothd, absent
(``ServiceUnknown``) or exiting when D-Bus starts it (``Spawn.ChildExited``, as Debian's
bluetoothd does in a container). The cases that cannot be caused here (no adapter, powered off,
permission, busy, a sensor held by another device) are tested with the exception bleak (3.1)
raises for each, named in each test after the backend code that raises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bleak import BleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)
from dbus_server import SystemBus

from ingest.ble_errors import explain, explain_connect, system_bus_socket
from ingest.clock import LoopClock
from ingest.collector import Collector
from ingest.errors import (
    AdapterBusyError,
    AdapterPoweredOffError,
    BleError,
    BluetoothPermissionError,
    BluetoothStackError,
    BluetoothUnavailableError,
    NoAdapterError,
    SensorUnavailableError,
)
from ingest.sensor_map import SensorMap
from stridewatch import cli

Reason = BleakBluetoothNotAvailableReason


def _one_line(error: BleError | None) -> str:
    assert error is not None
    text = str(error)
    assert "\n" not in text
    assert text == f"{error.cause}. {error.advice}"
    assert error.cause
    assert error.advice
    return text


# ---------------------------------------------------------------------- real: Linux, no BlueZ


@pytest.fixture
def no_system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    address = f"unix:path={tmp_path / 'no-such-socket'}"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    return address


@pytest.fixture(params=["absent", "exits"])
def bus_without_bluetoothd(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SystemBus]:
    with SystemBus(tmp_path, bluez=request.param) as bus:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        yield bus


def _scan_failure() -> BaseException:
    async def scan() -> None:
        async with BleakScanner():  # bleak's platform backend: BlueZ over D-Bus
            pass

    try:
        asyncio.run(scan())
    except BaseException as exc:  # whatever bleak raises: the test looks at it
        return exc
    raise AssertionError("a scan without BlueZ succeeded")


def test_no_system_bus_is_no_bluetooth_stack(no_system_bus: str) -> None:
    exc = _scan_failure()
    assert isinstance(exc, FileNotFoundError)  # what dbus-fast raises: today's traceback
    error = explain(exc)
    assert isinstance(error, BluetoothStackError)
    line = _one_line(error)
    assert "D-Bus system bus is not running" in line
    assert system_bus_socket() in line
    assert "systemctl start dbus bluetooth" in line
    assert error.__cause__ is exc


def test_system_bus_without_bluetoothd_is_no_bluetooth_stack(
    bus_without_bluetoothd: SystemBus,
) -> None:
    exc = _scan_failure()
    assert isinstance(exc, BleakDBusError)
    expected = {
        "absent": "org.freedesktop.DBus.Error.ServiceUnknown",
        "exits": "org.freedesktop.DBus.Error.Spawn.ChildExited",
    }[bus_without_bluetoothd.bluez]
    assert exc.dbus_error == expected
    error = explain(exc)
    assert isinstance(error, BluetoothStackError)
    line = _one_line(error)
    assert "bluetoothd (BlueZ) is not running" in line
    assert "systemctl enable --now bluetooth" in line
    if bluetoothd_exits := bus_without_bluetoothd.bluez == "exits":
        assert "exited" in line
    assert bluetoothd_exits == ("exited" in error.cause)


def test_collector_without_bluetooth_raises_the_explained_error_not_a_group(
    no_system_bus: str,
) -> None:
    """The collector's first scan fails: leaving ``async with`` raises the typed error itself
    (not an ExceptionGroup from its TaskGroup), with what bleak raised as its cause."""

    async def collect() -> None:
        collector = Collector(SensorMap(default_athlete="a"), clock=LoopClock(datetime.now(UTC)))
        async with collector:
            async for _ in collector:
                pass

    with pytest.raises(BluetoothStackError) as info:
        asyncio.run(collect())
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert explain(info.value) is info.value


@pytest.mark.parametrize(
    "argv",
    [["scan", "--timeout", "1"], ["collect", "--seconds", "1"]],
    ids=["scan", "collect"],
)
def test_commands_fail_with_an_explained_error(
    argv: list[str], bus_without_bluetoothd: SystemBus, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scan`` and ``collect`` in-process: exit 1 with the explained line, no traceback (the
    subprocess tests in test_ble_cli.py check the same from the outside)."""
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("stridewatch: error: ")
    assert "bluetooth" in err[0].lower()


# ---------------------------------------------------------------------- mapped: bleak's exceptions


@pytest.mark.parametrize(
    ("exc", "kind", "needle"),
    [
        pytest.param(
            BleakBluetoothNotAvailableError("No Bluetooth adapters found.", Reason.NO_BLUETOOTH),
            NoAdapterError, "bluetoothctl list", id="bluez-get_default_adapter-no-adapter",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError(
                "No Bluetooth adapters with BLE 'central' role found.", Reason.NO_BLE_CENTRAL_ROLE
            ),
            NoAdapterError, "4.0", id="bluez-get_default_adapter-no-central-role",
        ),
        pytest.param(
            BleakError("adapter 'hci0' not found"),
            NoAdapterError, "USB adapter", id="bluez-manager-_check_adapter-adapter-removed",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.NoSuchAdapter", ["No such adapter"]),
            NoAdapterError, "USB adapter", id="bluez-NoSuchAdapter",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError(
                "No powered Bluetooth adapters found. Turn on Bluetooth and try again.",
                Reason.POWERED_OFF,
            ),
            AdapterPoweredOffError, "bluetoothctl power on",
            id="bluez-get_default_adapter-powered-off",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]),
            AdapterPoweredOffError, "bluetoothctl power on", id="bluez-StartDiscovery-NotReady",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.Failed", ["Blocked through rfkill"]),
            AdapterPoweredOffError, "rfkill unblock", id="bluez-SetPowered-rfkill",
        ),
        pytest.param(
            BleakDBusError(
                "org.freedesktop.DBus.Error.AccessDenied",
                ['Rejected send message, 1 matched rules; type="method_call", '
                 'interface="org.freedesktop.DBus.ObjectManager" member="GetManagedObjects" '
                 'destination="org.bluez"'],
            ),
            BluetoothPermissionError, "bluetooth group",
            id="dbus-policy-AccessDenied-not-in-bluetooth-group",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.NotPermitted", ["Not Permitted"]),
            BluetoothPermissionError, "bluetooth group", id="bluez-NotPermitted",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError(
                "Authentication failed: REJECTED", Reason.DENIED_BY_SYSTEM
            ),
            BluetoothPermissionError, "bluetooth group",
            id="bluez-manager-async_init-dbus-AuthError",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]),
            AdapterBusyError, "Another program", id="bluez-InProgress",
        ),
        pytest.param(
            BleakDBusError("org.bluez.Error.Failed", ["Device or resource busy"]),
            AdapterBusyError, "restart bluetoothd", id="bluez-Failed-EBUSY",
        ),
        pytest.param(
            BleakDBusError("org.freedesktop.DBus.Error.NoReply", ["Did not receive a reply"]),
            BluetoothStackError, "systemctl status bluetooth", id="bluetoothd-crashed-NoReply",
        ),
    ],
)
def test_linux_failures_map_to_typed_errors(
    exc: BaseException, kind: type[BleError], needle: str
) -> None:
    error = explain(exc, platform="linux")
    assert type(error) is kind
    assert needle in _one_line(error)
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "kind", "needle"),
    [
        pytest.param(
            BleakBluetoothNotAvailableError(
                "Bluetooth access is denied by the user for the current application. "
                "Check macOS privacy settings.", Reason.DENIED_BY_USER,
            ),
            BluetoothPermissionError, "Privacy & Security > Bluetooth",
            id="corebluetooth-unauthorized-denied",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError(
                "Bluetooth access is restricted for the current application, e.g. by parental "
                "controls. Ask the admin to remove this restriction.", Reason.DENIED_BY_SYSTEM,
            ),
            BluetoothPermissionError, "administrator", id="corebluetooth-unauthorized-restricted",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError("Bluetooth device is turned off", Reason.POWERED_OFF),
            AdapterPoweredOffError, "Control Centre", id="corebluetooth-powered-off",
        ),
        pytest.param(
            BleakBluetoothNotAvailableError("Bluetooth is unsupported", Reason.NO_BLUETOOTH),
            NoAdapterError, "System Information", id="corebluetooth-unsupported",
        ),
    ],
)
def test_macos_failures_map_to_typed_errors(
    exc: BaseException, kind: type[BleError], needle: str
) -> None:
    error = explain(exc, platform="darwin")
    assert type(error) is kind
    assert needle in _one_line(error)


def test_windows_failures_map_to_typed_errors() -> None:
    off = BleakBluetoothNotAvailableError(
        "Bluetooth radio is not powered on. Turn on Bluetooth and try again.", Reason.POWERED_OFF
    )  # WinRT scanner.start: radio.state != ON
    error = explain(off, platform="win32")
    assert isinstance(error, AdapterPoweredOffError)
    assert "Settings > Bluetooth & devices" in _one_line(error)
    aborted = BleakError("Failed to start scanner. Is Bluetooth turned on?")  # watcher ABORTED
    assert isinstance(explain(aborted, platform="win32"), AdapterPoweredOffError)
    no_adapter = BleakBluetoothNotAvailableError("No Bluetooth adapter found", Reason.NO_BLUETOOTH)
    assert "Device Manager" in _one_line(explain(no_adapter, platform="win32"))
    # WinRT raises OSError with the HRESULT E_ACCESSDENIED when radio access is not allowed.
    denied = OSError(13, "Access is denied")
    denied.winerror = -2147024891  # type: ignore[attr-defined]  # set by Windows only
    error = explain(denied, platform="win32")
    assert isinstance(error, BluetoothPermissionError)
    assert "Privacy & security > Radios" in _one_line(error)


def test_sensor_held_by_another_device_says_what_to_do() -> None:
    """A strap connected to a watch stops advertising: bleak (BlueZ) raises
    BleakDeviceNotFoundError, or the connect times out; WinRT says "Unreachable"."""
    polar = explain_connect(
        BleakDeviceNotFoundError("C4:7C:8D:6A:12:34", "Device with address C4:7C:8D:6A:12:34 "
                                 "was not found."),
        "Polar H10 1A2B3C4D",
    )
    assert isinstance(polar, SensorUnavailableError)
    line = _one_line(polar)
    assert line.startswith("Polar H10 1A2B3C4D did not accept a connection (not advertising)")
    assert "dual Bluetooth" in line
    other = explain_connect(TimeoutError(), "Stryd")
    assert isinstance(other, SensorUnavailableError)
    assert "(no answer in time)" in other.cause
    assert "connected to another device" in other.advice
    winrt = explain_connect(BleakError("Could not get GATT services: Unreachable"), "HRM-Pro")
    assert isinstance(winrt, SensorUnavailableError)
    # When the adapter is the problem, the adapter is named, not the sensor.
    off = explain_connect(BleakDBusError("org.bluez.Error.NotReady", []), "Stryd")
    assert isinstance(off, AdapterPoweredOffError)


def test_exception_groups_from_task_groups_are_unwrapped() -> None:
    inner = BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["no org.bluez"])
    group = ExceptionGroup(
        "unhandled errors in a TaskGroup",
        [ValueError("unrelated"), ExceptionGroup("nested", [inner])],
    )
    error = explain(group)
    assert isinstance(error, BluetoothStackError)
    assert error.__cause__ is inner
    # An explained error raised from the original is returned as is, also through its cause.
    typed = NoAdapterError("No Bluetooth adapter found", "Plug one in")
    assert explain(ExceptionGroup("g", [typed])) is typed
    wrapper = RuntimeError("collector failed")
    wrapper.__cause__ = BleakBluetoothNotAvailableError("x", Reason.POWERED_OFF)
    assert isinstance(explain(wrapper), AdapterPoweredOffError)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        BleakError("Not connected"),
        BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]),
        FileNotFoundError(2, "No such file or directory", "sessions.sqlite"),  # not from D-Bus
        ConnectionRefusedError(111, "Connection refused"),  # e.g. the MQTT broker
        KeyboardInterrupt(),
    ],
    ids=["value", "not-connected", "le-abort", "file", "broker", "ctrl-c"],
)
def test_other_failures_are_not_explained_as_bluetooth(exc: BaseException) -> None:
    assert explain(exc) is None


def test_every_unavailable_error_is_an_ingest_error_with_a_stable_problem_id() -> None:
    kinds = [BluetoothStackError, NoAdapterError, AdapterPoweredOffError,
             BluetoothPermissionError, AdapterBusyError]
    assert all(issubclass(k, BluetoothUnavailableError) for k in kinds)
    assert [k.problem for k in kinds] == [
        "no_stack", "no_adapter", "powered_off", "permission", "adapter_busy"]
    assert SensorUnavailableError.problem == "sensor_unavailable"
    assert not issubclass(SensorUnavailableError, BluetoothUnavailableError)
