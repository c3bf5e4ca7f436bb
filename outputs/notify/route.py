"""Which notification target gets which alert, rate limits and the words of a message (pure).

No I/O, no clock, no Apprise: every decision takes the alert (and, for pending summaries, a
time on the alerts' event clock, ``Alert.time_mono_s``) and returns what to send.

* :class:`NotifyTarget`: a target's settings (name, Apprise URL as :class:`SecretStr` — URLs
  often carry tokens —, filters ``athletes``/``kinds``/``min_severity``, cooldown).
* :class:`TargetRouter`: one target's filter and rate limit. The first alert of an (athlete,
  kind) is sent at once and opens a cooldown (default 120 s of event time); alerts of that
  (athlete, kind) within the cooldown are held and, when it ends, sent as **one** summary
  ("3 more HR surge alerts for Ana in the last 2 min"), which opens the next cooldown. So a
  bad strap costs a phone at most one message per kind per cooldown.
* :func:`alert_message` / :func:`summary_message`: title and body a runner reads at a glance
  ("Ana: HR +24 bpm in 30 s, now 171"), the alert id in the body (de-duplication), the
  severity as Apprise's notify type (``info``/``warning``/``failure``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Final, Literal

from pydantic import SecretStr

from processing.records import Alert, AlertKind, Severity

__all__ = [
    "DEFAULT_COOLDOWN_S",
    "NOTIFY_TYPES",
    "SEVERITY_ORDER",
    "NotifyMessage",
    "NotifyTarget",
    "NotifyType",
    "Router",
    "TargetRouter",
    "alert_message",
    "summary_message",
]

DEFAULT_COOLDOWN_S: Final = 120.0
"""Cooldown per (target, athlete, kind), seconds of event time (the alert engine's own)."""
MAX_IDS_IN_SUMMARY: Final = 10
"""A summary lists at most this many alert ids (the first and the last ones)."""

NotifyType = Literal["info", "warning", "failure"]
"""Apprise's notify types used here (``apprise.NotifyType`` values)."""
NOTIFY_TYPES: Final[Mapping[Severity, NotifyType]] = {
    Severity.INFO: "info",
    Severity.WARNING: "warning",
    Severity.CRITICAL: "failure",
}
SEVERITY_ORDER: Final[Mapping[Severity, int]] = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.CRITICAL: 2,
}

_KIND_WORDS: Final[Mapping[AlertKind, tuple[str, str]]] = {
    # kind: (singular, plural) in a summary
    AlertKind.HR_SURGE: ("HR surge", "HR surges"),
    AlertKind.HR_CEILING: ("HR ceiling alert", "HR ceiling alerts"),
    AlertKind.EARLY_SURGE: ("early HR surge", "early HR surges"),
    AlertKind.LOW_READINESS: ("low readiness alert", "low readiness alerts"),
    AlertKind.SENSOR_LOST: ("lost sensor alert", "lost sensor alerts"),
    AlertKind.NO_CONTACT: ("no-contact alert", "no-contact alerts"),
    AlertKind.LOW_BATTERY: ("low battery alert", "low battery alerts"),
}


