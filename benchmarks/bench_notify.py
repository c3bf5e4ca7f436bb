"""Benchmark: alert stored → webhook request received, through Apprise, 20 athletes live.

20 athletes are recorded in real time into an :class:`AsyncStore` (wire-exact readings from
:mod:`benchmarks.records` plus the metrics the pipeline emits, as in ``bench_store``'s live
figure); every ``_ALERT_EVERY_S`` one of them raises an HR-surge alert, added to the same store.
A :class:`~outputs.notify.Notifier` with one Apprise ``json://`` target on a loopback HTTP
receiver (``tests/http_receiver.py``) delivers from the outbox. The figure is the time from
``AsyncStore.add`` of the alert to the receiver having read the request (``perf_counter``).

Two wirings of the wake-up, both with the store's default batching (commit every 0.25 s):

* ``notify_latency_p99``: the app's wiring to use — the store's ``on_commit`` calls
  ``Notifier.notify()`` and an alert asks for an immediate commit (``AsyncStore.flush()`` in a
  task), so an alert does not wait for the next batch;
* ``notify_latency_batched_p99``: the alert waits for the next batch commit (≤ 0.25 s), then
  ``on_commit`` wakes the delivery.

Baseline (same run, same receiver): a bare ``apprise.Apprise.notify`` call, call → request
received. Run ``python -m benchmarks.bench_notify`` (``STRIDEWATCH_BENCH_LIVE_S`` sets the
live run's length, default 20 s); a runner calls :func:`run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apprise

from benchmarks.bench_store import _with_metrics
from benchmarks.records import session_records
from outputs.notify import Notifier, NotifyTarget
from outputs.store import AsyncStore
from processing.records import Alert, AlertKind, Severity

_T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
_ATHLETES = 20
_ALERT_EVERY_S = 0.2
_BASELINE_CALLS = 200
_ID = re.compile(r"alert id: (\S+)")


def _receiver() -> Any:
    repo = Path(__file__).resolve().parent.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from tests.http_receiver import HttpReceiver

    return HttpReceiver()


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _baseline(url: str, receiver: Any) -> list[float]:
    """Bare Apprise: ``notify`` call → request received (ms), sequential calls."""
    obj = apprise.Apprise()
    obj.add(url)
    out: list[float] = []
    for i in range(_BASELINE_CALLS):
        before = len(receiver.snapshot())
        start = time.perf_counter()
        if not obj.notify(body=f"baseline {i}", title="baseline", notify_type="warning"):
            raise RuntimeError("bare Apprise call failed")
        receiver.wait_count(before + 1, 10.0)
        out.append((receiver.snapshot()[before].received_at - start) * 1000.0)
    return out


async def _live(path: Path, url: str, receiver: Any, duration_s: float, *, nudge: bool
                ) -> list[float]:
    """Latencies (ms) of the alerts raised while 20 athletes are recorded live."""
    timeline = _with_metrics(session_records(athletes=_ATHLETES, duration_s=duration_s))
    mono0 = min(t for t, _ in timeline)
    loop = asyncio.get_running_loop()
    stored_at: dict[str, float] = {}
    notifier_box: list[Notifier] = []

    def on_commit(_: int) -> None:
        if notifier_box:
            notifier_box[0].notify()

    target = NotifyTarget.create("bench", url, cooldown_s=0.0)
    nudges: set[asyncio.Task[None]] = set()
    async with AsyncStore.open(path, on_commit=on_commit) as out:
        sids = {f"athlete-{i + 1}": out.store.create_session(f"athlete-{i + 1}", _T0, "bench")
                for i in range(_ATHLETES)}  # fmt: skip
        async with Notifier(out.store, [target]) as notifier:
            notifier_box.append(notifier)
            start = loop.time()
            i = 0
            n_alerts = 0
            next_alert = _ALERT_EVERY_S
            while i < len(timeline):
                now = loop.time() - start
                while i < len(timeline) and timeline[i][0] - mono0 <= now:
                    record = timeline[i][1]
                    out.add(sids[record.athlete], record)
                    i += 1
                if now >= next_alert:
                    next_alert += _ALERT_EVERY_S
                    n_alerts += 1
                    athlete = f"athlete-{n_alerts % _ATHLETES + 1}"
                    alert = Alert(
                        id=f"bench:{athlete}:hr_surge:{n_alerts}", athlete=athlete,
                        time_utc=_T0 + timedelta(seconds=now), time_mono_s=mono0 + now,
                        kind=AlertKind.HR_SURGE, severity=Severity.WARNING, value=24.0,
                        threshold=20.0, message="HR rose 24 bpm in 30 s (to 171 bpm)",
                    )  # fmt: skip
                    stored_at[alert.id] = time.perf_counter()
                    out.add(sids[athlete], alert)
                    if nudge:
                        task = asyncio.create_task(out.flush())
                        nudges.add(task)
                        task.add_done_callback(nudges.discard)
                notifier.notify()  # as LiveOutputs.publish does on every output
                if i < len(timeline):
                    await asyncio.sleep(max(0.0, min(timeline[i][0] - mono0 - now,
                                                     next_alert - now)))
            await out.flush()
            if not await notifier.drain(60.0):
                raise RuntimeError(f"notifications did not drain: {notifier.status()}")
    received: dict[str, float] = {}
    for request in receiver.snapshot():
        match = _ID.search(request.json().get("message", ""))
        if match and match.group(1) in stored_at:
            received.setdefault(match.group(1), request.received_at)
    missing = set(stored_at) - set(received)
    if missing:
        raise RuntimeError(f"{len(missing)} alert(s) never arrived")
    return [(received[k] - stored_at[k]) * 1000.0 for k in stored_at]


def run() -> list[dict[str, object]]:
    """Measure and return the benchmark figures (no output)."""
    duration = float(os.environ.get("STRIDEWATCH_BENCH_LIVE_S", "20"))
    receiver = _receiver()
    with receiver, tempfile.TemporaryDirectory(prefix="stridewatch-bench-notify-") as tmp:
        url = receiver.url("json", "/hook")
        base = _baseline(url, receiver)
        nudged = asyncio.run(_live(Path(tmp) / "n.db", url, receiver, duration, nudge=True))
        receiver.requests.clear()
        batched = asyncio.run(_live(Path(tmp) / "b.db", url, receiver, duration, nudge=False))
    base_p99 = _p99(base)
    figures: list[dict[str, object]] = []
    for name, values, target in (
        ("notify_latency_p99", nudged, "<= 250 ms"),
        ("notify_latency_batched_p99", batched, "report (alert waits for the 0.25 s commit)"),
    ):
        p99 = _p99(values)
        figures.append({
            "name": name, "value": round(p99, 1), "unit": "ms",
            "baseline": {"name": "bare Apprise notify call p99", "value": round(base_p99, 1)},
            "ratio": round(p99 / base_p99, 1) if base_p99 > 0 else None,
            "target": f"{target} ({_ATHLETES} athletes live, {len(values)} alerts, "
                      f"median {sorted(values)[len(values) // 2]:.1f} ms)",
        })  # fmt: skip
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
