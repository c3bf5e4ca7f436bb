"""HTTP to InfluxDB: :class:`InfluxWriter` POSTs one gzipped batch of lines over a kept-alive
``http.client`` connection run in a worker thread (``asyncio.to_thread``): the standard library
only, one request at a time, and never a blocking call on the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import http.client
import threading
import time
import urllib.parse
from collections.abc import Sequence
from types import TracebackType

from outputs.influx.classify import Outcome, OutcomeKind, classify, classify_exception
from outputs.influx.target import InfluxAuthError, InfluxTarget

__all__ = ["DeliveryResult", "InfluxWriter"]

# gzip level 1: line protocol compresses ~8x even at the fastest level; higher levels cost CPU
# on a Raspberry Pi for a few percent less traffic.
GZIP_LEVEL = 1



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
        """POST ``batch_lines`` as one request (in a worker thread) and classify the answer.

        Returns the result for written, retryable, config and rejected outcomes.

        Raises:
            InfluxAuthError: 401/403 (the message names the environment variables to set).
        """
        return await asyncio.to_thread(self.deliver_blocking, batch_lines)

    def deliver_blocking(self, batch_lines: Sequence[str]) -> DeliveryResult:
        """:meth:`deliver` in the calling thread (for a synchronous caller: a Quix sink)."""
        started = time.perf_counter()
        body = self.encode_body(batch_lines)
        status: int | None = None
        try:
            answer = self._post(body)
        except (OSError, http.client.HTTPException) as exc:  # includes timeouts
            outcome = classify_exception(exc, self.target.timeout_s)
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
