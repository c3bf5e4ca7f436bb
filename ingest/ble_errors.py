"""What went wrong at the BLE edge, in one line with what to do: bleak/OS errors → typed errors.

:func:`explain` maps whatever bleak, dbus-fast or the OS raised (also inside the
``ExceptionGroup`` of a ``TaskGroup``) to a :class:`~ingest.errors.BleError` subclass, or None
when the exception is not a Bluetooth problem (a bug, a broker error): callers print
``str(error)`` and exit 1 instead of a traceback::

    try:
        ...
    except Exception as exc:
        problem = explain(exc)
        if problem is None:
            raise
        print(f"stridewatch: error: {problem}", file=sys.stderr)

The cases, with what raises them (bleak 3.1):

* no stack: no D-Bus system bus (dbus-fast's ``FileNotFoundError``/``ConnectionRefusedError``
  on the socket), or no bluetoothd on it (``BleakDBusError``
  ``org.freedesktop.DBus.Error.ServiceUnknown``, ``...Spawn.ChildExited`` when D-Bus tried to
  start it and it exited, ``NameHasNoOwner``/``NoReply`` when it crashed);
* no adapter: ``BleakBluetoothNotAvailableError`` ``NO_BLUETOOTH``/``NO_BLE_CENTRAL_ROLE``
  (BlueZ, CoreBluetooth, WinRT), BlueZ ``org.bluez.Error.NoSuchAdapter``, bleak's
  ``BleakError("adapter 'hci0' not found")``;
* powered off: ``BleakBluetoothNotAvailableError`` ``POWERED_OFF``, BlueZ
  ``org.bluez.Error.NotReady``, ``...Failed`` "Blocked through rfkill", WinRT's "Failed to start
  scanner. Is Bluetooth turned on?", Android's "Bluetooth is not turned on";
* permission: ``BleakBluetoothNotAvailableError`` ``DENIED_BY_*`` (macOS privacy, dbus-fast
  ``AuthError`` on Linux), D-Bus ``org.freedesktop.DBus.Error.AccessDenied`` (the BlueZ D-Bus
  policy: user not in the ``bluetooth`` group), BlueZ ``NotPermitted``/``NotAuthorized``, a
  ``PermissionError`` on the bus socket, Windows ``E_ACCESSDENIED``;
* busy: BlueZ ``org.bluez.Error.InProgress``/``Busy``, ``Failed`` "Device or resource busy"
  (EBUSY), ``Operation already in progress``;
* sensor unavailable (Bluetooth works, this sensor does not answer): see :func:`explain_connect`.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from typing import Final

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
)

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

__all__ = ["explain", "explain_connect", "leaves", "system_bus_socket"]

DEFAULT_SYSTEM_BUS: Final = "unix:path=/var/run/dbus/system_bus_socket"
"""What dbus-fast connects to when ``DBUS_SYSTEM_BUS_ADDRESS`` is unset."""

_E_ACCESSDENIED: Final = -2147024891  # HRESULT 0x80070005, as WinRT's OSError.winerror
_MAX_DEPTH: Final = 8

_STACK_DBUS_ERRORS: Final = frozenset({
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Disconnected",
})
_PERMISSION_DBUS_ERRORS: Final = frozenset({
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.AuthFailed",
    "org.bluez.Error.NotPermitted",
    "org.bluez.Error.NotAuthorized",
})
_BUSY_DBUS_ERRORS: Final = frozenset({"org.bluez.Error.InProgress", "org.bluez.Error.Busy"})


def system_bus_socket() -> str:
    """The D-Bus system bus address dbus-fast uses (``DBUS_SYSTEM_BUS_ADDRESS`` or the
    default), without the ``unix:path=`` prefix when it is a plain socket path."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS
    first = address.split(";")[0]
    if first.startswith("unix:path="):
        return first.removeprefix("unix:path=").split(",")[0]
    return first


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``: itself, or every leaf of a (nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def explain(exc: BaseException, *, platform: str | None = None) -> BleError | None:
    """The typed Bluetooth error behind ``exc``, or None when it is not a Bluetooth problem.

    Exception groups are searched leaf by leaf (the first leaf that is a Bluetooth problem
    wins), and each leaf's ``__cause__`` chain is followed (an explained error raised ``from``
    the original is returned as it is). The result's ``__cause__`` is the original exception.

    Args:
        exc: what was raised.
        platform: ``sys.platform`` value whose advice to give (``"linux"``, ``"darwin"``,
            ``"win32"``); the running platform's by default.
    """
    plat = platform or sys.platform
    for leaf in leaves(exc):
        seen = 0
        current: BaseException | None = leaf
        while current is not None and seen < _MAX_DEPTH:
            if isinstance(current, BleError):
                return current
            found = _explain_one(current, plat)
            if found is not None:
                found.__cause__ = current
                return found
            current = current.__cause__
            seen += 1
    return None


def explain_connect(
    exc: BaseException, name: str, *, platform: str | None = None
) -> BleError:
    """Why connecting to the sensor ``name`` failed: the Bluetooth problem when there is one
    (:func:`explain`), otherwise a :class:`SensorUnavailableError` saying what to check
    (Polar's dual Bluetooth, a watch or app holding the sensor, wear/wake, range)."""
    found = explain(exc, platform=platform)
    if found is not None:
        return found
    what = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError) and not str(exc):
        what = "no answer in time"
    elif isinstance(exc, BleakDeviceNotFoundError):
        what = "not advertising"
    error = SensorUnavailableError(f"{name} did not accept a connection ({what})",
                                   sensor_advice(name))
    error.__cause__ = exc
    return error


