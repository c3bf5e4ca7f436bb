"""``stridewatch push`` and ``stridewatch status``: the store's delivery backlog, shown and
delivered after the fact (the outputs' own cursors, as in a live run)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from rich.progress import Progress

from ingest.virtual import timewarp
from outputs.influx import InfluxTarget
from outputs.mqtt import MqttTarget
from outputs.store import SessionStore
from stridewatch.errors import UsageError
from stridewatch.options import (
    EXIT_OK,
    add_influx,
    add_store,
    influx_target,
    mqtt_target,
    notify_targets,
    open_store,
    report_problems,
    resolve_session,
)


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
        raise UsageError("push needs --influx URL, --mqtt URL and/or --notify URL")
    with open_store(args.store) as store:
        sid = resolve_session(store, args.session) if args.session else None

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
    return report_problems(problems)


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


def add_commands(sub: Any) -> None:
    p = sub.add_parser("push", help="deliver the store's backlog to InfluxDB and/or MQTT; "
                                     "re-send a session to InfluxDB (idempotent)")
    p.add_argument("session", nargs="?",
                   help="also re-send this session (an id, or latest) to InfluxDB")
    add_store(p)
    add_influx(p)
    p.add_argument("--mqtt", metavar="URL",
                   help="send stored alerts the broker has not acknowledged (QoS 1)")
    p.add_argument("--notify", metavar="URL", action="append", default=[],
                   help="send stored alerts this push target has not confirmed (as in the "
                        "run: the n-th --notify is the same target)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("status", help="delivery backlog and dead letters of the store")
    add_store(p)
    p.set_defaults(func=cmd_status)
