"""The async writer: batched, non-blocking writes into a :class:`SessionStore`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from ingest.background import BackgroundTask
from outputs.codec import Record
from outputs.errors import StoreError, StoreFullError, UnknownSessionError
from outputs.store.base import logger
from outputs.store.core import SessionStore

DEFAULT_BATCH_INTERVAL_S = 0.25
"""Commit period of :class:`AsyncStore`: the most a crash can lose, and the store's latency."""
DEFAULT_BATCH_SIZE = 2_000
"""Records per transaction: ~10–20 ms of work, short enough to keep readers and writers fluid."""
DEFAULT_MAX_BUFFERED = 500_000
"""Records :class:`AsyncStore` holds while the disk is full (~ hours of one athlete) before
refusing new ones: a bound on memory, not a drop policy (nothing accepted is ever dropped)."""


class AsyncStore:
    """Batched, non-blocking writes into a :class:`SessionStore`: an async context manager.

    :meth:`add` only appends to an in-memory buffer (it never touches SQLite). A writer task
    commits the buffer every ``batch_interval_s``, or as soon as ``batch_size`` records are
    waiting, in transactions of at most ``batch_size`` records run on a dedicated worker
    thread: the event loop only appends and hands over. On exit everything is flushed.

    What a crash can lose: only records never committed, i.e. those added during the last
    ``batch_interval_s`` plus the duration of the commit in progress. Each successful commit
    calls ``on_commit(total_committed)`` in the event loop (outputs use it to wake up).

    Disk full: the failed batch stays in the buffer (in order, nothing lost); the writer logs
    one warning, retries every ``batch_interval_s`` and logs when writes resume. Once
    ``max_buffered`` records wait, :meth:`add` raises :class:`StoreFullError` instead of
    growing without bound. Any other store error stops the writer: :meth:`add`,
    :meth:`flush` and exit then raise it.

    Example::

        async with AsyncStore.open(path) as out:
            sid = out.store.create_session("Ana", start, "ble")
            out.add(sid, reading)
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        on_commit: Callable[[int], None] | None = None,
        owns_store: bool = False,
    ) -> None:
        """Wrap ``store``; ``owns_store`` closes it on exit (as :meth:`open` does)."""
        if not batch_interval_s > 0:
            raise ValueError(f"batch_interval_s must be > 0, not {batch_interval_s}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if max_buffered < batch_size:
            raise ValueError(f"max_buffered ({max_buffered}) must be >= batch_size ({batch_size})")
        self._store = store
        self._interval = batch_interval_s
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._on_commit = on_commit
        self._owns_store = owns_store
        self._buffer: list[tuple[str, Record]] = []
        self._committed = 0
        self._inflight: tuple[asyncio.Future[None], int] | None = None
        self._failures = 0
        self._error: StoreError | None = None
        self._closed = False
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[int], None]] = []
        self._drain_lock = asyncio.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._runner = BackgroundTask("AsyncStore")

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Literal["NORMAL", "FULL"] | str = "NORMAL",
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        on_commit: Callable[[int], None] | None = None,
    ) -> AsyncStore:
        """Open the store at ``path`` (see :meth:`SessionStore.open`); closed on exit."""
        return cls(
            SessionStore.open(path, synchronous=synchronous),
            batch_interval_s=batch_interval_s,
            batch_size=batch_size,
            max_buffered=max_buffered,
            on_commit=on_commit,
            owns_store=True,
        )

    @property
    def store(self) -> SessionStore:
        """The synchronous store (sessions, reads, outbox)."""
        return self._store

    @property
    def buffered(self) -> int:
        """Records added but not yet committed."""
        return len(self._buffer)

    @property
    def committed(self) -> int:
        """Records committed by this writer so far."""
        return self._committed

    def add(self, session_id: str, record: Record) -> None:
        """Queue one record for the next commit (never blocks).

        Raises:
            UnknownSessionError: no such session (checked here, so a bad id cannot poison a
                batch later).
            StoreFullError: ``max_buffered`` records already wait (the disk has been full).
            StoreError: the writer stopped on an error, or the store is closed.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StoreError(self._store.path, "the async writer is closed")
        if not self._store.has_session(session_id):
            raise UnknownSessionError(self._store.path, session_id)
        if len(self._buffer) >= self._max_buffered:
            raise StoreFullError(self._store.path, len(self._buffer), refused=True)
        self._buffer.append((session_id, record))
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    def commit_soon(self) -> None:
        """Commit what is buffered now instead of at the next interval (never blocks).

        For records someone waits for: an alert is pushed to phones from the outbox, so it is
        committed at once rather than up to ``batch_interval_s`` later (issue #12)."""
        self._wake.set()

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Also call ``listener(total_committed)`` after each commit (outputs wake on it)."""
        self._listeners.append(listener)

    def extend(self, session_id: str, records: Sequence[Record]) -> None:
        """Queue several records of one session (see :meth:`add`)."""
        for record in records:
            self.add(session_id, record)

    async def flush(self) -> None:
        """Commit everything buffered now.

        Raises:
            StoreFullError: the disk is full; the records stay buffered for a later retry.
        """
        if self._error is not None:
            raise self._error
        await self._drain()

    async def __aenter__(self) -> Self:
        if self._runner.running or self._closed:
            raise RuntimeError("an AsyncStore can be entered only once")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="stridewatch-store"
        )
        self._runner.start(self._run(), name="stridewatch-store-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._runner.stop()  # re-raises a fatal store error of the writer
            await self.flush()
        finally:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self._owns_store:
                self._store.close()
            if self._buffer:
                logger.error(
                    "session store %s: %d record(s) were never committed",
                    self._store.path, len(self._buffer),
                )  # fmt: skip

    async def _run(self) -> None:
        while True:
            if len(self._buffer) < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except StoreFullError as exc:
                self._failures += 1
                if self._failures == 1:
                    logger.warning(
                        "%s; retrying every %.2f s (%d record(s) buffered)",
                        exc, self._interval, len(self._buffer),
                    )  # fmt: skip
                continue
            except StoreError as exc:
                logger.error("session store writer stopped: %s", exc)
                self._error = exc
                raise
            if self._failures:
                logger.info(
                    "session store writes resumed after %d failed attempt(s)", self._failures
                )
                self._failures = 0

    async def _drain(self) -> None:
        """Commit the buffer in chunks of ``batch_size``; stops at the first failure."""
        async with self._drain_lock:
            await self._settle_inflight()
            while self._buffer:
                n = min(len(self._buffer), self._batch_size)
                batch = self._buffer[:n]
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(self._executor, self._store.write_batch, batch)
                self._inflight = (future, n)
                await self._settle_inflight()

    async def _settle_inflight(self) -> None:
        """Wait for the commit in progress and account for it (also after a cancellation:
        the commit runs on in its thread, and its outcome must reach the buffer exactly once).
        """
        if self._inflight is None:
            return
        future, n = self._inflight
        await asyncio.wait([future])  # not cancelled with us: the thread finishes regardless
        self._inflight = None
        error = future.exception()
        if error is not None:
            raise error
        del self._buffer[:n]
        self._committed += n
        if self._on_commit is not None:
            self._on_commit(self._committed)
        for listener in self._listeners:
            listener(self._committed)
