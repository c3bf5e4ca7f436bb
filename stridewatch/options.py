"""What several commands share: targets and the store from command-line options, the
options themselves, and how a finite command reports outputs it could not reach."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from outputs.errors import StoreError
from outputs.influx import InfluxConfigError, InfluxTarget
from outputs.mqtt import MqttTarget
from outputs.store import SessionStore
from processing.settings import ProcessingSettings
from stridewatch.config import ConfigError, default_store_path, load_config
from stridewatch.errors import UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


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
        raise UsageError(str(exc)) from None


def mqtt_target(url: str | None) -> MqttTarget | None:
    if not url:
        return None
    try:
        return MqttTarget.from_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def open_store(path: str | None) -> SessionStore:
    try:
        return SessionStore.open(Path(path) if path else default_store_path())
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH",
                   help=f"session store (default: {default_store_path()})")


def add_config(p: argparse.ArgumentParser) -> None:
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
        raise UsageError(f"--notify / [[notify]]: {exc}") from None
    return targets


def add_alerting(p: argparse.ArgumentParser) -> None:
    """``--notify URL`` (repeatable) and ``--speak`` (issue #12)."""
    p.add_argument("--notify", metavar="URL", action="append", default=[],
                   help="push every alert to this Apprise URL (ntfy://, tgram://, json://...; "
                        "repeatable). URLs with tokens: prefer [[notify]] url_env in --config")
    p.add_argument("--speak", action="store_true",
                   help="say alerts aloud through espeak-ng (earbuds on a gateway, treadmill)")


def add_influx(p: argparse.ArgumentParser) -> None:
    p.add_argument("--influx", metavar="URL", help="InfluxDB server root, e.g. http://127.0.0.1:8086")
    p.add_argument("--influx-db", default="stridewatch",
                   help="database for the /write API (default: stridewatch)")
    p.add_argument("--influx-org", help="organisation for the v2 API (with --influx-bucket)")
    p.add_argument("--influx-bucket", help="bucket for the v2 API (with --influx-org)")


def resolve_session(store: SessionStore, ref: str) -> str:
    if ref == "latest":
        row = store.latest_session()
        if row is None:
            raise UsageError(f"the store {store.path} has no session yet: run `stridewatch "
                             "demo` or `stridewatch import FILE`")
        return row.id
    if store.session(ref) is None:
        raise UsageError(f"no session {ref!r} in {store.path}; `stridewatch sessions` lists them")
    return ref


def processing_settings(config: str | None) -> ProcessingSettings:
    """The processing settings of ``--config`` (athletes' max HR, zones, alerts), or the
    defaults without one."""
    if config is None:
        return ProcessingSettings()
    try:
        return load_config(config).processing
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def report_problems(problems: Sequence[str]) -> int:
    """Outputs never reached during a finite command: say so on stderr, exit 1 (issue #10)."""
    for line in problems:
        print(f"stridewatch: error: {line}", file=sys.stderr)
    return EXIT_FAILURE if problems else EXIT_OK
