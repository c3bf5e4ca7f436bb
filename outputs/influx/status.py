"""What an InfluxDB delivery tells the app: its state and counters (read-only), and the
outbox it reads through (:mod:`outputs.outbox`: worker threads, never SQLite on the loop)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Sequence
from typing import Protocol

from outputs.outbox import AsyncOutbox, StoreOutbox
from outputs.store import OutboxItem

__all__ = [
    "DeliveryOutbox",
    "DeliveryProgress",
    "DeliveryState",
    "DeliveryStatus",
    "StoreDeliveryOutbox",
]


class DeliveryOutbox(AsyncOutbox, Protocol):
    """What :class:`~outputs.influx.OutboxDelivery` needs: the outbox, plus dead letters and
    registering the output (so ``status`` shows its backlog before its first delivery)."""

    async def dead_letter(self, output: str, items: Sequence[OutboxItem], message: str) -> None:
        """Set ``items`` aside with the server's ``message`` and move the cursor past them."""
        ...

    async def register_output(self, output: str) -> None:
        """Give ``output`` a cursor if it has none."""
        ...


class StoreDeliveryOutbox(StoreOutbox):
    """:class:`DeliveryOutbox` over a :class:`~outputs.store.SessionStore`, each call on a
    worker thread."""

    async def dead_letter(self, output: str, items: Sequence[OutboxItem], message: str) -> None:
        await asyncio.to_thread(self.store.dead_letter, output, list(items), message)

    async def register_output(self, output: str) -> None:
        await asyncio.to_thread(self.store.register_output, output)


class DeliveryState(enum.StrEnum):
    """State of an :class:`~outputs.influx.OutboxDelivery` for a status display."""

    STARTING = "starting"
    IDLE = "idle"  # nothing pending (or a partial batch waiting for its age)
    SENDING = "sending"
    RETRYING = "retrying"  # the last attempt failed; waiting to retry
    STOPPED = "stopped"
    FAILED = "failed"  # credentials refused: run() raised InfluxAuthError


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryProgress:
    """A snapshot of an output's delivery, for the console, ``status`` and exit codes."""

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
    """The last failure in words (URL-free, never a secret), None before any."""
    url: str = ""
    """The server (never carries credentials: :class:`InfluxTarget` refuses them)."""
    ever_ok: bool = False
    """Whether the server ever accepted a write since start: a finite command that ends with
    this False and records to send never reached InfluxDB (exit 1)."""
    failed_attempts: int = 0
    """Failed attempts since start (retries included)."""

    @property
    def reached(self) -> bool:
        """The server was reached, or there was never anything to send and nothing failed."""
        failed = self.state is DeliveryState.FAILED
        return self.ever_ok or (self.failed_attempts == 0 and not failed)


DeliveryStatus = DeliveryProgress
"""The read-only status of a delivery (the same snapshot)."""
