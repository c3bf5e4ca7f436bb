"""The BLE collector: finds heart-rate straps and footpods, keeps them connected, yields readings.

Usage::

    async with Collector(sensor_map, clock=clock) as collector:
        async for record in collector:
            ...

One task per sensor runs under one :class:`asyncio.TaskGroup`. Each connection attempt uses a
fresh :class:`bleak.BleakClient` (stale BlueZ state does not leak into the next attempt), a
connect timeout of at least 10 s, and re-subscribes to notifications after every connect. A
disconnect, a failed connect or a silent link (no notification within the watchdog time) yields a
:class:`LinkEvent` and a retry after a capped, jittered backoff. Nothing is ever invented: a link
that is down produces no readings (never HR = 0); processing sees the gap.

Bluetooth itself failing is explained, not a traceback (:mod:`ingest.ble_errors`): when the first
scan fails for want of a stack, an adapter, power or permission, leaving ``async with`` raises that
:class:`~ingest.errors.BluetoothUnavailableError` (not wrapped in an exception group). Once the
session runs, the adapter going away (dongle pulled, ``hciconfig reset``, a controller crash)
does not end it: every sensor gets an ``ADAPTER_LOST`` link event, nobody retries against the
missing adapter, discovery probes for it, and when a scan works again every sensor gets
``ADAPTER_BACK`` and reconnects at once.

Notification callbacks are synchronous: they decode, stamp and append to a bounded buffer that
the async iterator drains. When the consumer falls behind by more than ``queue_size`` records the
oldest are dropped and counted (``Collector.dropped``): the collector must never block the BLE
stack, and a consumer that is that far behind is broken anyway (the counter says so).

For real sensors leave ``scanner_backend``/``client_backend`` as None (bleak's platform backend);
virtual sensors pass the classes of :class:`ingest.virtual.radio.VirtualRadio`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from ingest.backoff import backoff_delay_s
from ingest.beat_clock import BeatClock
from ingest.ble_errors import explain, leaves
from ingest.clock import Clock
from ingest.collector_settings import ADAPTER_PROBE_MAX_S, CollectorSettings
from ingest.errors import AdapterBusyError, BluetoothUnavailableError
from ingest.gatt import uuids
from ingest.gatt.rsc import RscFeature, decode_rsc_feature
from ingest.gatt.rsc import names as rsc_feature_names
from ingest.gatt.simple import decode_body_sensor_location, decode_string
from ingest.records import (
    LinkState,
    Reading,
    SensorInfo,
    SensorKind,
)
from ingest.sensor_frames import SensorCounters, SensorFrames
from ingest.sensor_map import SensorMap

log = logging.getLogger(__name__)

_SERVICE_KIND = {
    uuids.HEART_RATE_SERVICE: SensorKind.HEART_RATE,
    uuids.RSC_SERVICE: SensorKind.FOOTPOD,
}


@dataclasses.dataclass(slots=True, kw_only=True)
class _SensorState(SensorFrames):
    """A sensor the collector keeps connected: its frames, and a wake-up for reconnects."""

    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    """Set when the adapter is back: cuts the reconnect backoff short."""


def remember_device(
    found: dict[str, tuple[BLEDevice, AdvertisementData]],
    device: BLEDevice,
    adv: AdvertisementData,
) -> None:
    """Scanner detection callback: keep the latest advertisement of each device."""
    found[device.address] = (device, adv)


def connect_advice(name: str, kind: SensorKind) -> str:
    """What the user can do when a sensor will not connect."""
    if "polar" in name.lower():
        return (
            "Polar straps accept a second connection only with 'dual Bluetooth' enabled in the "
            "Polar app; otherwise disconnect the strap from the watch or phone. Polar straps also "
            "sleep until worn: moisten the electrodes and put it on."
        )
    if kind is SensorKind.HEART_RATE:
        return (
            "Check that the strap is worn (most wake only on skin contact), in range, and not "
            "held by another app or watch."
        )
    return "Check that the footpod is awake (move it), in range, and not held by another device."


class Collector:
    """Finds, connects and reads BLE heart-rate straps and footpods; an async iterator of records.

    Args:
        sensor_map: which sensors belong to which athlete.
        clock: stamps arrivals (UTC and monotonic).
        settings: timings and sizes.
        scanner_backend, client_backend: bleak backend classes; None for the platform's.
    """

    def __init__(
        self,
        sensor_map: SensorMap,
        *,
        clock: Clock,
        settings: CollectorSettings | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
    ) -> None:
        self._map = sensor_map
        self._clock = clock
        self._settings = settings or CollectorSettings()
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._rng = random.Random(self._settings.seed)
        self._buffer: collections.deque[Reading] = collections.deque()
        self._ready = asyncio.Event()
        self._stopped = False
        self._sensors: dict[str, _SensorState] = {}
        self._devices: dict[str, BLEDevice] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._adapter_seen = False  # a scan has worked: Bluetooth failures no longer end it
        self._adapter_ok = asyncio.Event()
        self._adapter_ok.set()
        self._adapter_problem: BluetoothUnavailableError | None = None
        self._probe = asyncio.Event()  # a link was lost: scan now (is the adapter still there?)
        self.dropped = 0
        """Records dropped because the consumer lagged by more than ``queue_size``."""

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Collector:
        stack = contextlib.AsyncExitStack()
        self._tg = await stack.enter_async_context(asyncio.TaskGroup())
        self._stack = stack
        self._spawn(self._discover(), "stridewatch-discovery")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        for task in self._tasks:
            task.cancel()
        assert self._stack is not None
        stack, self._stack = self._stack, None
        try:
            await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # Bluetooth unusable from the start: raise the explained error itself, so callers
            # can print its one line (its __cause__ keeps what bleak raised).
            match, rest = group.split(BluetoothUnavailableError)
            if match is None or rest is not None:
                raise
            first = next(leaves(match))
            raise first from first.__cause__

    @property
    def adapter_problem(self) -> BluetoothUnavailableError | None:
        """Why the adapter is gone, while it is; None when it works."""
        return self._adapter_problem

    def stop(self) -> None:
        """End the iteration once the buffered records are consumed."""
        self._stopped = True
        self._ready.set()

    def _spawn(self, coro: Any, name: str) -> None:
        assert self._tg is not None
        self._tasks.append(self._tg.create_task(coro, name=name))

    # ----------------------------------------------------------------- output

    def __aiter__(self) -> AsyncIterator[Reading]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Reading]:
        buffer = self._buffer
        while True:
            while buffer:
                yield buffer.popleft()
            if self._stopped:
                return
            self._ready.clear()
            await self._ready.wait()

    def _emit(self, record: Reading) -> None:
        if len(self._buffer) >= self._settings.queue_size:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "consumer is %d records behind: dropping the oldest (counted in "
                    "Collector.dropped)",
                    self._settings.queue_size,
                )
        self._buffer.append(record)
        self._ready.set()

    def counters(self) -> dict[str, SensorCounters]:
        """A snapshot of each sensor's counters, by address."""
        return {a: dataclasses.replace(s.counters) for a, s in self._sensors.items()}

    def sensors(self) -> dict[str, tuple[str, SensorKind, str]]:
        """Known sensors: address → (athlete, kind, name)."""
        return {a: (s.athlete, s.kind, s.name) for a, s in self._sensors.items()}

    # ----------------------------------------------------------------- discovery

    async def _discover(self) -> None:
        settings = self._settings
        probes = 0
        # Bounded by stop(): __aexit__ also cancels, but a cancellation that lands inside a
        # library that swallows it must not leave discovery looping for ever.
        while not self._stopped:
            found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
            try:
                async with BleakScanner(
                    functools.partial(remember_device, found),
                    service_uuids=list(_SERVICE_KIND),
                    backend=self._scanner_backend,
                ):
                    await asyncio.sleep(settings.scan_s)
            except Exception as exc:
                problem = explain(exc)
                if not isinstance(problem, BluetoothUnavailableError):
                    raise
                if not self._adapter_seen:
                    raise problem from exc  # no session yet: the command fails, explained
                if isinstance(problem, AdapterBusyError):
                    log.warning("scan failed: %s; retrying", problem)
                else:
                    self._adapter_lost(problem)
                await asyncio.sleep(backoff_delay_s(probes, self._rng, max_s=ADAPTER_PROBE_MAX_S))
                probes += 1
                continue
            probes = 0
            self._adapter_seen = True
            if not self._adapter_ok.is_set():
                self._adapter_back()
            for address, (device, adv) in sorted(found.items()):
                self._devices[address] = device
                if address in self._sensors:
                    continue
                self._consider(device, adv)
            # Rescan after the interval, or at once when a link is lost: a scan is how a
            # missing adapter shows (a connect only says the device is unknown).
            self._probe.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.rescan_interval_s):
                    await self._probe.wait()

    def _consider(self, device: BLEDevice, adv: AdvertisementData) -> None:
        kinds = [_SERVICE_KIND[u] for u in adv.service_uuids if u in _SERVICE_KIND]
        if not kinds:
            return
        kind = kinds[0]
        name = adv.local_name or device.name or device.address
        athlete = self._map.athlete_for(device.address, name, kind)
        if athlete is None:
            log.debug("ignoring %s %s (%s): not assigned to an athlete", kind, name, device.address)
            return
        state = _SensorState(
            address=device.address,
            name=name,
            athlete=athlete,
            kind=kind,
            clock=self._clock,
            emit=self._emit,
            beat_clock=BeatClock(self._settings.rr_gap_threshold_s),
        )
        self._sensors[device.address] = state
        log.info("found %s %s (%s) for %s, RSSI %d dBm", kind, name, device.address, athlete,
                 adv.rssi)
        self._spawn(self._run_sensor(state), f"stridewatch-sensor-{device.address}")

    # ----------------------------------------------------------------- the adapter

    def _adapter_lost(self, problem: BluetoothUnavailableError) -> None:
        """The adapter went away mid-session: say so once per outage; sensors stop retrying."""
        if not self._adapter_ok.is_set():
            return
        self._adapter_ok.clear()
        self._adapter_problem = problem
        log.warning("Bluetooth adapter lost: %s. The session stays open; every sensor "
                    "reconnects when the adapter is back", problem)
        detail = f"{problem.cause}; the session stays open, sensors reconnect when it is back"
        for state in self._sensors.values():
            state.link(LinkState.ADAPTER_LOST, detail)

    def _adapter_back(self) -> None:
        self._adapter_ok.set()
        problem, self._adapter_problem = self._adapter_problem, None
        log.warning("Bluetooth adapter is back: reconnecting every sensor")
        for state in self._sensors.values():
            state.link(LinkState.ADAPTER_BACK,
                       f"adapter is back after: {problem.cause}" if problem else "adapter is back")
            state.wake.set()

    # ----------------------------------------------------------------- one sensor

    async def _run_sensor(self, state: _SensorState) -> None:
        attempt = 0
        while not self._stopped:
            if not self._adapter_ok.is_set():
                await self._adapter_ok.wait()
                attempt = 0
            state.wake.clear()
            reason = await self._session(state)
            if reason is None:  # connect failed
                attempt += 1
            else:
                attempt = 0
                state.link(LinkState.DISCONNECTED, reason)
                self._probe.set()
            if not self._adapter_ok.is_set():
                continue  # wait for the adapter, not for a backoff
            delay = backoff_delay_s(max(0, attempt - 1), self._rng, jitter="equal")
            log.info("%s %s: retrying in %.1f s", state.name, state.address, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await state.wake.wait()  # the adapter came back: reconnect now

    async def _session(self, state: _SensorState) -> str | None:
        """Connect, read, subscribe and watch one link until it ends.

        Returns why a connected link ended, or None when the connection could not be made.
        """
        settings = self._settings
        lost = asyncio.Event()
        device: BLEDevice | str = self._devices.get(state.address, state.address)
        client = BleakClient(
            device,
            disconnected_callback=lambda _c: lost.set(),
            timeout=settings.connect_timeout_s,
            backend=self._client_backend,
        )
        try:
            async with asyncio.timeout(settings.connect_timeout_s * 2):
                await client.connect()
        except (BleakError, TimeoutError, OSError) as exc:
            state.counters.connect_failures += 1
            problem = explain(exc)
            if isinstance(problem, BluetoothUnavailableError):
                advice = problem.advice  # not the sensor's fault: the adapter's
            else:
                advice = connect_advice(state.name, state.kind)
            detail = f"connect failed: {type(exc).__name__}: {exc or 'timed out'}"
            log.warning("%s %s: %s. %s", state.name, state.address, detail, advice)
            state.link(LinkState.CONNECT_FAILED, f"{detail}. {advice}")
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                await client.disconnect()
            if isinstance(problem, BluetoothUnavailableError) and not isinstance(
                problem, AdapterBusyError
            ):
                self._adapter_lost(problem)
            return None
        try:
            state.counters.connects += 1
            log.info("%s %s connected (%s)", state.name, state.address, state.athlete)
            state.link(LinkState.CONNECTED)
            await self._read_info(client, state)
            await self._subscribe(client, state)
            state.last_notification_s = self._clock.monotonic_s()
            return await self._watch(state, lost)
        except (BleakError, TimeoutError, OSError) as exc:
            log.warning("%s %s: link error: %s", state.name, state.address, exc)
            return f"link error: {type(exc).__name__}: {exc}"
        finally:
            if client.is_connected:
                with contextlib.suppress(BleakError, TimeoutError, OSError):
                    await client.disconnect()

    async def _watch(self, state: _SensorState, lost: asyncio.Event) -> str:
        silence = self._settings.silence_timeout_s
        while True:
            quiet = self._clock.monotonic_s() - state.last_notification_s
            try:
                async with asyncio.timeout(max(0.0, silence - quiet)):
                    await lost.wait()
            except TimeoutError:
                if self._clock.monotonic_s() - state.last_notification_s >= silence:
                    state.counters.silences += 1
                    log.warning("%s %s: no notification for %.0f s; reconnecting",
                                state.name, state.address, silence)
                    state.link(LinkState.SILENT, f"no notification for {silence:.0f} s")
                    return "silent link"
                continue
            state.counters.disconnects += 1
            log.warning("%s %s: link lost", state.name, state.address)
            return "link lost"

    async def _read_optional(self, client: BleakClient, uuid: str) -> bytes | None:
        if client.services.get_characteristic(uuid) is None:
            return None
        try:
            return bytes(await client.read_gatt_char(uuid))
        except BleakError as exc:
            log.info("could not read %s: %s", uuid, exc)
            return None

    async def _read_info(self, client: BleakClient, state: _SensorState) -> None:
        texts: dict[str, str | None] = {}
        for key, uuid in (
            ("manufacturer", uuids.MANUFACTURER_NAME),
            ("model", uuids.MODEL_NUMBER),
            ("firmware", uuids.FIRMWARE_REVISION),
        ):
            raw = await self._read_optional(client, uuid)
            texts[key] = decode_string(raw) if raw is not None else None
        location: str | None = None
        features: tuple[str, ...] | None = None
        if state.kind is SensorKind.HEART_RATE:
            raw = await self._read_optional(client, uuids.BODY_SENSOR_LOCATION)
            location = state.decode_or_none(raw, decode_body_sensor_location)
        else:
            raw = await self._read_optional(client, uuids.RSC_FEATURE)
            flags = state.decode_or_none(raw, decode_rsc_feature)
            if flags is not None:
                features = rsc_feature_names(flags)
                state.running_supported = bool(flags & RscFeature.WALKING_OR_RUNNING_STATUS)
        self._emit(
            SensorInfo(
                athlete=state.athlete,
                sensor=state.address,
                time_utc=self._clock.utc(),
                time_mono_s=self._clock.monotonic_s(),
                name=state.name,
                kind=state.kind,
                manufacturer=texts["manufacturer"],
                model=texts["model"],
                firmware=texts["firmware"],
                body_sensor_location=location,
                rsc_features=features,
            )
        )
        raw = await self._read_optional(client, uuids.BATTERY_LEVEL)
        if raw is not None:
            state.battery(raw)

    async def _subscribe(self, client: BleakClient, state: _SensorState) -> None:
        # Notifications are re-enabled after every connect: the CCCD is per connection.
        if state.kind is SensorKind.HEART_RATE:
            measurement = uuids.HEART_RATE_MEASUREMENT
            handler = state.heart_rate
        else:
            measurement = uuids.RSC_MEASUREMENT
            handler = state.rsc

        def on_measurement(_c: BleakGATTCharacteristic, data: bytearray) -> None:
            handler(bytes(data))

        await client.start_notify(measurement, on_measurement)
        battery = client.services.get_characteristic(uuids.BATTERY_LEVEL)
        if battery is not None and "notify" in battery.properties:

            def on_battery(_c: BleakGATTCharacteristic, data: bytearray) -> None:
                state.battery(bytes(data))

            await client.start_notify(uuids.BATTERY_LEVEL, on_battery)
