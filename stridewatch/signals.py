"""Stopping a long-running command from outside, the same way as with Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop) cancels the running task as Ctrl-C does, so the command
    ends its sessions cleanly (closed and stored; ``collect --mqtt`` sends their ends)."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
