"""SourceSelector: priority, failover, take-back, link events (processing/failover.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.records import LinkEvent, LinkState
from processing.failover import SourceSelector, SourceSwitch

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def link(sensor: str, t: float, state: LinkState) -> LinkEvent:
    return LinkEvent(
        athlete="ann",
        sensor=sensor,
        time_utc=T0 + timedelta(seconds=t),
        time_mono_s=t,
        state=state,
    )


def run(
    sel: SourceSelector, frames: list[tuple[float, str]]
) -> tuple[list[tuple[float, str]], list[SourceSwitch]]:
    """Offer frames in time order; returns the (time, sensor) frames used and the switches."""
    used: list[tuple[float, str]] = []
    switches: list[SourceSwitch] = []
    for t, s in sorted(frames):
        ok, sw = sel.offer(s, t)
        if ok:
            used.append((t, s))
        if sw is not None:
            switches.append(sw)
    return used, switches


def test_strap_drop_and_return() -> None:
    """Strap and watch at 1 Hz; the strap sends nothing for 20 s: the watch carries HR within
    5 s, and the strap takes back over when it returns."""
    sel = SourceSelector(["strap", "watch"], failover_s=3.0)
    frames = [(t + 0.0, "strap") for t in range(100) if not 30 < t <= 50]
    frames += [(t + 0.4, "watch") for t in range(100)]
    used, switches = run(sel, frames)
    assert [(s.from_sensor, s.to_sensor, s.reason) for s in switches] == [
        (None, "strap", "initial"),
        ("strap", "watch", "active_silent"),
        ("watch", "strap", "preferred_back"),
    ]
    # the last strap frame was at 30: the watch is active within 5 s of it
    assert 30 < switches[1].time_mono_s <= 35
    assert switches[1].time_mono_s == pytest.approx(33.4)
    # HR never has a hole longer than failover_s + one frame
    times = [t for t, _ in used]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 4.0
    # back on the strap on its second frame (51, 52)
    assert switches[2].time_mono_s == 52.0
    assert all(s == "strap" for t, s in used if t >= 52)
    assert all(s == "watch" for t, s in used if 33.4 <= t < 52)
    # exactly one source per instant: never both a strap and a watch frame in the same second
    seconds = [int(t) for t, _ in used]
    assert len(seconds) == len(set(seconds))


def test_disconnect_of_active_hands_over_immediately() -> None:
    sel = SourceSelector(["strap", "watch"], failover_s=3.0)
    run(sel, [(0.0, "strap"), (0.5, "watch"), (1.0, "strap")])
    sel.on_link(link("strap", 1.2, LinkState.DISCONNECTED))
    ok, sw = sel.offer("watch", 1.5)  # strap heard 0.5 s ago, but it is disconnected
    assert ok
    assert sw is not None
    assert sw.reason == "active_disconnected"
    run(sel, [(2.5, "watch"), (3.5, "watch"), (4.5, "watch")])
    # the strap reconnects: its first frame is not used, the second is
    assert sel.offer("strap", 5.0) == (False, None)
    ok, sw = sel.offer("strap", 6.0)
    assert ok
    assert sw is not None
    assert sw.reason == "preferred_back"


def test_single_stray_frame_does_not_flap() -> None:
    sel = SourceSelector(["strap", "watch"], failover_s=3.0)
    frames = [(float(t), "watch") for t in range(40)]
    frames += [(10.3, "strap"), (20.3, "strap"), (30.3, "strap")]  # 10 s apart: not consecutive
    used, switches = run(sel, frames)
    assert [s.to_sensor for s in switches] == ["watch"]
    assert {s for _, s in used} == {"watch"}


def test_unknown_sensors_rank_after_listed_in_order_of_appearance() -> None:
    sel = SourceSelector(["strap"], failover_s=3.0)
    run(sel, [(0.0, "b"), (0.1, "a"), (1.0, "b"), (1.1, "a")])
    assert sel.active == "b"  # first heard; "a" is not preferred over it
    _, switches = run(sel, [(2.0, "strap"), (3.0, "strap")])
    assert sel.active == "strap"
    assert switches[-1].reason == "preferred_back"


def test_failover_prefers_the_best_live_sensor() -> None:
    sel = SourceSelector(["strap", "watch", "arm"], failover_s=3.0)
    run(sel, [(0.0, "strap"), (0.2, "watch"), (0.4, "arm"), (1.0, "strap"), (1.2, "watch")])
    # strap dies; the arm band speaks first but the watch (better) is alive: wait for it
    assert sel.offer("arm", 4.1) == (False, None)
    ok, sw = sel.offer("watch", 4.2)
    assert ok
    assert sw is not None
    assert sw.to_sensor == "watch"
    # watch dies too: now the arm band takes over
    ok, sw = sel.offer("arm", 8.0)
    assert ok
    assert sw is not None
    assert (sw.from_sensor, sw.to_sensor) == ("watch", "arm")


def test_link_events_of_unknown_sensors_are_ignored() -> None:
    sel = SourceSelector(["strap"], failover_s=3.0)
    sel.on_link(link("footpod", 0.0, LinkState.DISCONNECTED))
    assert sel.offer("strap", 1.0)[0]
    assert sel.active == "strap"


def test_rejects_bad_failover() -> None:
    with pytest.raises(ValueError, match="failover_s"):
        SourceSelector([], failover_s=0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 10.0), st.sampled_from(["a", "b", "c"]), st.booleans()),
        max_size=120,
    )
)
def test_exactly_one_active_and_switches_consistent(
    steps: list[tuple[float, str, bool]],
) -> None:
    sel = SourceSelector(["b", "a"], failover_s=3.0)
    t = 0.0
    active: str | None = None
    for dt, s, disconnect in steps:
        t += dt
        if disconnect:
            sel.on_link(link(s, t, LinkState.DISCONNECTED))
            continue
        ok, sw = sel.offer(s, t)
        if sw is not None:
            assert sw.from_sensor == active
            assert sw.to_sensor == s
            assert sw.time_mono_s == t
            active = sw.to_sensor
        assert ok == (s == active)
        assert sel.active == active
