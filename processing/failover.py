"""Choosing one source when several sensors of an athlete report the same quantity.

HR can come from a chest strap and a watch, cadence from a footpod and a strap. Mixing them
sample by sample would make the series jump between two devices' smoothing and offsets, so
exactly one sensor is *active* at a time and the others are standby.

Rules of :class:`SourceSelector` (event time, seconds):

* Priority is the configured order (``AthleteSettings.sensor_priority``); sensors not listed
  come after the listed ones, in the order they were first heard.
* A sensor is *alive* when it was heard within ``failover_s`` and has not been reported
  disconnected or silent since.
* The first sensor heard becomes active.
* Failover: when the active sensor is no longer alive, the first reading of another sensor
  makes that sensor active, unless a sensor of higher priority than it is alive (then that
  one takes over on its next reading). With 1-Hz sensors and ``failover_s`` = 3 s, HR
  continues from the second source within ~3–4 s of the last strap frame.
* A disconnect or silence event of the active sensor (:meth:`SourceSelector.on_link`) makes
  it not alive at once: the next reading of another sensor takes over without waiting.
* Take-back: a sensor of higher priority than the active one takes over when it has
  delivered ``takeback_readings`` (2) consecutive readings (no two further apart than
  ``failover_s``). One stray frame from a strap that is reconnecting or flapping does not
  move the source back and forth; a strap that is genuinely back takes over one frame
  later (~1 s). If the active sensor is not alive, the better sensor takes over on its
  first reading.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ingest.records import LinkEvent, LinkState

__all__ = ["SourceSelector", "SourceSwitch"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SourceSwitch:
    """The active sensor changed."""

    time_mono_s: float
    """Event time of the reading that made the switch (s)."""
    from_sensor: str | None
    """Previously active sensor; None for the first selection."""
    to_sensor: str
    """Newly active sensor."""
    reason: str
    """``initial``, ``active_silent`` (not heard for failover_s), ``active_disconnected``
    (link event) or ``preferred_back`` (a higher-priority sensor is delivering again)."""


_USED: tuple[bool, SourceSwitch | None] = (True, None)


class SourceSelector:
    """Picks the sensor whose readings are used (see the module docstring for the rules).

    State is one entry per sensor ever seen (a handful).

    >>> sel = SourceSelector(["strap", "watch"], failover_s=3.0)
    >>> sel.offer("strap", 0.0)[0], sel.offer("watch", 0.5)[0]
    (True, False)
    >>> used, switch = sel.offer("watch", 4.0)  # strap silent for 4 s
    >>> used, switch.from_sensor, switch.to_sensor, switch.reason
    (True, 'strap', 'watch', 'active_silent')
    >>> sel.offer("strap", 5.0)[0], sel.offer("strap", 6.0)[1].reason
    (False, 'preferred_back')
    """

    def __init__(
        self, priority: Sequence[str], failover_s: float, *, takeback_readings: int = 2
    ) -> None:
        if failover_s <= 0:
            raise ValueError(f"failover_s must be > 0, got {failover_s}")
        self.failover_s = failover_s
        self._takeback = max(1, takeback_readings)
        self._rank: dict[str, int] = {}
        for s in priority:
            self._rank.setdefault(s, len(self._rank))
        self._last: dict[str, float] = {}
        self._streak: dict[str, int] = {}
        self._down: set[str] = set()
        self.active: str | None = None
        """The sensor in use now; None before any reading."""

    def _alive(self, sensor: str, t: float) -> bool:
        last = self._last.get(sensor)
        return last is not None and sensor not in self._down and t - last < self.failover_s

    def offer(self, sensor: str, time_mono_s: float) -> tuple[bool, SourceSwitch | None]:
        """A reading of ``sensor`` at ``time_mono_s`` (s): is it the one used, and did the
        active sensor change with it?"""
        t = time_mono_s
        if sensor == self.active:
            # The active sensor again (nearly every reading): no switch is possible, so only
            # its streak, down flag and last time change, exactly as below.
            last = self._last
            prev = last.get(sensor)
            if prev is not None and sensor not in self._down and t - prev <= self.failover_s:
                self._streak[sensor] = self._streak.get(sensor, 0) + 1
            else:
                self._streak[sensor] = 1
            self._down.discard(sensor)
            last[sensor] = t if prev is None or not prev > t else prev  # max(t, prev)
            return _USED
        rank = self._rank.setdefault(sensor, len(self._rank))
        prev = self._last.get(sensor)
        consecutive = prev is not None and sensor not in self._down and t - prev <= self.failover_s
        self._streak[sensor] = self._streak.get(sensor, 0) + 1 if consecutive else 1
        self._down.discard(sensor)
        active = self.active
        switch: SourceSwitch | None = None
        if active is None:
            switch = self._switch(t, sensor, "initial")
        elif sensor != active:
            if not self._alive(active, t):
                better_alive = any(
                    r < rank and s not in (sensor, active) and self._alive(s, t)
                    for s, r in self._rank.items()
                )
                if not better_alive:
                    reason = "active_disconnected" if active in self._down else "active_silent"
                    switch = self._switch(t, sensor, reason)
            elif rank < self._rank[active] and self._streak[sensor] >= self._takeback:
                switch = self._switch(t, sensor, "preferred_back")
        self._last[sensor] = max(t, prev) if prev is not None else t
        return sensor == self.active, switch

    def _switch(self, t: float, to: str, reason: str) -> SourceSwitch:
        switch = SourceSwitch(time_mono_s=t, from_sensor=self.active, to_sensor=to, reason=reason)
        self.active = to
        return switch

    def on_link(self, event: LinkEvent) -> None:
        """A disconnect or silence of a known sensor makes it not alive at once. Events of
        sensors this selector has never heard (e.g. the footpod, for the HR selector) are
        ignored."""
        if event.sensor not in self._last:
            return
        if event.state in (LinkState.DISCONNECTED, LinkState.SILENT):
            self._down.add(event.sensor)
            self._streak[event.sensor] = 0
