"""Virtual athletes: a simulated runner wearing a virtual HR strap and a virtual footpod.

Each :class:`VirtualAthlete` owns two real GATT servers on the :class:`VirtualRadio` (bumble's
in-process link) and drives them from an :class:`AthleteTrace`: a Heart Rate Measurement per
second with the RR intervals of the beats since the previous frame, an RSC Measurement every
``footpod_interval_s``. Frames are encoded with our codecs and notified only while the collector
is subscribed, as a real sensor does: beats that happen while the link is down are lost.

Faults are injected here, in the sensors, so the collector sees what real radios do: a dropped
link (peripheral-side disconnect, then out of range for a while), a silent link, lost skin
contact, a low battery, a garbage frame.

Time is the event loop's (``loop.time()``): on a :class:`~ingest.virtual.timewarp.TimeWarpLoop`
a workout runs faster than real time with identical frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Literal

from ingest.clock import Clock
from ingest.collector import Collector
from ingest.collector_settings import CollectorSettings
from ingest.gatt import uuids
from ingest.gatt.heart_rate import HeartRateMeasurement
from ingest.gatt.rsc import RscFeature, RscMeasurement, encode_rsc_feature
from ingest.gatt.simple import BodySensorLocation, encode_battery_level, encode_body_sensor_location
from ingest.records import Contact, Reading, SensorKind
from ingest.sensor_map import SensorAssignment, SensorMap
from ingest.virtual.athlete import AthleteTrace, simulate
from ingest.virtual.athlete_params import AthleteParams
from ingest.virtual.peripheral import VirtualPeripheral
from ingest.virtual.radio import CharacteristicSpec, ServiceSpec, VirtualRadio
from ingest.virtual.workouts import load_workout

log = logging.getLogger(__name__)

# Energy expended is sent in every 10th frame only, as real straps do (HRS 1.0 §3.1.1.3 leaves
# the rate to the sensor; Polar and Garmin straps send it rarely). Our decoder must not shift RR.
ENERGY_EVERY_N_FRAMES = 10
# Frames that a broken sensor could send: an RR flag with an odd number of RR bytes (2A37) and
# a truncated RSC measurement (2A53). Each must be counted and skipped.
GARBAGE_HR_FRAME = bytes.fromhex("10 48 01")
GARBAGE_RSC_FRAME = bytes.fromhex("00 01")
LOW_BATTERY_PCT = 8
START_BATTERY_PCT = 87
# How long an athlete waits for the collector to subscribe before the workout clock starts
# anyway ("the runner presses start once the watch shows both sensors").
SUBSCRIBE_WAIT_S = 120.0
# After the workout ends the collector keeps reading this long, so in-flight notifications land.
DRAIN_S = 2.0

FaultKind = Literal["drop", "silent", "no_contact", "low_battery", "garbage", "adapter_gone"]
SensorRole = Literal["strap", "footpod"]


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected into one virtual sensor at ``at_s`` seconds of workout time.

    ``drop``: the link is cut by the peripheral and it is unreachable for ``duration_s``.
    ``silent``: connected, but no notification for ``duration_s``.
    ``no_contact``: the strap reports no skin contact for ``duration_s`` (still sends HR).
    ``low_battery``: battery level falls to 8 %.
    ``garbage``: one malformed frame is sent.
    ``adapter_gone``: the *collector's* Bluetooth adapter disappears for ``duration_s`` (USB
    dongle pulled, controller reset): every link drops, scans and connects fail until it is
    back. ``sensor`` is ignored; several athletes carrying the same fault remove it once.
    """

    kind: FaultKind
    sensor: SensorRole
    at_s: float
    duration_s: float = 0.0

    def active(self, t: float) -> bool:
        return self.at_s <= t < self.at_s + self.duration_s


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SensorOptions:
    """How the virtual sensors encode what they measure."""

    cadence_unit: Literal["steps", "strides"] = "steps"
    """Footpod cadence field in steps/min, or in strides/min (one foot: half the steps)."""
    length_unit: Literal["step", "stride"] = "step"
    """What the footpod's "stride length" field holds: one step, or a full stride (two steps)."""
    send_length: bool = True
    send_distance: bool = True
    energy: bool = True
    contact_supported: bool = True
    hr_interval_s: float = 1.0
    footpod_interval_s: float = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class SentFrame:
    """A frame a virtual sensor notified (ground truth for the collector's tests)."""

    sensor: str
    uuid: str
    time_s: float
    data: bytes


