"""Errors raised by the ingest package.

A flat hierarchy with structured attributes: codecs raise :class:`GattDecodeError`, which the
collector counts and skips; connection failures become :class:`SensorConnectError` with advice.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by :mod:`ingest`."""


class GattDecodeError(IngestError, ValueError):
    """A characteristic value that cannot be decoded.

    Attributes:
        characteristic: short name of the characteristic (``"heart_rate_measurement"``).
        offset: byte offset at which the problem was found.
        reason: what is wrong, in words.
        data: the raw bytes, kept so nothing is lost.
    """

    def __init__(self, characteristic: str, offset: int, reason: str, data: bytes) -> None:
        self.characteristic = characteristic
        self.offset = offset
        self.reason = reason
        self.data = bytes(data)
        frame = self.data.hex(" ")
        super().__init__(f"{characteristic}: {reason} at byte {offset} (frame {frame})")


class GattEncodeError(IngestError, ValueError):
    """A message whose values cannot be put on the wire (out of range for the field)."""


class SensorConnectError(IngestError):
    """Connecting to a sensor failed; ``advice`` says what the user can do."""

    def __init__(self, address: str, reason: str, advice: str = "") -> None:
        self.address = address
        self.reason = reason
        self.advice = advice
        text = f"{address}: {reason}"
        super().__init__(f"{text}. {advice}" if advice else text)


class ReplayError(IngestError, ValueError):
    """A recorded file (FIT, CSV, RR text) that cannot be imported.

    Raised before anything of the file is returned: a reader never hands out a partial result.

    Attributes:
        path: the file, as given.
        reason: what is wrong, in words.
        offset: byte offset where the problem was found, when known.
        record_no: zero-based number of the FIT frame (header, definition or data message)
            being read when the problem was found, when known.
        line: one-based line number of a text file, when known.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        offset: int | None = None,
        record_no: int | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.reason = reason
        self.offset = offset
        self.record_no = record_no
        self.line = line
        where = [
            f"line {line}" if line is not None else "",
            f"FIT record {record_no}" if record_no is not None else "",
            f"byte {offset}" if offset is not None else "",
        ]
        located = ", ".join(w for w in where if w)
        super().__init__(f"{path}: {reason}" + (f" (at {located})" if located else ""))


class BleError(IngestError):
    """A failure at the BLE edge, explained: ``cause`` (one line) and ``advice`` (what to do).

    ``str(error)`` is the one line a command prints: ``"<cause>. <advice>"``. Made by
    :func:`ingest.ble_errors.explain` from what bleak, dbus-fast or the OS raised (kept as
    ``__cause__`` for ``--debug``).
    """

    problem: str = "bluetooth"
    """Short, stable identifier of the kind of failure (``"no_adapter"``, ...)."""

    def __init__(self, cause: str, advice: str) -> None:
        self.cause = cause
        self.advice = advice
        super().__init__(f"{cause}. {advice}" if advice else cause)


class BluetoothUnavailableError(BleError):
    """Bluetooth cannot be used at all on this machine (stack, adapter, power or permission).

    Before a session started this ends the command (exit 1); during a session the collector
    treats it as the adapter being gone and waits for it to come back.
    """


class BluetoothStackError(BluetoothUnavailableError):
    """No Bluetooth stack: the D-Bus system bus or bluetoothd is not running (or crashed)."""

    problem = "no_stack"


class NoAdapterError(BluetoothUnavailableError):
    """No Bluetooth (LE central) adapter: none built in, dongle unplugged, or it vanished."""

    problem = "no_adapter"


class AdapterPoweredOffError(BluetoothUnavailableError):
    """The adapter exists but is powered off (or blocked by rfkill / airplane mode)."""

    problem = "powered_off"


class BluetoothPermissionError(BluetoothUnavailableError):
    """The OS refuses this program access to Bluetooth (group, D-Bus policy, privacy setting)."""

    problem = "permission"


class AdapterBusyError(BluetoothUnavailableError):
    """The adapter is busy with another operation or program (discovery, a connect, a reset)."""

    problem = "adapter_busy"


class SensorUnavailableError(BleError):
    """One sensor cannot be reached although Bluetooth works: most often it is connected to
    another device (a watch or phone app) and so not advertising, or asleep/out of range."""

    problem = "sensor_unavailable"
