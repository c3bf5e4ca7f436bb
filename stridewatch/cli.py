"""The ``stridewatch`` command line.

Exit codes: 0 ok, 2 bad input or configuration, 1 runtime failure. Errors say what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from ingest.clock import LoopClock
from ingest.collector import Collector, remember_device
from ingest.records import Reading, record_to_json, session_end
from ingest.sensor_map import SensorMap
from ingest.virtual import timewarp
from ingest.virtual.workouts import workout_names
from stridewatch.errors import RuntimeFailureError, UsageError
from stridewatch.signals import stop_on_sigterm

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Virtual demos start at a fixed instant so that two runs with the same seed give identical
# output, byte for byte (the time stamps included).
VIRTUAL_EPOCH = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--speed takes a number > 0 (times real time) or 'max', not {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--speed must be > 0 (or 'max')")
    return value


def _workout(text: str) -> str:
    names = workout_names()
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown workout {text!r}; choose one of {names}")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


# ---------------------------------------------------------------------- decode


def cmd_decode(args: argparse.Namespace) -> int:
    from ingest.errors import GattDecodeError
    from ingest.gatt.registry import decode_to_json, lookup, parse_hex

    try:
        lookup(args.characteristic)
    except KeyError as exc:
        raise UsageError(exc.args[0] if exc.args else str(exc)) from None
    try:
        data = parse_hex(" ".join(args.hex))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        decoded = decode_to_json(args.characteristic, data)
    except GattDecodeError as exc:
        raise UsageError(f"bad frame: {exc}") from None
    print(json.dumps(decoded))
    return EXIT_OK


# ---------------------------------------------------------------------- virtual sources


@contextlib.asynccontextmanager
async def _fleet(args: argparse.Namespace) -> AsyncIterator[Any]:
    from ingest.virtual.sensors import virtual_fleet

    async with virtual_fleet(
        args.virtual,
        athletes=getattr(args, "athletes", 1),
        seed=getattr(args, "seed", 0),
        low_hrv=getattr(args, "low_hrv", False),
    ) as fleet:
        yield fleet


def _clock() -> LoopClock:
    return LoopClock(VIRTUAL_EPOCH)


# ---------------------------------------------------------------------- scan


async def _scan(args: argparse.Namespace, out: TextIO) -> int:
    from bleak import BleakClient, BleakScanner
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
    from bleak.exc import BleakError

    from ingest.gatt import uuids
    from ingest.gatt.simple import decode_battery_level

    async with contextlib.AsyncExitStack() as stack:
        scanner_backend: type[BaseBleakScanner] | None = None
        client_backend: type[BaseBleakClient] | None = None
        if args.virtual:
            fleet = await stack.enter_async_context(_fleet(args))
            scanner_backend = fleet.radio.scanner_backend
            client_backend = fleet.radio.client_backend
        found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
        async with BleakScanner(
            functools.partial(remember_device, found),
            service_uuids=[uuids.HEART_RATE_SERVICE, uuids.RSC_SERVICE],
            backend=scanner_backend,
        ):
            await asyncio.sleep(args.timeout)
        if not found:
            print("no heart-rate strap or footpod found; are they worn and awake?", file=out)
            return EXIT_OK
        print(f"{'address':<20} {'name':<24} {'kind':<11} {'RSSI':>5} {'battery':>8}", file=out)
        for device, adv in sorted(found.values(), key=lambda d: d[0].address):
            kind = "heart_rate" if uuids.HEART_RATE_SERVICE in adv.service_uuids else "footpod"
            battery = "?"
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                async with BleakClient(device, timeout=10.0, backend=client_backend) as client:
                    if client.services.get_characteristic(uuids.BATTERY_LEVEL) is not None:
                        raw = await client.read_gatt_char(uuids.BATTERY_LEVEL)
                        battery = f"{decode_battery_level(bytes(raw))} %"
            name = adv.local_name or device.name or "?"
            print(f"{device.address:<20} {name:<24} {kind:<11} {adv.rssi:>5} {battery:>8}",
                  file=out)
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    return timewarp.run(_scan(args, sys.stdout), speed=None if args.virtual else 1.0)


# ---------------------------------------------------------------------- collect


def _format_text(record: Reading) -> str:
    d = record_to_json(record)
    kind = d.pop("type")
    for key in ("athlete", "sensor", "time_utc", "time_mono_s", "raw", "beat_times_mono_s"):
        d.pop(key, None)
    fields = " ".join(f"{k}={v}" for k, v in d.items() if v not in (None, "", []))
    return f"{record.time_utc:%H:%M:%S.%f}"[:-3] + f" {record.athlete:<10} {kind:<10} {fields}"


async def collect_records(
    args: argparse.Namespace, sink: Callable[[Reading], None]
) -> Collector:
    """Run a collector (virtual or real) until the workout ends or ``--seconds`` pass."""
    if args.virtual:
        async with _fleet(args) as fleet:
            collector: Collector = await fleet.collect(
                sink, clock=_clock(), stop_at_s=args.seconds
            )
            return collector
    collector = Collector(
        SensorMap(default_athlete=args.athlete),  # real sensors
        clock=LoopClock(datetime.now(UTC)),
    )
    async with collector:

        async def stop_after(seconds: float) -> None:
            await asyncio.sleep(seconds)
            collector.stop()

        async with asyncio.TaskGroup() as tg:
            if args.seconds is not None:
                tg.create_task(stop_after(args.seconds), name="collect-timer")
            async for record in collector:
                sink(record)
    return collector


async def _collect_to_mqtt(
    args: argparse.Namespace, sink: Callable[[Reading], None]
) -> Collector:
    from outputs.mqtt import MqttTarget
    from outputs.mqtt_source import MqttReadingPublisher

    try:
        target = MqttTarget.from_url(args.mqtt)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    last: dict[str, Reading] = {}
    async with MqttReadingPublisher(target) as publisher:

        def both(record: Reading) -> None:
            sink(record)
            publisher.publish_nowait(record)
            newest = last.get(record.athlete)
            if newest is None or record.time_mono_s >= newest.time_mono_s:
                last[record.athlete] = record

        stop_on_sigterm()
        try:
            collector = await collect_records(args, both)
        finally:
            # The workout is over, --seconds passed, Ctrl-C or SIGTERM (the task is
            # cancelled): the remote `run` or worker closes each athlete's session (totals,
            # last split) as a local run's end does.
            for record in list(last.values()):
                end = session_end(record)
                sink(end)
                publisher.publish_nowait(end)
            await publisher.flush(10.0)
    return collector


def cmd_collect(args: argparse.Namespace) -> int:
    out = sys.stdout

    def sink(record: Reading) -> None:
        if args.format == "jsonl":
            out.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
        else:
            out.write(_format_text(record) + "\n")

    speed = args.speed if args.virtual else 1.0
    if args.mqtt:
        try:
            collector = timewarp.run(_collect_to_mqtt(args, sink), speed=speed)
        except asyncio.CancelledError:  # SIGTERM (systemd, docker stop): sessions were ended
            print("stridewatch: stopped; the athletes' sessions were ended", file=sys.stderr)
            return EXIT_OK
    else:
        collector = timewarp.run(collect_records(args, sink), speed=speed)
    totals = collector.counters()
    frames = sum(c.frames for c in totals.values())
    bad = sum(c.bad_frames for c in totals.values())
    print(f"{len(totals)} sensors, {frames} frames, {bad} bad frames, "
          f"{collector.dropped} dropped", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stridewatch",
        description="Live running telemetry from BLE heart-rate straps and footpods.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback as well as the one-line message")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scan", help="list heart-rate straps and footpods in range")
    p.add_argument("--virtual", type=_workout, metavar="WORKOUT",
                   help="scan virtual sensors doing WORKOUT instead of the radio")
    p.add_argument("--athletes", type=_positive_int, default=1)
    p.add_argument("--timeout", type=float, default=5.0, help="scan time, seconds")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("collect", help="print readings and link events as they arrive")
    p.add_argument("--virtual", type=_workout, metavar="WORKOUT",
                   help="collect from virtual sensors doing WORKOUT")
    p.add_argument("--athletes", type=_positive_int, default=1)
    p.add_argument("--athlete", default="athlete-1",
                   help="athlete that real sensors found are assigned to")
    p.add_argument("--low-hrv", action="store_true")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="virtual sensors only: times real time, or 'max'")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this many seconds (event time)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("--mqtt", metavar="URL",
                   help="also publish every reading to this broker (mqtt://host:port) for a "
                        "remote `stridewatch run` to process")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("decode", help="decode one characteristic value given in hex")
    p.add_argument("characteristic",
                   help="name (heart_rate_measurement, rsc_measurement, ...) or UUID (2a37)")
    p.add_argument("hex", nargs="+", help="bytes in hex, with or without spaces")
    p.set_defaults(func=cmd_decode)

    from stridewatch import commands, delivery_commands, import_command, scale_commands

    commands.add_commands(sub, workout=_workout, speed=_speed, positive_int=_positive_int)
    import_command.add_commands(sub)
    delivery_commands.add_commands(sub)
    scale_commands.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"stridewatch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeFailureError as exc:
        print(f"stridewatch: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("stridewatch: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # `stridewatch sessions | head`: the reader left; end quietly like other Unix tools.
        # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        # Bluetooth missing, off, busy or not permitted: one line with what to do (issue #11);
        # anything else is a bug and keeps its traceback.
        from ingest.ble_errors import explain

        problem = explain(exc)
        if problem is None:
            raise
        if args.debug:
            traceback.print_exception(exc)
        print(f"stridewatch: error: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    return code
