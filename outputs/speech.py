"""Spoken cues on the gateway (issue #12): alerts and a periodic status through espeak-ng.

Two parts:

* **Words** (pure): :func:`alert_words` turns an :class:`~processing.records.Alert` into a short
  sentence a runner understands with earbuds in; :func:`status_words` says distance, pace and
  heart rate with the units in full ("5 kilometres, 4 minutes 38 per kilometre, heart rate
  152"); :class:`StatusCues` decides, by the records' event time, when a status is due.
* **Voice**: :class:`Speaker`, an async context manager that owns one background task running
  the synthesiser (``espeak-ng``, or macOS ``say``) through
  :func:`asyncio.create_subprocess_exec`, one cue at a time.

Speech never delays processing: :meth:`Speaker.say_nowait` and :meth:`Speaker.publish` only
append to small bounded queues. Alerts are said before any status. A cue that has waited
longer than ``max_age_s`` (real time, from the injectable ``clock``) when its turn comes is
dropped and counted; a new status replaces a status not yet said; when the alert queue is full
the oldest alert is dropped (and counted) for the new one.

Without a synthesiser the Speaker is a no-op: :attr:`Speaker.available` is False and
:attr:`Speaker.reason` is one line saying what to install.

>>> pace_words(278)
'4 minutes 38 per kilometre'
>>> status_words(distance_m=5000, pace_s_per_km=278, hr_bpm=152)
'5 kilometres, 4 minutes 38 per kilometre, heart rate 152'
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from ingest.background import BackgroundTask
from processing.records import Alert, AlertKind, Metric, MetricGroup, ProcessingOutput

__all__ = [
    "INSTALL_HINT",
    "Cue",
    "Priority",
    "Speaker",
    "SpeakerStats",
    "StatusCues",
    "alert_words",
    "distance_words",
    "pace_words",
    "status_words",
]

INSTALL_HINT = (
    "install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng; on macOS the built-in `say` "
    "is used)"
)
"""What to install when no synthesiser is found (part of :attr:`Speaker.reason`)."""

DEFAULT_MAX_AGE_S = 15.0
"""A cue still waiting after this many real seconds is stale: dropped, not said."""
DEFAULT_QUEUE_SIZE = 8
"""Alerts waiting at most (statuses: only the newest one waits)."""
DEFAULT_TIMEOUT_S = 30.0
"""Bound on one synthesiser run (a hung audio device must not stop the cues for good)."""


# ------------------------------------------------------------------ words (pure)


def _n(value: float) -> str:
    """A whole number as digits (espeak-ng reads "152" as "a hundred and fifty-two")."""
    return str(round(value))


def _plural(value: float, one: str, many: str) -> str:
    n = round(value)
    return f"{n} {one if n == 1 else many}"


def distance_words(distance_m: float) -> str:
    """Distance with the unit in full: metres below 1 km, kilometres (one decimal) above.

    >>> distance_words(800), distance_words(1000), distance_words(5230), distance_words(10000)
    ('800 metres', '1 kilometre', '5.2 kilometres', '10 kilometres')
    """
    if distance_m < 1000:
        return _plural(distance_m, "metre", "metres")
    km = round(distance_m / 1000.0, 1)
    if km == int(km):
        return _plural(km, "kilometre", "kilometres")
    return f"{km:.1f} kilometres"


def pace_words(pace_s_per_km: float) -> str:
    """Pace as a runner says it.

    >>> pace_words(278), pace_words(240), pace_words(305), pace_words(61)
    ('4 minutes 38 per kilometre', '4 minutes per kilometre', '5 minutes 5 per kilometre', \
'1 minute 1 per kilometre')
    """
    total = round(pace_s_per_km)
    minutes, seconds = divmod(total, 60)
    text = _plural(minutes, "minute", "minutes")
    if seconds:
        text += f" {seconds}"
    return text + " per kilometre"


def status_words(
    *,
    distance_m: float | None,
    pace_s_per_km: float | None,
    hr_bpm: float | None,
    athlete: str | None = None,
) -> str | None:
    """The periodic status; parts without a value are left out, None when none has one.

    >>> status_words(distance_m=5000, pace_s_per_km=None, hr_bpm=150.6, athlete="Ana")
    'Ana: 5 kilometres, heart rate 151'
    >>> status_words(distance_m=None, pace_s_per_km=None, hr_bpm=None) is None
    True
    """
    parts: list[str] = []
    if distance_m is not None and _usable(distance_m):
        parts.append(distance_words(distance_m))
    if pace_s_per_km is not None and _usable(pace_s_per_km) and pace_s_per_km > 0:
        parts.append(pace_words(pace_s_per_km))
    if hr_bpm is not None and _usable(hr_bpm):
        parts.append(f"heart rate {_n(hr_bpm)}")
    if not parts:
        return None
    text = ", ".join(parts)
    return f"{athlete}: {text}" if athlete else text


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _bpm(value: float) -> str:
    return _plural(value, "beat", "beats") + " per minute"


def alert_words(alert: Alert, *, athlete: bool = False) -> str:
    """What to say for an alert (``athlete``: start with the athlete's name, for a group).

    Figures are the alert's ``value`` and ``threshold`` (see :mod:`processing.alerts`); an
    alert without them is said without the figure, an unknown kind by its message.

    >>> from datetime import UTC, datetime
    >>> from processing.records import Severity
    >>> a = Alert(id="Ana:hr_surge:1", athlete="Ana", time_utc=datetime(2024, 5, 1, tzinfo=UTC),
    ...           time_mono_s=0.0, kind=AlertKind.HR_SURGE, severity=Severity.WARNING,
    ...           value=24.2, threshold=20.0, message="HR rose 24 bpm in 30 s (to 171 bpm)")
    >>> alert_words(a, athlete=True)
    'Ana: Heart rate surge: up 24 beats per minute.'
    """
    v = alert.value if _usable(alert.value) else None
    th = alert.threshold if _usable(alert.threshold) else None
    match alert.kind:
        case AlertKind.HR_SURGE:  # value: rise over the window (bpm)
            text = "Heart rate surge"
            if v is not None:
                text += f": up {_bpm(v)}"
        case AlertKind.HR_CEILING:  # value: HR now; threshold: the ceiling (bpm)
            text = "Heart rate" if v is None else f"Heart rate {_n(v)}"
            text += ", above your ceiling" + ("" if th is None else f" of {_n(th)}")
            text += ". Ease off"
        case AlertKind.EARLY_SURGE:  # value: rise since the run started (bpm)
            text = "Early heart rate surge"
            if v is not None:
                text += f": up {_bpm(v)} since the start of the run"
            text += ". Slow down"
        case AlertKind.LOW_READINESS:  # value: today's RMSSD; threshold: ratio × baseline (ms)
            text = "Low readiness today"
            if v is not None and th is not None:
                text += (f": heart rate variability {_plural(v, 'millisecond', 'milliseconds')}"
                         f", below {_n(th)}")  # fmt: skip
            text += ". Take it easy"
        case AlertKind.SENSOR_LOST:  # value: seconds since the sensor went away
            text = "Sensor lost"
            if v is not None:
                text += f": no data for {_plural(v, 'second', 'seconds')}"
        case AlertKind.NO_CONTACT:  # value: seconds without skin contact
            text = "No skin contact on the heart rate strap"
            if v is not None:
                text += f" for {_plural(v, 'second', 'seconds')}"
            text += ". Moisten the electrodes or tighten the strap"
        case AlertKind.LOW_BATTERY:  # value: level; threshold: the low level (%)
            text = "Sensor battery low"
            if v is not None:
                text += f": {_n(v)} percent"
        case _:  # pragma: no cover: a kind added later is still said
            text = alert.message.rstrip(".")
    text += "."
    return f"{alert.athlete}: {text}" if athlete else text


class StatusCues:
    """When a periodic status is due, by event time (pure: never reads a clock).

    Keeps each athlete's latest distance and pace (``gait`` metrics) and heart rate (``heart``
    metrics). The first status of an athlete is due ``every_s`` after their first metric, then
    every ``every_s``; :meth:`update` returns the words when a metric reaches that time.

    >>> from datetime import UTC, datetime
    >>> cues = StatusCues(every_s=60.0)
    >>> def hr(t, bpm):
    ...     return Metric(athlete="Ana", time_utc=datetime(2024, 5, 1, tzinfo=UTC),
    ...                   time_mono_s=t, group=MetricGroup.HEART, values={"heart_rate_bpm": bpm})
    >>> cues.update(hr(0.0, 140)), cues.update(hr(59.0, 150)), cues.update(hr(60.0, 152))
    (None, None, 'heart rate 152')
    """

    def __init__(self, every_s: float, *, athlete: bool = False) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0, not {every_s}")
        self.every_s = every_s
        self._athlete = athlete
        self._due: dict[str, float] = {}
        self._last: dict[str, dict[str, float | None]] = {}

    def update(self, out: ProcessingOutput) -> str | None:
        """Take one output; the status words when one is due now, else None."""
        if not isinstance(out, Metric):
            return None
        last = self._last.setdefault(out.athlete, {})
        if out.group is MetricGroup.GAIT:
            for key in ("distance_m", "pace_s_per_km"):
                if key in out.values:
                    last[key] = _number(out.values[key])
        elif out.group is MetricGroup.HEART:
            if "heart_rate_bpm" in out.values:
                last["heart_rate_bpm"] = _number(out.values["heart_rate_bpm"])
        else:
            return None
        t = out.time_mono_s
        due = self._due.get(out.athlete)
        if due is None:
            self._due[out.athlete] = t + self.every_s
            return None
        if t < due:
            return None
        # Next one every_s later; after a long gap, every_s from now (no burst of catch-ups).
        self._due[out.athlete] = due + self.every_s if t < due + self.every_s else t + self.every_s
        return status_words(
            distance_m=last.get("distance_m"),
            pace_s_per_km=last.get("pace_s_per_km"),
            hr_bpm=last.get("heart_rate_bpm"),
            athlete=out.athlete if self._athlete else None,
        )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# ------------------------------------------------------------------ the voice


class Priority(enum.IntEnum):
    """Alerts are said before any status."""

    ALERT = 0
    STATUS = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Cue:
    text: str
    priority: Priority
    queued_at_s: float
    """``clock()`` when it was queued (for the stale check)."""


@dataclasses.dataclass(slots=True)
class SpeakerStats:
    """Counts since the Speaker started."""

    queued: int = 0
    spoken: int = 0
    dropped_stale: int = 0
    """Waited longer than ``max_age_s`` before its turn."""
    dropped_full: int = 0
    """Pushed out of a full alert queue, or a status replaced by a newer one."""
    failed: int = 0
    """The synthesiser failed (exit status, timeout); see :attr:`Speaker.last_error`."""


def _default_command(voice: str | None, rate_wpm: int | None) -> tuple[list[str] | None, str]:
    """The synthesiser command (text appended as the last argument) and its name, or None."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        cmd = [espeak]
        if voice:
            cmd += ["-v", voice]
        if rate_wpm:
            cmd += ["-s", str(rate_wpm)]
        return cmd, "espeak-ng"
    say = shutil.which("say")  # macOS
    if say is not None:
        cmd = [say]
        if voice:
            cmd += ["-v", voice]
        if rate_wpm:
            cmd += ["-r", str(rate_wpm)]
        return cmd, "say"
    return None, "espeak-ng"


