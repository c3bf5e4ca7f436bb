"""A tiny threaded HTTP receiver on loopback that records every request (webhook end).

Used as the end of Apprise ``json://`` and ``form://`` URLs. It binds a free port on
127.0.0.1, answers every POST/PUT/GET with ``status`` (200 by default) and records method,
path, headers, body and the time it arrived (``time.perf_counter``). :meth:`stop` closes the
socket (nothing listens: connections are refused); :meth:`start` binds the *same* port again.
:meth:`wait_for` waits for a condition on the recorded requests with a bounded timeout (woken
by each request, never by sleeping).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

__all__ = ["HttpReceiver", "ReceivedRequest"]


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    """``time.perf_counter()`` when the request was read completely."""

    def json(self) -> Any:
        return json.loads(self.body.decode())

    def form(self) -> dict[str, str]:
        pairs = urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True)
        return dict(pairs)

    def text(self) -> str:
        """The payload as text: the JSON ``title``/``message`` or the form fields, joined."""
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            data = self.json()
            return f"{data.get('title', '')}\n{data.get('message', '')}"
        if "x-www-form-urlencoded" in ctype:
            data = self.form()
            return f"{data.get('title', '')}\n{data.get('message', '')}"
        return self.body.decode(errors="replace")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpReceiver:
    """Records requests; ``with HttpReceiver() as r: ... r.url("json")``."""

    def __init__(self, port: int = 0, *, status: int = 200) -> None:
        self.status = status
        self.requests: list[ReceivedRequest] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port or _free_port()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._server is not None:
            return
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(
                    method=self.command, path=self.path, headers=dict(self.headers.items()),
                    body=body, received_at=time.perf_counter(),
                )
                status = receiver.status
                with receiver._cond:
                    receiver.requests.append(request)
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"http-receiver-{self.port}", daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HttpReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ queries

    @property
    def running(self) -> bool:
        return self._server is not None

    def url(self, scheme: str = "json", path: str = "/hook") -> str:
        """An Apprise URL for this receiver, e.g. ``json://127.0.0.1:PORT/hook``."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def snapshot(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self.requests)

    def wait_for(
        self, predicate: Callable[[list[ReceivedRequest]], bool], timeout_s: float = 20.0
    ) -> bool:
        """Wait until ``predicate(requests)`` holds (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(list(self.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_count(self, n: int, timeout_s: float = 20.0) -> bool:
        return self.wait_for(lambda reqs: len(reqs) >= n, timeout_s)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
