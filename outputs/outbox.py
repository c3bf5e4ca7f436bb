"""The outbox seen from the event loop: the store's delivery cursor, never blocking the loop.

Every output (InfluxDB, MQTT alerts, notifications) reads what it has not delivered from the
session store's ``records`` table in commit order and moves its own cursor when the receiver
acknowledged (issue #10: no SQLite call on the event loop). :class:`StoreOutbox` runs each
call of the synchronous :class:`~outputs.store.SessionStore` on a worker thread
(``asyncio.to_thread``; the store serialises its connection with a lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Protocol

from outputs.store import OutboxItem, SessionStore

__all__ = ["AsyncOutbox", "StoreOutbox"]


class AsyncOutbox(Protocol):
    """What an output needs of the outbox. Kinds are record kind tags (``"alert"``, …)."""

    async def pending(
        self, output: str, limit: int, *, kinds: Collection[str] | None = None
    ) -> list[OutboxItem]:
        """The next ``limit`` undelivered records of ``kinds`` (all when ``None``), in order."""
        ...

    async def mark_delivered(self, output: str, up_to_seq: int) -> None:
        """Move ``output``'s cursor forward to ``up_to_seq`` (never backward)."""
        ...

    async def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        """How many records of ``kinds`` ``output`` has not delivered."""
        ...


class StoreOutbox:
    """:class:`AsyncOutbox` over a :class:`SessionStore`, each call on a worker thread."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def pending(
        self, output: str, limit: int, *, kinds: Collection[str] | None = None
    ) -> list[OutboxItem]:
        return await asyncio.to_thread(self.store.pending, output, limit, kinds=kinds)

    async def mark_delivered(self, output: str, up_to_seq: int) -> None:
        await asyncio.to_thread(self.store.mark_delivered, output, up_to_seq)

    async def backlog(self, output: str, *, kinds: Collection[str] | None = None) -> int:
        return await asyncio.to_thread(self.store.backlog, output, kinds=kinds)
