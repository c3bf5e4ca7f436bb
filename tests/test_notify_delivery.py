"""Notification delivery with real parts: a real SessionStore, real Apprise, and a loopback
HTTP receiver as the end of ``json://`` and ``form://`` URLs (tests/http_receiver.py)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from http_receiver import HttpReceiver, ReceivedRequest, _free_port

from outputs.notify import (
    Notifier,
    NotifyConfigError,
    NotifyDelivery,
    NotifyTarget,
    check_notify_url,
)
from outputs.notify.sender import is_permanent
from outputs.store import SessionStore
from processing.records import Alert, AlertKind, Severity

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
ID = re.compile(r"s\d:\w+:\w+:\d+")
FAST = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1, "poll_interval_s": 0.05,
        "rng": random.Random(7)}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore.open(tmp_path / "s.sqlite") as s:
        yield s


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as r:
        yield r


def write_alerts(store: SessionStore, n: int, *, athletes: int = 3, same_kind: bool = False,
                 prefix: str = "s1") -> list[Alert]:
    """``n`` alerts spread over athletes and kinds (no cooldown collisions unless same_kind)."""
    kinds = list(AlertKind)
    out: list[Alert] = []
    sids: dict[str, str] = {}
    for i in range(n):
        athlete = f"A{i % athletes}"
        kind = AlertKind.HR_SURGE if same_kind else kinds[(i // athletes) % len(kinds)]
        a = Alert(
            id=f"{prefix}:{athlete}:{kind.value}:{i + 1}", athlete=athlete,
            time_utc=T0 + timedelta(seconds=i), time_mono_s=float(i), kind=kind,
            severity=Severity.WARNING, value=24.0, threshold=20.0,
            message="HR rose 24 bpm in 30 s (to 171 bpm)",
        )  # fmt: skip
        if athlete not in sids:
            sids[athlete] = store.create_session(athlete, T0, "test")
        store.write(sids[athlete], [a])
        out.append(a)
    return out


def ids_of(requests: list[ReceivedRequest]) -> Counter[str]:
    return Counter(i for r in requests for i in ID.findall(r.text()))


async def until(cond: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Wait (bounded, real time) for ``cond``; polls the loop, never used for ordering."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_each_stored_alert_reaches_json_and_form_once_with_id_and_text(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    alerts = write_alerts(store, 9)
    targets = [NotifyTarget.create("j", receiver.url("json", "/j")),
               NotifyTarget.create("f", receiver.url("form", "/f"))]
    async with Notifier(store, targets, **FAST) as notifier:
        assert await notifier.drain(20.0)
        status = notifier.status()
    wanted = Counter(a.id for a in alerts)
    for path, ctype in (("/j", "application/json"), ("/f", "x-www-form-urlencoded")):
        got = [r for r in receiver.snapshot() if r.path == path]
        assert all(ctype in r.headers["Content-Type"] for r in got)
        assert ids_of(got) == wanted  # exactly once each
        assert any("A0: HR +24 bpm in 30 s, now 171" in r.text() for r in got)
    assert {r.json()["type"] for r in receiver.snapshot() if r.path == "/j"} == {"warning"}
    for name in ("j", "f"):
        assert status[name]["ever_ok"]
        assert status[name]["sent"] == 9
        assert status[name]["backlog"] == 0
        assert status[name]["last_error"] is None
        assert store.backlog(f"notify:{name}", kinds=("alert",)) == 0


async def test_receiver_down_then_back_every_alert_arrives_duplicates_same_id(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    receiver.stop()
    first = write_alerts(store, 4)
    target = NotifyTarget.create("coach", receiver.url("json"))
    async with Notifier(store, [target], max_attempts=1000, **FAST) as notifier:
        delivery = notifier.deliveries["coach"]
        assert await until(lambda: delivery.status.failed_attempts >= 3)
        assert not delivery.status.ever_ok
        assert "127.0.0.1" in (delivery.status.last_error or "")
        assert notifier.problems()
        assert "never got through" in notifier.problems()[0]
        receiver.start()  # the same port
        second = write_alerts(store, 3, prefix="s2")
        notifier.notify()
        assert await notifier.drain(30.0)
        assert delivery.status.failures == 0
        assert delivery.status.ever_ok
        assert notifier.problems() == []
    got = ids_of(receiver.snapshot())
    assert set(got) == {a.id for a in first + second}
    assert store.dead_letters("notify:coach") == []


async def test_a_dead_target_does_not_stall_another(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    dead_port = _free_port()  # nothing listens there
    dead = NotifyTarget.create("dead", f"json://user:s3cr3tpassw0rd@127.0.0.1:{dead_port}/x")
    live = NotifyTarget.create("live", receiver.url("json"))
    alerts = write_alerts(store, 6)
    async with Notifier(store, [dead, live], max_attempts=1000, **FAST) as notifier:
        assert await notifier.deliveries["live"].drain(20.0)
        assert ids_of(receiver.snapshot()) == Counter(a.id for a in alerts)
        dead_status = notifier.deliveries["dead"].status
        assert not dead_status.ever_ok
        assert dead_status.backlog == 6
        problems = notifier.problems()
        assert len(problems) == 1
        assert f"127.0.0.1:{dead_port}" in problems[0]
        assert not await notifier.deliveries["dead"].drain(0.2)
        text = repr(notifier.status()) + repr(problems)
        assert "s3cr3tpassw0rd" not in text
    assert store.backlog("notify:dead", kinds=("alert",)) == 6  # they wait in the store


async def test_undeliverable_alerts_go_to_dead_letters_after_the_limit(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    receiver.status = 500
    alerts = write_alerts(store, 3)
    target = NotifyTarget.create("coach", receiver.url("json"))
    async with Notifier(store, [target], max_attempts=3, **FAST) as notifier:
        assert await notifier.drain(20.0)
        status = notifier.deliveries["coach"].status
    letters = store.dead_letters("notify:coach")
    assert [d.count for d in letters] == [1, 1, 1]
    assert all("after 3 attempt(s)" in d.message for d in letters)
    assert all(a.id in d.payload for a, d in zip(alerts, letters, strict=True))
    assert status.dead_lettered == 3
    assert status.sent == 0
    assert ids_of(receiver.snapshot()) == Counter({a.id: 3 for a in alerts})
    assert store.backlog("notify:coach", kinds=("alert",)) == 0


async def test_a_flood_becomes_one_alert_and_one_summary(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    alerts = write_alerts(store, 5, athletes=1, same_kind=True)
    target = NotifyTarget.create("coach", receiver.url("json"), cooldown_s=120.0)
    other = NotifyTarget.create("ben", receiver.url("json", "/ben"), athletes=["Ben"])
    async with Notifier(store, [target, other], **FAST) as notifier:
        assert await notifier.drain(20.0)  # the end of a run sends the held summary
    got = [r for r in receiver.snapshot() if r.path == "/hook"]
    assert [r.json()["title"] for r in got] == [
        "A0: HR +24 bpm in 30 s, now 171", "A0: 4 more HR surges in the last 2 min"]
    assert ids_of(got) == Counter(a.id for a in alerts)
    assert not [r for r in receiver.snapshot() if r.path == "/ben"]  # filtered out


async def test_held_summary_goes_out_without_a_drain_when_its_cooldown_ends(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    sid = store.create_session("Ana", T0, "test")
    for n, t in ((1, 0.0), (2, 0.01)):
        store.write(sid, [Alert(
            id=f"s1:Ana:hr_surge:{n}", athlete="Ana", time_utc=T0, time_mono_s=t,
            kind=AlertKind.HR_SURGE, severity=Severity.WARNING, value=24.0, threshold=20.0,
            message="HR rose 24 bpm in 30 s (to 171 bpm)")])  # fmt: skip
    target = NotifyTarget.create("coach", receiver.url("json"), cooldown_s=0.5)
    async with Notifier(store, [target], **FAST):
        assert await asyncio.to_thread(
            receiver.wait_for, lambda rs: any("1 more HR surge" in r.text() for r in rs), 20.0)


def test_a_url_apprise_cannot_use_is_refused_without_its_secret(store: SessionStore) -> None:
    target = NotifyTarget.create("x", "nosuchservice://user:hunter2secret@example.org/t")
    with pytest.raises(NotifyConfigError) as info:
        NotifyDelivery(store, target)
    assert "hunter2secret" not in str(info.value)
    assert "nosuchservice://" in str(info.value)


async def test_a_permanent_refusal_is_dead_lettered_at_once(
    store: SessionStore, receiver: HttpReceiver
) -> None:
    receiver.status = 400
    alerts = write_alerts(store, 2)
    target = NotifyTarget.create("coach", receiver.url("json"))
    async with Notifier(store, [target], max_attempts=50, **FAST) as notifier:
        assert await notifier.drain(20.0)
    letters = store.dead_letters("notify:coach")
    assert [d.count for d in letters] == [1, 1]
    assert all(d.message.startswith("refused by json://127.0.0.1") for d in letters)
    assert all("error=400" in d.message for d in letters)
    assert ids_of(receiver.snapshot()) == Counter(a.id for a in alerts)  # one attempt each


@pytest.mark.parametrize(
    ("code", "permanent"), [(400, True), (413, True), (401, False), (404, False), (429, False),
                            (500, False), (503, False)],
)  # fmt: skip
def test_which_refusals_are_permanent(code: int, permanent: bool) -> None:
    assert is_permanent(f"Failed to send JSON POST notification: X., error={code}.") is permanent
    assert not is_permanent("A Connection error occurred sending JSON notification to h.")


def test_delivers_and_drains_on_the_demo_virtual_clock(tmp_path: Path) -> None:
    """The demo runs on a virtual clock (time jumps when the loop is idle): backoff waits and
    drain are on real time, so a receiver down for a moment costs no dead letter."""
    from ingest.virtual.timewarp import run

    with SessionStore.open(tmp_path / "v.sqlite") as store, HttpReceiver() as receiver:
        receiver.stop()
        alerts = write_alerts(store, 5)
        target = NotifyTarget.create("coach", receiver.url("json"))

        async def scenario() -> bool:
            async with Notifier(store, [target], max_attempts=3, backoff_initial_s=0.2,
                                backoff_max_s=0.2, rng=random.Random(3)) as notifier:
                delivery = notifier.deliveries["coach"]
                assert await until(lambda: delivery.status.failed_attempts >= 1)
                # a virtual 10 min pass while the service is down: no attempt is spent on them
                await asyncio.sleep(600.0)
                assert delivery.status.failed_attempts < 3
                receiver.start()
                return await notifier.drain(20.0)

        assert run(scenario(), speed=None)
        assert store.dead_letters("notify:coach") == []
        assert set(ids_of(receiver.snapshot())) == {a.id for a in alerts}


def test_check_notify_url_for_config_validation() -> None:
    assert check_notify_url("json://127.0.0.1:9/hook") == "json://127.0.0.1:9/hook"
    with pytest.raises(NotifyConfigError) as info:
        check_notify_url("nope://tok3nsecret@host")
    assert "tok3nsecret" not in str(info.value)
