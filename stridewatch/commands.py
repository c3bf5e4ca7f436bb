"""Commands that run sessions or read the store: demo, run, sink, import, sessions, report, push,
status, config check, dashboards export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ingest.clock import LoopClock
from ingest.collector import Collector, SensorMap
from ingest.records import Reading
from ingest.virtual import timewarp
from outputs.errors import StoreError
from outputs.influx import InfluxConfigError, InfluxTarget
from outputs.mqtt import MqttTarget
from outputs.store import AsyncStore, SessionStore
from processing.pipeline import Pipeline
from processing.records import Alert, Metric
from processing.settings import ProcessingSettings
from stridewatch.config import (
    ConfigError,
    Settings,
    SpeakSettings,
    default_settings,
    default_store_path,
    load_config,
)
from stridewatch.errors import RuntimeFailureError, UsageError
from stridewatch.session import SessionRecorder, live_outputs

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _usage(message: str) -> Exception:
    return UsageError(message)


def _failure(message: str) -> Exception:
    return RuntimeFailureError(message)


# ---------------------------------------------------------------------- targets from options


def influx_target(args: argparse.Namespace) -> InfluxTarget | None:
    """``--influx URL`` with ``--influx-db`` (/write) or ``--influx-org``/``--influx-bucket``
    (v2); credentials from the environment."""
    url = getattr(args, "influx", None)
    if not url:
        return None
    org, bucket = getattr(args, "influx_org", None), getattr(args, "influx_bucket", None)
    try:
        return InfluxTarget.build(url, database=args.influx_db, org=org or None,
                                  bucket=bucket or None)
    except InfluxConfigError as exc:
        raise _usage(str(exc)) from None


def mqtt_target(url: str | None) -> MqttTarget | None:
    if not url:
        return None
    try:
        return MqttTarget.from_url(url)
    except ValueError as exc:
        raise _usage(str(exc)) from None


def open_store(path: str | None) -> SessionStore:
    try:
        return SessionStore.open(Path(path) if path else default_store_path())
    except StoreError as exc:
        raise _usage(str(exc)) from None


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH",
                   help=f"session store (default: {default_store_path()})")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="stridewatch.toml: the athletes' max HR, HR zones and alert settings "
                        "(defaults without it)")


def notify_targets(urls: Sequence[str], configured: Sequence[Any] = ()) -> list[Any]:
    """``[[notify]]`` entries of the config, then each ``--notify URL`` (named cli-1, ...).

    Raises a usage error (exit 2) for a URL Apprise cannot use, without printing its secret."""
    from outputs.notify import NotifyConfigError, NotifyTarget, check_notify_url

    targets: list[Any] = []
    try:
        for n in configured:
            check_notify_url(n.url.get_secret_value())
            targets.append(NotifyTarget.create(
                n.name, n.url.get_secret_value(), athletes=n.athletes, kinds=n.kinds,
                min_severity=n.min_severity))
        for i, url in enumerate(urls, start=1):
            check_notify_url(url)
            targets.append(NotifyTarget.create(f"cli-{i}", url))
    except (NotifyConfigError, ValueError) as exc:
        raise _usage(f"--notify / [[notify]]: {exc}") from None
    return targets


def _add_alerting(p: argparse.ArgumentParser) -> None:
    """``--notify URL`` (repeatable) and ``--speak`` (issue #12)."""
    p.add_argument("--notify", metavar="URL", action="append", default=[],
                   help="push every alert to this Apprise URL (ntfy://, tgram://, json://...; "
                        "repeatable). URLs with tokens: prefer [[notify]] url_env in --config")
    p.add_argument("--speak", action="store_true",
                   help="say alerts aloud through espeak-ng (earbuds on a gateway, treadmill)")


def _add_influx(p: argparse.ArgumentParser) -> None:
    p.add_argument("--influx", metavar="URL", help="InfluxDB server root, e.g. http://127.0.0.1:8086")
    p.add_argument("--influx-db", default="stridewatch",
                   help="database for the /write API (default: stridewatch)")
    p.add_argument("--influx-org", help="organisation for the v2 API (with --influx-bucket)")
    p.add_argument("--influx-bucket", help="bucket for the v2 API (with --influx-org)")


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


def _resolve_session(store: SessionStore, ref: str) -> str:
    if ref == "latest":
        row = store.latest_session()
        if row is None:
            raise _usage(f"the store {store.path} has no session yet: run `stridewatch demo` or "
                         "`stridewatch import FILE`")
        return row.id
    if store.session(ref) is None:
        raise _usage(f"no session {ref!r} in {store.path}; `stridewatch sessions` lists them")
    return ref


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
        raise _usage(str(exc)) from None
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
    _print_session_summaries(view.console, store_path, recorder.sessions,
                             default_settings().processing)
    return _report_problems(problems)


def _report_problems(problems: Sequence[str]) -> int:
    """Outputs never reached during a finite command: say so on stderr, exit 1 (issue #10)."""
    for line in problems:
        print(f"stridewatch: error: {line}", file=sys.stderr)
    return EXIT_FAILURE if problems else EXIT_OK


def _print_session_summaries(console: Console, store_path: Path, sessions: dict[str, str],
                             settings: ProcessingSettings) -> None:
    from stridewatch.report import build_report
    from stridewatch.report_text import render_text

    with SessionStore.open(store_path) as store:
        for athlete, sid in sorted(sessions.items()):
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
        raise _usage(str(exc)) from None
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
        _stop_on_sigterm()
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
    _print_session_summaries(view.console, store_path, recorder.sessions, settings.processing)
    return EXIT_OK


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop) ends the run like Ctrl-C: sessions are closed and stored."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


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
        raise _usage("sink needs --mqtt URL and --influx URL")
    store_path = Path(args.store) if args.store else default_store_path().with_name("sink.sqlite")

    async def main() -> None:
        _stop_on_sigterm()
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


