"""What the store returns (:class:`SessionRow`, :class:`OutboxItem`, :class:`DeadLetter`) and
the small conversions between records, Python values and columns."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from outputs.codec import Record, decode_parts
from processing.records import Alert, Metric, MetricValue, Segment

__all__ = ["DeadLetter", "OutboxItem", "SessionRow"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """One session as listed by :meth:`SessionStore.sessions`."""

    id: str
    athlete: str
    start_utc: datetime
    """Start, timezone-aware UTC."""
    end_utc: datetime | None
    """End, timezone-aware UTC; None while the session is being recorded."""
    source: str
    """Where the data came from (``"ble"``, ``"virtual"``, ``"replay:<file>"``…)."""
    meta: Mapping[str, Any]
    counts: Mapping[str, int]
    """Stored records per kind (``"heart_rate"``, ``"stride"``, ``"metric"``…)."""
    interrupted: bool = False
    """True when the recording process died (killed, crashed) before ending the session: the
    next opener of the store closed it at the time of its last stored record."""

    @property
    def total(self) -> int:
        """All stored records of the session."""
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """A stored record waiting for an output."""

    seq: int
    """Commit order across all kinds; strictly increasing, never reused."""
    session_id: str
    record: Record


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A batch an output gave up on (rejected by its server as bad data)."""

    id: int
    output: str
    first_seq: int
    last_seq: int
    count: int
    payload: str
    """JSON array of ``{"seq", "session_id", "kind", "record"}`` (the codec's JSON, raw as hex)."""
    message: str
    """What the server said."""
    time_utc: datetime

    def items(self) -> list[OutboxItem]:
        """The records of the batch, decoded (to inspect or re-queue them)."""
        return [
            OutboxItem(
                seq=int(entry["seq"]),
                session_id=str(entry["session_id"]),
                record=decode_parts(str(entry["kind"]), json.dumps(entry["record"]), None),
            )
            for entry in json.loads(self.payload)
        ]


def utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a naive datetime is a ValueError."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 with microseconds (sorts chronologically as text)."""
    return value.isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch."""
    return (value - EPOCH) // MICROSECOND


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def slug(athlete: str) -> str:
    """ASCII slug of an athlete name for session ids (``"Zoë Smith"`` → ``"zoe-smith"``)."""
    ascii_name = unicodedata.normalize("NFKD", athlete).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:24].strip("-")
    return text or "athlete"


Columns = tuple[str, str, str | None, str | None, datetime, float | None]


def columns(r: Record) -> Columns:
    """``(cat, athlete, sensor, tag, time_utc, time_mono_s)`` of a record, for typed columns."""
    match r:
        case Metric():
            return "metric", r.athlete, None, str(r.group), r.time_utc, r.time_mono_s
        case Alert():
            return "alert", r.athlete, None, str(r.kind), r.time_utc, r.time_mono_s
        case Segment():
            return "segment", r.athlete, None, str(r.kind), r.start_utc, r.start_mono_s
        case _:
            return "reading", r.athlete, r.sensor, None, r.time_utc, r.time_mono_s


def summary_num(value: MetricValue) -> float | None:
    """The numeric copy of a summary value (None for text, booleans and non-finite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
