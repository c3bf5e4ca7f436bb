"""Which live process records a session: one lock file per recording store.

A :class:`~outputs.store.SessionStore` that creates a session first takes an exclusive
``flock`` on its own lock file beside the store, ``<store>.owners/<pid>-<hex>.lock``, holds it
until it is closed, and writes that token into the ``owner`` column of every session it
creates. The kernel releases the lock when the process dies, however it dies (``SIGKILL``,
OOM, power cut of a process but not of the file system), so anyone can tell a session that is
still being recorded (its owner's lock is held) from one left open by a dead process (the lock
is free or the file is gone): :meth:`SessionStore.open` closes the latter, marked interrupted.

``flock`` locks belong to an open file description, not to a process, so a second store opened
in the *same* process also sees the first one's lock as held. Two processes may record into
one store at the same time: each owns its sessions, SQLite serialises their commits (WAL,
busy timeout), and neither closes the other's sessions.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path

__all__ = ["OwnerLock", "owner_alive", "owner_pid", "owners_dir"]


def owners_dir(store_path: Path) -> Path:
    """The directory of the lock files of ``store_path``'s recording processes."""
    return store_path.with_name(store_path.name + ".owners")


def owner_pid(token: str | None) -> int | None:
    """The process id in an owner token (``"<pid>-<hex>"``), or None."""
    if not token:
        return None
    head = token.partition("-")[0]
    return int(head) if head.isdigit() else None


class OwnerLock:
    """This process's (this store's) claim on the sessions it records."""

    def __init__(self, store_path: Path) -> None:
        self.token = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.path = owners_dir(store_path) / f"{self.token}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> str:
        """Create and lock the file (idempotent); the token to store with sessions.

        Raises:
            OSError: the directory or the file cannot be created.
        """
        if self._fd is None:
            for attempt in range(3):  # another recorder may remove the empty directory
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, f"{os.getpid()}\n".encode())
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return self.token

    def release(self) -> None:
        """Remove the file and drop the lock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only when no other recorder is left


def owner_alive(store_path: Path, token: str) -> bool:
    """Whether the store that wrote ``token`` still holds its lock (a live recorder).

    A lock file left by a dead owner is removed.
    """
    if "/" in token or token.startswith("."):
        return False
    path = owners_dir(store_path) / f"{token}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    finally:
        os.close(fd)