# ---------------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> int:
    from ingest.errors import ReplayError
    from ingest.replay.detect import read_activity_file

    paths: list[Path] = []
    for name in args.files:
        p = Path(name)
        if p.is_dir():
            paths.extend(sorted(x for x in p.iterdir() if x.is_file()))
        elif any(ch in name for ch in "*?["):
            paths.extend(sorted(Path().glob(name)))
        else:
            paths.append(p)
    if not paths:
        raise _usage("no files to import")
    created: list[str] = []
    errors = 0
    console = Console(stderr=True, soft_wrap=True)  # one line per note, greppable
    start = _start_option(args.start)
    base = _processing_settings(args.config)
    with open_store(args.store) as store, Progress(console=console, transient=True) as progress:
        for path in paths:
            try:
                activities = read_activity_file(path, athlete=args.athlete, start_utc=start,
                                                salvage=args.salvage)
            except ReplayError as exc:
                hint = ("; --salvage imports the readable part"
                        if "readable" in str(exc) and not args.salvage else "")
                console.print(f"[red]error:[/red] {exc}; nothing imported from it{hint}")
                errors += 1
                continue
            for activity in activities:
                for note in getattr(activity, "notes", ()):
                    console.print(f"[yellow]note:[/yellow] {path.name}: {note}")
                task = progress.add_task(f"{path.name}", total=len(activity.readings))
                sid = _import_activity(store, activity, progress, task, base)
                created.append(sid)
    if args.format == "json":
        print(json.dumps(created))
    else:
        for sid in created:
            print(sid)
    return EXIT_USAGE if errors and not created else (EXIT_USAGE if errors else EXIT_OK)


def _with_file_totals(final: list[Any], totals: Any) -> list[Any]:
    """A file's own totals win over the pipeline's in the session summary (issue #11).

    The reader computes them by the devices' rules, which a live pipeline cannot know: averages
    time-weighted over timer-running time (pauses and gaps over 10 s excluded), the maker's
    zero-cadence convention, the device's corrected distance (docs/import-formats.md). The live
    figures of a recording stay what processing computed."""
    if totals is None:
        return final
    figures = {"distance_m": totals.distance_m, "avg_hr_bpm": totals.avg_heart_rate_bpm,
               "max_hr_bpm": totals.max_heart_rate_bpm, "avg_cadence_spm": totals.avg_cadence_spm,
               "timer_time_s": totals.timer_time_s}
    out: list[Any] = []
    for record in final:
        if isinstance(record, Metric) and record.values.get("final") is True:
            values = {**record.values, **{k: float(v) for k, v in figures.items()
                                          if v is not None}}
            record = dataclasses.replace(record, values=values)
        out.append(record)
    return out


