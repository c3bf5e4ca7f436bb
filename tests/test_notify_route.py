"""Notification routing (pure): filters, cooldowns and summaries, the words of a message."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from outputs.notify import (
    NotifyTarget,
    Router,
    TargetRouter,
    alert_message,
    redact_url,
    summary_message,
)
from processing.records import Alert, AlertKind, Severity

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)

MESSAGES = {
    AlertKind.HR_SURGE: (24.4, 20.0, "HR rose 24 bpm in 30 s (to 171 bpm)"),
    AlertKind.HR_CEILING: (181.0, 178.0, "HR above 178 bpm for 30 s (now 181 bpm)"),
    AlertKind.EARLY_SURGE: (
        38.0, 35.0,
        "HR rose 38 bpm in the first 55 s of the run (to 150 bpm; no history yet)",
    ),
    AlertKind.LOW_READINESS: (21.0, 30.0, "Resting RMSSD 21 ms is 52 % of your baseline."),
    AlertKind.SENSOR_LOST: (12.0, 10.0, "Sensor C0:FF:EE:00:00:01 lost: no data for 12 s"),
    AlertKind.NO_CONTACT: (
        6.0, 5.0,
        "Strap C0:FF:EE:00:00:01 has no skin contact for 6 s: moisten the electrodes or "
        "tighten the strap",
    ),
    AlertKind.LOW_BATTERY: (9.0, 10.0, "Battery of C0:FF:EE:00:00:01 at 9 % (below 10 %)"),
}  # fmt: skip


def alert(
    kind: AlertKind = AlertKind.HR_SURGE,
    *,
    athlete: str = "Ana",
    t: float = 0.0,
    n: int = 1,
    severity: Severity = Severity.WARNING,
) -> Alert:
    value, threshold, message = MESSAGES[kind]
    return Alert(
        id=f"s1:{athlete}:{kind.value}:{n}", athlete=athlete,
        time_utc=T0 + timedelta(seconds=t), time_mono_s=t, kind=kind, severity=severity,
        value=value, threshold=threshold, message=message,
    )  # fmt: skip


def target(**kw: object) -> NotifyTarget:
    return NotifyTarget.create("coach", "json://127.0.0.1:1/hook", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- words


def test_surge_reads_at_a_glance_with_id_and_type() -> None:
    m = alert_message(alert())
    assert m.title == "Ana: HR +24 bpm in 30 s, now 171"
    assert "alert id: s1:Ana:hr_surge:1" in m.body
    assert m.notify_type == "warning"
    assert m.alert_ids == ("s1:Ana:hr_surge:1",)


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        (AlertKind.HR_CEILING, "Ana: HR above 178, now 181"),
        (AlertKind.EARLY_SURGE, "Ana: HR +38 bpm in the first 55 s, now 150"),
        (AlertKind.LOW_READINESS, "Ana: low readiness today (RMSSD 21 ms, below 30): go easy"),
        (AlertKind.SENSOR_LOST, "Ana: sensor C0:FF:EE:00:00:01 lost, no data for 12 s"),
        (AlertKind.NO_CONTACT,
         "Ana: strap C0:FF:EE:00:00:01 has no skin contact: wet the electrodes"),
        (AlertKind.LOW_BATTERY, "Ana: battery C0:FF:EE:00:00:01 at 9 %"),
    ],
)  # fmt: skip
def test_every_kind_has_words(kind: AlertKind, title: str) -> None:
    a = alert(kind)
    m = alert_message(a)
    assert m.title == title
    assert m.body.startswith(a.message)
    assert a.id in m.body


@pytest.mark.parametrize(
    ("severity", "notify_type"),
    [(Severity.INFO, "info"), (Severity.WARNING, "warning"), (Severity.CRITICAL, "failure")],
)
def test_severity_maps_to_apprise_notify_type(severity: Severity, notify_type: str) -> None:
    assert alert_message(alert(severity=severity)).notify_type == notify_type


def test_summary_counts_spans_and_lists_ids() -> None:
    held = [alert(t=10.0 * i, n=i + 2) for i in range(3)]
    m = summary_message(held, 120.0)
    assert m.title == "Ana: 3 more HR surges in the last 2 min"
    assert m.summary
    assert all(a.id in m.body for a in held)
    assert m.alert_ids == tuple(a.id for a in held)
    one = summary_message(held[:1], 30.0)
    assert one.title == "Ana: 1 more HR surge in the last 30 s"
    many = summary_message([alert(t=float(i), n=i) for i in range(1, 40)], 120.0)
    assert "s1:Ana:hr_surge:1," in many.body
    assert "s1:Ana:hr_surge:39" in many.body
    assert "29 more" in many.body


# ---------------------------------------------------------------------------- settings


def test_target_url_is_secret_and_bad_values_are_named() -> None:
    t = NotifyTarget.create("coach", "tgram://123456789:abcdefghijklmnop/42")
    assert "abcdefghijklmnop" not in repr(t)
    assert t.output == "notify:coach"
    assert isinstance(t.url, SecretStr)
    with pytest.raises(ValueError, match="known kinds"):
        target(kinds=["hr_spike"])
    with pytest.raises(ValueError, match="unknown severity"):
        target(min_severity="loud")
    with pytest.raises(ValueError, match="printable"):
        NotifyTarget.create("a\nb", "json://x")
    assert NotifyTarget.create("Coach phone", "json://x").output == "notify:Coach phone"
    with pytest.raises(ValueError, match="empty"):
        NotifyTarget.create("a", " ")
    assert "abcdefghijklmnop" not in redact_url("tgram://123456789:abcdefghijklmnop/42")


# ---------------------------------------------------------------------------- filters


def test_filters_athletes_kinds_and_min_severity() -> None:
    t = target(athletes=["Ana"], kinds=["hr_surge", "sensor_lost"], min_severity="warning")
    assert t.accepts(alert())
    assert not t.accepts(alert(athlete="Ben"))
    assert not t.accepts(alert(AlertKind.LOW_BATTERY))
    assert not t.accepts(alert(severity=Severity.INFO))
    assert t.accepts(alert(AlertKind.SENSOR_LOST, severity=Severity.CRITICAL))
    everyone = target()
    assert all(everyone.accepts(alert(k, severity=Severity.INFO)) for k in AlertKind)


def test_router_sends_each_target_only_its_alerts() -> None:
    coach = NotifyTarget.create("coach", "json://h/c")
    ana = NotifyTarget.create("ana", "json://h/a", athletes=["Ana"], kinds=["hr_surge"])
    router = Router([coach, ana])
    routed = router.route(alert())
    assert set(routed) == {"coach", "ana"}
    routed = router.route(alert(AlertKind.LOW_BATTERY, athlete="Ben"))
    assert set(routed) == {"coach"}
    with pytest.raises(ValueError, match="two notify targets"):
        Router([coach, coach])


# ---------------------------------------------------------------------------- rate limits


def test_cooldown_holds_a_flood_and_sends_one_summary_when_it_ends() -> None:
    r = TargetRouter(target(cooldown_s=120.0))
    assert [m.title for m in r.offer(alert(t=0.0, n=1))] == ["Ana: HR +24 bpm in 30 s, now 171"]
    for i in range(2, 5):
        assert r.offer(alert(t=10.0 * i, n=i)) == []
    assert r.held == 3
    assert r.suppressed == 3
    assert r.next_due_s("Ana") == 120.0
    assert r.due(119.9, "Ana") == []
    assert r.due(200.0, "Ben") == []  # another athlete's clock says nothing about Ana
    (summary,) = r.due(120.0, "Ana")
    assert summary.title == "Ana: 3 more HR surges in the last 2 min"
    assert summary.alert_ids == ("s1:Ana:hr_surge:2", "s1:Ana:hr_surge:3", "s1:Ana:hr_surge:4")
    # the summary opened the next cooldown (to 240 s): an alert at 230 s is held as well
    assert r.offer(alert(t=230.0, n=5)) == []
    assert r.flush()[0].alert_ids == ("s1:Ana:hr_surge:5",)
    assert [m.alert_ids for m in r.offer(alert(t=1000.0, n=6))] == [("s1:Ana:hr_surge:6",)]


def test_cooldown_is_per_athlete_and_kind() -> None:
    r = TargetRouter(target())
    assert r.offer(alert(t=0.0))
    assert r.offer(alert(t=1.0, athlete="Ben"))
    assert r.offer(alert(AlertKind.HR_CEILING, t=2.0))
    assert not r.offer(alert(t=3.0, n=2))


def test_zero_cooldown_sends_everything() -> None:
    r = TargetRouter(target(cooldown_s=0.0))
    assert all(len(r.offer(alert(t=0.0, n=i))) == 1 for i in range(5))


def test_a_summary_due_is_sent_before_the_alert_that_reveals_it() -> None:
    r = TargetRouter(target(cooldown_s=60.0))
    r.offer(alert(t=0.0, n=1))
    r.offer(alert(t=5.0, n=2))
    out = r.offer(alert(t=500.0, n=3))
    assert [m.summary for m in out] == [True, False]
    assert out[0].alert_ids == ("s1:Ana:hr_surge:2",)


_events = st.lists(
    st.tuples(
        st.floats(0.0, 30.0),  # gap to the previous alert (event s)
        st.sampled_from(["Ana", "Ben"]),
        st.sampled_from([AlertKind.HR_SURGE, AlertKind.SENSOR_LOST, AlertKind.LOW_BATTERY]),
        st.sampled_from(list(Severity)),
    ),
    max_size=60,
)


@given(_events, st.sampled_from([0.0, 30.0, 120.0]))
def test_every_accepted_alert_is_in_exactly_one_message_and_sends_are_spaced(
    events: list[tuple[float, str, AlertKind, Severity]], cooldown: float
) -> None:
    t_target = target(cooldown_s=cooldown, kinds=["hr_surge", "sensor_lost"],
                      min_severity="warning")
    r = TargetRouter(t_target)
    t = 0.0
    counts: Counter[str] = Counter()
    accepted: set[str] = set()
    sent_at: dict[tuple[str, AlertKind], list[float]] = {}
    for i, (gap, athlete, kind, severity) in enumerate(events):
        t += gap
        a = alert(kind, athlete=athlete, t=t, n=i, severity=severity)
        if t_target.accepts(a):
            accepted.add(a.id)
        for m in r.offer(a):
            counts.update(m.alert_ids)
            if not m.summary:
                sent_at.setdefault((m.athlete, m.kind), []).append(t)
    for m in r.flush():
        counts.update(m.alert_ids)
    assert set(counts) == accepted
    assert all(c == 1 for c in counts.values())
    for times in sent_at.values():
        assert all(b - a >= cooldown for a, b in itertools.pairwise(times))
