"""Alerts from the store's outbox to one notification target (Apprise), and a group of them.

:class:`NotifyDelivery` reads the records of kind ``"alert"`` after its own cursor
(``notify:<name>``) through the async outbox (worker threads: no SQLite on the loop), routes
each through its :class:`~outputs.notify.route.TargetRouter` (filters, cooldown, summaries),
sends the messages with an :class:`~outputs.notify.sender.AppriseSender` (its own worker
thread: never blocking processing) and moves the cursor past an alert only after Apprise
reported success for all of its messages — at least once; the alert id in the body
de-duplicates. A failure is retried with full-jitter backoff (:func:`ingest.backoff.
backoff_delay_s`); an alert the service answered with errors ``max_attempts`` times (a service
that is unreachable does not count: the alert waits in the store) goes to the store's dead
letters with the cause and the cursor moves on.

Summaries of alerts held back by a cooldown are derived, not stored: they are sent when the
cooldown ends (estimated on the alerts' event clock), or at :meth:`NotifyDelivery.drain` (the
end of a run); a process killed during a cooldown loses the summary of its held alerts (each of
those alerts has already been counted as delivered).

:class:`Notifier` runs one :class:`NotifyDelivery` per target, each in its own task: a dead
service never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, Self

from ingest.backoff import backoff_delay_s
from outputs.influx.status import DeliveryOutbox, StoreDeliveryOutbox
from outputs.notify.route import NotifyMessage, NotifyTarget, TargetRouter
from outputs.notify.sender import AppriseSender, Sender, SendOutcome
from outputs.store import OutboxItem, SessionStore
from outputs.waiting import RealDeadline, wait_any
from processing.records import Alert

__all__ = [
    "ALERT_KINDS",
    "Notifier",
    "NotifyDelivery",
    "NotifyState",
    "NotifyStatus",
]

logger = logging.getLogger("outputs.notify")

ALERT_KINDS: Final = ("alert",)
BATCH: Final = 50
"""Outbox rows read per poll (alerts are a few per run)."""
POLL_INTERVAL_S: Final = 0.5
"""How often an idle delivery looks at the outbox when not woken by :meth:`notify`."""
MAX_ATTEMPTS: Final = 10
"""Attempts per alert before it is dead-lettered: full-jitter backoff of 1, 2, 4 … 60 s (real
time), about 2 min on average, at most about 4 min; an alert older than that is stale for a
runner, and later alerts wait behind it. A permanent refusal (HTTP 400-like) dead-letters at
once."""
BACKOFF_INITIAL_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
DRAIN_MAX_WAIT_S: Final = 1.0
"""While draining, a retry waits at most this long (the drain has a real-time deadline)."""


class NotifyState(enum.StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    SENDING = "sending"
    RETRYING = "retrying"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NotifyStatus:
    """A read-only snapshot of one target's delivery (never the URL's secret)."""

    name: str
    output: str
    url: str
    """Redacted (Apprise's privacy form)."""
    state: NotifyState
    delivered: int
    """Alerts done: sent, or held for a summary, or filtered out (cursor moved past them)."""
    sent: int
    """Messages Apprise reported sent (alerts and summaries)."""
    summaries: int
    suppressed: int
    """Alerts held back by a cooldown (counted in a summary)."""
    filtered: int
    dead_lettered: int
    dropped_summaries: int
    backlog: int
    """Alerts pending in the store (as of the last look)."""
    failures: int
    """Consecutive failed attempts (0 after a success)."""
    failed_attempts: int
    ever_ok: bool
    last_error: str | None

    @property
    def reached(self) -> bool:
        """The service accepted a message, or nothing was ever attempted and failed."""
        return self.ever_ok or self.failed_attempts == 0


@dataclasses.dataclass(slots=True)
class _Plan:
    """The messages of one outbox item, computed once (the router has state), and how many
    of them were sent."""

    seq: int
    messages: list[NotifyMessage]
    sent: int = 0
    attempts: int = 0


class NotifyDelivery:
    """Delivers stored alerts to one notification target; see the module docstring.

    Args:
        outbox: a :class:`~outputs.influx.status.DeliveryOutbox`, or a
            :class:`SessionStore` (wrapped: its calls run on worker threads).
        target: the target (URL, filters, cooldown).
        sender: how to send (default: an :class:`AppriseSender` for ``target.url``).
        max_attempts: attempts per alert before it is dead-lettered.
        backoff_initial_s, backoff_max_s: full-jitter backoff bounds.
        poll_interval_s: idle poll of the outbox.
        batch: outbox rows per poll.
        rng: random source of the jitter (seed it in tests).

    Raises:
        NotifyConfigError: Apprise cannot use the URL (message without its secret).
    """

    def __init__(
        self,
        outbox: DeliveryOutbox | SessionStore,
        target: NotifyTarget,
        *,
        sender: Sender | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        poll_interval_s: float = POLL_INTERVAL_S,
        batch: int = BATCH,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.outbox: DeliveryOutbox = (
            StoreDeliveryOutbox(outbox) if isinstance(outbox, SessionStore) else outbox
        )
        self.target = target
        self.output = target.output
        self.sender: Sender = sender or AppriseSender(target.url, name=target.name)
        self.router = TargetRouter(target)
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._changed = asyncio.Event()
        self._draining = 0
        self._plan: _Plan | None = None
        self._summaries: list[NotifyMessage] = []
        self._summary_attempts = 0
        self._clock: dict[str, tuple[float, float]] = {}
        """Per athlete: (event time of its last alert, loop time when it was routed)."""
        self._state = NotifyState.STARTING
        self._delivered = 0
        self._sent = 0
        self._summaries_sent = 0
        self._dead = 0
        self._dropped = 0
        self._backlog = 0
        self._failures = 0
        self._failed_attempts = 0
        self._ever_ok = False
        self._last_error: str | None = None

    # ---------------------------------------------------------------- status

    @property
    def status(self) -> NotifyStatus:
        return NotifyStatus(
            name=self.target.name, output=self.output, url=self.sender.url, state=self._state,
            delivered=self._delivered, sent=self._sent, summaries=self._summaries_sent,
            suppressed=self.router.suppressed, filtered=self.router.filtered,
            dead_lettered=self._dead, dropped_summaries=self._dropped, backlog=self._backlog,
            failures=self._failures, failed_attempts=self._failed_attempts,
            ever_ok=self._ever_ok, last_error=self._last_error,
        )  # fmt: skip

    @property
    def ever_ok(self) -> bool:
        return self._ever_ok

    def notify(self) -> None:
        """New records were stored: look at the outbox now."""
        self._wake.set()

    def close(self) -> None:
        self.sender.close()

    # ---------------------------------------------------------------- drain

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every stored alert is done and the held summaries are sent, for at most
        ``timeout_s`` **real** seconds (``time.monotonic``, whatever the loop's clock).

        Needs :meth:`run` running. Draining ends the cooldowns early: held summaries are sent
        now (a drain is the end of a run). True when nothing is left.
        """
        self._draining += 1
        self._urgent.set()
        self._wake.set()
        try:
            async with RealDeadline(timeout_s) as deadline:
                while True:
                    self._changed.clear()
                    backlog = await self.outbox.backlog(self.output, kinds=ALERT_KINDS)
                    self._backlog = backlog
                    if backlog == 0 and self._plan is None and not self._summaries \
                            and not self.router.held:  # fmt: skip
                        return True
                    if self._state is NotifyState.STOPPED:
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

    def _now_s(self, athlete: str) -> float | None:
        """``athlete``'s event time now, estimated from its last alert and the loop clock."""
        seen = self._clock.get(athlete)
        if seen is None:
            return None
        t, at = seen
        return t + (asyncio.get_running_loop().time() - at)

    def _collect_due(self, *, everything: bool) -> None:
        if everything:
            self._summaries += self.router.flush()
            return
        for athlete in sorted(self.router.athletes_holding()):
            now = self._now_s(athlete)
            if now is not None:
                self._summaries += self.router.due(now, athlete)

    def _next_due_in_s(self) -> float | None:
        """Loop seconds until the next held summary is due (None: none held)."""
        waits = []
        for athlete in self.router.athletes_holding():
            due, now = self.router.next_due_s(athlete), self._now_s(athlete)
            if due is not None and now is not None:
                waits.append(due - now)
        return max(0.0, min(waits)) if waits else None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set (or forever); on stop, one last pass (held summaries
        included) without waiting for retries."""
        try:
            await self.outbox.register_output(self.output)
            while True:
                stopping = stop is not None and stop.is_set()
                self._wake.clear()
                self._collect_due(everything=False)
                if self._summaries and not await self._send_summaries():
                    if stopping:
                        return
                    await self._back_off(stop)
                    continue
                if self._plan is None:
                    items = await self.outbox.pending(self.output, self.batch, kinds=ALERT_KINDS)
                    if not items:
                        self._backlog = 0
                        if stopping or self._urgent.is_set():
                            self._collect_due(everything=True)
                            if self._summaries:
                                continue
                        self._idle()
                        if stopping:
                            return
                        wait = self.poll_interval_s
                        due = self._next_due_in_s()
                        if due is not None:
                            wait = min(wait, due)
                        urgent = None if self._urgent.is_set() else self._urgent
                        await self._wait(wait, self._wake, stop, urgent)
                        continue
                    if not await self._deliver_items(items):
                        if stopping:
                            return
                        await self._back_off(stop)
                    continue
                if not await self._deliver_plan():
                    if stopping:
                        return
                    await self._back_off(stop)
        finally:
            self._state = NotifyState.STOPPED
            self._changed.set()

    def _idle(self) -> None:
        if self._failures == 0:
            self._state = NotifyState.IDLE
        self._changed.set()

    async def _back_off(self, stop: asyncio.Event | None) -> None:
        self._state = NotifyState.RETRYING
        self._backlog = await self.outbox.backlog(self.output, kinds=ALERT_KINDS)
        self._changed.set()
        delay = backoff_delay_s(
            max(0, self._failures - 1), self._rng, initial_s=self.backoff_initial_s,
            max_s=self.backoff_max_s, jitter="full",
        )  # fmt: skip
        if self._draining:
            delay = min(delay, DRAIN_MAX_WAIT_S)
        logger.debug("%s: retrying in %.2f s", self.output, delay)
        await self._wait_real(delay, stop, self._urgent if not self._draining else None)

    async def _wait_real(self, delay_s: float, *events: asyncio.Event | None) -> None:
        """Like :meth:`_wait` but ``delay_s`` is **real** time: on the demo's virtual clock a
        loop-time backoff passes in no time, and a receiver down for a few real seconds would
        see an alert's every attempt fail and the alert dead-lettered."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def expire() -> None:
            if not done.done():
                done.set_result(None)

        def fire() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(expire)

        timer = threading.Timer(max(0.0, delay_s), fire)
        timer.daemon = True
        timer.start()
        waits: list[asyncio.Future[Any]] = [done]
        waits += [asyncio.ensure_future(e.wait()) for e in events if e is not None]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            for fut in waits:
                fut.cancel()

    async def _deliver_items(self, items: Sequence[OutboxItem]) -> bool:
        """Route and send ``items`` in order; False on a failure (to retry after a backoff)."""
        loop = asyncio.get_running_loop()
        for item in items:
            record = item.record
            if not isinstance(record, Alert):  # not this output's: counts as delivered
                await self.outbox.mark_delivered(self.output, item.seq)
                continue
            self._clock[record.athlete] = (record.time_mono_s, loop.time())
            self._plan = _Plan(item.seq, self.router.offer(record))
            if not await self._deliver_plan(item):
                return False
        return True

    async def _deliver_plan(self, item: OutboxItem | None = None) -> bool:
        """Send the rest of the current plan; on success (or dead letter) move the cursor."""
        plan = self._plan
        assert plan is not None
        while plan.sent < len(plan.messages):
            outcome = await self._send(plan.messages[plan.sent])
            if outcome.ok:
                plan.sent += 1
                continue
            if not outcome.answered:
                return False  # never reached: not this alert's fault; it waits in the store
            plan.attempts += 1
            if plan.attempts < self.max_attempts and not outcome.permanent:
                return False
            if item is None:
                got = await self.outbox.pending(self.output, 1, kinds=ALERT_KINDS)
                item = got[0] if got and got[0].seq == plan.seq else None
            if item is not None:
                why = "refused by" if outcome.permanent else "not delivered to"
                message = (f"{why} {self.sender.url} after {plan.attempts} attempt(s): "
                           f"{self._last_error or 'no answer'}")  # fmt: skip
                await self.outbox.dead_letter(self.output, [item], message)
                self._dead += 1
            self._plan = None
            self._backlog = max(0, self._backlog - 1)
            self._changed.set()
            return True
        await self.outbox.mark_delivered(self.output, plan.seq)
        self._plan = None
        self._delivered += 1
        self._backlog = max(0, self._backlog - 1)
        self._changed.set()
        return True

    async def _send_summaries(self) -> bool:
        while self._summaries:
            outcome = await self._send(self._summaries[0])
            if outcome.ok:
                self._summaries.pop(0)
                self._summaries_sent += 1
                self._summary_attempts = 0
                continue
            self._summary_attempts += 1
            if self._summary_attempts >= self.max_attempts or outcome.permanent:
                dropped = self._summaries.pop(0)
                self._summary_attempts = 0
                self._dropped += 1
                logger.error("%s: summary %r dropped after %d attempts: %s", self.output,
                             dropped.title, self.max_attempts, self._last_error)
                continue
            return False
        return True

    async def _send(self, message: NotifyMessage) -> SendOutcome:
        self._state = NotifyState.SENDING
        outcome = await self.sender.send(message)
        self._changed.set()
        if outcome.ok:
            self._sent += 1
            self._ever_ok = True
            if self._failures:
                logger.warning("%s: notifications to %s resumed after %d failure(s)",
                               self.output, self.sender.url, self._failures)
            self._failures = 0
            self._state = NotifyState.IDLE
            return outcome
        self._failures += 1
        self._failed_attempts += 1
        self._last_error = (outcome.error or "no answer").rstrip(". ")
        self._state = NotifyState.RETRYING
        if self._failures == 1:
            logger.warning(
                "%s: cannot notify %s: %s. Alerts stay in the store and are retried",
                self.output, self.sender.url, self._last_error,
            )  # fmt: skip
        return outcome


class Notifier:
    """One :class:`NotifyDelivery` per target, each in its own task; an async context
    manager (on exit: stop, one last pass, then cancel after ``grace_s``).

    Args:
        outbox: the store (or an outbox) the alerts are read from.
        targets: the targets (unique names).
        grace_s: on exit, how long the deliveries get to finish their last pass.
        **options: passed to each :class:`NotifyDelivery` (``max_attempts``, backoff…).

    Raises:
        NotifyConfigError: a URL Apprise cannot use (on construction, nothing started).
        ValueError: two targets with the same name.
    """

    def __init__(
        self,
        outbox: DeliveryOutbox | SessionStore,
        targets: Sequence[NotifyTarget],
        *,
        grace_s: float = 2.0,
        **options: Any,
    ) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"notify target names must be unique: {names}")
        shared = StoreDeliveryOutbox(outbox) if isinstance(outbox, SessionStore) else outbox
        self.deliveries: dict[str, NotifyDelivery] = {}
        try:
            for target in targets:
                self.deliveries[target.name] = NotifyDelivery(shared, target, **options)
        except Exception:
            for delivery in self.deliveries.values():
                delivery.close()
            raise
        self.grace_s = grace_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self._stop.clear()
        for name, delivery in self.deliveries.items():
            self._tasks.append(asyncio.create_task(self._guard(delivery),
                                                   name=f"notify-{name}"))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for delivery in self.deliveries.values():
            delivery.close()

    async def _guard(self, delivery: NotifyDelivery) -> None:
        """A delivery that fails (a store error) is logged; the others go on."""
        try:
            await delivery.run(self._stop)
        except Exception as exc:
            logger.error("%s: notifications stopped: %s. Alerts stay in the store.",
                         delivery.output, exc)

    def notify(self) -> None:
        """New records were stored: every delivery looks at the outbox now."""
        for delivery in self.deliveries.values():
            delivery.notify()

    async def drain(self, timeout_s: float) -> bool:
        """Drain every target at once, for at most ``timeout_s`` real seconds in all."""
        results = await asyncio.gather(
            *(d.drain(timeout_s) for d in self.deliveries.values())
        )
        return all(results)

    def problems(self) -> list[str]:
        """One line per target never reached: redacted URL and cause."""
        lines = []
        for delivery in self.deliveries.values():
            s = delivery.status
            if not s.reached:
                lines.append(
                    f"notifications to {s.url} ({s.name}) never got through: "
                    f"{s.last_error or 'no answer'}; {s.backlog} alert(s) wait in the store"
                )
        return lines

    def status(self) -> dict[str, dict[str, Any]]:
        """Per target name: url (redacted), counters, ever_ok, failures, last_error."""
        out: dict[str, dict[str, Any]] = {}
        for name, delivery in self.deliveries.items():
            s = dataclasses.asdict(delivery.status)
            s["state"] = str(s["state"])
            out[name] = s
        return out