def _start_option(text: str | None) -> datetime | None:
    """``--start``: ISO 8601; without a zone it is UTC."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _usage(f"--start {text!r} is not an ISO 8601 time (e.g. 2024-05-01T06:30:00Z, "
                     "or 2024-05-01T08:30:00+02:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _processing_settings(config: str | None) -> ProcessingSettings:
    """The processing settings of ``--config`` (athletes' max HR, zones, alerts), or the
    defaults without one."""
    if config is None:
        return ProcessingSettings()
    try:
        return load_config(config).processing
    except ConfigError as exc:
        raise _usage(str(exc)) from None


def _import_activity(store: SessionStore, activity: Any, progress: Progress, task: Any,
                     base: ProcessingSettings) -> str:
    # The file's cadence units (e.g. FIT's per-sensor units) win over the config's.
    athlete = base.athlete(activity.athlete)
    cadence = {**athlete.cadence_unit, **activity.cadence_overrides()}
    settings = dataclasses.replace(base, athletes={
        **base.athletes,
        activity.athlete: dataclasses.replace(athlete, cadence_unit=cadence),
    })
    from stridewatch.session import SUMMARY_KEYS, athlete_history

    pipeline = Pipeline(settings, history=lambda a: athlete_history(store, a))
    records: list[Any] = []
    for i, reading in enumerate(activity.readings):
        records.append(reading)
        records.extend(pipeline.process(reading))
        if i % 2000 == 0:
            progress.update(task, completed=i)
    final = _with_file_totals(pipeline.finish(), getattr(activity, "totals", None))
    records.extend(final)
    progress.update(task, completed=len(activity.readings))
    sid = store.create_session(activity.athlete, activity.start_utc,
                               f"import:{activity.source_format}",
                               meta={"file": activity.source_path,
                                     "session_index": activity.session_index})
    # Alert ids start with the session id, as in a live run (unique across sessions: issue #10).
    records = [dataclasses.replace(r, id=f"{sid}:{r.id}") if isinstance(r, Alert) else r
               for r in records]
    try:
        store.write(sid, records)  # one transaction: all or nothing
        summary = next(
            (m for m in final if isinstance(m, Metric) and m.values.get("final")), None
        )
        if summary is not None:
            store.end_session(sid, summary.time_utc)
            for key in SUMMARY_KEYS:
                value = summary.values.get(key)
                if value is not None:
                    store.set_session_summary(sid, key, value)
    except BaseException:
        store.delete_session(sid)
        raise
    return sid


# ---------------------------------------------------------------------- sessions, report, status


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

    settings = _processing_settings(args.config)
    with open_store(args.store) as store:
        sid = _resolve_session(store, args.session)
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


def cmd_status(args: argparse.Namespace) -> int:
    """Per output: the true backlog (only outputs ever used; MQTT counts alerts, the only
    records it takes from the store), the cursor and dead letters; sessions open and
    interrupted. Opening the store closes sessions left open by a killed process."""
    from outputs.mqtt import ALERT_KINDS
    from outputs.mqtt import OUTPUT_NAME as MQTT_OUTPUT

    with open_store(args.store) as store:
        cursors = store.cursors()
        # What each output takes from the store: InfluxDB everything; MQTT and every push
        # target (notify:<name>) the alerts only.
        kinds = {name: (None if name == "influx" else ALERT_KINDS) for name in cursors}
        backlogs = store.output_backlogs({"influx": None, MQTT_OUTPUT: ALERT_KINDS, **kinds})
        info: dict[str, Any] = {
            output: {"backlog": backlog, "delivered_seq": cursors.get(output, 0),
                     "dead_letters": len(store.dead_letters(output))}
            for output, backlog in sorted(backlogs.items())
        }
        rows = store.sessions()
        info["sessions"] = {"count": len(rows),
                            "open": sum(1 for r in rows if r.end_utc is None),
                            "interrupted": sum(1 for r in rows if r.interrupted)}
        print(json.dumps(info, indent=2))
    return EXIT_OK


# ---------------------------------------------------------------------- push

PUSH_TIMEOUT_S = 600.0
"""Bound on one `push` (real seconds): a backlog of hours of a team goes in well under that."""
PUSH_GIVE_UP_ATTEMPTS = 3
"""Failed attempts with no success before `push` says the broker cannot be reached (exit 1)."""


def cmd_push(args: argparse.Namespace) -> int:
    """Deliver the store's backlog through the outputs' own cursors (what `status` shows), and
    re-send a named session to InfluxDB (idempotent: the same points overwrite themselves)."""
    influx = influx_target(args)
    mqtt = mqtt_target(args.mqtt)
    notify = notify_targets(args.notify)
    if influx is None and mqtt is None and not notify:
        raise _usage("push needs --influx URL, --mqtt URL and/or --notify URL")
    with open_store(args.store) as store:
        sid = _resolve_session(store, args.session) if args.session else None

        async def main() -> list[str]:
            problems: list[str] = []
            if influx is not None:
                problems += await _push_influx(store, influx, sid)
            if mqtt is not None:
                problems += await _push_alerts(store, mqtt)
            if notify:
                problems += await _push_notify(store, notify)
            return problems

        problems = timewarp.run(main(), speed=1.0)
        from outputs.mqtt import ALERT_KINDS
        from outputs.mqtt import OUTPUT_NAME as MQTT_OUTPUT

        left = store.output_backlogs({"influx": None, MQTT_OUTPUT: ALERT_KINDS})
    for output, n in sorted(left.items()):
        if (output == "influx" and influx) or (output == MQTT_OUTPUT and mqtt):
            print(f"{output}: backlog {n}")
    return _report_problems(problems)


async def _push_influx(store: SessionStore, target: InfluxTarget, sid: str | None) -> list[str]:
    from outputs.influx import InfluxWriter, OutboxDelivery

    async with InfluxWriter(target) as writer:
        delivery = OutboxDelivery(store, writer)
        start = await asyncio.to_thread(store.backlog, "influx")
        stop = asyncio.Event()
        with Progress(transient=True) as progress:
            task = progress.add_task(f"InfluxDB {target.url}: backlog", total=max(start, 1))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(delivery.run(stop), name="influx-push")
                drained = await _drain_with_progress(delivery, progress, task, start)
                stop.set()
                delivery.notify()
        p = delivery.progress
        if not p.reached:
            return [f"InfluxDB {p.url} was never reached: {p.last_error or 'no answer'}; "
                    f"{p.backlog} record(s) wait in the store"]
        if not drained:
            return [f"InfluxDB {p.url}: {p.backlog} record(s) not delivered within "
                    f"{PUSH_TIMEOUT_S:.0f} s ({p.last_error or 'slow server'}); push again"]
        print(f"influx: delivered {p.delivered} record(s) ({p.lines} points) to {p.url}")
        if sid is not None:
            return await _resend_session(store, writer, sid)
    return []


async def _drain_with_progress(delivery: Any, progress: Progress, task: Any, start: int) -> bool:
    """Drain with a progress bar (see :func:`stridewatch.session.drain_delivery`)."""
    from stridewatch.session import drain_delivery

    def step() -> None:
        progress.update(task, completed=min(delivery.progress.delivered, start))

    ok = await drain_delivery(delivery, time.monotonic() + PUSH_TIMEOUT_S, step)
    if ok:
        progress.update(task, completed=max(start, 1))
    return ok


async def _resend_session(store: SessionStore, writer: Any, sid: str) -> list[str]:
    """Backfill one stored session (its points overwrite themselves: idempotent)."""
    from outputs.influx import OutcomeKind
    from outputs.lineprotocol import encode_point

    def load() -> list[Any]:
        return [*store.readings(sid), *store.metrics(sid), *store.alerts(sid),
                *store.segments(sid)]

    records = await asyncio.to_thread(load)  # no SQLite on the event loop
    sent = 0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"push {sid}", total=len(records))
        batch: list[str] = []
        for i, record in enumerate(records, start=1):
            batch.extend(encode_point(record))
            if len(batch) >= writer.target.batch_lines or i == len(records):
                result = await writer.deliver(batch)
                if not result.ok:
                    kind = result.outcome.kind
                    hint = ". Create the database first" if kind is OutcomeKind.CONFIG else ""
                    return [f"InfluxDB refused session {sid} ({kind.value}): "
                            f"{result.outcome.message}{hint}"]
                sent += len(batch)
                batch = []
                progress.update(task, completed=i)
    print(f"pushed session {sid}: {len(records)} records, {sent} points to "
          f"{writer.target.url} (idempotent: pushing again overwrites the same points)")
    return []


async def _push_notify(store: SessionStore, targets: Sequence[Any]) -> list[str]:
    """Stored alerts a push target has not confirmed (same cursor as the run's: the targets of
    `--notify` are named cli-1, cli-2, ... in both)."""
    from outputs.notify import Notifier
    from stridewatch.session import drain_notifier

    async with Notifier(store, targets) as notifier:
        await drain_notifier(notifier, time.monotonic() + PUSH_TIMEOUT_S)
        problems = notifier.problems()
        for name, s in sorted(notifier.status().items()):
            print(f"notify:{name}: {s['sent']} sent, backlog {s['backlog']}")
    return problems


async def _push_alerts(store: SessionStore, target: MqttTarget) -> list[str]:
    """Stored alerts not yet acknowledged by the broker, QoS 1, through the one sender."""
    from outputs.mqtt import MqttAlertSender
    from outputs.outbox import StoreOutbox
    from stridewatch.session import drain_alerts

    async with MqttAlertSender(target, StoreOutbox(store)) as sender:
        deadline = time.monotonic() + PUSH_TIMEOUT_S
        while not sender.link.ever_connected and sender.link.failures < PUSH_GIVE_UP_ATTEMPTS:
            with contextlib.suppress(TimeoutError):
                await sender.wait_connected(1.0)
        link = sender.link
        if not link.ever_connected:
            return [f"MQTT broker {link.url} was never reached: {link.last_error or 'no answer'}"
                    "; alerts wait in the store"]
        if not await drain_alerts(sender, deadline):
            return [f"MQTT broker {link.url}: alerts left undelivered "
                    f"({sender.link.last_error or 'timed out'}); push again"]
        print(f"mqtt: {sender.published_alerts} alert(s) delivered to {link.url}")
    return []


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
    _add_alerting(p)
    _add_store(p)
    _add_influx(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="a live session with real sensors (Ctrl-C ends it)")
    p.add_argument("--config", required=True, metavar="FILE", help="stridewatch.toml")
    p.add_argument("--athlete", default="athlete-1",
                   help="athlete for sensors found when the config assigns none")
    p.add_argument("--mqtt", metavar="URL")
    _add_alerting(p)
    _add_store(p)
    _add_influx(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sink", help="MQTT (shared subscription) → store → InfluxDB")
    p.add_argument("--mqtt", metavar="URL", required=True)
    p.add_argument("--group", default="stridewatch", help="shared-subscription group")
    p.add_argument("--client-id", default=f"stridewatch-sink-{socket.gethostname()}",
                   help="unique per sink instance (persistent session); default: per host")
    _add_store(p)
    _add_influx(p)
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("import", help="import FIT, CSV, RR-interval or session files")
    p.add_argument("files", nargs="+", help="files, directories or globs")
    p.add_argument("--athlete", default="athlete-1")
    p.add_argument("--start", help="start time (ISO 8601) for files that have none (RR text; "
                                   "FIT recorded with the clock unset)")
    p.add_argument("--salvage", action="store_true",
                   help="a damaged FIT file: import the valid part before the damage, with a "
                        "note (default: refuse it, saying where it is damaged)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_config(p)
    _add_store(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sessions", help="list stored sessions")
    p.add_argument("--athlete")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_store(p)
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("report", help="post-run report of a session (id or 'latest')")
    p.add_argument("session")
    p.add_argument("--format", choices=("html", "json", "text"), default="html")
    p.add_argument("--output", "-o", metavar="FILE", help="HTML file to write")
    _add_config(p)
    _add_store(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("push", help="deliver the store's backlog to InfluxDB and/or MQTT; "
                                     "re-send a session to InfluxDB (idempotent)")
    p.add_argument("session", nargs="?",
                   help="also re-send this session (an id, or latest) to InfluxDB")
    _add_store(p)
    _add_influx(p)
    p.add_argument("--mqtt", metavar="URL",
                   help="send stored alerts the broker has not acknowledged (QoS 1)")
    p.add_argument("--notify", metavar="URL", action="append", default=[],
                   help="send stored alerts this push target has not confirmed (as in the "
                        "run: the n-th --notify is the same target)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("status", help="delivery backlog and dead letters of the store")
    _add_store(p)
    p.set_defaults(func=cmd_status)

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