class Speaker:
    """Says cues through the system's speech synthesiser, one at a time, in the background.

    Args:
        voice: espeak-ng voice (``espeak-ng --voices``), e.g. ``"en-gb"``; None: its default.
        rate_wpm: words per minute (espeak-ng ``-s``); None: its default (175).
        status_every_s: also say a status (distance, pace, HR) this often, by event time;
            None: alerts only.
        say_athlete: start every cue with the athlete's name (several athletes on one gateway).
        max_age_s: a cue older than this (real seconds) when its turn comes is dropped.
        queue_size: alerts waiting at most.
        command: the synthesiser command without the text (which is appended as the last
            argument); default ``espeak-ng [-v voice] [-s rate]``, or macOS ``say``.
        output_wav_dir: write each cue to ``cue-0001.wav``, ... there instead of the speakers
            (espeak-ng ``-w``; for tests and recordings).
        clock: monotonic seconds for the stale check (injectable for tests).
        timeout_s: bound on one synthesiser run, on the event loop's clock (None: no bound;
            use None under a virtual-time loop such as the demo's fast-forward, where 30
            loop seconds pass in a moment).

    Use ``async with Speaker(...) as speaker:``; then :meth:`publish` every processing output
    (or :meth:`say_nowait` any text). Leaving the block stops at once: a cue being said is
    cut short and what waits is dropped (call :meth:`drain` first to let them finish).
    """

    def __init__(
        self,
        *,
        voice: str | None = None,
        rate_wpm: int | None = None,
        status_every_s: float | None = None,
        say_athlete: bool = False,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        command: Sequence[str] | None = None,
        output_wav_dir: Path | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.say_athlete = say_athlete
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self.stats = SpeakerStats()
        self.last_error: str | None = None
        self.status = StatusCues(status_every_s, athlete=say_athlete) if status_every_s else None
        self._clock = clock
        self._alerts: collections.deque[Cue] = collections.deque(maxlen=queue_size)
        self._status: Cue | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner = BackgroundTask("Speaker")
        self._wav_dir = Path(output_wav_dir) if output_wav_dir is not None else None
        self._wav_count = 0
        self.wav_files: list[Path] = []
        """Files written with ``output_wav_dir``, in order."""
        self.spoken: list[str] = []
        """Texts said (or written), in order (the last 100)."""
        if command is not None:
            found = shutil.which(command[0]) if command else None
            name = command[0] if command else "(empty command)"
            self._command: list[str] | None = [found, *command[1:]] if found else None
        else:
            self._command, name = _default_command(voice, rate_wpm)
        self.available = self._command is not None
        self.reason: str | None = (
            None if self.available else f"spoken cues are off: {name} not found; {INSTALL_HINT}"
        )
        """Why the Speaker is a no-op (one line), None when it speaks."""
        if self._wav_dir is not None and self._command is not None:
            self._wav_dir.mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Speaker:
        if self.available:
            self._runner.start(self._run(), name="speaker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.stop()
        self._alerts.clear()
        self._status = None
        self._idle.set()

    # -------------------------------------------------------------- input (never blocks)

    def publish(self, out: ProcessingOutput) -> None:
        """Take one processing output: an alert is said; metrics feed the periodic status."""
        if isinstance(out, Alert):
            self.say_nowait(alert_words(out, athlete=self.say_athlete), Priority.ALERT)
        elif self.status is not None:
            text = self.status.update(out)
            if text is not None:
                self.say_nowait(text, Priority.STATUS)

    def say_nowait(self, text: str, priority: Priority = Priority.ALERT) -> bool:
        """Queue ``text``; False when the Speaker is unavailable (nothing happens then).

        A full alert queue drops its oldest alert; a status replaces a status still waiting.
        """
        if not self.available or not text.strip():
            return False
        cue = Cue(text, priority, self._clock())
        if priority is Priority.ALERT:
            if len(self._alerts) == self._alerts.maxlen:
                self.stats.dropped_full += 1
            self._alerts.append(cue)
        else:
            if self._status is not None:
                self.stats.dropped_full += 1
            self._status = cue
        self.stats.queued += 1
        self._idle.clear()
        self._wake.set()
        return True

    @property
    def pending(self) -> int:
        """Cues waiting (not counting one being said)."""
        return len(self._alerts) + (self._status is not None)

    async def drain(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` real seconds until every queued cue is said or dropped;
        True when it was."""
        if not self._runner.running:
            return self.pending == 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        return self._idle.is_set()

    # -------------------------------------------------------------- the background task

    def _next(self) -> Cue | None:
        """The next cue to say (alerts first), dropping stale ones."""
        while True:
            if self._alerts:
                cue = self._alerts.popleft()
            elif self._status is not None:
                cue, self._status = self._status, None
            else:
                return None
            if self._clock() - cue.queued_at_s > self.max_age_s:
                self.stats.dropped_stale += 1
                continue
            return cue

    async def _run(self) -> None:
        while True:
            cue = self._next()
            if cue is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._say(cue.text)

    def _argv(self, text: str) -> list[str]:
        assert self._command is not None
        argv = list(self._command)
        if self._wav_dir is not None:
            self._wav_count += 1
            path = self._wav_dir / f"cue-{self._wav_count:04d}.wav"
            argv += ["-w", str(path)]
            self.wav_files.append(path)
        # "--" would be read as text by espeak-ng; a leading "-" in a cue is avoided instead.
        return [*argv, text.lstrip("-")]

    async def _say(self, text: str) -> None:
        argv = self._argv(text)
        name = Path(argv[0]).name
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            self.stats.failed += 1
            self.last_error = f"{name}: {e}"
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                _, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            self.stats.failed += 1
            self.last_error = f"{name} took longer than {self.timeout_s} s"
            return
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            self.stats.failed += 1
            detail = err.decode("utf-8", "replace").strip().splitlines()
            self.last_error = f"{name} exited with {proc.returncode}" + (
                f": {detail[-1]}" if detail else ""
            )
            return
        self.stats.spoken += 1
        self.spoken.append(text)
        del self.spoken[:-100]
