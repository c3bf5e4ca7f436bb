"""A collector that ends a session on purpose (``session_end``): processing closes it as the end
of a local run does, and the athlete's next reading starts a new session (issue #13: workers
and a remote ``run`` never closed a remote collector's session).

The readings are a real run with RR intervals (Forerunner 630, ``tests/data/fit``), cut in two
sessions; outputs are compared by ``repr`` (NaN-safe).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path

from ingest.records import LinkState, Reading, record_to_json, session_end
from ingest.replay.fit import read_fit
from outputs.mqtt_codec import decode_reading, encode_reading
from outputs.store import AsyncStore, SessionStore
from processing.pipeline import AthleteHistory, AthleteProcessor, Pipeline
from processing.records import Metric, MetricGroup, ProcessingOutput
from processing.settings import ProcessingSettings
from stridewatch.session import SessionRecorder

FIT = Path(__file__).parent / "data" / "fit"
SETTINGS = ProcessingSettings()
CUT = 700
"""The first session's readings; the rest of the run (1,000+ readings) is the second."""


@cache
def _readings() -> tuple[Reading, ...]:
    (activity,) = read_fit(FIT / "fr630-with-lth.fit", athlete="ann")
    return activity.readings


def _final(outputs: list[ProcessingOutput]) -> Metric:
    (final,) = [o for o in outputs if isinstance(o, Metric) and o.group is MetricGroup.SESSION
                and o.values.get("final")]
    return final


def _asking_history(asked: list[str]) -> Callable[[str], AthleteHistory]:
    """A pipeline's history source that notes each athlete it is asked for."""

    def history(athlete: str) -> AthleteHistory:
        asked.append(athlete)
        return AthleteHistory()

    return history


def test_session_end_is_stamped_with_the_last_record_and_travels_as_json() -> None:
    last = _readings()[CUT - 1]
    end = session_end(last)
    assert (end.athlete, end.sensor, end.time_utc, end.time_mono_s) == (
        last.athlete, last.sensor, last.time_utc, last.time_mono_s)
    assert end.state is LinkState.SESSION_END
    assert record_to_json(end)["state"] == "session_end"
    assert decode_reading(encode_reading(end).payload) == end


def test_a_session_end_gives_what_finish_gives_and_ends_the_processor() -> None:
    readings = _readings()[:CUT]
    ended, finished = AthleteProcessor("ann", SETTINGS), AthleteProcessor("ann", SETTINGS)
    for r in readings:
        assert repr(ended.process(r)) == repr(finished.process(r))
    assert not ended.ended
    out = ended.process(session_end(readings[-1]))
    assert ended.ended
    assert repr(out) == repr(finished.finish())
    final = _final(out)
    distance = final.values["distance_m"]
    assert isinstance(distance, float)
    assert distance > 500  # real totals
    assert any(o for o in out if not isinstance(o, Metric))  # the open segment was closed


def test_an_end_before_any_data_gives_nothing() -> None:
    processor = AthleteProcessor("ann", SETTINGS)
    assert processor.process(session_end(_readings()[0])) == []
    assert processor.ended


def test_the_pipeline_starts_a_new_processor_after_an_end() -> None:
    readings = _readings()
    asked: list[str] = []
    history = _asking_history(asked)

    prefixes = iter(["s1", "s2"])
    pipeline = Pipeline(SETTINGS, history=history, id_prefix=lambda _athlete: next(prefixes))
    out = [o for r in (*readings[:CUT], session_end(readings[CUT - 1]), *readings[CUT:])
           for o in pipeline.process(r)]
    out += pipeline.finish()
    first = AthleteProcessor("ann", SETTINGS, id_prefix="s1")
    second = AthleteProcessor("ann", SETTINGS, id_prefix="s2")
    reference = [o for r in readings[:CUT] for o in first.process(r)] + first.finish()
    reference += [o for r in readings[CUT:] for o in second.process(r)] + second.finish()
    assert repr(out) == repr(reference)
    assert asked == ["ann", "ann"]  # the second session read the history again