# ---------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotifyTarget:
    """One notification target.

    Args:
        name: a short name, e.g. ``notify-1`` or ``coach`` (the outbox cursor is
            ``notify:<name>``: keep it stable across runs); unique per process.
        url: the Apprise URL (``ntfy://…``, ``tgram://…``, ``json://host/path``…), secret.
        athletes: only these athletes' alerts (None: every athlete).
        kinds: only these kinds (None: every :class:`AlertKind`).
        min_severity: alerts below this severity are not sent.
        cooldown_s: event seconds between two messages of one (athlete, kind); 0: no limit.
    """

    name: str
    url: SecretStr
    athletes: frozenset[str] | None = None
    kinds: frozenset[AlertKind] | None = None
    min_severity: Severity = Severity.INFO
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 64 or not self.name.isprintable():
            raise ValueError(f"notify target name {self.name!r}: 1 to 64 printable characters")
        if not isinstance(self.url, SecretStr):
            object.__setattr__(self, "url", SecretStr(str(self.url)))
        if not self.url.get_secret_value().strip():
            raise ValueError(f"notify target {self.name!r}: the URL is empty")
        if self.athletes is not None:
            object.__setattr__(self, "athletes", frozenset(self.athletes))
        if self.kinds is not None:
            object.__setattr__(self, "kinds", frozenset(AlertKind(k) for k in self.kinds))
        object.__setattr__(self, "min_severity", Severity(self.min_severity))
        if not (math.isfinite(self.cooldown_s) and self.cooldown_s >= 0):
            raise ValueError(f"notify target {self.name!r}: cooldown_s must be >= 0")

    @classmethod
    def create(
        cls,
        name: str,
        url: str | SecretStr,
        *,
        athletes: Iterable[str] | None = None,
        kinds: Iterable[str | AlertKind] | None = None,
        min_severity: str | Severity = Severity.INFO,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
    ) -> NotifyTarget:
        """Build from plain config values (strings for kinds and severity).

        Raises:
            ValueError: an unknown kind or severity (named), an empty URL or a bad name.
        """
        try:
            kind_set = None if kinds is None else frozenset(AlertKind(k) for k in kinds)
        except ValueError:
            known = ", ".join(k.value for k in AlertKind)
            raise ValueError(f"notify target {name!r}: unknown alert kind in {list(kinds or ())}"
                             f"; known kinds: {known}") from None  # fmt: skip
        try:
            severity = Severity(min_severity)
        except ValueError:
            known = ", ".join(s.value for s in Severity)
            raise ValueError(f"notify target {name!r}: unknown severity {min_severity!r}; "
                             f"known: {known}") from None  # fmt: skip
        return cls(
            name=name, url=url if isinstance(url, SecretStr) else SecretStr(url),
            athletes=None if athletes is None else frozenset(athletes), kinds=kind_set,
            min_severity=severity, cooldown_s=cooldown_s,
        )  # fmt: skip

    @property
    def output(self) -> str:
        """The outbox cursor's name."""
        return f"notify:{self.name}"

    def accepts(self, alert: Alert) -> bool:
        """Whether the filters let ``alert`` through (rate limits aside)."""
        if self.athletes is not None and alert.athlete not in self.athletes:
            return False
        if self.kinds is not None and alert.kind not in self.kinds:
            return False
        return SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[self.min_severity]


# ---------------------------------------------------------------------------- messages


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotifyMessage:
    """One notification: Apprise's title, body and notify type, and the alerts it stands for."""

    title: str
    body: str
    notify_type: NotifyType
    alert_ids: tuple[str, ...]
    athlete: str
    kind: AlertKind
    summary: bool = False


_TO_BPM = re.compile(r"\(to (\d+(?:\.\d+)?) bpm")
_NOW_BPM = re.compile(r"now (\d+(?:\.\d+)?) bpm")
_IN_S = re.compile(r" in (\d+(?:\.\d+)?) s\b")
_SENSOR = re.compile(r"^(?:Sensor|Strap|Battery of) (\S+)")


def _num(x: float | None) -> str:
    return "?" if x is None or not math.isfinite(x) else f"{x:.0f}"


