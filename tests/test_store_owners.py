"""Sessions of a killed process are closed (interrupted) by the next opener; sessions of a live
recorder never are; two processes record into one store at once and both finish consistently.

The recorders are this file run as a script (``python tests/test_store_owners.py --record DB
ATHLETE N`` / ``--hold DB``): real OS processes, each with its own time limit
(:data:`CHILD_MAX_S`), the parent waiting with bounded timeouts on their output lines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from test_store_crash import T0, make_reading

from ingest.records import Reading
from outputs.store import AsyncStore, SessionStore
from outputs.store.owners import owner_alive, owners_dir

REPO = Path(__file__).resolve().parent.parent
CHILD_MAX_S = 30.0  # a child waiting for its parent gives up after this long
WAIT_S = 60.0  # the parent's bound on a child's answer


def reading(athlete: str, i: int) -> Reading:
    return dataclasses.replace(make_reading(i), athlete=athlete)


def _wait_stdin() -> str:
    ready, _, _ = select.select([sys.stdin], [], [], CHILD_MAX_S)
    return sys.stdin.readline() if ready else ""


async def child_record(db: Path, athlete: str, n: int) -> None:
    """Create a session, say ready, wait for "go", record ``n`` readings, end, say done."""
    async with AsyncStore.open(db, batch_interval_s=0.01, batch_size=200) as out:
        sid = out.store.create_session(athlete, T0, "two-recorders")
        print(f"ready {sid}", flush=True)
        if _wait_stdin().strip() != "go":
            return
        for start in range(0, n, 100):
            out.extend(sid, [reading(athlete, i) for i in range(start, min(n, start + 100))])
            await out.flush()  # interleave commits with the other recorder
        out.store.end_session(sid, T0 + timedelta(hours=1))
    print("done", flush=True)


async def child_hold(db: Path) -> None:
    """Record 10 readings, say ready, keep the session open until stdin closes."""
    async with AsyncStore.open(db) as out:
        sid = out.store.create_session("Zoë", T0, "hold")
        out.extend(sid, [reading("Zoë", i) for i in range(10)])
        await out.flush()
        print(f"ready {sid}", flush=True)
        _wait_stdin()
        out.store.end_session(sid, T0 + timedelta(hours=1))


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the child gives up after CHILD_MAX_S
    assert line.startswith("ready "), f"child said {line!r}"
    return line.split()[1]


def _reap(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT_S)  # closes the pipes


# ------------------------------------------------------------------------------ in process


def test_open_leaves_a_live_recorders_session_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SessionStore.open(path) as recorder:
        sid = recorder.create_session("Zoë", T0, "ble")
        recorder.write(sid, [reading("Zoë", i) for i in range(3)])
        token = recorder._owner.token  # internal: the lock file of this recorder
        assert owner_alive(path, token)
        with SessionStore.open(path) as reader:  # another store, same process: flock sees it
            row = reader.session(sid)
            assert row is not None
            assert row.end_utc is None
            assert not row.interrupted
    assert not owners_dir(path).exists()  # the recorder removed its lock file on close
    assert not owner_alive(path, token)


def test_session_closed_without_end_is_interrupted_at_its_last_record(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SessionStore.open(path) as s:
        with_records = s.create_session("Zoë", T0, "ble")
        s.write(with_records, [reading("Zoë", i) for i in (0, 5, 2)])
        empty = s.create_session("Юлия", T0 + timedelta(minutes=1), "ble")
        ended = s.create_session("Ana", T0, "ble")
        s.end_session(ended, T0 + timedelta(hours=2))
    with SessionStore.open(path) as s:
        rows = {r.id: r for r in s.sessions()}
    assert rows[with_records].interrupted
    assert rows[with_records].end_utc == reading("Zoë", 5).time_utc  # the latest record
    assert rows[empty].interrupted
    assert rows[empty].end_utc == T0 + timedelta(minutes=1)  # no record: its start
    assert not rows[ended].interrupted
    assert rows[ended].end_utc == T0 + timedelta(hours=2)


def test_opening_without_closing_interrupted_sessions(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SessionStore.open(path) as s:
        sid = s.create_session("Zoë", T0, "ble")
    with SessionStore.open(path, close_interrupted=False) as s:
        row = s.session(sid)
        assert row is not None
        assert row.end_utc is None
        assert s.close_interrupted_sessions() == [sid]


# ------------------------------------------------------------------------------ processes


def test_live_recorder_keeps_its_session_open_until_killed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    proc = _start("--hold", str(db))
    try:
        sid = _ready(proc)
        with SessionStore.open(db) as s:  # while the recorder lives
            row = s.session(sid)
            assert row is not None
            assert row.end_utc is None
            assert not row.interrupted
        proc.kill()
        proc.communicate(timeout=WAIT_S)
    finally:
        _reap(proc)
    with SessionStore.open(db) as s:  # the next command after the SIGKILL
        row = s.session(sid)
        assert row is not None
        assert row.interrupted
        assert row.end_utc == reading("Zoë", 9).time_utc
        assert row.total == 10
        assert s.integrity_check() == "ok"


def test_two_processes_record_into_one_store_at_once(tmp_path: Path) -> None:
    """Both finish, each session complete and ended (not interrupted), the store intact."""
    db = tmp_path / "s.db"
    SessionStore.open(db).close()
    n = 3_000
    procs = [_start("--record", str(db), name, str(n)) for name in ("Ana", "Ben")]
    try:
        sids = [_ready(p) for p in procs]  # both sessions exist before either records
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=WAIT_S)[0] for p in procs]
    finally:
        _reap(*procs)
    assert [p.returncode for p in procs] == [0, 0]
    assert all(out.endswith("done\n") for out in outs)
    with SessionStore.open(db) as s:
        assert s.integrity_check() == "ok"
        for sid, name in zip(sids, ("Ana", "Ben"), strict=True):
            row = s.session(sid)
            assert row is not None
            assert row.end_utc == T0 + timedelta(hours=1)
            assert not row.interrupted
            assert row.total == n
            assert list(s.readings(sid)) == [reading(name, i) for i in range(n)]
        seqs = [item.seq for item in s.pending("influx", 2 * n + 1)]
        assert len(seqs) == 2 * n
        assert seqs == sorted(set(seqs))
        owners = {item.session_id for item in s.pending("influx", 2 * n)}
        assert owners == set(sids)


if __name__ == "__main__" and sys.argv[1:2] == ["--record"]:
    asyncio.run(child_record(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
elif __name__ == "__main__" and sys.argv[1:2] == ["--hold"]:
    asyncio.run(child_hold(Path(sys.argv[2])))