def _dis_service(model: str) -> ServiceSpec:
    return ServiceSpec(
        uuids.DEVICE_INFORMATION_SERVICE,
        (
            CharacteristicSpec(uuids.MANUFACTURER_NAME, b"stridewatch virtual"),
            CharacteristicSpec(uuids.MODEL_NUMBER, model.encode()),
            CharacteristicSpec(uuids.FIRMWARE_REVISION, b"1.0.0"),
        ),
    )


def _battery_service() -> ServiceSpec:
    return ServiceSpec(
        uuids.BATTERY_SERVICE,
        (
            CharacteristicSpec(
                uuids.BATTERY_LEVEL, encode_battery_level(START_BATTERY_PCT), notify=True
            ),
        ),
    )


class VirtualAthlete:
    """One simulated athlete with a strap and a footpod on a virtual radio."""

    def __init__(
        self,
        *,
        name: str,
        trace: AthleteTrace,
        options: SensorOptions | None = None,
        faults: Sequence[Fault] = (),
        record_sent: bool = False,
    ) -> None:
        self.name = name
        self.trace = trace
        self.options = options or SensorOptions()
        self.faults = tuple(faults)
        self.sent: list[SentFrame] | None = [] if record_sent else None
        self.strap: VirtualPeripheral | None = None
        self.footpod: VirtualPeripheral | None = None
        self.start_s: float | None = None
        """Loop time at which the workout clock started."""
        self._radio: VirtualRadio | None = None
        self._energy_kj = 0.0

    @property
    def strap_name(self) -> str:
        return f"HRM {self.name}"

    @property
    def footpod_name(self) -> str:
        return f"POD {self.name}"

    def assignments(self) -> list[SensorAssignment]:
        return [
            SensorAssignment(self.name, SensorKind.HEART_RATE, name=self.strap_name),
            SensorAssignment(self.name, SensorKind.FOOTPOD, name=self.footpod_name),
        ]

    async def attach(self, radio: VirtualRadio) -> None:
        """Create the two peripherals on ``radio`` (they start advertising)."""
        self._radio = radio
        features = RscFeature.WALKING_OR_RUNNING_STATUS
        if self.options.send_length:
            features |= RscFeature.INSTANTANEOUS_STRIDE_LENGTH
        if self.options.send_distance:
            features |= RscFeature.TOTAL_DISTANCE
        self.strap = await radio.add_peripheral(
            name=self.strap_name,
            advertised_service_uuids=[uuids.HEART_RATE_SERVICE],
            services=[
                ServiceSpec(
                    uuids.HEART_RATE_SERVICE,
                    (
                        CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, read=False, notify=True),
                        CharacteristicSpec(
                            uuids.BODY_SENSOR_LOCATION,
                            encode_body_sensor_location(BodySensorLocation.CHEST),
                        ),
                    ),
                ),
                _battery_service(),
                _dis_service("HRM-V1"),
            ],
        )
        self.footpod = await radio.add_peripheral(
            name=self.footpod_name,
            advertised_service_uuids=[uuids.RSC_SERVICE],
            services=[
                ServiceSpec(
                    uuids.RSC_SERVICE,
                    (
                        CharacteristicSpec(uuids.RSC_MEASUREMENT, read=False, notify=True),
                        CharacteristicSpec(uuids.RSC_FEATURE, encode_rsc_feature(features)),
                    ),
                ),
                _battery_service(),
                _dis_service("POD-V1"),
            ],
        )

    # ------------------------------------------------------------------ frames

    def heart_rate_frame(self, t: float, t_prev: float, frame_no: int) -> bytes:
        """The Heart Rate Measurement the strap sends at workout time ``t``."""
        trace = self.trace
        hr = trace.sample_at(t).hr_bpm
        self._energy_kj += (t - t_prev) * max(0.0, hr - 50.0) * 0.01
        energy = None
        if self.options.energy and frame_no % ENERGY_EVERY_N_FRAMES == 0:
            energy = min(0xFFFF, int(self._energy_kj))
        # A 20-byte notification holds 9 RR after a uint8 HR, 8 when energy takes 2 bytes.
        max_rr = 9 if energy is None else 8
        rr = trace.rr_s[trace.beats_between(t_prev, t)][-max_rr:]
        if not self.options.contact_supported:
            contact = Contact.UNSUPPORTED
        elif any(f.kind == "no_contact" and f.sensor == "strap" and f.active(t)
                 for f in self.faults):
            contact = Contact.NOT_DETECTED
        else:
            contact = Contact.DETECTED
        return bytes(
            HeartRateMeasurement(
                heart_rate_bpm=round(hr),
                contact=contact,
                energy_kj=energy,
                rr_ticks=tuple(round(x * 1024) for x in rr),
            )
        )

    def rsc_frame(self, t: float) -> bytes:
        """The RSC Measurement the footpod sends at workout time ``t``."""
        s = self.trace.sample_at(t)
        o = self.options
        cadence = s.cadence_spm if o.cadence_unit == "steps" else s.cadence_spm / 2.0
        length = s.step_length_m if o.length_unit == "step" else 2.0 * s.step_length_m
        moving = s.speed_mps > 0.05
        return bytes(
            RscMeasurement(
                speed_mps=round(s.speed_mps * 256) / 256,
                cadence_per_min=min(255, round(cadence)),
                stride_length_m=(round(length * 100) / 100 if moving else 0.0)
                if o.send_length
                else None,
                total_distance_m=round(s.distance_m * 10) / 10 if o.send_distance else None,
                running=bool(s.running),
            )
        )

    # ------------------------------------------------------------------ driving

    def _peripherals(self) -> tuple[VirtualPeripheral, VirtualPeripheral]:
        if self.strap is None or self.footpod is None:
            raise RuntimeError("attach() the athlete to a radio first")
        return self.strap, self.footpod

    async def _wait_subscribed(self) -> None:
        strap, footpod = self._peripherals()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUBSCRIBE_WAIT_S
        # A bounded poll: the peripheral's CCCD write has no event to wait on.
        while not (strap.subscribed and footpod.subscribed):
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)

    async def _send(self, peripheral: VirtualPeripheral, uuid: str, t: float, data: bytes) -> None:
        if not peripheral.subscribed:
            return  # nobody listening: the frame is lost, as on a real radio
        await peripheral.notify(uuid, data)
        if self.sent is not None:
            self.sent.append(SentFrame(peripheral.address, uuid, t, data))

    async def run(self, *, wait_for_collector: bool = True, stop_at_s: float | None = None) -> None:
        """Drive both sensors through the workout (or its first ``stop_at_s`` s), then return."""
        strap, footpod = self._peripherals()
        if wait_for_collector:
            await self._wait_subscribed()
        loop = asyncio.get_running_loop()
        start = self.start_s = loop.time()
        o = self.options
        step = o.footpod_interval_s
        hr_every = max(1, round(o.hr_interval_s / step))
        end = float(self.trace.time_s[-1])
        if stop_at_s is not None:
            end = min(end, stop_at_s)
        applied: set[int] = set()
        restored: set[int] = set()
        k = 0
        hr_frames = 0
        t_prev_hr = 0.0
        while True:
            k += 1
            t = k * step
            if t > end:
                break
            delay = start + t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._apply_faults(t, applied, restored)
            if k % hr_every == 0:
                hr_frames += 1
                frame = self.heart_rate_frame(t, t_prev_hr, hr_frames)
                t_prev_hr = t
                if not self._silenced("strap", t):
                    await self._send(strap, uuids.HEART_RATE_MEASUREMENT, t, frame)
            if not self._silenced("footpod", t):
                await self._send(footpod, uuids.RSC_MEASUREMENT, t, self.rsc_frame(t))

    def _silenced(self, role: SensorRole, t: float) -> bool:
        return any(
            f.sensor == role and f.kind in ("silent", "drop") and f.active(t) for f in self.faults
        )

    async def _apply_faults(self, t: float, applied: set[int], restored: set[int]) -> None:
        for i, f in enumerate(self.faults):
            peripheral = self.strap if f.sensor == "strap" else self.footpod
            assert peripheral is not None
            if i not in applied and t >= f.at_s:
                applied.add(i)
                log.info("fault %s on %s %s at %.1f s", f.kind, f.sensor, self.name, t)
                if f.kind == "drop":
                    await peripheral.set_reachable(False)
                    await peripheral.drop_link()
                elif f.kind == "adapter_gone":
                    assert self._radio is not None
                    await self._radio.set_adapter_present(False)
                elif f.kind == "low_battery":
                    await self._battery(peripheral, LOW_BATTERY_PCT)
                elif f.kind == "garbage":
                    uuid, data = (
                        (uuids.HEART_RATE_MEASUREMENT, GARBAGE_HR_FRAME)
                        if f.sensor == "strap"
                        else (uuids.RSC_MEASUREMENT, GARBAGE_RSC_FRAME)
                    )
                    await self._send(peripheral, uuid, t, data)
            if f.kind == "drop" and i in applied and i not in restored and not f.active(t):
                restored.add(i)
                await peripheral.set_reachable(True)
            if (f.kind == "adapter_gone" and i in applied and i not in restored
                    and not f.active(t)):
                restored.add(i)
                assert self._radio is not None
                await self._radio.set_adapter_present(True)

    async def _battery(self, peripheral: VirtualPeripheral, level: int) -> None:
        data = encode_battery_level(level)
        peripheral.set_value(uuids.BATTERY_LEVEL, data)
        with contextlib.suppress(Exception):  # not subscribed: the next read sees the value
            await peripheral.notify(uuids.BATTERY_LEVEL, data)


