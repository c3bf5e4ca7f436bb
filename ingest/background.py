"""One background coroutine owned by an async context manager.

Several resources (the MQTT publisher, sink and reading source, the async session store, the
virtual radio) run one coroutine for as long as their ``async with`` block lasts. They share
this small owner instead of each repeating "create the task, keep a reference, ask it to stop,
give it a grace period, cancel, await": the task is started and awaited in one place, a second
start is refused, and an exception of the coroutine (other than its cancellation) reaches the
caller when the block ends instead of being lost with an unawaited task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTask"]


class BackgroundTask:
    """Runs one coroutine between :meth:`start` and :meth:`stop`.

    Args:
        owner: what runs it, for task names and the "not reentrant" error.

    Example:
        >>> async def demo() -> list[str]:
        ...     seen: list[str] = []
        ...     stopping = asyncio.Event()
        ...     async def work() -> None:
        ...         await stopping.wait()
        ...         seen.append("stopped cleanly")
        ...     runner = BackgroundTask("demo")
        ...     runner.start(work(), name="demo-work")
        ...     await asyncio.sleep(0)
        ...     stopping.set()
        ...     await runner.stop(grace_s=1.0)
        ...     return seen
        >>> asyncio.run(demo())
        ['stopped cleanly']
    """

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether a coroutine was started and not yet stopped."""
        return self._task is not None

    def start(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Schedule ``coro`` on the running loop (RuntimeError when one is already running)."""
        if self._task is not None:
            coro.close()
            raise RuntimeError(f"{self._owner} is not reentrant")
        self._task = asyncio.create_task(coro, name=name)

    async def stop(self, *, grace_s: float = 0.0) -> None:
        """Wait up to ``grace_s`` seconds for the coroutine to end by itself (the caller has
        asked it to, e.g. by setting an event it watches), then cancel it and wait for it.

        Re-raises the coroutine's own exception, if it failed; does nothing when not started.
        """
        task, self._task = self._task, None
        if task is None:
            return
        if grace_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.shield(task)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
