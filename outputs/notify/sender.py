"""One Apprise URL, sent to off the event loop, with errors in words and never a secret.

Apprise's :meth:`apprise.Apprise.notify` blocks (requests with its own connect/read timeouts,
a few seconds each). :class:`AppriseSender` runs it on the sender's **own** single worker
thread (``loop.run_in_executor``): a service that hangs holds that one thread only, never the
loop's default executor the store's outbox calls run on (``asyncio.to_thread``), and never
another target. (Apprise 2's ``async_notify`` also hands its blocking plugins to a shared
executor of its own; a private thread per target keeps that isolation explicit, and works the
same on Apprise 1.9.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import re
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import apprise
from pydantic import SecretStr

from outputs.notify.route import NotifyMessage

__all__ = [
    "AppriseSender",
    "NotifyConfigError",
    "SendOutcome",
    "Sender",
    "check_notify_url",
    "is_permanent",
    "redact_url",
]


class NotifyConfigError(ValueError):
    """A notification URL Apprise cannot use (the message never shows its secret)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SendOutcome:
    ok: bool
    error: str | None = None
    """Why it failed, in words (no secret); None on success."""
    permanent: bool = False
    """The service refused this message as bad (HTTP 400, 413, 422…): retrying cannot help.
    Authorisation (401, 403), a wrong path (404), 408 and 429 are not permanent."""
    answered: bool = True
    """The service answered (an HTTP status). False: never reached (refused connection,
    timeout, no route): the alert waits in the store, however long the outage."""


_HTTP_ERROR = re.compile(r"error=(\d{3})\b")
_NOT_PERMANENT = frozenset({401, 403, 404, 408, 425, 429})


def is_permanent(detail: str) -> bool:
    """Whether Apprise's failure text names a 4xx refusal that a retry cannot fix.

    >>> is_permanent("Failed to send JSON POST notification: Bad Request., error=400.")
    True
    >>> is_permanent("Failed to send JSON POST notification: Unauthorized., error=401.")
    False
    >>> is_permanent("A Connection error occurred sending JSON notification to 127.0.0.1.")
    False
    """
    codes = [int(c) for c in _HTTP_ERROR.findall(detail)]
    return bool(codes) and all(400 <= c < 500 and c not in _NOT_PERMANENT for c in codes)


class Sender(Protocol):
    """What a delivery needs of a notification service."""

    url: str
    """The URL for display (secrets redacted)."""

    async def send(self, message: NotifyMessage) -> SendOutcome: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _quiet_plugin_load() -> Iterator[None]:
    """Apprise loads its plugins on first use; one imports the stdlib's ``imghdr``, deprecated
    since Python 3.11 (a DeprecationWarning that is not ours, an error under ``-W error``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        yield


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def redact_url(url: str) -> str:
    """The URL for logs and ``status``: Apprise's own privacy form (tokens and passwords
    elided), without the query; ``scheme://…`` when Apprise does not know the URL.

    >>> redact_url("json://127.0.0.1:8080/hook")
    'json://127.0.0.1:8080/hook'
    >>> redact_url("tgram://123456789:abcdefghijklmnopqrstuvwxyz/12345")
    'tgram://1...z/12345/'
    >>> redact_url("nosuch://user:hunter2@example.org")
    'nosuch://…'
    """
    try:
        with _quiet_plugin_load():
            plugin = apprise.Apprise.instantiate(url)
    except Exception:  # Apprise raises on some malformed URLs instead of returning None
        plugin = None
    if plugin is None:
        return f"{_scheme(url)}://…"
    return str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]


def _secret_parts(url: str, shown: str) -> list[str]:
    """Pieces of ``url`` (user info, host, path and query parts) that the redacted form does
    not show: scrubbed from any error text."""
    rest = url.split("://", 1)[-1]
    parts = {p for p in re.split(r"[/:@?&=#,]", rest) if len(p) >= 4}
    return sorted((p for p in parts if p not in shown), key=len, reverse=True)


def check_notify_url(url: SecretStr | str) -> str:
    """The redacted URL if Apprise can use ``url`` (for config validation at start-up).

    Raises:
        NotifyConfigError: Apprise does not know or cannot parse it (secret not shown).
    """
    AppriseSender(url if isinstance(url, SecretStr) else SecretStr(url)).close()
    return redact_url(url.get_secret_value() if isinstance(url, SecretStr) else url)


class AppriseSender:
    """Sends :class:`NotifyMessage` s to one Apprise URL on a private worker thread.

    Args:
        url: the Apprise URL (secret).
        name: for the worker thread's name.

    Raises:
        NotifyConfigError: Apprise does not know or cannot parse the URL.
    """

    def __init__(self, url: SecretStr, *, name: str = "notify") -> None:
        raw = url.get_secret_value()
        self.url = redact_url(raw)
        self._secrets = _secret_parts(raw, self.url)
        self._apprise = apprise.Apprise()
        try:
            with _quiet_plugin_load():
                added = self._apprise.add(raw)
        except Exception:
            added = False
        if not added:
            raise NotifyConfigError(
                f"not a notification URL Apprise can use: {self.url} (see "
                "https://github.com/caronc/apprise/wiki for the URL of each service)"
            )
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"notify-{name}"
        )

    def scrub(self, text: str) -> str:
        """``text`` without any secret piece of the URL."""
        for part in self._secrets:
            text = text.replace(part, "***")
        return text

    def _notify(self, message: NotifyMessage) -> SendOutcome:
        result: Any = self._apprise.notify(
            body=message.body, title=message.title, notify_type=message.notify_type
        )
        if bool(result):
            return SendOutcome(True)
        detail = ""
        logs = getattr(result, "logs", None)  # Apprise >= 2: the call's own log entries
        if callable(logs):
            lines = [str(getattr(e, "message", e)) for e in logs()]
            lines = [re.sub(r"^\S+ \S+ - [A-Z]+ - ", "", line) for line in lines if line]
            detail = "; ".join(dict.fromkeys(lines))
        return SendOutcome(
            False, self.scrub(detail or f"{self.url} did not accept it"), is_permanent(detail),
            answered=bool(_HTTP_ERROR.search(detail)),
        )

    async def send(self, message: NotifyMessage) -> SendOutcome:
        """Send ``message``; never raises for a failed delivery (see :class:`SendOutcome`)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._notify, message)
        except Exception as exc:  # a plugin bug must not end the delivery loop
            return SendOutcome(False, self.scrub(f"{type(exc).__name__}: {exc}"))

    def close(self) -> None:
        """Release the worker thread (a call in progress finishes on its own)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
