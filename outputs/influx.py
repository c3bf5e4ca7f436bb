"""InfluxDB output: line protocol over HTTP, fed in order from the session store's outbox.

* :class:`InfluxTarget`: the settings (frozen, validated on construction).
* :func:`classify`: HTTP status, headers and body → :class:`Outcome` (pure, table-tested).
* :class:`InfluxWriter`: an async context manager that POSTs one gzipped batch of lines
  (:meth:`InfluxWriter.deliver`) over a kept-alive ``http.client`` connection run in a worker
  thread (``asyncio.to_thread``): the standard library only, one request at a time.
* :class:`OutboxDelivery`: the loop that takes pending records from the store's outbox, encodes
  them (:mod:`outputs.lineprotocol`), delivers them in commit order and marks them
  delivered. Retryable failures (connection errors, timeouts, 5xx, 429) back off with full
  jitter and retry the same records, so an outage leaves the backlog in the store and it drains
  in order afterwards. A batch the server rejects as bad data is split in halves until the bad
  records are isolated; those go to the store's dead-letter table and the rest arrives.

Modes:

``"v1"``
    ``POST {url}/write?db=..[&rp=..]&precision=ms``. Works on InfluxDB 1.x, on 2.x through its
    v1 compatibility API (database/retention policy mapped to a bucket) and on 3.x and Cloud.
    Credentials: user and password (HTTP Basic) or a token (``Authorization: Token ..``).
``"v2"``
    ``POST {url}/api/v2/write?org=..&bucket=..&precision=ms`` with ``Authorization: Token ..``:
    the endpoint and headers the official ``influxdb-client`` uses. It is plain HTTP here rather
    than ``influxdb-client`` so that both modes share the outbox, batching, retry and dead-letter
    logic, and the client's own background batching/retry (which would acknowledge records
    before they are written) stays out of the way.

Credentials can come from the environment (:meth:`InfluxTarget.from_env`):
``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER``, ``STRIDEWATCH_INFLUX_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import enum
import gzip
import http.client
import json
import logging
import math
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol

from outputs.lineprotocol import encode_point
from outputs.store import OutboxItem

logger = logging.getLogger(__name__)

ENV_TOKEN = "STRIDEWATCH_INFLUX_TOKEN"
ENV_USER = "STRIDEWATCH_INFLUX_USER"
ENV_PASSWORD = "STRIDEWATCH_INFLUX_PASSWORD"

# 5,000 lines per request is InfluxData's recommended batch size: large enough that the
# per-request cost vanishes (~0.5 MB before gzip), small enough for every server's body limit.
DEFAULT_BATCH_LINES = 5_000
# A partial batch waits at most 1 s: live dashboards refresh every 5 s.
DEFAULT_BATCH_AGE_S = 1.0
# A write that has not answered in 10 s is treated as failed and retried (writes are
# idempotent: the same series and timestamp overwrite the same values).
DEFAULT_TIMEOUT_S = 10.0
# gzip level 1: line protocol compresses ~8x even at the fastest level; higher levels cost CPU
# on a Raspberry Pi for a few percent less traffic.
GZIP_LEVEL = 1
# Backoff between retries of a failed delivery: full jitter over an exponential cap. 0.5 s first:
# a restarting server is usually back within seconds; 30 s cap: an outage of hours costs a
# request every ~15 s on average, and the backlog waits safely in the store meanwhile.
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
# A Retry-After beyond 5 minutes is treated as 5 minutes (a misconfigured proxy should not
# stall the output for hours).
RETRY_AFTER_MAX_S = 300.0
# How often an idle loop looks at the outbox (``notify()`` wakes it earlier).
POLL_INTERVAL_S = 0.25
# Rejected sub-batches one batch may be split into before the rest is dead-lettered whole:
# isolates up to a few bad records in a 5,000-record batch (~13 halvings each) while bounding
# the requests a batch of nothing but bad data can cost.
SPLIT_BUDGET = 64
# Server messages kept in errors, logs and the dead-letter table.
MESSAGE_MAX_CHARS = 2_000


# ------------------------------------------------------------------------------ errors


class InfluxError(Exception):
    """Base class of errors of the InfluxDB output."""


class InfluxConfigError(InfluxError, ValueError):
    """Invalid InfluxDB settings; the message says which and how to fix them."""


class InfluxAuthError(InfluxError):
    """The server refused the credentials (HTTP 401/403).

    Attributes:
        url: the server.
        status: 401 or 403.
        server_message: what the server said.
    """

    def __init__(self, url: str, status: int, server_message: str, credentials: str) -> None:
        self.url = url
        self.status = status
        self.server_message = server_message
        super().__init__(
            f"InfluxDB at {url} refused the write (HTTP {status}: {server_message}); sent "
            f"{credentials}. Set {ENV_TOKEN} to a token with write access, or {ENV_USER} and "
            f"{ENV_PASSWORD} for a user with write access (InfluxDB 1.x)"
        )


# ------------------------------------------------------------------------------ settings


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InfluxTarget:
    """Where and how to write. Validated on construction (:class:`InfluxConfigError`)."""

    url: str
    """Server root, e.g. ``http://127.0.0.1:8086`` (a path prefix of a proxy is kept)."""
    mode: Literal["v1", "v2"] = "v1"
    database: str | None = None
    """v1: the database (must exist: ``CREATE DATABASE``)."""
    retention_policy: str | None = None
    """v1: the retention policy; None for the database's default."""
    org: str | None = None
    """v2: the organisation (name or id)."""
    bucket: str | None = None
    """v2: the bucket."""
    token: str | None = dataclasses.field(default=None, repr=False)
    """API token (v2; v1 on 2.x/3.x/Cloud), sent as ``Authorization: Token ..``."""
    username: str | None = None
    """v1: user for HTTP Basic authentication."""
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    gzip: bool = True
    batch_lines: int = DEFAULT_BATCH_LINES
    """Records per request (a heart-rate reading with RR intervals gives several lines)."""
    batch_age_s: float = DEFAULT_BATCH_AGE_S
    """How long a partial batch may wait for more records."""

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        problems: list[str] = []
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            problems.append(f"url must look like http://HOST:PORT, not {self.url!r}")
        if parsed.query or parsed.fragment:
            problems.append("url must not carry a query or fragment (settings go in fields)")
        if self.mode == "v1":
            if not self.database:
                problems.append("mode v1 needs database")
            if self.org or self.bucket:
                problems.append("org and bucket are v2 settings; for v1 set database")
            if self.token and self.username:
                problems.append(f"set either a token or a user ({ENV_USER}), not both")
        elif self.mode == "v2":
            if not self.org or not self.bucket:
                problems.append("mode v2 needs org and bucket")
            if not self.token:
                problems.append(f"mode v2 needs a token (set {ENV_TOKEN})")
            if self.database or self.retention_policy:
                problems.append("database and retention_policy are v1 settings; for v2 set bucket")
            if self.username or self.password:
                problems.append("v2 authenticates with a token only, not user/password")
        else:
            problems.append(f"mode must be 'v1' or 'v2', not {self.mode!r}")
        if self.password and not self.username:
            problems.append(f"a password needs a user ({ENV_USER})")
        if not self.timeout_s > 0:
            problems.append("timeout_s must be > 0")
        if self.batch_lines < 1:
            problems.append("batch_lines must be >= 1")
        if not self.batch_age_s >= 0:
            problems.append("batch_age_s must be >= 0")
        if problems:
            raise InfluxConfigError("InfluxDB settings: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **settings: Any) -> InfluxTarget:
        """Settings with credentials from the environment where ``settings`` has none.

        Reads ``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER`` and
        ``STRIDEWATCH_INFLUX_PASSWORD`` (``environ`` defaults to ``os.environ``).
        """
        env = os.environ if environ is None else environ
        for key, var in (("token", ENV_TOKEN), ("username", ENV_USER), ("password", ENV_PASSWORD)):
            if settings.get(key) is None and env.get(var):
                settings[key] = env[var]
        return cls(**settings)

    @property
    def write_path(self) -> str:
        """Path and query of the write endpoint."""
        prefix = urllib.parse.urlsplit(self.url).path.rstrip("/")
        if self.mode == "v2":
            params = {"org": self.org or "", "bucket": self.bucket or "", "precision": "ms"}
            return f"{prefix}/api/v2/write?{urllib.parse.urlencode(params)}"
        v1 = {"db": self.database or ""}
        if self.retention_policy:
            v1["rp"] = self.retention_policy
        v1["precision"] = "ms"
        return f"{prefix}/write?{urllib.parse.urlencode(v1)}"

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header, if any."""
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        if self.username:
            pair = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def credentials_description(self) -> str:
        """What credentials are sent, without secrets (for error messages)."""
        if self.token:
            return "a token"
        if self.username:
            return f"user {self.username!r} with a password" if self.password else (
                f"user {self.username!r} without a password"
            )
        return "no credentials"


# ------------------------------------------------------------------------------ classification


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


def classify_exception(exc: BaseException) -> Outcome:
    """Connection errors and timeouts are transient: retry.

    >>> classify_exception(ConnectionRefusedError(111, "Connection refused")).kind
    <OutcomeKind.RETRY: 'retry'>
    """
    return Outcome(OutcomeKind.RETRY, f"{type(exc).__name__}: {exc}"[:MESSAGE_MAX_CHARS])


# ------------------------------------------------------------------------------ writer


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What :meth:`InfluxWriter.deliver` did with one batch."""

    outcome: Outcome
    status: int | None
    """HTTP status; None when no response arrived."""
    lines: int
    body_bytes: int
    """Bytes sent (after gzip)."""
    elapsed_s: float

    @property
    def ok(self) -> bool:
        """Whether the batch was written."""
        return self.outcome.kind is OutcomeKind.OK


_RESET_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class InfluxWriter:
    """Writes batches of lines to one InfluxDB target. An async context manager.

    One request at a time over a kept-alive connection (re-opened after errors; a request on a
    connection the server closed while idle is retried once on a fresh one).
    """

    def __init__(self, target: InfluxTarget) -> None:
        self.target = target
        parsed = urllib.parse.urlsplit(target.url)
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or ""
        self._port = parsed.port
        self._path = target.write_path
        self._headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": "stridewatch",
            **target.auth_headers(),
        }
        if target.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None
        self._conn_lock = threading.Lock()  # held by the worker thread during a request

    async def __aenter__(self) -> InfluxWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the connection (waits for a request in flight)."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> http.client.HTTPConnection:
        timeout = self.target.timeout_s
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One POST in the worker thread."""
        with self._conn_lock:
            for attempt in (0, 1):
                reused = self._conn is not None
                conn = self._conn or self._connect()
                self._conn = None
                try:
                    conn.request("POST", self._path, body=body, headers=self._headers)
                    response = conn.getresponse()
                    data = response.read()
                except _RESET_ERRORS:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # the server closed the idle connection: once more, fresh
                    raise
                except BaseException:
                    conn.close()
                    raise
                if response.will_close:
                    conn.close()
                else:
                    self._conn = conn
                return response.status, dict(response.getheaders()), data
        raise AssertionError("unreachable")  # pragma: no cover

    def encode_body(self, lines: Sequence[str]) -> bytes:
        """The request body of ``lines`` (gzipped when the target says so)."""
        body = ("\n".join(lines) + "\n").encode("utf-8")
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if self.target.gzip else body

    async def deliver(self, batch_lines: Sequence[str]) -> DeliveryResult:
        """POST ``batch_lines`` as one request and classify the answer.

        Returns the result for written, retryable, config and rejected outcomes.

        Raises:
            InfluxAuthError: 401/403 (the message names the environment variables to set).
        """
        started = time.perf_counter()
        body = self.encode_body(batch_lines)
        status: int | None = None
        try:
            answer = await asyncio.to_thread(self._post, body)
        except (OSError, http.client.HTTPException) as exc:  # includes timeouts
            outcome = classify_exception(exc)
        else:
            status = answer[0]
            outcome = classify(*answer)
        if outcome.kind is OutcomeKind.AUTH:
            raise InfluxAuthError(
                self.target.url, status or 0, outcome.message,
                self.target.credentials_description(),
            )  # fmt: skip
        return DeliveryResult(
            outcome, status, len(batch_lines), len(body), time.perf_counter() - started
        )


# ------------------------------------------------------------------------------ delivery loop


class Outbox(Protocol):
    """What :class:`OutboxDelivery` needs of the session store (``SessionStore`` has it).

    Called from a worker thread (the store is thread-safe).
    """

    def pending(self, output: str, limit: int) -> Sequence[OutboxItem]: ...

    def mark_delivered(self, output: str, up_to_seq: int) -> None: ...

    def backlog(self, output: str) -> int: ...

    def dead_letter(self, output: str, items: Sequence[OutboxItem], message: str) -> None: ...


class DeliveryState(enum.StrEnum):
    """State of an :class:`OutboxDelivery` for a status display."""

    STARTING = "starting"
    IDLE = "idle"  # nothing pending (or a partial batch waiting for its age)
    SENDING = "sending"
    RETRYING = "retrying"  # the last attempt failed; waiting to retry
    STOPPED = "stopped"
    FAILED = "failed"  # credentials refused: run() raised InfluxAuthError


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryProgress:
    """A snapshot of an output's delivery, for a status display."""

    output: str
    state: DeliveryState
    delivered: int
    """Records delivered (written or without any line) since start."""
    lines: int
    """Lines written since start."""
    dead_lettered: int
    """Records set aside in the dead-letter table since start."""
    backlog: int
    """Records still pending in the store (as of the last look)."""
    failures: int
    """Consecutive failed attempts (0 when the last attempt succeeded)."""
    last_error: str | None