def test_an_end_stamped_late_still_ends_the_session() -> None:
    """An end stamped with an older record than the newest (another sensor's, say) is not
    dropped as late data: the session must end, with what finish() gives."""
    readings = _readings()[:CUT]
    ended, finished = AthleteProcessor("ann", SETTINGS), AthleteProcessor("ann", SETTINGS)
    for r in readings:
        ended.process(r)
        finished.process(r)
    late = session_end(readings[CUT - 30])
    assert late.time_mono_s < readings[-1].time_mono_s - SETTINGS.late_tolerance_s
    out = ended.process(late)
    assert ended.ended
    assert repr(out) == repr(finished.finish())
    assert ended.counters.late_dropped == 0


def test_an_end_with_no_session_makes_no_processor() -> None:
    """Two ends in a row, or an end before any data: nothing to end, nothing made."""
    readings = _readings()
    asked: list[str] = []
    history = _asking_history(asked)

    pipeline = Pipeline(SETTINGS, history=history)
    assert pipeline.process(session_end(readings[0])) == []
    assert not pipeline.athletes
    for r in readings[:50]:
        pipeline.process(r)
    assert _final(pipeline.process(session_end(readings[49])))
    assert pipeline.process(session_end(readings[49])) == []
    assert not pipeline.athletes
    assert asked == ["ann"]


def test_the_worker_step_skips_an_end_with_no_session() -> None:
    from test_snapshot import DictState

    from stridewatch.worker import AthleteStep

    readings = _readings()
    step, state = AthleteStep(SETTINGS), DictState()
    for r in readings[:50]:
        step(encode_reading(r).payload, state)
    assert _final(step(encode_reading(session_end(readings[49])).payload, state))
    second_end = session_end(readings[48])  # another payload: not a repeat of the first end
    assert step(encode_reading(second_end).payload, state) == []
    assert (step.counters.idle_ends, step.counters.new_sessions) == (1, 0)
    step(encode_reading(readings[50]).payload, state)
    assert step.counters.new_sessions == 1


async def test_the_recorder_closes_the_session_at_once_and_opens_the_next(
    tmp_path: Path,
) -> None:
    readings = _readings()
    async with AsyncStore.open(tmp_path / "s.sqlite") as store:
        recorder = SessionRecorder(store, "remote", SETTINGS)
        for r in readings[:CUT]:
            recorder.handle(r)
        out = recorder.handle(session_end(readings[CUT - 1]))
        (closed,) = store.store.sessions("ann")
        # Closed while the run goes on, with the summary the next session's baseline reads.
        assert closed.end_utc == readings[CUT - 1].time_utc == _final(out).time_utc
        summary = store.store.session_summary(closed.id)
        assert summary["distance_m"] == _final(out).values["distance_m"]
        for r in readings[CUT:]:
            recorder.handle(r)
        recorder.finish()
        await store.flush()
        recorder.close_sessions()
        assert [a for a, _sid in recorder.all_sessions()] == ["ann", "ann"]
    with SessionStore.open(tmp_path / "s.sqlite") as s:
        rows = s.sessions("ann")
        assert len(rows) == 2
        assert all(row.end_utc is not None for row in rows)
        assert rows[0].id == closed.id
        assert rows[1].start_utc == readings[CUT].time_utc
        assert rows[1].end_utc == readings[-1].time_utc
        stored = list(s.readings(rows[0].id))
        assert len(stored) == CUT + 1  # the end is stored with the session it ended
        assert len(list(s.readings(rows[1].id))) == len(readings) - CUT


async def test_the_recorder_ignores_an_end_with_no_open_session(tmp_path: Path) -> None:
    readings = _readings()
    async with AsyncStore.open(tmp_path / "s.sqlite") as store:
        recorder = SessionRecorder(store, "remote", SETTINGS)
        assert recorder.handle(session_end(readings[0])) == []
        for r in readings[:10]:
            recorder.handle(r)
        recorder.handle(session_end(readings[9]))
        assert recorder.handle(session_end(readings[9])) == []  # a repeated end: no session
        assert len(store.store.sessions("ann")) == 1


# -- a collector restarted without ending its sessions (crash, reboot) --------------------------

REBOOT_GAP_S = 120.0
"""The gateway is back two minutes later, its monotonic clock counting from boot again."""


def _rebooted(readings: Sequence[Reading]) -> list[Reading]:
    """``readings`` as a rebooted gateway stamps them: UTC goes on (after the outage), the
    monotonic clock starts again near zero (50 s after boot)."""
    shift = readings[0].time_mono_s - 50.0
    return [dataclasses.replace(r, time_mono_s=r.time_mono_s - shift,
                                time_utc=r.time_utc + timedelta(seconds=REBOOT_GAP_S))
            for r in readings]


