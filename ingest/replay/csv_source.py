"""CSV files as a source: one row per sample, documented columns, strict checking.

Columns (header row required, comma-separated, any order; unknown columns are an error so a
misspelt name never drops data silently):

=================  ========================================================================
``time``           required. ISO 8601 with a UTC offset (``2024-05-01T06:30:00Z``) *or*
                   seconds from the start (``12.5``; then the caller passes ``start_utc``).
                   One kind for the whole file; rows in non-decreasing time order.
``heart_rate_bpm`` heart rate, beats/min (integer 1–300). Makes a HeartRateReading.
``rr_ms``          RR intervals ending at or before this row, milliseconds, ``;``-separated
                   (``812;798``), oldest first. Needs ``heart_rate_bpm`` in the same row.
``speed_mps``      speed, m/s.
``cadence_spm``    cadence, **steps**/min (both feet). With ``speed_mps``, makes a
                   StrideReading; the two go together.
``step_length_m``  one step, metres (optional; → ``StrideReading.stride_length_m``, which
                   pairs with steps/min).
``distance_m``     distance since the start of the recording, metres (optional).
=================  ========================================================================

Empty cells are absent values. Lines starting with ``#`` before the header are comments.
Readings go to sensors ``"csv:hr"`` and ``"csv:pod"``; cadence is steps/min like every file
source (processing's override: :meth:`Activity.cadence_overrides`). RR beat times are placed as
for FIT (``fit.py`` "RR alignment"): back-dated from the first row with RR, then accumulated,
re-anchored when more than 2.5 s behind a row's time. Every error is a
:class:`~ingest.errors.ReplayError` with the line number.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from ingest.errors import ReplayError
from ingest.records import Contact, HeartRateReading, LinkEvent, LinkState, Reading, StrideReading
from ingest.replay.fit import Activity, BeatChain, with_sensor_info

__all__ = ["COLUMNS", "CSV_HR_SENSOR", "CSV_POD_SENSOR", "read_csv"]

CSV_HR_SENSOR: Final = "csv:hr"
CSV_POD_SENSOR: Final = "csv:pod"
COLUMNS: Final = (
    "time",
    "heart_rate_bpm",
    "rr_ms",
    "speed_mps",
    "cadence_spm",
    "step_length_m",
    "distance_m",
)
_MAX_HR: Final = 300


class _Row:
    """Cell parsing with the file and line in every error."""

    def __init__(self, path: str, line: int, cells: Mapping[str, str]) -> None:
        self.path, self.line, self.cells = path, line, cells

    def error(self, reason: str) -> ReplayError:
        return ReplayError(self.path, reason, line=self.line)

    def text(self, column: str) -> str | None:
        value = (self.cells.get(column) or "").strip()
        return value or None

    def number(self, column: str, *, minimum: float = 0.0) -> float | None:
        text = self.text(column)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise self.error(f"{column}: {text!r} is not a number") from None
        if not math.isfinite(value) or value < minimum:
            raise self.error(f"{column}: {text!r} must be a finite number ≥ {minimum:g}")
        return value


def _parse_time(row: _Row, start_utc: datetime | None) -> tuple[datetime, float | None]:
    """(UTC time, seconds-from-start or None for ISO rows)."""
    text = row.text("time")
    if text is None:
        raise row.error("time is empty")
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0:
            raise row.error(f"time {text!r}: seconds from the start must be ≥ 0")
        if start_utc is None:
            raise row.error("time is in seconds from the start and the file does not say "
                            "when it started: give the start time (--start 2024-05-01T06:30:00Z "
                            "on the command line)")
        return start_utc + timedelta(seconds=seconds), seconds
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise row.error(f"time {text!r} is neither ISO 8601 nor seconds") from None
    if when.tzinfo is None:
        raise row.error(f"time {text!r} has no UTC offset: add 'Z' or '+00:00'")
    return when.astimezone(UTC), None


def read_csv(
    path: str | os.PathLike[str], *, athlete: str, start_utc: datetime | None = None
) -> Activity:
    """Read a CSV recording (columns in the module doc) into one :class:`Activity`.

    Args:
        path: the ``.csv`` file.
        athlete: athlete the readings belong to.
        start_utc: the start, needed (only) when ``time`` is seconds from the start.

    Raises:
        ReplayError: unreadable file, missing/unknown header, bad cell, time going backwards
            (always with the line number where it applies).
    """
    name = os.fspath(path)
    if start_utc is not None and start_utc.tzinfo is None:
        raise ValueError("start_utc must be timezone-aware")
    try:
        with open(name, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except OSError as exc:
        raise ReplayError(name, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReplayError(name, "not a text file (not UTF-8)", offset=exc.start) from exc

    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].lstrip().startswith("#")):
        skip += 1
    if skip == len(lines):
        raise ReplayError(name, "empty file: a header row is required "
                          f"(columns: {', '.join(COLUMNS)})")
    reader = csv.reader(io.StringIO("".join(lines[skip:])))
    header = [h.strip() for h in next(reader)]
    header_line = skip + 1
    unknown = [h for h in header if h not in COLUMNS]
    if "time" not in header or unknown:
        what = f"unknown column(s) {unknown}" if unknown else "no 'time' column"
        raise ReplayError(name, f"bad header: {what}; columns are {', '.join(COLUMNS)} "
                          "(time required)", line=header_line)
    if len(set(header)) != len(header):
        raise ReplayError(name, "bad header: a column appears twice", line=header_line)
    if len(header) == 1:
        raise ReplayError(name, "bad header: no value columns besides 'time'", line=header_line)

    out: list[Reading] = []
    chain = BeatChain()
    start: datetime | None = None
    kind: str | None = None
    last_t = -math.inf
    for cells in reader:
        line = header_line + reader.line_num - 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ReplayError(name, f"{len(cells)} cells, the header has {len(header)}",
                              line=line)
        row = _Row(name, line, dict(zip(header, cells, strict=True)))
        utc, seconds = _parse_time(row, start_utc)
        row_kind = "seconds" if seconds is not None else "iso"
        if kind is None:
            kind = row_kind
            start = start_utc if seconds is not None and start_utc is not None else utc
        elif row_kind != kind:
            raise row.error(f"time mixes ISO 8601 and seconds (this row is {row_kind}, "
                            f"earlier rows are {kind})")
        assert start is not None
        t = (utc - start).total_seconds() if seconds is None else seconds
        if t < last_t:
            raise row.error(f"time goes backwards ({t - last_t:+.3f} s)")
        last_t = t
        _row_readings(row, athlete, utc, t, chain, out)
    if start is None:
        raise ReplayError(name, "no data rows after the header", line=header_line)
    return Activity(
        athlete=athlete, source_format="csv", source_path=name, session_index=0,
        start_utc=start, sport=None, device=None,
        readings=tuple(with_sensor_info(out, athlete, None, "CSV file")), summary=None,
    )


def _row_readings(
    row: _Row, athlete: str, utc: datetime, t: float, chain: BeatChain, out: list[Reading]
) -> None:
    hr = row.number("heart_rate_bpm", minimum=1)
    rr_text = row.text("rr_ms")
    rr: list[float] = []
    if rr_text is not None:
        for token in rr_text.split(";"):
            token = token.strip()
            try:
                ms = float(token)
            except ValueError:
                raise row.error(f"rr_ms: {token!r} is not a number (use ';' between "
                                "values)") from None
            if not math.isfinite(ms) or not 150 <= ms <= 10_000:
                raise row.error(f"rr_ms: {token!r} is not a plausible RR in ms (150–10000)")
            rr.append(ms / 1000.0)
        if hr is None:
            raise row.error("rr_ms needs heart_rate_bpm in the same row")
    if hr is not None:
        if hr > _MAX_HR or hr != int(hr):
            raise row.error(f"heart_rate_bpm: {hr:g} is not a whole number in 1–{_MAX_HR}")
        beats: tuple[float, ...] = ()
        gap: float | None = None
        if rr:
            beats, gap = chain.place(t, rr)
        out.append(HeartRateReading(
            athlete=athlete, sensor=CSV_HR_SENSOR, time_utc=utc, time_mono_s=t,
            heart_rate_bpm=int(hr), rr_intervals_s=tuple(rr), beat_times_mono_s=beats,
            contact=Contact.UNSUPPORTED, energy_kj=None, raw=b"",
        ))
        if gap is not None:
            out.append(LinkEvent(athlete=athlete, sensor=CSV_HR_SENSOR, time_utc=utc,
                                 time_mono_s=t, state=LinkState.RR_GAP,
                                 detail=f"{gap:.1f} s of RR intervals missing"))
    speed = row.number("speed_mps")
    cadence = row.number("cadence_spm")
    step = row.number("step_length_m")
    distance = row.number("distance_m")
    if (speed is None) != (cadence is None):
        raise row.error("speed_mps and cadence_spm go together: give both or neither")
    if speed is not None and cadence is not None:
        out.append(StrideReading(
            athlete=athlete, sensor=CSV_POD_SENSOR, time_utc=utc, time_mono_s=t,
            speed_mps=speed, cadence_per_min=round(cadence), stride_length_m=step,
            total_distance_m=distance, running=None, raw=b"",
        ))
    elif step is not None or distance is not None:
        raise row.error("step_length_m and distance_m need speed_mps and cadence_spm")
