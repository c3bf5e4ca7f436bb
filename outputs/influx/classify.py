"""What an InfluxDB write's answer means: HTTP status, headers and body, or the exception of a
request that got no answer, → :class:`Outcome` (pure, table-tested)."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import http.client
import json
import math
import socket
import ssl
from collections.abc import Mapping

__all__ = [
    "Outcome",
    "OutcomeKind",
    "classify",
    "classify_exception",
    "describe_exception",
    "parse_retry_after",
    "server_message",
]

# A Retry-After beyond 5 minutes is treated as 5 minutes (a misconfigured proxy should not
# stall the output for hours).
RETRY_AFTER_MAX_S = 300.0
# Server messages kept in errors, logs and the dead-letter table.
MESSAGE_MAX_CHARS = 2_000



class OutcomeKind(enum.StrEnum):
    """What to do after a write attempt."""

    OK = "ok"
    """Written (2xx)."""
    RETRY = "retry"
    """Transient (connection error, timeout, 408, 429, 5xx): retry the same batch later."""
    CONFIG = "config"
    """The server is there but the target is wrong (404 database/bucket/endpoint not found,
    a redirect): fix the settings; retried with backoff, never dead-lettered."""
    AUTH = "auth"
    """Credentials refused (401/403): :class:`InfluxAuthError`."""
    REJECTED = "rejected"
    """Bad data (other 4xx: parse error, field type conflict, too large): split the batch and
    dead-letter what the server refuses."""


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """Classification of one write attempt."""

    kind: OutcomeKind
    message: str = ""
    """The server's message or the error, with advice where there is some."""
    retry_after_s: float | None = None
    """The server's ``Retry-After`` (seconds), if it sent one."""


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form only; HTTP dates are ignored).

    >>> parse_retry_after("1"), parse_retry_after(" 2.5 "), parse_retry_after("soon")
    (1.0, 2.5, None)
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_MAX_S)


def server_message(body: bytes | str) -> str:
    """The ``error`` (1.x) or ``message`` (2.x) of a JSON error body, else the text itself."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            for key in ("error", "message"):
                if isinstance(data.get(key), str):
                    text = data[key]
                    break
    return text[:MESSAGE_MAX_CHARS]


def classify(status: int, headers: Mapping[str, str], body: bytes | str) -> Outcome:
    """What a write answered with ``status`` means (pure; header names case-insensitive).

    >>> classify(204, {}, b"").kind
    <OutcomeKind.OK: 'ok'>
    >>> classify(429, {"Retry-After": "1"}, b"").retry_after_s
    1.0
    >>> classify(400, {}, b'{"error":"field type conflict"}').kind
    <OutcomeKind.REJECTED: 'rejected'>
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    message = server_message(body)
    if 200 <= status < 300:
        return Outcome(OutcomeKind.OK)
    if status in (401, 403):
        return Outcome(OutcomeKind.AUTH, message or http.client.responses.get(status, ""))
    if status == 404:
        lowered_message = message.lower()
        if "database not found" in lowered_message:
            advice = "create the database (CREATE DATABASE) or fix the database setting"
        elif "bucket" in lowered_message:
            advice = "create the bucket or fix the org/bucket settings"
        else:
            advice = (
                "no write endpoint at this URL: check url and mode "
                "(InfluxDB 1.x has no /api/v2/write: use mode v1)"
            )
        return Outcome(OutcomeKind.CONFIG, f"HTTP 404 {message or 'not found'}: {advice}")
    if status in (408, 429) or 500 <= status < 600:
        return Outcome(
            OutcomeKind.RETRY,
            f"HTTP {status} {message}".strip(),
            parse_retry_after(lowered.get("retry-after")),
        )
    if 300 <= status < 400:
        where = lowered.get("location", "?")
        return Outcome(OutcomeKind.CONFIG, f"HTTP {status} redirect to {where}: fix the url")
    if 400 <= status < 500:
        return Outcome(OutcomeKind.REJECTED, f"HTTP {status} {message}".strip())
    return Outcome(OutcomeKind.RETRY, f"unexpected HTTP status {status} {message}".strip())


def describe_exception(exc: BaseException, timeout_s: float | None = None) -> str:
    """What a failed request means, in words, with what to do (never a secret: the URL is the
    caller's and carries none).

    >>> describe_exception(ConnectionRefusedError(111, "Connection refused"))
    'connection refused: is InfluxDB running there? check the URL and port'
    """
    match exc:
        case ConnectionRefusedError():
            return "connection refused: is InfluxDB running there? check the URL and port"
        case socket.gaierror():
            return f"host name not found ({exc.strerror or exc}): check the URL's host"
        case ssl.SSLError():
            return (f"TLS handshake failed ({exc}): is the server plain HTTP? use http:// "
                    "(or https:// for a TLS port)")
        case TimeoutError() | socket.timeout():
            within = f" within {timeout_s:g} s" if timeout_s is not None else ""
            return f"no answer{within}: the server is down, overloaded or unreachable"
        case http.client.RemoteDisconnected() | ConnectionResetError() | BrokenPipeError():
            return (f"the server closed the connection ({type(exc).__name__}): is it an "
                    "InfluxDB HTTP port? (https:// to a plain port, or a proxy in the way)")
        case OSError() if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"host unreachable ({exc.strerror}): check the network and the URL"
        case _:
            return f"{type(exc).__name__}: {exc}"


def classify_exception(exc: BaseException, timeout_s: float | None = None) -> Outcome:
    """Connection errors and timeouts are transient: retry (the message says why, in words).

    >>> classify_exception(ConnectionRefusedError(111, "Connection refused")).kind
    <OutcomeKind.RETRY: 'retry'>
    """
    return Outcome(OutcomeKind.RETRY, describe_exception(exc, timeout_s)[:MESSAGE_MAX_CHARS])
