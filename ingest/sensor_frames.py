"""One sensor's notification frames → records: decode (``ingest.gatt``), stamp with the
clock, place RR intervals on the beat clock, and derive the link events the frames imply (an RR
gap, skin contact lost or regained, a frame that does not decode). No bleak, no event loop: the
collector calls it from the BLE callbacks, which must never block, and a test can drive it
with bytes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ingest.beat_clock import BeatClock
from ingest.clock import Clock
from ingest.errors import GattDecodeError
from ingest.gatt.heart_rate import decode_heart_rate
from ingest.gatt.rsc import decode_rsc
from ingest.gatt.simple import decode_battery_level
from ingest.records import (
    BatteryReading,
    Contact,
    HeartRateReading,
    LinkEvent,
    LinkState,
    Reading,
    SensorKind,
    StrideReading,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class SensorCounters:
    """Per-sensor counters, readable at any time."""

    frames: int = 0
    bad_frames: int = 0
    reserved_flag_frames: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    silences: int = 0
    rr_gaps: int = 0


@dataclasses.dataclass(slots=True, kw_only=True)
class SensorFrames:
    """One sensor's frames to records, handed to ``emit`` as they are made.

    ``running_supported`` comes from the RSC Feature read on connect: the walking/running bit
    of a measurement means something only when it is set.
    """

    address: str
    name: str
    athlete: str
    kind: SensorKind
    clock: Clock
    emit: Callable[[Reading], None]
    counters: SensorCounters = dataclasses.field(default_factory=SensorCounters)
    beat_clock: BeatClock = dataclasses.field(default_factory=BeatClock)
    contact: Contact | None = None
    running_supported: bool | None = None
    last_notification_s: float = 0.0
    """Monotonic time of the last measurement notification (the silence watchdog reads it)."""

    def link(self, link: LinkState, detail: str = "", raw: bytes = b"") -> None:
        """A link event of this sensor, stamped now."""
        self.emit(
            LinkEvent(
                athlete=self.athlete,
                sensor=self.address,
                time_utc=self.clock.utc(),
                time_mono_s=self.clock.monotonic_s(),
                state=link,
                detail=detail,
                raw=raw,
            )
        )

    def decode_or_none(self, raw: bytes | None, decode: Callable[[bytes], Any]) -> Any:
        """``decode(raw)``; None when there is nothing to decode or it cannot be decoded (a
        ``bad_frame`` event, counted)."""
        if raw is None:
            return None
        try:
            return decode(raw)
        except GattDecodeError as exc:
            self.counters.bad_frames += 1
            self.link(LinkState.BAD_FRAME, str(exc), raw)
            return None

    def _bad_frame(self, exc: GattDecodeError) -> None:
        self.counters.bad_frames += 1
        log.debug("%s: %s", self.address, exc)
        self.link(LinkState.BAD_FRAME, str(exc), exc.data)

    def heart_rate(self, raw: bytes) -> None:
        """A Heart Rate Measurement notification (0x2A37)."""
        now = self.clock.monotonic_s()
        self.last_notification_s = now
        self.counters.frames += 1
        try:
            m = decode_heart_rate(raw)
        except GattDecodeError as exc:
            self._bad_frame(exc)
            return
        if m.reserved_flags:
            self.counters.reserved_flag_frames += 1
        rr = m.rr_intervals_s
        placed = self.beat_clock.place(now, rr)
        if placed.gap_s is not None:
            self.counters.rr_gaps += 1
            self.link(LinkState.RR_GAP, f"{placed.gap_s:.1f} s of RR intervals missing")
        if m.contact is not self.contact:
            if m.contact is Contact.NOT_DETECTED:
                self.link(LinkState.NO_CONTACT, "strap reports no skin contact")
            elif self.contact is Contact.NOT_DETECTED:
                self.link(LinkState.CONTACT, "skin contact regained")
            self.contact = m.contact
        self.emit(
            HeartRateReading(
                athlete=self.athlete,
                sensor=self.address,
                time_utc=self.clock.utc(),
                time_mono_s=now,
                heart_rate_bpm=m.heart_rate_bpm,
                rr_intervals_s=rr,
                beat_times_mono_s=placed.beat_times_s,
                contact=m.contact,
                energy_kj=m.energy_kj,
                raw=raw,
            )
        )

    def rsc(self, raw: bytes) -> None:
        """An RSC Measurement notification (0x2A53)."""
        now = self.clock.monotonic_s()
        self.last_notification_s = now
        self.counters.frames += 1
        try:
            m = decode_rsc(raw)
        except GattDecodeError as exc:
            self._bad_frame(exc)
            return
        if m.reserved_flags:
            self.counters.reserved_flag_frames += 1
        self.emit(
            StrideReading(
                athlete=self.athlete,
                sensor=self.address,
                time_utc=self.clock.utc(),
                time_mono_s=now,
                speed_mps=m.speed_mps,
                cadence_per_min=m.cadence_per_min,
                stride_length_m=m.stride_length_m,
                total_distance_m=m.total_distance_m,
                # The bit means something only when RSC Feature bit 2 says so (RSCS 1.0 §3.2).
                running=m.running if self.running_supported else None,
                raw=raw,
            )
        )

    def battery(self, raw: bytes) -> None:
        """A Battery Level value (0x2A19), read or notified."""
        try:
            level = decode_battery_level(raw)
        except GattDecodeError as exc:
            self._bad_frame(exc)
            return
        self.emit(
            BatteryReading(
                athlete=self.athlete,
                sensor=self.address,
                time_utc=self.clock.utc(),
                time_mono_s=self.clock.monotonic_s(),
                level_pct=level,
                raw=raw,
            )
        )