@dataclasses.dataclass
class VirtualFleet:
    """Several virtual athletes on one radio, and the sensor map that finds them."""

    radio: VirtualRadio
    athletes: list[VirtualAthlete]

    @property
    def sensor_map(self) -> SensorMap:
        return SensorMap([a for athlete in self.athletes for a in athlete.assignments()])

    def collector(self, *, clock: Clock, settings: CollectorSettings | None = None) -> Collector:
        """A collector that finds this fleet's sensors on its radio."""
        return Collector(
            self.sensor_map,
            clock=clock,
            settings=settings or CollectorSettings(scan_s=1.0),
            scanner_backend=self.radio.scanner_backend,
            client_backend=self.radio.client_backend,
        )

    async def collect(
        self,
        sink: Callable[[Reading], object],
        *,
        clock: Clock,
        settings: CollectorSettings | None = None,
        stop_at_s: float | None = None,
    ) -> Collector:
        """Run the workout with a collector attached; every record goes to ``sink``.

        Returns the (closed) collector, whose counters are still readable.
        """
        collector = self.collector(clock=clock, settings=settings)
        async with collector:

            async def drive() -> None:
                await self.run(stop_at_s=stop_at_s)
                await asyncio.sleep(DRAIN_S)
                collector.stop()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(drive(), name="virtual-fleet")
                async for record in collector:
                    sink(record)
        return collector

    async def run(self, *, wait_for_collector: bool = True, stop_at_s: float | None = None) -> None:
        """Drive every athlete to the end of its workout (or to ``stop_at_s``)."""
        async with asyncio.TaskGroup() as tg:
            for athlete in self.athletes:
                tg.create_task(
                    athlete.run(wait_for_collector=wait_for_collector, stop_at_s=stop_at_s),
                    name=f"virtual-{athlete.name}",
                )


