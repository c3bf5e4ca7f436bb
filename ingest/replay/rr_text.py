"""RR-interval text files (Polar/Kubios/HRV-app exports) as a source.

Format: numbers separated by newlines, spaces, tabs, commas or semicolons; blank lines and
lines starting with ``#`` are ignored. One RR interval per number, oldest first.

Unit: milliseconds or seconds, detected from the data (:func:`detect_rr_unit`): a median above
3 is milliseconds (no heart beats once per 3 s on average, and no RR is 3 ms), otherwise
seconds. A caller may force the unit. After detection every value must be plausible:

* In a millisecond file, a value ≤ :data:`_MIXED_MS_MAX` looks like seconds, and in a second
  file a value ≥ :data:`_MIXED_S_MIN` looks like milliseconds: the file mixes units → error.
* Otherwise each RR must lie in [:data:`MIN_RR_S`, :data:`MAX_RR_S`] seconds. The upper bound
  is generous on purpose: real recordings hold artifacts (missed beats of 2–6 s) that
  processing's cleaner detects and counts; they must not make the import fail.

Every error names the line.

The file has no clock: the caller passes ``start_utc`` (the CLI takes it from the user or the
file's mtime; readers never read the wall clock). Beat *k* is at ``sum(rr[:k+1])`` seconds
after the start. One :class:`HeartRateReading` per beat on sensor ``"rr:hr"``, carrying that
one RR and its beat time; ``heart_rate_bpm`` is ``round(60 / mean(last ≤ 5 RR))`` (a short
trailing average, like a strap's display).
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ingest.errors import ReplayError
from ingest.records import Contact, HeartRateReading, Reading
from ingest.replay.fit import Activity, with_sensor_info

__all__ = [
    "MAX_RR_S",
    "MIN_RR_S",
    "RR_HR_SENSOR",
    "RrUnit",
    "detect_rr_unit",
    "parse_rr_text",
    "read_rr_text",
]

RrUnit = Literal["ms", "s"]

RR_HR_SENSOR: Final = "rr:hr"
MIN_RR_S: Final = 0.15
"""400 bpm: nothing shorter is a heart beat."""
MAX_RR_S: Final = 10.0
"""Longer than any missed-beat artifact worth keeping; a longer value is a recording break."""
_UNIT_SPLIT: Final = 3.0
"""Median above this → milliseconds."""
_MIXED_MS_MAX: Final = 10.0
"""In a millisecond file, a value ≤ 10 (10 ms) is a seconds value."""
_MIXED_S_MIN: Final = 100.0
"""In a seconds file, a value ≥ 100 (100 s) is a milliseconds value."""
_HR_WINDOW: Final = 5
_SEPARATORS: Final = re.compile(r"[\s,;]+")


def detect_rr_unit(values: Sequence[float]) -> RrUnit:
    """``"ms"`` when the median is above 3, else ``"s"``.

    >>> detect_rr_unit([812, 790, 805])
    'ms'
    >>> detect_rr_unit([0.812, 0.79, 0.805])
    's'
    """
    if not values:
        raise ValueError("no values")
    return "ms" if statistics.median(values) > _UNIT_SPLIT else "s"


def parse_rr_text(
    text: str, *, path: str = "<text>", unit: RrUnit | None = None
) -> tuple[tuple[float, ...], RrUnit]:
    """RR intervals in seconds and the unit the text was in.

    Raises:
        ReplayError: a token that is not a number, no values, mixed units or an implausible
            value (with the line number).
    """
    values: list[float] = []
    lines: list[int] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for token in _SEPARATORS.split(stripped):
            if not token:
                continue
            try:
                value = float(token)
            except ValueError:
                raise ReplayError(path, f"{token!r} is not a number", line=line_no) from None
            if not math.isfinite(value):
                raise ReplayError(path, f"{token!r} is not a finite number", line=line_no)
            values.append(value)
            lines.append(line_no)
    if not values:
        raise ReplayError(path, "no RR intervals in the file")
    found = unit or detect_rr_unit(values)
    scale = 0.001 if found == "ms" else 1.0
    out: list[float] = []
    for value, line_no in zip(values, lines, strict=True):
        if found == "ms" and 0 < value <= _MIXED_MS_MAX:
            raise ReplayError(path, f"{value:g} looks like seconds in a file of milliseconds "
                              "(mixed units)", line=line_no)
        if found == "s" and value >= _MIXED_S_MIN:
            raise ReplayError(path, f"{value:g} looks like milliseconds in a file of seconds "
                              "(mixed units)", line=line_no)
        rr = value * scale
        if not MIN_RR_S <= rr <= MAX_RR_S:
            raise ReplayError(path, f"RR {value:g} {found} is implausible (allowed "
                              f"{MIN_RR_S:g}–{MAX_RR_S:g} s)", line=line_no)
        out.append(rr)
    return tuple(out), found


def rr_readings(
    rr_s: Sequence[float], *, athlete: str, start_utc: datetime, sensor: str = RR_HR_SENSOR
) -> list[Reading]:
    """One heart-rate reading per beat, beats accumulated from ``start_utc``."""
    out: list[Reading] = []
    t = 0.0
    window: list[float] = []
    for rr in rr_s:
        t += rr
        window.append(rr)
        if len(window) > _HR_WINDOW:
            window.pop(0)
        out.append(HeartRateReading(
            athlete=athlete, sensor=sensor, time_utc=start_utc + timedelta(seconds=t),
            time_mono_s=t, heart_rate_bpm=round(60.0 * len(window) / sum(window)),
            rr_intervals_s=(rr,), beat_times_mono_s=(t,), contact=Contact.UNSUPPORTED,
            energy_kj=None, raw=b"",
        ))
    return out


def read_rr_text(
    path: str | os.PathLike[str],
    *,
    athlete: str,
    start_utc: datetime | None = None,
    unit: RrUnit | None = None,
) -> Activity:
    """Read an RR-interval text file (see the module doc for the format and checks).

    Args:
        path: the file.
        athlete: athlete the readings belong to.
        start_utc: when the first beat's interval started (aware datetime). ``None``: the
            file has no clock (Kubios, Elite HRV and HRV4Training exports often have none), so
            the series is dated to end at the file's modification time (an export is written
            when the recording ends), with a note saying so.
        unit: force ``"ms"`` or ``"s"`` instead of detecting it.

    Raises:
        ReplayError: unreadable file, bad token, mixed units, implausible value.
    """
    name = os.fspath(path)
    if start_utc is not None and start_utc.tzinfo is None:
        raise ValueError("start_utc must be timezone-aware")
    try:
        with open(name, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as exc:
        raise ReplayError(name, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReplayError(name, "not a text file (not UTF-8)", offset=exc.start) from exc
    rr_s, _ = parse_rr_text(text, path=name, unit=unit)
    notes: tuple[str, ...] = ()
    if start_utc is None:
        modified = datetime.fromtimestamp(os.stat(name).st_mtime, UTC).replace(microsecond=0)
        start_utc = modified - timedelta(seconds=sum(rr_s))
        notes = (f"the file has no start time: dated to end at its modification time "
                 f"({modified:%Y-%m-%d %H:%M:%S} UTC); give --start to set the start",)
    start = start_utc.astimezone(UTC)
    readings = rr_readings(rr_s, athlete=athlete, start_utc=start)
    return Activity(
        athlete=athlete, source_format="rr_text", source_path=name, session_index=0,
        start_utc=start, sport=None, device=None,
        readings=tuple(with_sensor_info(readings, athlete, None, "RR text file")),
        summary=None, notes=notes,
    )
