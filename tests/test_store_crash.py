"""Acceptance: a writer killed with SIGKILL loses nothing it reported committed.

The child is this file run as a script (``python tests/test_store_crash.py --child DB SECONDS``):
it writes synthetic heart-rate and footpod readings through :class:`AsyncStore` with the
default batching and prints ``committed N`` (flushed) after every commit. The parent kills it
mid-run, reopens the store and checks every reported reading is there, exactly, that the
database is intact, and that the session can be resumed and ended. The child stops by itself
after SECONDS even if nobody kills it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.records import Contact, HeartRateReading, StrideReading
from outputs.store import AsyncStore, SessionStore
from outputs.store.owners import owners_dir

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
CHUNK = 250  # readings the child adds per event-loop turn (~50,000 readings/s offered)
CHILD_MAX_S = 30.0  # the child's own time limit, in case the parent never kills it


def make_reading(i: int) -> HeartRateReading | StrideReading:
    """Reading number ``i`` of the synthetic run (deterministic, exact values)."""
    t = T0 + timedelta(microseconds=123_457 * i)
    mono = 5000.0 + 0.123457 * i
    if i % 2 == 0:
        return HeartRateReading(
            athlete="Zoë", sensor="C0:FF:EE:00:00:01", time_utc=t, time_mono_s=mono,
            heart_rate_bpm=100 + i % 90, rr_intervals_s=((400 + i % 300) / 1024,),
            beat_times_mono_s=(mono - 0.01,), contact=Contact.DETECTED,
            energy_kj=i if i % 20 == 0 else None,
            raw=bytes([0x16, 100 + i % 90]) + (400 + i % 300).to_bytes(2, "little"),
        )  # fmt: skip
    return StrideReading(
        athlete="Zoë", sensor="C0:FF:EE:00:00:02", time_utc=t, time_mono_s=mono,
        speed_mps=(256 + i % 1500) / 256, cadence_per_min=80 + i % 20,
        stride_length_m=(100 + i % 80) / 100 if i % 3 else None,
        total_distance_m=i / 10, running=i % 4 == 1,
        raw=bytes([0x07, i % 256, i // 256 % 256, 80 + i % 20]),
    )  # fmt: skip


async def child(db: Path, seconds: float) -> None:
    def on_commit(total: int) -> None:
        print(f"committed {total}", flush=True)

    async with AsyncStore.open(db, on_commit=on_commit) as out:
        sid = out.store.create_session("Zoë", T0, "crash-test")
        print(f"session {sid}", flush=True)
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            out.extend(sid, [make_reading(j) for j in range(i, i + CHUNK)])
            i += CHUNK
            await asyncio.sleep(0.005)
        out.store.end_session(sid, T0 + timedelta(hours=2))
    print("done", flush=True)


def _start_child(db: Path, seconds: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, __file__, "--child", str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _parse(lines: list[str]) -> tuple[str | None, int]:
    """(session id, highest committed count) from complete output lines."""
    sid = None
    committed = 0
    for line in lines:
        if not line.endswith("\n"):
            continue  # a line cut by the kill
        word, _, value = line.strip().partition(" ")
        if word == "session":
            sid = value
        elif word == "committed":
            committed = max(committed, int(value))
    return sid, committed


@pytest.mark.parametrize("kill_after_commits", [3, 8, 20])
def test_sigkill_loses_nothing_committed(tmp_path: Path, kill_after_commits: int) -> None:
    db = tmp_path / "crash" / "sessions.db"
    proc = _start_child(db, CHILD_MAX_S)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while sum(line.startswith("committed") for line in lines) < kill_after_commits:
            line = proc.stdout.readline()
            assert line, f"child ended early: {lines[-3:]}"
            lines.append(line)
        time.sleep(0.0173 * kill_after_commits)  # land somewhere inside a later commit
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    lines += rest.splitlines(keepends=True)
    assert not any(line.startswith("done") for line in lines)
    sid, committed = _parse(lines)
    assert sid is not None
    assert committed > 0

    with SessionStore.open(db) as store:  # opening runs PRAGMA quick_check
        assert store.integrity_check() == "ok"
        stored = list(store.readings(sid))
        assert len(stored) >= committed  # a commit may land after its line was last read
        assert stored == [make_reading(i) for i in range(len(stored))]
        row = store.session(sid)
        assert row is not None
        # the opener closed the dead recorder's session at its last record, marked interrupted
        assert row.end_utc == stored[-1].time_utc
        assert row.interrupted
        assert row.total == len(stored)
        assert not any(owners_dir(db).glob("*.lock"))  # the dead owner's lock file is gone

        # Resume the crashed session, then end it.
        n = len(stored)
        store.write(sid, [make_reading(i) for i in range(n, n + 1_000)])
        store.end_session(sid, T0 + timedelta(hours=1))
    with SessionStore.open(db) as store:
        assert list(store.readings(sid)) == [make_reading(i) for i in range(n + 1_000)]
        row = store.session(sid)
        assert row is not None
        assert row.end_utc == T0 + timedelta(hours=1)
        assert row.counts == {"heart_rate": (n + 1_000 + 1) // 2, "stride": (n + 1_000) // 2}
        assert store.integrity_check() == "ok"


def test_child_stops_by_itself_and_flushes(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    proc = _start_child(db, 0.5)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    lines = out.splitlines(keepends=True)
    assert lines[-1] == "done\n"
    sid, committed = _parse(lines)
    assert sid is not None
    with SessionStore.open(db) as store:
        stored = list(store.readings(sid))
    assert len(stored) == committed > 0  # exit flushed everything
    assert len(stored) % CHUNK == 0
    assert stored == [make_reading(i) for i in range(len(stored))]
    with SessionStore.open(db) as store:
        row = store.session(sid)
        assert row is not None
        assert not row.interrupted  # ended by its recorder


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    asyncio.run(child(Path(sys.argv[2]), float(sys.argv[3])))
