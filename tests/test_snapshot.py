"""Processing state saved and restored (issue #13): exact, small per reading, refused when bad.

The readings are a real run with RR intervals (Forerunner 630, ``tests/data/fit``), so the
HRV and DFA windows, segments and alerts all carry real state across a restore. Outputs are
compared by ``repr`` (NaN-safe): a restored processor must produce exactly what an
uninterrupted one does.
"""

from __future__ import annotations

import pickle
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ingest.records import Reading
from ingest.replay.fit import read_fit
from outputs.mqtt_codec import decode_reading, encode_reading
from processing.pipeline import AthleteProcessor
from processing.records import Metric
from processing.settings import ProcessingSettings
from processing.snapshot import (
    FORMAT,
    SNAPSHOT_EVERY,
    JournaledProcessor,
    SnapshotError,
    dump_processor,
    load_processor,
)

FIT = Path(__file__).parent / "data" / "fit"
SETTINGS = ProcessingSettings()


@cache
def _readings() -> tuple[Reading, ...]:
    (activity,) = read_fit(FIT / "fr630-with-lth.fit", athlete="ann")
    return activity.readings


def _new() -> AthleteProcessor:
    return AthleteProcessor("ann", SETTINGS, id_prefix="s1")


class DictState:
    """A plain dict as the per-key state (what Quix Streams' ``State`` offers), counting the
    bytes each write puts on the changelog (key + value)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.bytes_written = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.bytes_written += len(key) + len(repr(value))

    def get_bytes(self, key: str, default: bytes | None = None) -> bytes | None:
        value = self.data.get(key, default)
        assert value is None or isinstance(value, bytes)
        return value

    def set_bytes(self, key: str, value: bytes) -> None:
        self.data[key] = value
        self.bytes_written += len(key) + len(value)


def _uninterrupted() -> list[str]:
    processor = _new()
    return [repr(o) for r in _readings() for o in processor.process(r)]


def test_the_run_carries_real_state() -> None:
    readings = _readings()
    assert len(readings) > 1500
    processor = _new()
    alphas = [o.values["dfa_alpha1"] for r in readings for o in processor.process(r)
              if isinstance(o, Metric) and o.values.get("dfa_alpha1") is not None]
    assert len(alphas) > 100  # real RR series: DFA α1 windows full for most of the run


@pytest.mark.parametrize("cut", [1, 400, 777, 1500])
def test_a_dumped_processor_continues_exactly(cut: int) -> None:
    readings = _readings()
    processor = _new()
    before = [repr(o) for r in readings[:cut] for o in processor.process(r)]
    restored = load_processor(dump_processor(processor))
    after = [repr(o) for r in readings[cut:] for o in restored.process(r)]
    assert before + after == _uninterrupted()


def test_journaled_restores_anywhere_and_writes_under_a_kilobyte_per_reading() -> None:
    readings = _readings()
    state = DictState()
    journaled = JournaledProcessor.restore(state, decode_reading, _new)
    out: list[str] = []
    for i, reading in enumerate(readings):
        if i % 97 == 13:  # the worker died: a new one restores from the state alone
            journaled = JournaledProcessor.restore(state, decode_reading, _new)
            assert journaled.applied == i
        payload = encode_reading(reading).payload
        out += [repr(o) for o in journaled.process(decode_reading(payload), payload, state)]
    assert out == _uninterrupted()
    per_reading = state.bytes_written / len(readings)
    assert per_reading <= 1024, per_reading
    assert state.get("n") == len(readings)


def test_a_rolled_back_state_no_longer_matches_and_restores_to_it() -> None:
    readings = _readings()
    state = DictState()
    journaled = JournaledProcessor.restore(state, decode_reading, _new)
    cut = SNAPSHOT_EVERY * 5 + 10
    for reading in readings[:cut]:
        journaled.process(reading, encode_reading(reading).payload, state)
    committed = dict(state.data)
    for reading in readings[cut:cut + 100]:  # processed, then the checkpoint was aborted
        journaled.process(reading, encode_reading(reading).payload, state)
    state.data = committed
    assert not journaled.matches(state)
    again = JournaledProcessor.restore(state, decode_reading, _new)
    assert again.matches(state)
    tail = [repr(o) for r in readings[cut:]
            for o in again.process(r, encode_reading(r).payload, state)]
    reference = _new()
    for r in readings[:cut]:
        reference.process(r)
    assert tail == [repr(o) for r in readings[cut:] for o in reference.process(r)]


def test_bad_snapshots_are_refused_with_what_to_do() -> None:
    good = dump_processor(_new())
    with pytest.raises(SnapshotError, match="bad magic"):
        load_processor(b"PK\x03\x04" + good)
    with pytest.raises(SnapshotError, match="fresh state"):
        load_processor(good[:3] + bytes([FORMAT + 1]) + good[4:])
    with pytest.raises(SnapshotError, match="damaged"):
        load_processor(good[:-20])
    not_a_processor = good[:4] + zlib.compress(pickle.dumps({"a": 1}))
    with pytest.raises(SnapshotError, match="dict"):
        load_processor(not_a_processor)


def test_a_damaged_journal_is_refused() -> None:
    state = DictState()
    journaled = JournaledProcessor.restore(state, decode_reading, _new)
    for reading in _readings()[:5]:
        journaled.process(reading, encode_reading(reading).payload, state)
    del state.data["j3"]
    with pytest.raises(SnapshotError, match="entry 3 is missing"):
        JournaledProcessor.restore(state, decode_reading, _new)
    state.data["n"] = SNAPSHOT_EVERY + 1
    with pytest.raises(SnapshotError, match="damaged"):
        JournaledProcessor.restore(state, decode_reading, _new)


def test_repeats_of_the_last_readings_are_recognised_also_after_a_restore() -> None:
    payloads = [encode_reading(r).payload for r in _readings()[:SNAPSHOT_EVERY * 3 + 5]]
    state = DictState()
    journaled = JournaledProcessor.restore(state, decode_reading, _new)
    for i, payload in enumerate(payloads):
        assert not journaled.is_repeat(payload), i  # a new reading is never a repeat
        journaled.process(decode_reading(payload), payload, state)
        assert journaled.is_repeat(payload)
    restored = JournaledProcessor.restore(state, decode_reading, _new)
    for worker in (journaled, restored):
        assert all(worker.is_repeat(p) for p in payloads[-SNAPSHOT_EVERY:])
        assert not any(worker.is_repeat(p) for p in payloads[:-SNAPSHOT_EVERY])  # the window


def test_the_worker_step_drops_a_bridges_repeats_and_gives_the_uninterrupted_outputs() -> None:
    from stridewatch.worker import AthleteStep, session_id

    readings = _readings()[:900]
    state = DictState()
    steps = [AthleteStep(SETTINGS)]
    out: list[str] = []
    for i, reading in enumerate(readings):
        out += [repr(o) for o in steps[-1](encode_reading(reading).payload, state)]
        if i % 50 == 49:  # a bridge killed after Kafka took the last 3: produced again
            if i % 100 == 99:
                steps.append(AthleteStep(SETTINGS))  # ... and this worker died too: restored
            for earlier in readings[i - 2:i + 1]:
                assert steps[-1](encode_reading(earlier).payload, state) == []
    reference = AthleteProcessor("ann", SETTINGS, id_prefix=session_id(readings[0]))
    assert out == [repr(o) for r in readings for o in reference.process(r)]
    assert sum(step.counters.repeats for step in steps) == 3 * len(readings) // 50
    assert sum(step.counters.readings for step in steps) == len(readings)


def test_the_worker_step_closes_a_session_at_its_end_and_starts_the_next_with_a_new_id() -> None:
    """A ``session_end`` (``collect --mqtt`` stopping) gives the totals of a ``run``'s end, and
    the athlete's next reading starts a new session, also on a worker restored mid-way."""
    from ingest.records import session_end
    from stridewatch.worker import AthleteStep, session_id

    first, second = _readings()[:400], _readings()[400:900]
    end = encode_reading(session_end(first[-1])).payload
    state = DictState()
    steps = [AthleteStep(SETTINGS)]
    out: list[str] = []
    for reading in first:
        out += [repr(o) for o in steps[-1](encode_reading(reading).payload, state)]
    out += [repr(o) for o in steps[-1](end, state)]
    assert steps[-1](end, state) == []  # the bridge sent the end twice: a repeat
    for i, reading in enumerate(second):
        if i == 250:
            steps.append(AthleteStep(SETTINGS))  # a worker died mid second session: restored
        out += [repr(o) for o in steps[-1](encode_reading(reading).payload, state)]

    one = AthleteProcessor("ann", SETTINGS, id_prefix=session_id(first[0]))
    two = AthleteProcessor("ann", SETTINGS, id_prefix=session_id(second[0]))
    reference = [o for r in first for o in one.process(r)] + one.finish()
    reference += [o for r in second for o in two.process(r)]
    assert session_id(first[0]) != session_id(second[0])
    assert out == [repr(o) for o in reference]
    assert any("SESSION" in line for line in out[: len(out) // 2])  # the first session's totals
    assert sum(step.counters.new_sessions for step in steps) == 1
    assert state.get("session") == session_id(second[0])