def sensor_advice(name: str) -> str:
    """What to do when one sensor does not connect although Bluetooth works."""
    if "polar" in name.lower():
        return (
            "It is probably connected to a watch or phone: a Polar strap takes a second "
            "connection only with 'dual Bluetooth' on (Polar Flow/Beat app); otherwise "
            "disconnect it there. Polar straps also sleep until worn: moisten and wear it"
        )
    return (
        "It is probably connected to another device (watch, phone app): disconnect it there "
        "or turn that device's Bluetooth off; also check that it is worn or moved (sensors "
        "sleep) and in range"
    )


# ---------------------------------------------------------------------- the mapping


def _explain_one(exc: BaseException, plat: str) -> BleError | None:
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return _not_available(exc, plat)
    if isinstance(exc, BleakDBusError):
        return _dbus_error(exc, plat)
    if isinstance(exc, BleakError):
        return _bleak_message(str(exc), plat)
    if isinstance(exc, OSError):
        return _os_error(exc, plat)
    return None


def _not_available(exc: BleakBluetoothNotAvailableError, plat: str) -> BleError:
    reason = exc.reason
    message = str(exc.args[0]) if exc.args else ""
    R = BleakBluetoothNotAvailableReason  # noqa: N806 (an alias of the enum)
    if reason is R.NO_BLUETOOTH:
        return _no_adapter(plat)
    if reason is R.NO_BLE_CENTRAL_ROLE:
        return NoAdapterError(
            "The Bluetooth adapter cannot act as a Bluetooth LE central (classic-only adapter)",
            "Use a Bluetooth 4.0 (LE) or newer adapter",
        )
    if reason is R.POWERED_OFF:
        return _powered_off(plat)
    if reason in (R.DENIED_BY_USER, R.DENIED_BY_SYSTEM, R.DENIED_BY_UNKNOWN):
        return _permission(plat, message, by_system=reason is R.DENIED_BY_SYSTEM)
    return BluetoothUnavailableError(
        f"Bluetooth is not available ({message or 'unknown reason'})",
        "Check that Bluetooth is on and working in the system settings, then try again",
    )


def _dbus_error(exc: BleakDBusError, plat: str) -> BleError | None:
    name = exc.dbus_error
    details = exc.dbus_error_details or ""
    if name in _STACK_DBUS_ERRORS or name.startswith("org.freedesktop.DBus.Error.Spawn."):
        return _no_bluetoothd(name, details)
    if name in _PERMISSION_DBUS_ERRORS:
        return _permission(plat, f"{name.rsplit('.', 1)[-1]}: {details}".rstrip(": "))
    if name == "org.bluez.Error.NoSuchAdapter":
        return _no_adapter(plat)
    if name == "org.bluez.Error.NotReady":
        return _powered_off(plat)
    if name in _BUSY_DBUS_ERRORS:
        return _busy(details or name.rsplit(".", 1)[-1])
    if name == "org.bluez.Error.Failed":
        return _bleak_message(details, plat)
    return None


def _bleak_message(message: str, plat: str) -> BleError | None:
    text = message.lower()
    if "rfkill" in text or "is not turned on" in text or "is bluetooth turned on" in text:
        return _powered_off(plat)
    if "resource busy" in text or "already in progress" in text:
        return _busy(message)
    if text.startswith("adapter '") and text.endswith("' not found"):
        return _no_adapter(plat)
    if "not supported on this hardware" in text:
        return _no_adapter(plat)
    if "bleak requires bluez" in text:
        return BluetoothStackError(
            "The installed BlueZ is too old (bleak needs BlueZ 5.55 or newer)",
            "Upgrade the bluez package (e.g. sudo apt install bluez) and restart bluetoothd",
        )
    return None