def test_a_restarted_collector_clock_ends_the_session_and_begins_the_next() -> None:
    """Before, every record of a rebooted gateway was dropped as late (its monotonic time is
    behind the session's) until its clock caught up: hours of data lost."""
    readings = _readings()
    after = _rebooted(readings[CUT:])
    pipeline = Pipeline(SETTINGS)
    out = [o for r in (*readings[:CUT], *after) for o in pipeline.process(r)]
    first, second = AthleteProcessor("ann", SETTINGS), AthleteProcessor("ann", SETTINGS)
    reference = [o for r in readings[:CUT] for o in first.process(r)] + first.finish()
    reference += [o for r in after for o in second.process(r)]
    assert repr(out) == repr(reference)
    assert pipeline.athletes["ann"].counters.late_dropped == 0


def test_late_data_and_another_gateways_sensor_are_not_a_restart() -> None:
    readings = _readings()
    processor = AthleteProcessor("ann", SETTINGS)
    for r in readings[:CUT]:
        processor.process(r)
    resent = readings[CUT - 100]  # the same clock, 100 records ago: late data
    assert not processor.clock_restarted(resent)
    other = dataclasses.replace(_rebooted(readings[CUT:])[0], sensor="another-gateway-strap")
    assert not processor.clock_restarted(other)  # no earlier record of that sensor to compare
    assert processor.clock_restarted(_rebooted(readings[CUT:])[0])
    assert not processor.clock_restarted(session_end(_rebooted(readings[CUT:])[0]))


def test_a_processor_pickled_before_clock_tracking_loads_and_tracks() -> None:
    readings = _readings()
    processor = AthleteProcessor("ann", SETTINGS)
    for r in readings[:CUT]:
        processor.process(r)
    del processor.__dict__["_clocks"]  # as pickled by the previous release
    loaded = pickle.loads(pickle.dumps(processor))
    assert not loaded.clock_restarted(_rebooted(readings[CUT:])[0])  # nothing known yet
    for r in readings[CUT:CUT + 10]:  # both sensors (strap and footpod) again
        loaded.process(r)
    assert loaded.clock_restarted(_rebooted(readings[CUT + 10:])[0])


async def test_the_recorder_closes_a_restarted_collectors_session_and_opens_the_next(
    tmp_path: Path,
) -> None:
    readings = _readings()
    after = _rebooted(readings[CUT:])
    async with AsyncStore.open(tmp_path / "s.sqlite") as store:
        recorder = SessionRecorder(store, "remote", SETTINGS)
        for r in readings[:CUT]:
            recorder.handle(r)
        assert _final(recorder.handle(after[0]))  # the first session's totals
        for r in after[1:]:
            recorder.handle(r)
        recorder.finish()
        await store.flush()
        recorder.close_sessions()
    with SessionStore.open(tmp_path / "s.sqlite") as s:
        first, second = s.sessions("ann")
        assert first.end_utc == readings[CUT - 1].time_utc  # ended where its data ended
        assert second.start_utc == after[0].time_utc
        assert len(list(s.readings(first.id))) == CUT + 1  # with the end
        assert len(list(s.readings(second.id))) == len(after)


def test_the_worker_step_ends_a_restarted_collectors_session_also_across_a_restore() -> None:
    from test_snapshot import DictState

    from stridewatch.worker import AthleteStep, session_id

    readings = _readings()[:1200]
    after = _rebooted(readings[CUT:])
    state = DictState()
    steps = [AthleteStep(SETTINGS)]
    out: list[str] = []
    for i, r in enumerate((*readings[:CUT], *after)):
        if i in (CUT, CUT + 1, CUT + 70):  # a worker dies right at the restart, and later
            steps.append(AthleteStep(SETTINGS))
        out += [repr(o) for o in steps[-1](encode_reading(r).payload, state)]
    first = AthleteProcessor("ann", SETTINGS, id_prefix=session_id(readings[0]))
    second = AthleteProcessor("ann", SETTINGS, id_prefix=session_id(after[0]))
    reference = [o for r in readings[:CUT] for o in first.process(r)] + first.finish()
    reference += [o for r in after for o in second.process(r)]
    assert out == [repr(o) for o in reference]
    assert sum(s.counters.restarted_clocks for s in steps) == 1
    assert sum(s.counters.new_sessions for s in steps) == 1
