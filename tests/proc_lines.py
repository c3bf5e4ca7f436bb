"""Read a child process's output line by line while it runs, and wait for a line (tests).

Synchronisation on a condition, never on a sleep (issue #10): a reader thread collects lines
and :meth:`LineReader.wait_for` returns as soon as one matches, failing only after a bounded
timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from typing import IO


class LineReader:
    """Collects every line of ``stream`` on a daemon thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._done = False
        self._stream = stream
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout_s: float, *, count: int = 1) -> list[str]:
        """Wait until ``count`` lines match the regex ``pattern``; returns the matches.

        Raises:
            AssertionError: the stream ended or ``timeout_s`` passed first (with the output).
        """
        regex = re.compile(pattern)

        def matches() -> list[str]:
            return [line for line in self.lines if regex.search(line)]

        with self._cond:
            ok = self._cond.wait_for(lambda: len(matches()) >= count or self._done, timeout_s)
            found = matches()
            if not ok or len(found) < count:
                tail = "\n".join(self.lines[-40:])
                raise AssertionError(f"no {count} line(s) matching {pattern!r} within "
                                     f"{timeout_s} s; output so far:\n{tail}")
            return found

    def text(self, *, join_s: float = 10.0) -> str:
        """Everything read (waits up to ``join_s`` for the stream to end, then closes it)."""
        self._thread.join(join_s)
        if not self._thread.is_alive():
            self._stream.close()
        with self._cond:
            return "\n".join(self.lines)


def child_env() -> dict[str, str]:
    """The environment for a child under test: ``PYTHONFAULTHANDLER`` set, so that
    :func:`stop` can make a hung child print every thread's stack before it is killed."""
    return {**os.environ, "PYTHONFAULTHANDLER": "1"}


def stop(proc: subprocess.Popen[str], log: LineReader, *, sig: int = signal.SIGINT,
         timeout_s: float = 60.0) -> None:
    """Send ``sig`` and wait for ``proc`` to exit; a child that does not exit within
    ``timeout_s`` gets SIGABRT (its stacks, by faulthandler, go to ``log``), then SIGKILL, and
    the test fails with the stacks. Never leaves the process running (a leftover ``Popen``
    fails a later test with an unraisable warning)."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
        return
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    tail = "\n".join(log.text(join_s=5).splitlines()[-150:])
    raise AssertionError(f"{proc.args!r} did not exit within {timeout_s} s of signal {sig}; "
                         f"its stderr (with the stacks at SIGABRT):\n{tail}")