def _os_error(exc: OSError, plat: str) -> BleError | None:
    if getattr(exc, "winerror", None) == _E_ACCESSDENIED:
        return _permission("win32", str(exc))
    if not _raised_by_dbus(exc):
        return None
    socket_path = system_bus_socket()
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        state = "no socket" if isinstance(exc, FileNotFoundError) else "nothing listening"
        return BluetoothStackError(
            f"No Bluetooth stack: the D-Bus system bus is not running ({state} at "
            f"{socket_path})",
            "Start D-Bus and BlueZ (sudo systemctl start dbus bluetooth); in a container, "
            "mount the host's /run/dbus and run bluetoothd on the host",
        )
    if isinstance(exc, PermissionError):
        return _permission(plat, f"cannot open the D-Bus system bus at {socket_path}")
    if exc.errno == errno.EBUSY:
        return _busy(str(exc))
    return BluetoothStackError(
        f"No Bluetooth stack: cannot talk to the D-Bus system bus at {socket_path} ({exc})",
        "Check that D-Bus and BlueZ run (systemctl status dbus bluetooth)",
    )


def _raised_by_dbus(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside dbus-fast or bleak's BlueZ backend (its traceback)."""
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(("dbus_fast", "bleak.backends.bluezdbus")):
            return True
        tb = tb.tb_next
    return False


# ---------------------------------------------------------------------- the messages


def _no_bluetoothd(name: str, details: str) -> BluetoothStackError:
    if name.startswith("org.freedesktop.DBus.Error.Spawn."):
        why = f"D-Bus tried to start it and it exited: {details or name}"
    elif name in ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Disconnected"):
        why = f"it stopped answering: {details or name}"
    else:
        why = "nothing provides org.bluez on the D-Bus system bus"
    return BluetoothStackError(
        f"No Bluetooth stack: bluetoothd (BlueZ) is not running ({why})",
        "Install and start it: sudo apt install bluez && sudo systemctl enable --now bluetooth; "
        "'systemctl status bluetooth' says why it stopped (it exits without kernel Bluetooth "
        "support, e.g. in a container)",
    )


def _no_adapter(plat: str) -> NoAdapterError:
    if plat == "darwin":
        advice = "This Mac reports no Bluetooth hardware: check System Information > Bluetooth"
    elif plat == "win32":
        advice = ("Plug in a Bluetooth 4.0+ adapter or enable the built-in one in Device "
                  "Manager")
    else:
        advice = ("Plug in a Bluetooth 4.0+ USB adapter or enable the built-in one; "
                  "'bluetoothctl list' shows the adapters BlueZ knows")
    return NoAdapterError("No Bluetooth adapter found", advice)


def _powered_off(plat: str) -> AdapterPoweredOffError:
    if plat == "darwin":
        advice = "Turn Bluetooth on in Control Centre or System Settings > Bluetooth"
    elif plat == "win32":
        advice = "Turn Bluetooth on in Settings > Bluetooth & devices (and airplane mode off)"
    else:
        advice = ("Turn it on: bluetoothctl power on (if it stays off: rfkill unblock "
                  "bluetooth)")
    return AdapterPoweredOffError("The Bluetooth adapter is powered off", advice)


def _permission(plat: str, detail: str, *, by_system: bool = False) -> BluetoothPermissionError:
    if plat == "darwin":
        advice = (
            "Ask the administrator to lift the restriction (management profile)"
            if by_system
            else "Allow Bluetooth for your terminal (or the app running stridewatch) in System "
            "Settings > Privacy & Security > Bluetooth, then restart it"
        )
        cause = "Bluetooth access is denied to this app"
    elif plat == "win32":
        advice = ("Allow apps to use Bluetooth: Settings > Privacy & security > Radios "
                  "(and let desktop apps access it)")
        cause = "Windows denies this app access to the Bluetooth radio"
    else:
        advice = ("Add the user to the bluetooth group (sudo usermod -aG bluetooth $USER, then "
                  "log in again) or allow it in /etc/dbus-1/system.d/bluetooth.conf")
        cause = "Permission denied: this user may not use Bluetooth"
    return BluetoothPermissionError(f"{cause} ({detail})" if detail else cause, advice)


def _busy(detail: str) -> AdapterBusyError:
    return AdapterBusyError(
        f"The Bluetooth adapter is busy ({detail})",
        "Another program is scanning or connecting (another stridewatch, bluetoothctl, a "
        "phone-sync tool): stop it or retry in a moment; if it persists, restart bluetoothd "
        "(sudo systemctl restart bluetooth)",
    )
