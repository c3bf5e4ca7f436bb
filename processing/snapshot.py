"""An athlete's processing state as bytes, and kept cheaply in a key-value store (issue #13).

A scale-out worker keeps each athlete's :class:`~processing.pipeline.AthleteProcessor` in the
engine's per-key state, which is replicated to a changelog topic on every commit and restored
from it when the athlete's partition moves to another worker. The whole processor is tens of
KB (HRV and DFA windows, segment and alert state), so writing it per reading would put tens of
KB per reading on the changelog. Instead the state of one athlete is:

* ``snap``: the processor as bytes (:func:`dump_processor`), rewritten every
  :data:`SNAPSHOT_EVERY` readings;
* ``j<slot>``: the readings since that snapshot, as their wire payloads, in a ring of
  :data:`SNAPSHOT_EVERY` slots (no deletes, so no tombstones on the changelog); the ring
  always holds the athlete's last :data:`SNAPSHOT_EVERY` payloads, which is also what
  :meth:`JournaledProcessor.is_repeat` checks a reading against;
* ``n``: readings applied so far; ``snap_n``: readings the snapshot holds.

A reading then changes its payload plus ``n`` (~0.2 KB) and, amortised, 1/64 of a snapshot.
Restore loads the snapshot and re-applies the journal: processing is pure and deterministic, so
the processor comes back exactly (same HRV, segments, alert ids); the outputs of the re-applied
readings are discarded (they were emitted before).

Snapshots are :mod:`pickle` (zlib-compressed) behind a magic and a format number: they are
written and read only by our own workers through the engine's internal changelog topics, never
taken from users. A snapshot of another format is refused with :class:`SnapshotError`; after an
upgrade that changes the processors' layout, bump :data:`FORMAT` and restart the workers on
fresh state (docs/scaling.md).
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from typing import Any, Final, Protocol

from ingest.records import Reading
from processing.pipeline import AthleteProcessor
from processing.records import ProcessingOutput

MAGIC: Final = b"SWP"
FORMAT: Final = 1
"""Bumped whenever a processor's pickled layout changes incompatibly."""
SNAPSHOT_EVERY: Final = 64
"""Readings between snapshots: ~10 KB compressed / 64 ≈ 150 B per reading on the changelog,
and at most 64 readings to re-apply on restore (~3 ms)."""


class SnapshotError(ValueError):
    """A snapshot or journal that cannot be restored; says what is wrong and what to do."""


class KeyValueState(Protocol):
    """The per-key state this module needs (a Quix Streams ``State`` is one)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def get_bytes(self, key: str, default: bytes | None = None) -> bytes | None: ...

    def set_bytes(self, key: str, value: bytes) -> None: ...


def dump_processor(processor: AthleteProcessor) -> bytes:
    """The processor as bytes: magic, format, zlib(pickle)."""
    # Level 1: 0.14 ms instead of 0.86 ms (level 6) for ~11 KB instead of ~10 KB, measured
    # on a 30 min processor; the snapshot is written every SNAPSHOT_EVERY readings.
    body = zlib.compress(pickle.dumps(processor, protocol=pickle.HIGHEST_PROTOCOL), 1)
    return MAGIC + bytes([FORMAT]) + body


def load_processor(data: bytes) -> AthleteProcessor:
    """The processor :func:`dump_processor` wrote; :class:`SnapshotError` if it cannot be."""
    if data[:3] != MAGIC or len(data) < 5:
        raise SnapshotError("not a stridewatch processor snapshot (bad magic)")
    if data[3] != FORMAT:
        raise SnapshotError(
            f"processor snapshot format {data[3]}, this version reads {FORMAT}: restart the "
            "workers on fresh state (see docs/scaling.md, 'Upgrades')"
        )
    try:
        processor = pickle.loads(zlib.decompress(data[4:]))
    except (zlib.error, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise SnapshotError(f"damaged processor snapshot: {exc}") from exc
    if not isinstance(processor, AthleteProcessor):
        raise SnapshotError(f"snapshot holds a {type(processor).__name__}, not a processor")
    return processor


def _slot(n: int) -> str:
    return f"j{n % SNAPSHOT_EVERY}"


class JournaledProcessor:
    """One athlete's processor mirrored into a :class:`KeyValueState` as snapshot + journal.

    ``applied`` counts the readings in the state; :meth:`matches` tells whether this in-memory
    processor is still the state's (an aborted checkpoint rolls the state back, and then the
    processor must be restored, or readings processed twice would count twice).
    """

    def __init__(self, processor: AthleteProcessor, applied: int,
                 recent: list[bytes | None] | None = None) -> None:
        self.processor = processor
        self.applied = applied
        self._ring: list[bytes | None] = recent or [None] * SNAPSHOT_EVERY
        self._recent = {p for p in self._ring if p is not None}

    @classmethod
    def restore(
        cls,
        state: KeyValueState,
        decode: Callable[[bytes], Reading],
        new: Callable[[], AthleteProcessor],
    ) -> JournaledProcessor:
        """The processor the state holds (``new()`` for an empty state)."""
        n = int(state.get("n", 0))
        snap_n = int(state.get("snap_n", 0))
        snap = state.get_bytes("snap")
        processor = load_processor(snap) if snap is not None else new()
        if not 0 <= n - snap_n < SNAPSHOT_EVERY:
            raise SnapshotError(f"journal of {n - snap_n} readings after the snapshot, at most "
                                f"{SNAPSHOT_EVERY - 1} expected: the state is damaged")
        for i in range(snap_n + 1, n + 1):
            payload = state.get_bytes(_slot(i))
            if payload is None:
                raise SnapshotError(f"journal entry {i} is missing: the state is damaged")
            processor.process(decode(payload))  # emitted before the state was saved
        recent = [state.get_bytes(f"j{slot}") for slot in range(SNAPSHOT_EVERY)]
        return cls(processor, n, recent)

    def start_over(self, processor: AthleteProcessor, state: KeyValueState) -> None:
        """Continue with ``processor`` (the athlete's next session) from here: it is
        snapshotted at the current reading count, so the journal restarts empty and a
        restore brings back the new session, not the ended one. The ring of recent payloads
        is kept, so copies of the ended session's readings are still known as repeats."""
        self.processor = processor
        state.set_bytes("snap", dump_processor(processor))
        state.set("snap_n", self.applied)

    def is_repeat(self, payload: bytes) -> bool:
        """Whether ``payload`` equals one of the athlete's last :data:`SNAPSHOT_EVERY`
        readings: a copy produced again (a bridge killed after Kafka took a reading but before
        its MQTT acknowledgement), not a new reading: a reading's payload carries its sensor
        and its monotonic and UTC times, so two real readings never share one."""
        return payload in self._recent

    def matches(self, state: KeyValueState) -> bool:
        """Whether the state holds exactly the readings this processor has seen."""
        return int(state.get("n", 0)) == self.applied

    def process(
        self, reading: Reading, payload: bytes, state: KeyValueState
    ) -> list[ProcessingOutput]:
        """Process ``reading`` (whose wire form is ``payload``) and record it in ``state``."""
        out = self.processor.process(reading)
        self.applied += 1
        n = self.applied
        if n % SNAPSHOT_EVERY == 0:
            state.set_bytes("snap", dump_processor(self.processor))
            state.set("snap_n", n)
        state.set_bytes(_slot(n), payload)  # also at a snapshot: the ring of recent payloads
        state.set("n", n)
        slot = n % SNAPSHOT_EVERY
        self._recent.discard(self._ring[slot])
        self._ring[slot] = payload
        self._recent.add(payload)
        return out
