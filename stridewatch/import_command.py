"""``stridewatch import``: recorded files (FIT, CSV, RR text, session files) through the same
processing as a live run, into the store, one session per activity."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from outputs.store import SessionStore
from processing.pipeline import Pipeline
from processing.records import Alert, is_session_totals
from processing.settings import ProcessingSettings
from stridewatch.errors import UsageError
from stridewatch.options import (
    EXIT_OK,
    EXIT_USAGE,
    add_config,
    add_store,
    open_store,
    processing_settings,
)


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
        raise UsageError("no files to import")
    created: list[str] = []
    errors = 0
    console = Console(stderr=True, soft_wrap=True)  # one line per note, greppable
    start = _start_option(args.start)
    base = processing_settings(args.config)
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
        if is_session_totals(record):
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
        raise UsageError(f"--start {text!r} is not an ISO 8601 time (e.g. "
                         "2024-05-01T06:30:00Z, or 2024-05-01T08:30:00+02:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _import_activity(store: SessionStore, activity: Any, progress: Progress, task: Any,
                     base: ProcessingSettings) -> str:
    # The file's cadence units (e.g. FIT's per-sensor units) win over the config's.
    athlete = base.athlete(activity.athlete)
    cadence = {**athlete.cadence_unit, **activity.cadence_overrides()}
    settings = dataclasses.replace(base, athletes={
        **base.athletes,
        activity.athlete: dataclasses.replace(athlete, cadence_unit=cadence),
    })
    from stridewatch.session import athlete_history, end_session

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
        summary = next((m for m in final if is_session_totals(m)), None)
        if summary is not None:
            end_session(store, sid, summary)
    except BaseException:
        store.delete_session(sid)
        raise
    return sid


def add_commands(sub: Any) -> None:
    p = sub.add_parser("import", help="import FIT, CSV, RR-interval or session files")
    p.add_argument("files", nargs="+", help="files, directories or globs")
    p.add_argument("--athlete", default="athlete-1")
    p.add_argument("--start", help="start time (ISO 8601) for files that have none (RR text; "
                                   "FIT recorded with the clock unset)")
    p.add_argument("--salvage", action="store_true",
                   help="a damaged FIT file: import the valid part before the damage, with a "
                        "note (default: refuse it, saying where it is damaged)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_config(p)
    add_store(p)
    p.set_defaults(func=cmd_import)
