"""Sessions, timer pauses and the monotonic time line of a FIT file (:mod:`ingest.replay.fit`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ingest.replay.fit_decode import Msg

CLOCK_JUMP_S: Final = 300.0
"""A forward step between records above this, with the timer running, is a clock jump.
Smart recording writes a record at least every ~10 s while the timer runs; pauses are
bracketed by timer events, so 5 minutes without either is not a real interval."""

_TIMER_STOPS: Final = frozenset({"stop", "stop_all", "stop_disable", "stop_disable_all"})


def split_sessions(messages: list[Msg]) -> list[tuple[Mapping[str, Any] | None, list[Msg]]]:
    """(session values or None, its messages in file order) per session; see module doc."""
    sessions = [m.values for m in messages if m.name == "session"]
    if not sessions:
        return [(None, [m for m in messages if m.name != "session"])]
    groups: list[list[Msg]] = [[] for _ in sessions]
    k = 0
    for m in messages:
        if m.name == "session":
            k = min(k + 1, len(sessions) - 1)
        else:
            groups[k].append(m)
    if len(sessions) > 1 and any(not any(m.name == "record" for m in g) for g in groups):
        groups = _split_by_time(messages, sessions)
    else:
        _move_boundary_records(groups, [s.get("start_time") for s in sessions])
    return list(zip(sessions, groups, strict=True))


def _move_boundary_records(groups: list[list[Msg]], starts: list[Any]) -> None:
    """Records at the end of a session's messages dated at or after the next session's start
    belong to that session (fr920xt: the record at the second session's start is written
    before the first ``session`` message; the device counts it in the second)."""
    for k in range(len(groups) - 1):
        start = starts[k + 1]
        if not isinstance(start, datetime):
            continue
        cut = len(groups[k])
        for j in range(len(groups[k]) - 1, -1, -1):
            m = groups[k][j]
            ts = m.values.get("timestamp")
            if m.name == "record" and not (isinstance(ts, datetime) and ts >= start):
                break
            if m.name == "record":
                cut = j
        if cut < len(groups[k]) and any(m.name == "record" for m in groups[k][:cut]):
            groups[k + 1][:0] = groups[k][cut:]
            del groups[k][cut:]


def _split_by_time(messages: list[Msg], sessions: list[dict[str, Any]]) -> list[list[Msg]]:
    starts = [s.get("start_time") for s in sessions]
    groups: list[list[Msg]] = [[] for _ in sessions]
    k = 0
    for m in messages:
        if m.name == "session":
            continue
        ts = m.values.get("timestamp")
        if isinstance(ts, datetime):
            k = 0
            for i, start in enumerate(starts):
                if isinstance(start, datetime) and start <= ts:
                    k = i
        groups[k].append(m)  # messages without a timestamp (hrv) follow the one before
    return groups


def timer_pauses(messages: list[Msg]) -> list[tuple[datetime, datetime | None]]:
    """Timer pauses (stop, start or None if never restarted) from timer events, by time.

    Some devices (fēnix 2) write every event at the end of the file, so file order says
    nothing: the events are sorted by their timestamps.
    """
    events = sorted(
        (m.values["timestamp"].astimezone(UTC), str(m.values.get("event_type")))
        for m in messages
        if m.name == "event"
        and m.values.get("event") == "timer"
        and isinstance(m.values.get("timestamp"), datetime)
    )
    pauses: list[tuple[datetime, datetime | None]] = []
    stopped: datetime | None = None
    for when, kind in events:
        if kind in _TIMER_STOPS and stopped is None:
            stopped = when
        elif kind == "start" and stopped is not None:
            pauses.append((stopped, when))
            stopped = None
    if stopped is not None:
        pauses.append((stopped, None))
    return pauses


class Timeline:
    """Maps recorded UTC timestamps onto a never-decreasing monotonic line (module doc)."""

    def __init__(self, start_utc: datetime, pauses: list[tuple[datetime, datetime | None]]) -> None:
        self._start = start_utc
        self._pauses = pauses
        self._last_utc: datetime | None = None
        self._last_mono = 0.0
        self._last_step = 1.0
        self.anchors: list[tuple[datetime, float]] = []
        self.notes: list[str] = []

    def _paused_within(self, a: datetime, b: datetime) -> bool:
        return any(stop < b and (restart is None or restart > a) for stop, restart in self._pauses)

    def mono(self, utc: datetime) -> float:
        """Monotonic seconds of the next record's timestamp ``utc``."""
        if self._last_utc is None:
            step = (utc - self._start).total_seconds()
            if step < 0:
                self.notes.append(f"first record {utc.isoformat()} is {-step:.0f} s "
                                  "before the session start: clamped to the start")
                step = 0.0
        else:
            step = (utc - self._last_utc).total_seconds()
            if step < 0:
                self.notes.append(f"clock went back {-step:.0f} s at {utc.isoformat()}: "
                                  "clamped")
                step = 0.0
            elif step > CLOCK_JUMP_S and not self._paused_within(self._last_utc, utc):
                self.notes.append(f"clock jumped {step:.0f} s forward at {utc.isoformat()} "
                                  f"with the timer running: counted as {self._last_step:.0f} s")
                step = self._last_step
            elif 0 < step <= CLOCK_JUMP_S:
                self._last_step = step
        self._last_utc = utc
        self._last_mono += step
        self.anchors.append((utc, self._last_mono))
        return self._last_mono

    def mono_of(self, utc: datetime) -> float:
        """Monotonic seconds of any instant (timer events), interpolated between records."""
        before = [(u, m) for u, m in self.anchors if u <= utc]
        if not before:
            return max(0.0, (utc - self._start).total_seconds())
        u, m = before[-1]
        later = [mm for uu, mm in self.anchors if uu > utc]
        value = m + (utc - u).total_seconds()
        return min(value, later[0]) if later else value

    def pauses_mono(self, end_s: float | None = None) -> list[tuple[float, float]]:
        """Pauses in monotonic seconds; one still open is closed at ``end_s`` (default: the
        last record)."""
        out: list[tuple[float, float]] = []
        end = self._last_mono if end_s is None else max(end_s, self._last_mono)
        for stop, restart in self._pauses:
            a = self.mono_of(stop)
            b = self.mono_of(restart) if restart is not None else max(a, end)
            out.append((a, max(a, b)))
        return out