_Chunk = list[tuple[OutboxItem, list[str]]]


class OutboxDelivery:
    """Delivers the store's outbox to InfluxDB, in commit order; see the module docstring.

    Args:
        store: the outbox (``SessionStore``).
        writer: an entered :class:`InfluxWriter`.
        output_name: the outbox cursor's name.
        batch_size: records per request (default: the target's ``batch_lines``).
        batch_age_s: how long a partial batch waits (default: the target's ``batch_age_s``).
        poll_interval_s: how often an idle loop looks at the outbox.
        backoff_initial_s, backoff_max_s: full-jitter backoff bounds after failures.
        split_budget: rejected sub-batches per batch before the rest is dead-lettered whole.
        rng: random source of the jitter (seed it in tests).
    """

    def __init__(
        self,
        store: Outbox,
        writer: InfluxWriter,
        output_name: str = "influx",
        *,
        batch_size: int | None = None,
        batch_age_s: float | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        split_budget: int = SPLIT_BUDGET,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.output = output_name
        self.batch_size = batch_size if batch_size is not None else writer.target.batch_lines
        self.batch_age_s = batch_age_s if batch_age_s is not None else writer.target.batch_age_s
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.poll_interval_s = poll_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.split_budget = split_budget
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._state = DeliveryState.STARTING
        self._delivered = 0
        self._lines = 0
        self._dead = 0
        self._backlog = 0
        self._failures = 0
        self._last_error: str | None = None
        self._budget = 0
        self._retry_after: float | None = None

    @property
    def progress(self) -> DeliveryProgress:
        """Counters and state for a status display."""
        return DeliveryProgress(
            output=self.output, state=self._state, delivered=self._delivered, lines=self._lines,
            dead_lettered=self._dead, backlog=self._backlog, failures=self._failures,
            last_error=self._last_error,
        )  # fmt: skip

    def notify(self) -> None:
        """New records were committed: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def backoff_s(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(failures-1))]."""
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(failures - 1, 30))
        return self._rng.uniform(0.0, cap)

    async def _pause(self, delay_s: float, stop: asyncio.Event | None) -> None:
        """Sleep ``delay_s`` or until notified or stopped."""
        self._wake.clear()
        waits = [asyncio.ensure_future(self._wake.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set (or forever); on stop, one last attempt to flush.

        Raises:
            InfluxAuthError: the server refused the credentials (the backlog stays in the store).
        """
        first_seen: float | None = None
        try:
            while True:
                stopping = stop is not None and stop.is_set()
                items = list(await asyncio.to_thread(self.store.pending, self.output,
                                                     self.batch_size))  # fmt: skip
                if not items:
                    self._backlog = 0
                    self._set_idle()
                    first_seen = None
                    if stopping:
                        return
                    await self._pause(self.poll_interval_s, stop)
                    continue
                # Loop time, like every other delay here: on a time-warped demo loop a wall-clock
                # age made this poll the store a hundred times per batch.
                now = asyncio.get_running_loop().time()
                if first_seen is None:
                    first_seen = now
                age = now - first_seen
                if len(items) < self.batch_size and age < self.batch_age_s and not stopping:
                    self._set_idle()
                    await self._pause(min(self.poll_interval_s, self.batch_age_s - age), stop)
                    continue
                first_seen = None
                done, retry_after = await self._deliver_batch(items)
                if done:
                    self._backlog = await asyncio.to_thread(self.store.backlog, self.output)
                    continue
                if stopping:
                    return
                delay = self.backoff_s(self._failures)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                logger.debug("%s: retrying in %.2f s", self.output, delay)
                await self._pause_stop_only(delay, stop)
        finally:
            if self._state is not DeliveryState.FAILED:
                self._state = DeliveryState.STOPPED

    async def _pause_stop_only(self, delay_s: float, stop: asyncio.Event | None) -> None:
        if stop is None:
            await asyncio.sleep(delay_s)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay_s)

    def _set_idle(self) -> None:
        if self._failures == 0:
            self._state = DeliveryState.IDLE

    async def flush(self) -> None:
        """Deliver everything pending now, retrying (with backoff) until the backlog is empty.

        Raises:
            InfluxAuthError: credentials refused.
        """
        while True:
            items = list(await asyncio.to_thread(self.store.pending, self.output,
                                                 self.batch_size))  # fmt: skip
            if not items:
                self._backlog = 0
                self._set_idle()
                return
            done, retry_after = await self._deliver_batch(items)
            if not done:
                delay = self.backoff_s(self._failures)
                await asyncio.sleep(max(delay, retry_after or 0.0))

    async def _deliver_batch(self, items: Sequence[OutboxItem]) -> tuple[bool, float | None]:
        """(True, None): all delivered or dead-lettered; else (False, the server's Retry-After)."""
        chunk: _Chunk = []
        self._budget = self.split_budget
        for item in items:
            try:
                lines = encode_point(item.record)
            except (TypeError, ValueError) as exc:
                # Never encodable: deliver what precedes it, then set it aside.
                if chunk and not await self._send_chunk(chunk):
                    return False, self._retry_after
                chunk = []
                await self._dead_letter([item], f"cannot encode as line protocol: {exc}")
                continue
            chunk.append((item, lines))
        if chunk and not await self._send_chunk(chunk):
            return False, self._retry_after
        return True, None

    async def _send_chunk(self, chunk: _Chunk) -> bool:
        """Deliver ``chunk`` (splitting it on rejection); False on a retryable failure."""
        lines = [line for _, item_lines in chunk for line in item_lines]
        last_seq = chunk[-1][0].seq
        if not lines:
            await asyncio.to_thread(self.store.mark_delivered, self.output, last_seq)
            self._delivered += len(chunk)
            return True
        self._state = DeliveryState.SENDING
        try:
            result = await self.writer.deliver(lines)
        except InfluxAuthError as exc:
            self._state = DeliveryState.FAILED
            self._last_error = str(exc)
            logger.error("%s: %s", self.output, exc)
            raise
        kind = result.outcome.kind
        if kind is OutcomeKind.OK:
            await asyncio.to_thread(self.store.mark_delivered, self.output, last_seq)
            self._delivered += len(chunk)
            self._lines += len(lines)
            if self._failures:
                logger.info(
                    "%s: delivery to %s resumed after %d failure(s)",
                    self.output, self.writer.target.url, self._failures,
                )  # fmt: skip
                self._failures = 0
            self._state = DeliveryState.IDLE
            return True
        if kind is OutcomeKind.REJECTED:
            if len(chunk) == 1 or self._budget <= 0:
                await self._dead_letter([item for item, _ in chunk], result.outcome.message)
                return True
            self._budget -= 1
            mid = len(chunk) // 2
            return await self._send_chunk(chunk[:mid]) and await self._send_chunk(chunk[mid:])
        # RETRY or CONFIG: keep the records, back off.
        self._failures += 1
        self._last_error = result.outcome.message
        self._retry_after = result.outcome.retry_after_s
        self._state = DeliveryState.RETRYING
        if self._failures == 1:
            log = logger.error if kind is OutcomeKind.CONFIG else logger.warning
            log(
                "%s: cannot write to %s (%s); keeping %d record(s) in the store and retrying",
                self.output, self.writer.target.url, result.outcome.message, len(chunk),
            )  # fmt: skip
        else:
            logger.debug("%s: failure %d: %s", self.output, self._failures, result.outcome.message)
        return False

    async def _dead_letter(self, items: Sequence[OutboxItem], message: str) -> None:
        await asyncio.to_thread(self.store.dead_letter, self.output, list(items), message)
        self._dead += len(items)
        self._last_error = message
