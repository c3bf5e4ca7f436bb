"""End-to-end notifications/s: bumble GATT server → bleak backend → collector (decoded records).

Baseline, same run: the same notifications into a bare bleak ``start_notify`` callback that only
counts, i.e. the cost of the virtual radio and bleak alone; the ratio is what the collector's
decoding, stamping, beat clock and buffering leave of it.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from ingest.clock import LoopClock
from ingest.collector import Collector
from ingest.collector_settings import CollectorSettings
from ingest.gatt import uuids
from ingest.gatt.heart_rate import HeartRateMeasurement
from ingest.records import Contact, HeartRateReading
from ingest.sensor_map import SensorMap
from ingest.virtual.peripheral import VirtualPeripheral
from ingest.virtual.radio import CharacteristicSpec, ServiceSpec, VirtualRadio

SENSORS = 10
FRAMES_PER_SENSOR = 3_000
FRAME = bytes(
    HeartRateMeasurement(
        heart_rate_bpm=150, contact=Contact.DETECTED, energy_kj=None, rr_ticks=(410, 405)
    )
)


async def _straps(radio: VirtualRadio) -> list[VirtualPeripheral]:
    service = ServiceSpec(
        uuids.HEART_RATE_SERVICE,
        (CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, read=False, notify=True),),
    )
    return [
        await radio.add_peripheral(
            name=f"HRM bench-{i}",
            services=[service],
            advertised_service_uuids=[uuids.HEART_RATE_SERVICE],
        )
        for i in range(SENSORS)
    ]


async def _blast(straps: list[VirtualPeripheral]) -> None:
    async def one(p: VirtualPeripheral) -> None:
        for _ in range(FRAMES_PER_SENSOR):
            await p.notify(uuids.HEART_RATE_MEASUREMENT, FRAME)

    async with asyncio.TaskGroup() as tg:
        for p in straps:
            tg.create_task(one(p))


async def _wait_subscribed(straps: list[VirtualPeripheral]) -> None:
    async with asyncio.timeout(60):
        while not all(p.subscribed for p in straps):  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


async def _through_collector() -> float:
    async with VirtualRadio() as radio:
        straps = await _straps(radio)
        collector = Collector(
            SensorMap(default_athlete="bench"),
            clock=LoopClock(datetime.now(UTC)),
            settings=CollectorSettings(scan_s=0.5, queue_size=SENSORS * FRAMES_PER_SENSOR),
            scanner_backend=radio.scanner_backend,
            client_backend=radio.client_backend,
        )
        expected = SENSORS * FRAMES_PER_SENSOR
        received = 0
        async with collector:
            await _wait_subscribed(straps)
            started = time.perf_counter()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_blast(straps))
                async for record in collector:
                    if isinstance(record, HeartRateReading):
                        received += 1
                        if received == expected:
                            break
            elapsed = time.perf_counter() - started
            collector.stop()
        return received / elapsed


async def _bare_bleak() -> float:
    async with VirtualRadio() as radio:
        straps = await _straps(radio)
        expected = SENSORS * FRAMES_PER_SENSOR
        done = asyncio.Event()
        count = 0

        def on_frame(_c: BleakGATTCharacteristic, _data: bytearray) -> None:
            nonlocal count
            count += 1
            if count == expected:
                done.set()

        clients = []
        for p in straps:
            client = BleakClient(p.address, backend=radio.client_backend, timeout=10.0)
            await client.connect()
            await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_frame)
            clients.append(client)
        started = time.perf_counter()
        await _blast(straps)
        await done.wait()
        elapsed = time.perf_counter() - started
        for client in clients:
            await client.disconnect()
        return count / elapsed


def run() -> list[dict[str, object]]:
    """Best of 3 for each, alternating so machine load affects both alike."""
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(3):
        ours.append(asyncio.run(_through_collector()))
        bare.append(asyncio.run(_bare_bleak()))
    value, baseline = max(ours), max(bare)
    return [
        {
            "name": "collector_notifications",
            "value": round(value),
            "unit": "notifications/s",
            "baseline": {
                "name": f"bare bleak callback over the same virtual radio ({SENSORS} straps)",
                "value": round(baseline),
            },
            "ratio": round(value / baseline, 3),
            "target": "report (end to end through bumble -> bleak backend -> collector)",
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
