"""FIT decoding for :mod:`ingest.replay.fit`: messages, damage, clocks, device and summary.

* :func:`decode` reads every kept data message with fitdecode (CRC checked, errors raised).
  Compressed-timestamp record headers are resolved by fitdecode from the last full timestamp
  (its 5-bit offset rolls over the low bits of that timestamp); such a record's ``timestamp``
  is then an ordinary field.
* Damage (truncation, CRC mismatch, unparsable message): by default a
  :class:`~ingest.errors.ReplayError` naming the byte offset, the frame and how much before it
  was readable. With ``salvage`` the valid prefix is kept (see :func:`valid_prefix`) and the
  damage is returned as a note.
* Unset device clock: FIT ``date_time`` values below ``0x10000000`` are seconds since the
  device was switched on, not dates (fitdecode leaves them as ints). :func:`normalise_clock`
  dates them from ``start_utc`` when given, else from the FIT epoch (1989-12-31T00:00Z), and
  says so in a note.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import fitdecode

from ingest.errors import ReplayError

FIT_EPOCH: Final = datetime(1989, 12, 31, tzinfo=UTC)
"""FIT ``date_time`` zero; values below 0x10000000 are relative to device power-on."""
GARBAGE_JUMP_S: Final = 86_400.0
"""In a salvaged file a record more than a day after the one before is garbage (fr35: 2062)."""
_TIME_FIELDS: Final = ("timestamp", "start_time", "time_created")
_KEPT: Final = frozenset({"record", "hrv", "event", "session", "file_id", "device_info"})


@dataclasses.dataclass(slots=True)
class Msg:
    """One decoded data message: its name and native fields (developer fields dropped)."""

    name: str
    values: dict[str, Any]


def _values(frame: Any) -> dict[str, Any]:
    """Native (non-developer) fields by name; the first non-None value of a name wins."""
    out: dict[str, Any] = {}
    for field in frame.fields:
        if isinstance(field.field_def, fitdecode.types.DevFieldDefinition):
            continue
        name = field.name
        if name is not None and out.get(name) is None:
            out[name] = field.value
    return out


_OFFSET_RE: Final = re.compile(r"(?:offset: |@ )(\d+)")


def describe(exc: Exception) -> tuple[str, int | None]:
    """What went wrong and the byte offset, from one of fitdecode's (or Python's) errors."""
    offset = getattr(exc, "offset", None)
    if not isinstance(offset, int):
        found = _OFFSET_RE.search(str(exc))
        offset = int(found.group(1)) if found else None
    match exc:
        case fitdecode.FitEOFError():
            reason = f"file truncated: {exc}"
        case fitdecode.FitCRCError():
            reason = f"CRC check failed, the file is corrupted: {exc}"
        case fitdecode.FitHeaderError():
            reason = f"bad FIT header: {exc}"
        case fitdecode.FitParseError():
            reason = f"cannot parse FIT data: {exc}"
        case _:
            reason = f"cannot decode FIT data ({type(exc).__name__}: {exc})"
    return reason, offset


def valid_prefix(messages: list[Msg]) -> list[Msg]:
    """The messages before the first sign of garbage: a second ``file_id``, or a record dated
    more than :data:`GARBAGE_JUMP_S` after the record before it."""
    seen_file_id = False
    last: datetime | None = None
    for i, m in enumerate(messages):
        if m.name == "file_id":
            if seen_file_id:
                return messages[:i]
            seen_file_id = True
        elif m.name == "record":
            ts = m.values.get("timestamp")
            if isinstance(ts, datetime):
                if last is not None and (ts - last).total_seconds() > GARBAGE_JUMP_S:
                    return messages[:i]
                last = ts
    return messages


def _span(messages: list[Msg]) -> str:
    records = [m for m in messages if m.name == "record"]
    times = [m.values["timestamp"] for m in records if isinstance(m.values.get("timestamp"),
                                                                  datetime)]
    span = f", {(times[-1] - times[0]).total_seconds():.0f} s" if len(times) > 1 else ""
    return f"{len(records)} records{span}"


def decode(path: str, *, salvage: bool = False) -> tuple[list[Msg], str | None]:
    """(every kept data message in file order, damage note or None); see the module doc.

    Raises:
        ReplayError: unreadable, empty, no records, or damaged without ``salvage`` (or with
            nothing valid before the damage).
    """
    messages: list[Msg] = []
    frame_no = 0
    damage: str | None = None
    try:
        with fitdecode.FitReader(
            path,
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as reader:
            for frame in reader:
                frame_no += 1
                if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name in _KEPT:
                    messages.append(Msg(frame.name, _values(frame)))
    except OSError as exc:
        raise ReplayError(path, f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # fitdecode raises FitError and, on garbage, plain Python errors
        reason, offset = describe(exc)
        valid = valid_prefix(messages)
        if not salvage or not any(m.name == "record" for m in valid):
            readable = f"; before it: {_span(valid)} readable" if valid else ""
            raise ReplayError(path, reason + readable, offset=offset,
                              record_no=frame_no) from exc
        where = f" at byte {offset}" if offset is not None else ""
        damage = (f"damaged file ({reason}{where}, FIT record {frame_no}): imported the valid "
                  f"prefix only ({_span(valid)}); the device's session summary, if any, is lost")
        messages = valid
    if frame_no == 0:
        raise ReplayError(path, "empty file: no FIT header")
    if not any(m.name == "record" for m in messages):
        raise ReplayError(path, "no record messages: not an activity file")
    return messages, damage


def normalise_clock(messages: list[Msg], start_utc: datetime | None) -> list[str]:
    """Turn relative ``date_time`` values (int seconds since power-on) into datetimes, in place.

    A file whose records carry real dates keeps them, and records with a relative time among
    them lose their timestamp (skipped later, counted in a note). A file with only relative
    times is dated from ``start_utc`` (its first record at ``start_utc``) or else from the FIT
    epoch. Returns the notes.
    """
    record_times = [m.values.get("timestamp") for m in messages if m.name == "record"]
    relative = [t for t in record_times if isinstance(t, int) and not isinstance(t, bool)]
    if not relative:
        return []
    if any(isinstance(t, datetime) for t in record_times):
        for m in messages:
            for key in _TIME_FIELDS:
                if isinstance(m.values.get(key), int):
                    m.values[key] = None
        return [f"{len(relative)} records with a relative device time (clock not yet set) "
                "among dated ones: skipped"]
    if start_utc is not None:
        base = start_utc.astimezone(UTC) - timedelta(seconds=min(relative))
        how = f"dated from the given start {start_utc.astimezone(UTC).isoformat()}"
    else:
        base = FIT_EPOCH
        how = "dated from the FIT epoch 1989-12-31 (give a start time to date it)"
    for m in messages:
        for key in _TIME_FIELDS:
            value = m.values.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                m.values[key] = base + timedelta(seconds=value)
    return [f"device clock not set: times are seconds since the device was switched on; {how}"]


# ----------------------------------------------------------------------------- values


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def integer(value: Any) -> int | None:
    number = num(value)
    return None if number is None else round(number)


def spm(strides: Any, fractional: Any) -> float | None:
    """FIT running cadence (strides/min + fraction) as steps/min."""
    whole = num(strides)
    if whole is None:
        return None
    return 2.0 * (whole + (num(fractional) or 0.0))


def session_end_s(session: Mapping[str, Any] | None, start: datetime) -> float | None:
    """Seconds from ``start`` to the session's end: its elapsed time, else its timestamp."""
    if session is None:
        return None
    elapsed = num(session.get("total_elapsed_time"))
    if elapsed is not None and elapsed > 0:
        return elapsed
    end = session.get("timestamp")
    if isinstance(end, datetime) and end > start:
        return (end - start).total_seconds()
    return None
