"""Commands that run sessions or read the store: demo, run, sink, sessions, report, config
check, dashboards export (``import``: :mod:`stridewatch.import_command`; ``push`` and
``status``: :mod:`stridewatch.delivery_commands`; ``bridge`` and ``worker``:
:mod:`stridewatch.scale_commands`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ingest.clock import LoopClock
from ingest.collector import Collector
from ingest.records import Reading
from ingest.sensor_map import SensorMap
from ingest.virtual import timewarp
from outputs.errors import StoreError
from outputs.influx import InfluxTarget
from outputs.mqtt import MqttTarget
from outputs.store import AsyncStore, SessionStore
from processing.settings import ProcessingSettings
from stridewatch.config import (
    ConfigError,
    Settings,
    SpeakSettings,
    default_settings,
    default_store_path,
    load_config,
)
from stridewatch.errors import UsageError
from stridewatch.options import (
    EXIT_OK,
    EXIT_USAGE,
    add_alerting,
    add_config,
    add_influx,
    add_store,
    influx_target,
    mqtt_target,
    notify_targets,
    open_store,
    processing_settings,
    report_problems,
    resolve_session,
)
from stridewatch.session import SessionRecorder, live_outputs
from stridewatch.signals import stop_on_sigterm

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- report helpers


def write_html_report(store: SessionStore, session_id: str, out: Path,
                      settings: ProcessingSettings | None = None) -> Path:
    """Write the session's HTML report; ``settings`` gives the athlete's HR zone bounds."""
    from stridewatch.report import build_report, build_timeseries
    from stridewatch.report_html import render_html

    report = build_report(store, session_id, settings=settings)
    html = render_html(report, build_timeseries(store, session_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out



# ---------------------------------------------------------------------- demo and run


async def _record_live(
    *,
    store_path: Path,
    synchronous: str,
    source: str,
    processing: ProcessingSettings,
    athletes: Sequence[str],
    influx: InfluxTarget | None,
    mqtt: MqttTarget | None,
    ha_discovery: bool,
    view: Any,
    collect: Callable[[Callable[[Reading], object]], Any],
    speak: SpeakSettings | None = None,
    real_time: bool = True,
    notify: Sequence[Any] = (),
) -> tuple[SessionRecorder, Any, list[str]]:
    """Run ``collect(sink)`` with every record recorded, processed and forwarded.

    Returns the recorder, what ``collect`` returned, and one line per network output that was
    never reached (URL and cause)."""
    try:
        store = AsyncStore.open(store_path, synchronous=synchronous)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    async with store:
        recorder = SessionRecorder(store, source, processing,
                                   on_output=view.update if view is not None else None)
        result: Any = None
        problems: list[str] = []
        try:
            async with live_outputs(store.store, athletes, influx=influx, mqtt=mqtt,
                                    ha_discovery=ha_discovery, speak=speak,
                                    real_time=real_time, notify=notify,
                                    writer=store) as outputs:
                recorder.publish = outputs.publish
                try:
                    result = await collect(recorder.handle)
                finally:
                    recorder.finish()
                    # Commit the closing records before the outputs' last delivery attempt,
                    # or they wait in the outbox for the next run or `stridewatch push`.
                    await store.flush()
            problems = outputs.problems()
        finally:
            await store.flush()
            recorder.close_sessions()
    return recorder, result, problems


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.virtual.sensors import virtual_fleet
    from stridewatch.console import LiveView

    store_path = Path(args.store) if args.store else default_store_path()
    influx = influx_target(args)
    mqtt = mqtt_target(args.mqtt)
    notify = notify_targets(args.notify)
    view = LiveView(title=f"stridewatch demo: {args.workout}"
                          f"{' (low HRV)' if args.low_hrv else ''}, {args.athletes} athlete(s), "
                          f"{'max' if args.speed is None else f'{args.speed:g}x'} speed")
    utc0 = datetime.now(UTC).replace(microsecond=0)

    async def main() -> tuple[SessionRecorder, Collector, list[str]]:
        async with virtual_fleet(args.workout, athletes=args.athletes, seed=args.seed,
                                 low_hrv=args.low_hrv) as fleet:
            names = [a.name for a in fleet.athletes]

            async def collect(sink: Callable[[Reading], object]) -> Collector:
                collector: Collector = await fleet.collect(sink, clock=LoopClock(utc0))
                return collector

            return await _record_live(
                store_path=store_path, synchronous="NORMAL", source=f"virtual:{args.workout}",
                processing=default_settings().processing, athletes=names, influx=influx,
                mqtt=mqtt, ha_discovery=False, view=view, collect=collect,
                speak=SpeakSettings(status_every_s=None, voice=None) if args.speak else None,
                real_time=args.speed == 1.0, notify=notify,
            )

    with view:
        recorder, collector, problems = timewarp.run(main(), speed=args.speed)
    view.print_counters(collector.counters(), collector.dropped)
    _print_session_summaries(view.console, store_path, recorder.all_sessions(),
                             default_settings().processing)
    return report_problems(problems)



def _print_session_summaries(console: Console, store_path: Path,
                             sessions: Sequence[tuple[str, str]],
                             settings: ProcessingSettings) -> None:
    from stridewatch.report import build_report
    from stridewatch.report_text import render_text

    with SessionStore.open(store_path) as store:
        for athlete, sid in sorted(sessions):
            console.print(render_text(build_report(store, sid, settings=settings)))
            html = write_html_report(store, sid, store_path.parent / "reports" / f"{sid}.html",
                                     settings)
            console.print(f"[bold]{athlete}[/bold]: session {sid}; report: {html}")
    console.print(f"store: {store_path}  (stridewatch sessions --store {store_path})")


def cmd_run(args: argparse.Namespace) -> int:
    from stridewatch.console import LiveView

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    store_path = Path(args.store) if args.store else settings.store_path
    influx = settings.influx if not args.influx else influx_target(args)
    mqtt = mqtt_target(args.mqtt or (settings.mqtt.url if settings.mqtt else None))
    athletes = sorted(settings.processing.athletes) or [args.athlete]
    notify = notify_targets(args.notify, settings.notify)
    view = LiveView(title="stridewatch run (Ctrl-C ends the session)")

    async def collect(sink: Callable[[Reading], object]) -> None:
        async with asyncio.TaskGroup() as tg:
            if settings.ble:
                tg.create_task(_ble(settings, args.athlete, sink), name="ble")
            if settings.mqtt_source:
                tg.create_task(_mqtt_readings(settings.mqtt_source, sink), name="mqtt-source")

    async def main() -> SessionRecorder:
        stop_on_sigterm()
        recorder, _, problems = await _record_live(
            store_path=store_path, synchronous=settings.store_synchronous, source="ble",
            processing=settings.processing, athletes=athletes, influx=influx, mqtt=mqtt,
            ha_discovery=settings.mqtt.ha_discovery if settings.mqtt else False, view=view,
            collect=collect,
            speak=settings.speak or (SpeakSettings(status_every_s=None, voice=None)
                                     if args.speak else None),
            notify=notify,
        )
        for line in problems:  # a live run ends with Ctrl-C: its data stays stored (exit 0)
            print(f"stridewatch: warning: {line}", file=sys.stderr)
        return recorder

    with view:
        try:
            recorder = timewarp.run(main(), speed=1.0)
        except KeyboardInterrupt:
            view.console.print("interrupted: sessions closed and stored")
            return EXIT_OK
    _print_session_summaries(view.console, store_path, recorder.all_sessions(), settings.processing)
    return EXIT_OK


async def _ble(
    settings: Settings, default_athlete: str, sink: Callable[[Reading], object]
) -> None:
    sensor_map = SensorMap(settings.sensors,
                           default_athlete=None if settings.sensors else default_athlete)
    async with Collector(sensor_map, clock=LoopClock(datetime.now(UTC))) as collector:
        async for record in collector:
            sink(record)


async def _mqtt_readings(url: str, sink: Callable[[Reading], object]) -> None:
    from outputs.mqtt_source import MqttReadingSource

    target = mqtt_target(url)
    assert target is not None
    async with MqttReadingSource(target) as source:
        async for record in source:
            sink(record)


# ---------------------------------------------------------------------- sink


def cmd_sink(args: argparse.Namespace) -> int:
    from outputs.influx import InfluxWriter, OutboxDelivery
    from outputs.mqtt import MqttSink

    influx = influx_target(args)
    mqtt = mqtt_target(args.mqtt)
    if influx is None or mqtt is None:
        raise UsageError("sink needs --mqtt URL and --influx URL")
    store_path = Path(args.store) if args.store else default_store_path().with_name("sink.sqlite")

    async def main() -> None:
        stop_on_sigterm()
        async with AsyncStore.open(store_path) as store:
            sessions: dict[str, str] = {}

            async def on_record(record: Any) -> None:
                athlete = record.athlete
                sid = sessions.get(athlete)
                if sid is None:
                    sid = sessions[athlete] = store.store.create_session(
                        athlete, record.time_utc, "mqtt-sink")
                store.add(sid, record)
                delivery.notify()

            async with InfluxWriter(influx) as writer:
                delivery = OutboxDelivery(store.store, writer)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(delivery.run(), name="influx-delivery")
                    async with MqttSink(mqtt, on_record=on_record, client_id=args.client_id,
                                        group=args.group):
                        await asyncio.Event().wait()

    try:
        timewarp.run(main(), speed=1.0)
    except KeyboardInterrupt:
        print("sink stopped; undelivered records stay in", store_path, file=sys.stderr)
    return EXIT_OK



# ---------------------------------------------------------------------- sessions, report


def cmd_sessions(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        rows = store.sessions(args.athlete)
        if args.format == "json":
            print(json.dumps([
                {"id": r.id, "athlete": r.athlete, "start": r.start_utc.isoformat(),
                 "end": r.end_utc.isoformat() if r.end_utc else None, "source": r.source}
                for r in rows
            ]))
            return EXIT_OK
        table = Table(title=f"sessions in {store.path}")
        for column in ("id", "athlete", "start (UTC)", "duration", "source"):
            table.add_column(column)
        for r in rows:
            duration = (r.end_utc - r.start_utc).total_seconds() if r.end_utc else None
            table.add_row(r.id, r.athlete, f"{r.start_utc:%Y-%m-%d %H:%M}",
                          f"{duration / 60:.1f} min" if duration is not None else "open",
                          r.source)
        Console().print(table)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from stridewatch.report import build_report
    from stridewatch.report_text import render_text

    settings = processing_settings(args.config)
    with open_store(args.store) as store:
        sid = resolve_session(store, args.session)
        if args.format == "json":
            print(json.dumps(build_report(store, sid, settings=settings), allow_nan=False,
                             indent=2))
        elif args.format == "text":
            print(render_text(build_report(store, sid, settings=settings)))
        else:
            default = store.path.parent / "reports" / f"{sid}.html"
            out = Path(args.output) if args.output else default
            write_html_report(store, sid, out, settings)
            print(out)
    return EXIT_OK



# ---------------------------------------------------------------------- config, dashboards


def cmd_config_check(args: argparse.Namespace) -> int:
    from stridewatch.config import check_config

    problems = check_config(args.file)
    if not problems:
        print(f"{args.file}: ok")
        return EXIT_OK
    print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    return EXIT_USAGE


def cmd_dashboards_export(args: argparse.Namespace) -> int:
    from dashboards.export import export

    for path in export(Path(args.dir)):
        print(path)
    return EXIT_OK


# ---------------------------------------------------------------------- parser


def add_commands(
    sub: Any,
    *,
    workout: Callable[[str], str],
    speed: Callable[[str], float | None],
    positive_int: Callable[[str], int],
) -> None:
    p = sub.add_parser("demo", help="virtual athletes through the whole path, live console")
    p.add_argument("--workout", type=workout, default="morning-5k",
                   help="morning-5k (default), start-practice, easy-8k, tempo-8k")
    p.add_argument("--low-hrv", action="store_true", help="a low-HRV day: HR surges early")
    p.add_argument("--athletes", type=positive_int, default=1)
    p.add_argument("--speed", type=speed, default=100.0,
                   help="at most N times real time (default 100; a busy CPU slows the run, "
                        "it never skips ahead), or 'max' (as fast as the CPU allows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mqtt", metavar="URL", help="publish metrics and alerts (mqtt://host:port)")
    add_alerting(p)
    add_store(p)
    add_influx(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="a live session with real sensors (Ctrl-C ends it)")
    p.add_argument("--config", required=True, metavar="FILE", help="stridewatch.toml")
    p.add_argument("--athlete", default="athlete-1",
                   help="athlete for sensors found when the config assigns none")
    p.add_argument("--mqtt", metavar="URL")
    add_alerting(p)
    add_store(p)
    add_influx(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sink", help="MQTT (shared subscription) → store → InfluxDB")
    p.add_argument("--mqtt", metavar="URL", required=True)
    p.add_argument("--group", default="stridewatch", help="shared-subscription group")
    p.add_argument("--client-id", default=f"stridewatch-sink-{socket.gethostname()}",
                   help="unique per sink instance (persistent session); default: per host")
    add_store(p)
    add_influx(p)
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("sessions", help="list stored sessions")
    p.add_argument("--athlete")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_store(p)
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("report", help="post-run report of a session (id or 'latest')")
    p.add_argument("session")
    p.add_argument("--format", choices=("html", "json", "text"), default="html")
    p.add_argument("--output", "-o", metavar="FILE", help="HTML file to write")
    add_config(p)
    add_store(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser("check", help="validate a config file; lists every problem")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_check)

    p = sub.add_parser("dashboards", help="Grafana dashboards")
    dsub = p.add_subparsers(dest="dashboards_command", required=True)
    d = dsub.add_parser("export", help="write the dashboard JSON files into DIR")
    d.add_argument("dir")
    d.set_defaults(func=cmd_dashboards_export)