def _headline(alert: Alert) -> str:
    """What happened and the figure, in a runner's words (no athlete name)."""
    v, thr, msg = alert.value, alert.threshold, alert.message
    to = _TO_BPM.search(msg) or _NOW_BPM.search(msg)
    now = f", now {float(to.group(1)):.0f}" if to else ""
    sensor_m = _SENSOR.search(msg)
    sensor = f" {sensor_m.group(1).rstrip(':')}" if sensor_m else ""
    match alert.kind:
        case AlertKind.HR_SURGE:
            window = _IN_S.search(msg)
            span = f" in {float(window.group(1)):.0f} s" if window else ""
            return f"HR +{_num(v)} bpm{span}{now}"
        case AlertKind.HR_CEILING:
            return f"HR above {_num(thr)}{now}"
        case AlertKind.EARLY_SURGE:
            window = re.search(r"first (\d+) s", msg)
            span = f" in the first {window.group(1)} s" if window else " early in the run"
            return f"HR +{_num(v)} bpm{span}{now}"
        case AlertKind.LOW_READINESS:
            return f"low readiness today (RMSSD {_num(v)} ms, below {_num(thr)}): go easy"
        case AlertKind.SENSOR_LOST:
            return f"sensor{sensor} lost, no data for {_num(v)} s"
        case AlertKind.NO_CONTACT:
            return f"strap{sensor} has no skin contact: wet the electrodes"
        case AlertKind.LOW_BATTERY:
            return f"battery{sensor} at {_num(v)} %"
    return msg  # pragma: no cover - every AlertKind is matched above


def alert_message(alert: Alert) -> NotifyMessage:
    """The notification for one alert: ``"Ana: HR +24 bpm in 30 s, now 171"``.

    >>> from datetime import UTC, datetime
    >>> a = Alert(id="s1:Ana:hr_surge:1", athlete="Ana", time_utc=datetime(2024, 5, 1, tzinfo=UTC),
    ...           time_mono_s=10.0, kind=AlertKind.HR_SURGE, severity=Severity.WARNING,
    ...           value=24.2, threshold=20.0, message="HR rose 24 bpm in 30 s (to 171 bpm)")
    >>> m = alert_message(a)
    >>> m.title, m.notify_type
    ('Ana: HR +24 bpm in 30 s, now 171', 'warning')
    >>> print(m.body)
    HR rose 24 bpm in 30 s (to 171 bpm)
    alert id: s1:Ana:hr_surge:1
    """
    title = f"{alert.athlete}: {_headline(alert)}"
    body = f"{alert.message}\nalert id: {alert.id}"
    return NotifyMessage(
        title=title, body=body, notify_type=NOTIFY_TYPES[alert.severity],
        alert_ids=(alert.id,), athlete=alert.athlete, kind=alert.kind,
    )  # fmt: skip


def _span_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def summary_message(alerts: Collection[Alert], span_s: float) -> NotifyMessage:
    """One notification for ``alerts`` (same athlete and kind) held back by a cooldown of
    ``span_s`` event seconds: ``"Ana: 3 more HR surges in the last 2 min"``; the body has the
    latest one in words and the ids (at most :data:`MAX_IDS_IN_SUMMARY`)."""
    if not alerts:
        raise ValueError("a summary needs at least one alert")
    items = list(alerts)
    last = items[-1]
    n = len(items)
    single, plural = _KIND_WORDS[last.kind]
    what = single if n == 1 else plural
    title = f"{last.athlete}: {n} more {what} in the last {_span_words(span_s)}"
    worst = max((a.severity for a in items), key=SEVERITY_ORDER.__getitem__)
    ids = [a.id for a in items]
    if len(ids) > MAX_IDS_IN_SUMMARY:
        half = MAX_IDS_IN_SUMMARY // 2
        shown = [*ids[:half], f"… {len(ids) - 2 * half} more …", *ids[-half:]]
    else:
        shown = ids
    body = f"latest: {_headline(last)} ({last.message})\nalert ids: {', '.join(shown)}"
    return NotifyMessage(
        title=title, body=body, notify_type=NOTIFY_TYPES[worst], alert_ids=tuple(ids),
        athlete=last.athlete, kind=last.kind, summary=True,
    )  # fmt: skip


# ---------------------------------------------------------------------------- rate limits


@dataclasses.dataclass(slots=True)
class _Window:
    until_s: float
    """End of the cooldown (event time)."""
    held: list[Alert] = dataclasses.field(default_factory=list)


