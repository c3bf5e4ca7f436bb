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
