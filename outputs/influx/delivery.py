"""The delivery loop: the store's outbox → line protocol → InfluxDB, in commit order.

:class:`OutboxDelivery` reads pending records and moves its cursor only through an
:class:`~outputs.influx.status.DeliveryOutbox` (for a store: worker threads, never SQLite on
the event loop), encodes them (:mod:`outputs.lineprotocol`), sends them with an
:class:`~outputs.influx.writer.InfluxWriter` and marks them delivered after the server's 2xx.
Retryable failures (connection errors, timeouts, 5xx, 429, 404) back off with full jitter and
retry the same records, so an outage leaves the backlog in the store and it drains in order
afterwards. A batch the server rejects as bad data is split in halves until the bad records
are isolated; those go to the dead-letter table and the rest arrives.

Failures speak: the first failure of an outage is logged at WARNING with the URL, the cause in
words and what to do (never a secret); :attr:`OutboxDelivery.progress` says whether the server
was ever reached. :meth:`OutboxDelivery.drain` waits for an empty backlog on **real** time,
woken by delivery progress: on the demo's virtual clock a loop-time timeout of 10 s passes in
next to no real time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection, Sequence

from outputs.influx.classify import OutcomeKind
from outputs.influx.status import (
    DeliveryOutbox,
    DeliveryProgress,
    DeliveryState,
    StoreDeliveryOutbox,
)
from outputs.influx.target import InfluxAuthError
from outputs.influx.writer import InfluxWriter
from outputs.lineprotocol import encode_point
from outputs.store import OutboxItem, SessionStore
from outputs.waiting import RealDeadline, wait_any

__all__ = ["OutboxDelivery"]

logger = logging.getLogger("outputs.influx")

# Backoff between retries of a failed delivery: full jitter over an exponential cap. 0.5 s first:
# a restarting server is usually back within seconds; 30 s cap: an outage of hours costs a
# request every ~15 s on average, and the backlog waits safely in the store meanwhile.
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
# How often an idle loop looks at the outbox (``notify()`` wakes it earlier).
POLL_INTERVAL_S = 0.25
# Rejected sub-batches one batch may be split into before the rest is dead-lettered whole:
# isolates up to a few bad records in a 5,000-record batch (~13 halvings each) while bounding
# the requests a batch of nothing but bad data can cost.
SPLIT_BUDGET = 64
# The backlog shown while delivering is counted again at most this often (real seconds);
# in between it is the last count minus what was delivered.
BACKLOG_REFRESH_S = 1.0

_Chunk = list[tuple[OutboxItem, list[str]]]


class OutboxDelivery:
    """Delivers the store's outbox to InfluxDB, in commit order; see the module docstring.

    Args:
        outbox: a :class:`DeliveryOutbox`; a :class:`SessionStore` is wrapped in a
            :class:`StoreDeliveryOutbox` (its calls run on worker threads).
        writer: an entered :class:`InfluxWriter`.
        output_name: the outbox cursor's name.
        kinds: the record kinds delivered (None: all, InfluxDB's case).
        batch_size: records per request (default: the target's ``batch_lines``).
        batch_age_s: how long a partial batch waits (default: the target's ``batch_age_s``).
        poll_interval_s: how often an idle loop looks at the outbox.
        backoff_initial_s, backoff_max_s: full-jitter backoff bounds after failures.
        split_budget: rejected sub-batches per batch before the rest is dead-lettered whole.
        rng: random source of the jitter (seed it in tests).
    """

    def __init__(
        self,
        outbox: DeliveryOutbox | SessionStore,
        writer: InfluxWriter,
        output_name: str = "influx",
        *,
        kinds: Collection[str] | None = None,
        batch_size: int | None = None,
        batch_age_s: float | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        split_budget: int = SPLIT_BUDGET,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox: DeliveryOutbox = (
            StoreDeliveryOutbox(outbox) if isinstance(outbox, SessionStore) else outbox
        )
        self.writer = writer
        self.output = output_name
        self.kinds = tuple(kinds) if kinds is not None else None
        self.batch_size = batch_size if batch_size is not None else writer.target.batch_lines
        self.batch_age_s = batch_age_s if batch_age_s is not None else writer.target.batch_age_s
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.poll_interval_s = poll_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.split_budget = split_budget
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()  # new records (notify), a drain or a stop
        self._urgent = asyncio.Event()  # a drain started: send partial batches, cut waits
        self._changed = asyncio.Event()  # progress: delivered, failed, idle, stopped
        self._draining = 0
        self._state = DeliveryState.STARTING
        self._delivered = 0
        self._lines = 0
        self._dead = 0
        self._backlog = 0
        self._backlog_at = -BACKLOG_REFRESH_S
        self._failures = 0
        self._failed_attempts = 0
        self._ever_ok = False
        self._last_error: str | None = None
        self._budget = 0
        self._retry_after: float | None = None
        self.last_retry_delay_s: float | None = None
        """The last backoff chosen after a failure (the server's Retry-After included)."""

    # ---------------------------------------------------------------- status

    @property
    def progress(self) -> DeliveryProgress:
        """Counters and state for a status display (a read-only snapshot)."""
        return DeliveryProgress(
            output=self.output, state=self._state, delivered=self._delivered, lines=self._lines,
            dead_lettered=self._dead, backlog=self._backlog, failures=self._failures,
            last_error=self._last_error, url=self.writer.target.url, ever_ok=self._ever_ok,
            failed_attempts=self._failed_attempts,
        )  # fmt: skip

    @property
    def status(self) -> DeliveryProgress:
        """The same snapshot as :attr:`progress`."""
        return self.progress

    @property
    def ever_ok(self) -> bool:
        """Whether the server accepted a write since start."""
        return self._ever_ok

    def notify(self) -> None:
        """New records were committed: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def backoff_s(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(failures-1))]."""
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(failures - 1, 30))
        return self._rng.uniform(0.0, cap)

    def _signal(self) -> None:
        self._changed.set()

    # ---------------------------------------------------------------- draining

    async def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is pending for this output, for at most ``timeout_s`` **real**
        seconds (``time.monotonic``, whatever the loop's clock); True when the backlog is 0.

        Needs :meth:`run` running. While draining, partial batches are sent at once and retry
        waits are cut short. Returns False at the deadline, or as soon as the delivery has
        stopped or failed with records left. Woken by delivery progress, never by polling.
        """
        self._draining += 1
        self._urgent.set()
        self._wake.set()
        try:
            async with RealDeadline(timeout_s) as deadline:
                while True:
                    self._changed.clear()
                    backlog = await self.outbox.backlog(self.output, kinds=self.kinds)
                    self._backlog = backlog
                    if backlog == 0:
                        return True
                    if self._state in (DeliveryState.STOPPED, DeliveryState.FAILED):
                        return False
                    if deadline.expired:
                        return False
                    await deadline.wait(self._changed)
        finally:
            self._draining -= 1
            if not self._draining:
                self._urgent.clear()

    # ---------------------------------------------------------------- the loop

    async def _wait(self, delay_s: float, *events: asyncio.Event | None) -> None:
        """Sleep ``delay_s`` (loop time) or until one of ``events`` is set."""
        await wait_any(delay_s, *events)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set (or forever); on stop, one last attempt to flush.

        Raises:
            InfluxAuthError: the server refused the credentials (the backlog stays in the store).
        """
        first_seen: float | None = None
        try:
            await self.outbox.register_output(self.output)
            while True:
                stopping = stop is not None and stop.is_set()
                urgent = stopping or self._urgent.is_set()
                self._wake.clear()
                items = await self.outbox.pending(self.output, self.batch_size, kinds=self.kinds)
                if not items:
                    self._backlog = 0
                    self._set_idle()
                    self._signal()
                    first_seen = None
                    if stopping:
                        return
                    await self._wait(self.poll_interval_s, self._wake, stop, self._urgent)
                    continue
                # Loop time, like every other delay here: on a time-warped demo loop a wall-clock
                # age made this poll the store a hundred times per batch.
                now = asyncio.get_running_loop().time()
                if first_seen is None:
                    first_seen = now
                age = now - first_seen
                if len(items) < self.batch_size and age < self.batch_age_s and not urgent:
                    self._set_idle()
                    # not woken by notify(): one look per batch age, not one per record
                    await self._wait(self.batch_age_s - age, stop, self._urgent)
                    continue
                first_seen = None
                done, retry_after = await self._deliver_batch(items)
                self._signal()
                if done:
                    await self._count_backlog(delivered=len(items))
                    continue
                if stopping:
                    return
                delay = self.backoff_s(self._failures)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                self.last_retry_delay_s = delay
                logger.debug("%s: retrying in %.2f s", self.output, delay)
                await self._wait(delay, stop, self._urgent if retry_after is None else None)
        finally:
            if self._state is not DeliveryState.FAILED:
                self._state = DeliveryState.STOPPED
            self._signal()

    async def _count_backlog(self, delivered: int) -> None:
        now = time.monotonic()
        if now - self._backlog_at >= BACKLOG_REFRESH_S:
            self._backlog_at = now
            self._backlog = await self.outbox.backlog(self.output, kinds=self.kinds)
        else:
            self._backlog = max(0, self._backlog - delivered)

    def _set_idle(self) -> None:
        if self._failures == 0:
            self._state = DeliveryState.IDLE

    async def flush(self) -> None:
        """Deliver everything pending now, retrying (with backoff) until the backlog is empty.

        Raises:
            InfluxAuthError: credentials refused.
        """
        await self.outbox.register_output(self.output)
        while True:
            items = await self.outbox.pending(self.output, self.batch_size, kinds=self.kinds)
            if not items:
                self._backlog = 0
                self._set_idle()
                self._signal()
                return
            done, retry_after = await self._deliver_batch(items)
            self._signal()
            if not done:
                delay = max(self.backoff_s(self._failures), retry_after or 0.0)
                self.last_retry_delay_s = delay
                await asyncio.sleep(delay)

    # ---------------------------------------------------------------- one batch

    async def _deliver_batch(self, items: Sequence[OutboxItem]) -> tuple[bool, float | None]:
        """(True, None): all delivered or dead-lettered; else (False, the server's Retry-After)."""
        chunk: _Chunk = []
        self._budget = self.split_budget
        for item in items:
            try:
                lines = encode_point(item.record)
            except (TypeError, ValueError) as exc:
                # Never encodable: deliver what precedes it, then set it aside.
                if chunk and not await self._send_chunk(chunk):
                    return False, self._retry_after
                chunk = []
                await self._dead_letter([item], f"cannot encode as line protocol: {exc}")
                continue
            chunk.append((item, lines))
        if chunk and not await self._send_chunk(chunk):
            return False, self._retry_after
        return True, None

    async def _send_chunk(self, chunk: _Chunk) -> bool:
        """Deliver ``chunk`` (splitting it on rejection); False on a retryable failure."""
        lines = [line for _, item_lines in chunk for line in item_lines]
        last_seq = chunk[-1][0].seq
        if not lines:
            await self.outbox.mark_delivered(self.output, last_seq)
            self._delivered += len(chunk)
            return True
        self._state = DeliveryState.SENDING
        url = self.writer.target.url
        try:
            result = await self.writer.deliver(lines)
        except InfluxAuthError as exc:
            self._state = DeliveryState.FAILED
            self._failed_attempts += 1
            self._last_error = str(exc)
            logger.error("%s: %s", self.output, exc)
            raise
        kind = result.outcome.kind
        if kind is OutcomeKind.OK:
            await self.outbox.mark_delivered(self.output, last_seq)
            self._ever_ok = True
            self._delivered += len(chunk)
            self._lines += len(lines)
            if self._failures:
                logger.warning(
                    "%s: delivery to InfluxDB at %s resumed after %d failure(s)",
                    self.output, url, self._failures,
                )  # fmt: skip
                self._failures = 0
            self._state = DeliveryState.IDLE
            return True
        if kind is OutcomeKind.REJECTED:
            self._ever_ok = True  # the server is there and answering
            if len(chunk) == 1 or self._budget <= 0:
                await self._dead_letter([item for item, _ in chunk], result.outcome.message)
                return True
            self._budget -= 1
            mid = len(chunk) // 2
            return await self._send_chunk(chunk[:mid]) and await self._send_chunk(chunk[mid:])
        # RETRY or CONFIG: keep the records, back off.
        self._failures += 1
        self._failed_attempts += 1
        self._last_error = result.outcome.message
        self._retry_after = result.outcome.retry_after_s
        self._state = DeliveryState.RETRYING
        if self._failures == 1:
            advice = (
                "fix the settings" if kind is OutcomeKind.CONFIG
                else "start InfluxDB or fix the URL"
            )  # fmt: skip
            logger.warning(
                "%s: cannot write to InfluxDB at %s: %s. The records stay in the store and are "
                "retried; %s (`stridewatch push` sends the backlog later)",
                self.output, url, result.outcome.message, advice,
            )  # fmt: skip
        else:
            logger.debug("%s: failure %d: %s", self.output, self._failures, result.outcome.message)
        return False

    async def _dead_letter(self, items: Sequence[OutboxItem], message: str) -> None:
        await self.outbox.dead_letter(self.output, list(items), message)
        self._dead += len(items)
        self._last_error = message
