"""What every real server the tests start has in common: a child process on loopback.

:class:`ServerProcess` launches a binary with its output in a log file, waits (bounded) until a
readiness check passes (failing with the log's tail when the process exits or the time is up),
stops it with SIGTERM (SIGKILL when it does not exit in time), kills it at once (a crash), and
is a context manager. The servers (:mod:`mosquitto_server`, :mod:`influx_server`,
:mod:`kafka_server`, :mod:`dbus_server`) add their config, command line and readiness check.

A missing binary is an error, never a skip: these servers are part of ``make test``.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
POLL_S = 0.01
"""Interval of the readiness polls (servers here are ready in 5-300 ms)."""
LOG_TAIL_LINES = 20


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = HOST) -> bool:
    """Whether ``host:port`` accepts a TCP connection now."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ServerProcess:
    """One server process; subclasses set :attr:`name`, the bounds and build the command.

    Args:
        log_path: where the process's stdout and stderr go (appended across restarts).
    """

    name = "server"
    error: type[RuntimeError] = RuntimeError
    """Raised when the server does not come up (a subclass may name its own)."""
    stop_timeout_s = 5.0
    """Bound on waiting for a SIGTERMed server to exit (before it is killed)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs (benchmarks account its CPU time)."""
        return self._process.pid if self._process is not None else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _launch(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` with its output appended to :attr:`log_path`."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=dict(env) if env is not None else None,
            )

    def _wait_ready(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``ready`` until true; raise :attr:`error` with the log's tail when the process
        exits first or ``timeout_s`` passes (the process is killed then)."""
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise self.error(
                    f"{self.name} exited with status {code} before it would {what}; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise self.error(
                    f"{self.name} did not {what} within {timeout_s:.0f} s; "
                    f"log tail ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), killing it when it does not exit in time; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout_s)

    def kill(self) -> None:
        """Kill at once (SIGKILL: a crash; clients see the connection drop); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=self.stop_timeout_s)

    def start(self) -> None:
        """Start the server and wait until it is ready (subclasses)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