def athlete_name(index: int) -> str:
    """Name of the ``index``-th (0-based) virtual athlete."""
    return f"athlete-{index + 1}"


@contextlib.asynccontextmanager
async def virtual_fleet(
    workout: str,
    *,
    athletes: int = 1,
    seed: int = 0,
    low_hrv: bool = False,
    artifact_rate: float = 0.0,
    params: AthleteParams | None = None,
    options: SensorOptions | None = None,
    faults: Sequence[Fault] = (),
    record_sent: bool = False,
) -> AsyncIterator[VirtualFleet]:
    """A radio with ``athletes`` virtual athletes doing ``workout`` (seeds ``seed + i``)."""
    if athletes < 1:
        raise ValueError("athletes must be >= 1")
    plan = load_workout(workout)
    async with VirtualRadio() as radio:
        fleet = VirtualFleet(radio, [])
        for i in range(athletes):
            trace = simulate(
                plan,
                seed=seed + i,
                low_hrv=low_hrv,
                params=params or AthleteParams(),
                artifact_rate=artifact_rate,
            )
            athlete = VirtualAthlete(
                name=athlete_name(i),
                trace=trace,
                options=options,
                faults=faults,
                record_sent=record_sent,
            )
            await athlete.attach(radio)
            fleet.athletes.append(athlete)
        yield fleet