class TargetRouter:
    """One target's filter and rate limit (state: the open cooldowns and held alerts).

    :meth:`offer` takes the target's alerts in order and returns the messages to send now;
    :meth:`due` returns the summaries whose cooldown ended by an event time; :meth:`flush`
    returns every held summary (at the end of a run).
    """

    def __init__(self, target: NotifyTarget) -> None:
        self.target = target
        self._windows: dict[tuple[str, AlertKind], _Window] = {}
        self.suppressed = 0
        """Alerts held back by a cooldown so far (each one later counted in a summary)."""
        self.filtered = 0
        """Alerts the filters did not let through."""

    @property
    def held(self) -> int:
        """Alerts waiting for their summary."""
        return sum(len(w.held) for w in self._windows.values())

    def next_due_s(self, athlete: str) -> float | None:
        """Event time when ``athlete``'s next summary becomes due (None: nothing held)."""
        ends = [w.until_s for (a, _), w in self._windows.items() if w.held and a == athlete]
        return min(ends) if ends else None

    def athletes_holding(self) -> set[str]:
        """Athletes with alerts waiting for their summary."""
        return {a for (a, _), w in self._windows.items() if w.held}

    def offer(self, alert: Alert) -> list[NotifyMessage]:
        """The messages to send now because of ``alert`` (in order): the summary of the
        previous cooldown if it has ended, then the alert itself unless it is held."""
        if not self.target.accepts(alert):
            self.filtered += 1
            return []
        out = self.due(alert.time_mono_s, alert.athlete)
        key = (alert.athlete, alert.kind)
        window = self._windows.get(key)
        t = alert.time_mono_s
        cooldown = self.target.cooldown_s
        if window is not None and t < window.until_s and cooldown > 0:
            window.held.append(alert)
            self.suppressed += 1
            return out
        self._windows[key] = _Window(until_s=t + cooldown)
        out.append(alert_message(alert))
        return out

    def due(self, now_s: float, athlete: str) -> list[NotifyMessage]:
        """``athlete``'s summaries whose cooldown ended at or before ``now_s`` (that
        athlete's event time: athletes' clocks need not agree); each opens the next cooldown
        of its (athlete, kind)."""
        out: list[NotifyMessage] = []
        for key, window in list(self._windows.items()):
            if key[0] != athlete or now_s < window.until_s:
                continue
            if window.held:
                out.append(summary_message(window.held, self.target.cooldown_s))
                self._windows[key] = _Window(until_s=window.until_s + self.target.cooldown_s)
            else:
                del self._windows[key]
        return out

    def flush(self) -> list[NotifyMessage]:
        """Every held summary now (end of a run), whatever the cooldowns."""
        out = [
            summary_message(w.held, self.target.cooldown_s)
            for w in self._windows.values()
            if w.held
        ]
        for window in self._windows.values():
            window.held = []
        return out


class Router:
    """Every target's :class:`TargetRouter`: which targets get an alert, and what they get."""

    def __init__(self, targets: Iterable[NotifyTarget]) -> None:
        self.routers: dict[str, TargetRouter] = {}
        for target in targets:
            if target.name in self.routers:
                raise ValueError(f"two notify targets named {target.name!r}")
            self.routers[target.name] = TargetRouter(target)

    def route(self, alert: Alert) -> dict[str, list[NotifyMessage]]:
        """Per target name, the messages to send now because of ``alert`` (targets with
        nothing to send are left out)."""
        out: dict[str, list[NotifyMessage]] = {}
        for name, router in self.routers.items():
            messages = router.offer(alert)
            if messages:
                out[name] = messages
        return out

    def due(self, now_s: float, athlete: str) -> dict[str, list[NotifyMessage]]:
        """Per target name, ``athlete``'s summaries due at ``now_s`` (event time)."""
        out = {name: r.due(now_s, athlete) for name, r in self.routers.items()}
        return {name: messages for name, messages in out.items() if messages}
