"""Spoken cues (issue #12 item 2): the words of every alert and status, the queue (priority,
stale drop, bound) with an injected clock, a missing synthesiser, and real espeak-ng audio
checked with sox."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outputs.speech import (
    INSTALL_HINT,
    Priority,
    Speaker,
    StatusCues,
    alert_words,
    distance_words,
    pace_words,
    status_words,
)
from processing.records import Alert, AlertKind, Metric, MetricGroup, Severity

WAIT_S = 30.0
"""Bound on waiting for cues to be said; only a failure waits this long."""
T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def alert(kind: AlertKind, value: float | None, threshold: float | None) -> Alert:
    return Alert(id=f"Ana:{kind.value}:1", athlete="Ana", time_utc=T0, time_mono_s=10.0,
                 kind=kind, severity=Severity.WARNING, value=value, threshold=threshold,
                 message=f"{kind.value} message")  # fmt: skip


# ------------------------------------------------------------------ words

EXPECTED = {
    AlertKind.HR_SURGE: (24.4, 20.0, "Heart rate surge: up 24 beats per minute."),
    AlertKind.HR_CEILING: (
        173.6, 171.0, "Heart rate 174, above your ceiling of 171. Ease off."
    ),
    AlertKind.EARLY_SURGE: (
        41.0, 35.0,
        "Early heart rate surge: up 41 beats per minute since the start of the run. Slow down.",
    ),
    AlertKind.LOW_READINESS: (
        30.2, 38.4,
        "Low readiness today: heart rate variability 30 milliseconds, below 38. Take it easy.",
    ),
    AlertKind.SENSOR_LOST: (12.0, 10.0, "Sensor lost: no data for 12 seconds."),
    AlertKind.NO_CONTACT: (
        6.0, 5.0,
        "No skin contact on the heart rate strap for 6 seconds. Moisten the electrodes or "
        "tighten the strap.",
    ),
    AlertKind.LOW_BATTERY: (12.0, 15.0, "Sensor battery low: 12 percent."),
}  # fmt: skip


def test_every_alert_kind_has_words() -> None:
    assert set(EXPECTED) == set(AlertKind)


@pytest.mark.parametrize("kind", list(AlertKind), ids=[k.value for k in AlertKind])
def test_alert_words(kind: AlertKind) -> None:
    value, threshold, words = EXPECTED[kind]
    a = alert(kind, value, threshold)
    assert alert_words(a) == words
    assert alert_words(a, athlete=True) == f"Ana: {words}"


@pytest.mark.parametrize("kind", list(AlertKind), ids=[k.value for k in AlertKind])
def test_alert_words_without_figures(kind: AlertKind) -> None:
    for value in (None, float("nan")):
        words = alert_words(alert(kind, value, value))
        assert words.endswith(".")
        assert not re.search(r"\d|nan|None", words), words


def test_singular_units() -> None:
    assert alert_words(alert(AlertKind.HR_SURGE, 1.0, 20.0)) == (
        "Heart rate surge: up 1 beat per minute."
    )
    assert alert_words(alert(AlertKind.SENSOR_LOST, 1.0, 10.0)) == (
        "Sensor lost: no data for 1 second."
    )


@pytest.mark.parametrize(
    ("pace", "words"),
    [
        (278.0, "4 minutes 38 per kilometre"),
        (240.0, "4 minutes per kilometre"),
        (239.6, "4 minutes per kilometre"),
        (305.0, "5 minutes 5 per kilometre"),
        (61.0, "1 minute 1 per kilometre"),
        (725.0, "12 minutes 5 per kilometre"),
    ],
)
def test_pace_words(pace: float, words: str) -> None:
    assert pace_words(pace) == words


@pytest.mark.parametrize(
    ("metres", "words"),
    [(0.0, "0 metres"), (1.0, "1 metre"), (999.0, "999 metres"), (1000.0, "1 kilometre"),
     (1049.0, "1 kilometre"), (5000.0, "5 kilometres"), (5230.0, "5.2 kilometres"),
     (21097.0, "21.1 kilometres")],
)  # fmt: skip
def test_distance_words(metres: float, words: str) -> None:
    assert distance_words(metres) == words


def test_status_words() -> None:
    assert status_words(distance_m=5000.0, pace_s_per_km=278.0, hr_bpm=152.0) == (
        "5 kilometres, 4 minutes 38 per kilometre, heart rate 152"
    )
    assert status_words(distance_m=5000.0, pace_s_per_km=278.0, hr_bpm=152.0, athlete="Ana") == (
        "Ana: 5 kilometres, 4 minutes 38 per kilometre, heart rate 152"
    )
    # standing (no pace), no footpod (no distance), no strap (no HR)
    assert status_words(distance_m=800.0, pace_s_per_km=None, hr_bpm=120.0) == (
        "800 metres, heart rate 120"
    )
    assert status_words(distance_m=None, pace_s_per_km=None, hr_bpm=120.0) == "heart rate 120"
    assert status_words(distance_m=float("nan"), pace_s_per_km=0.0, hr_bpm=None) is None


def metric(t: float, group: MetricGroup, athlete: str = "Ana", **values: float | None) -> Metric:
    return Metric(athlete=athlete, time_utc=T0, time_mono_s=t, group=group, values=values)


def test_status_cues_by_event_time() -> None:
    cues = StatusCues(every_s=60.0)
    said: list[tuple[float, str]] = []
    for t in range(200):
        for out in (
            metric(float(t), MetricGroup.HEART, heart_rate_bpm=140.0 + t / 10),
            metric(float(t), MetricGroup.GAIT, distance_m=t * 3.6, pace_s_per_km=278.0),
        ):
            text = cues.update(out)
            if text is not None:
                said.append((out.time_mono_s, text))
    assert said == [
        (60.0, "212 metres, 4 minutes 38 per kilometre, heart rate 146"),
        (120.0, "428 metres, 4 minutes 38 per kilometre, heart rate 152"),
        (180.0, "644 metres, 4 minutes 38 per kilometre, heart rate 158"),
    ]
    # other groups and alerts do not count
    assert cues.update(metric(500.0, MetricGroup.HRV, rmssd_60s_ms=40.0)) is None
    assert cues.update(alert(AlertKind.HR_SURGE, 20.0, 20.0)) is None


def test_status_cues_per_athlete_and_after_a_gap() -> None:
    cues = StatusCues(every_s=30.0, athlete=True)
    assert cues.update(metric(0.0, MetricGroup.HEART, "Ana", heart_rate_bpm=150.0)) is None
    assert cues.update(metric(10.0, MetricGroup.HEART, "Ben", heart_rate_bpm=130.0)) is None
    assert cues.update(metric(30.0, MetricGroup.HEART, "Ana", heart_rate_bpm=151.0)) == (
        "Ana: heart rate 151"
    )
    assert cues.update(metric(30.0, MetricGroup.HEART, "Ben", heart_rate_bpm=131.0)) is None
    assert cues.update(metric(40.0, MetricGroup.HEART, "Ben", heart_rate_bpm=132.0)) == (
        "Ben: heart rate 132"
    )
    # a long gap gives one status, not a burst of catch-ups
    assert cues.update(metric(500.0, MetricGroup.HEART, "Ana", heart_rate_bpm=152.0)) is not None
    assert cues.update(metric(501.0, MetricGroup.HEART, "Ana", heart_rate_bpm=152.0)) is None
    assert cues.update(metric(530.0, MetricGroup.HEART, "Ana", heart_rate_bpm=152.0)) is not None
    with pytest.raises(ValueError, match="every_s"):
        StatusCues(every_s=0.0)


# ------------------------------------------------------------------ the queue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def quiet_speaker(clock: FakeClock, **kw: object) -> Speaker:
    """A Speaker whose synthesiser is `true`: every cue "said" at once, in order."""
    return Speaker(command=["true"], clock=clock, **kw)  # type: ignore[arg-type]


async def test_alerts_first_and_stale_cues_dropped() -> None:
    clock = FakeClock()
    speaker = quiet_speaker(clock, max_age_s=15.0)
    # Queued before the worker runs, so the order of the turns is fixed.
    assert speaker.say_nowait("old status", Priority.STATUS)
    assert speaker.say_nowait("old alert", Priority.ALERT)
    clock.now += 16.0  # both now older than 15 s
    assert speaker.say_nowait("status", Priority.STATUS)  # replaces "old status"
    assert speaker.say_nowait("alert 1")
    assert speaker.say_nowait("alert 2")
    assert speaker.pending == 4
    async with speaker:
        assert await speaker.drain(WAIT_S)
    assert speaker.spoken == ["alert 1", "alert 2", "status"]
    assert speaker.stats.dropped_stale == 1  # "old alert"
    assert speaker.stats.dropped_full == 1  # "old status", replaced
    assert speaker.stats.spoken == 3
    assert speaker.stats.queued == 5
    assert speaker.stats.failed == 0


async def test_full_alert_queue_drops_the_oldest() -> None:
    clock = FakeClock()
    speaker = quiet_speaker(clock, queue_size=3)
    for i in range(5):
        speaker.say_nowait(f"alert {i}")
    assert speaker.pending == 3
    assert speaker.stats.dropped_full == 2
    async with speaker:
        assert await speaker.drain(WAIT_S)
    assert speaker.spoken == ["alert 2", "alert 3", "alert 4"]


async def test_publish_says_alerts_and_status() -> None:
    clock = FakeClock()
    speaker = quiet_speaker(clock, status_every_s=60.0, say_athlete=True)
    async with speaker:
        speaker.publish(metric(0.0, MetricGroup.HEART, heart_rate_bpm=150.0))
        speaker.publish(alert(AlertKind.HR_SURGE, 22.0, 20.0))
        assert await speaker.drain(WAIT_S)
        speaker.publish(metric(60.0, MetricGroup.HEART, heart_rate_bpm=152.0))
        assert await speaker.drain(WAIT_S)
    assert speaker.spoken == [
        "Ana: Heart rate surge: up 22 beats per minute.",
        "Ana: heart rate 152",
    ]


async def test_alerts_only_without_status_every() -> None:
    speaker = quiet_speaker(FakeClock())
    async with speaker:
        for t in range(0, 600, 10):
            speaker.publish(metric(float(t), MetricGroup.HEART, heart_rate_bpm=150.0))
        assert speaker.pending == 0
        assert await speaker.drain(WAIT_S)
    assert speaker.spoken == []


async def test_failing_synthesiser_is_counted_and_cues_go_on() -> None:
    speaker = Speaker(command=["false"])
    async with speaker:
        speaker.say_nowait("one")
        speaker.say_nowait("two")
        assert await speaker.drain(WAIT_S)
    assert speaker.stats.failed == 2
    assert speaker.last_error is not None
    assert "exited with 1" in speaker.last_error


async def test_missing_synthesiser_is_a_no_op() -> None:
    speaker = Speaker(command=["stridewatch-no-such-synthesiser"])
    assert speaker.available is False
    assert speaker.reason is not None
    assert "\n" not in speaker.reason
    assert "stridewatch-no-such-synthesiser not found" in speaker.reason
    assert "apt-get install espeak-ng" in speaker.reason
    assert INSTALL_HINT in speaker.reason
    async with speaker:
        assert speaker.say_nowait("hello") is False
        speaker.publish(alert(AlertKind.HR_SURGE, 22.0, 20.0))
        assert await speaker.drain(WAIT_S)
    assert speaker.stats.queued == 0


def test_default_command_without_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    speaker = Speaker()
    assert not speaker.available
    assert speaker.reason == f"spoken cues are off: espeak-ng not found; {INSTALL_HINT}"


# ------------------------------------------------------------------ real audio


def sox_stat(path: Path) -> dict[str, float]:
    """``sox FILE -n stat`` (it reports on stderr) as name → number."""
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    stats: dict[str, float] = {}
    for line in done.stderr.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            with_number = value.strip().split()
            if with_number:
                try:
                    stats[name.strip()] = float(with_number[0])
                except ValueError:
                    continue
    return stats


async def test_espeak_writes_audible_cues(tmp_path: Path) -> None:
    # A missing binary is an error, never a skip (like influxd and mosquitto).
    assert shutil.which("espeak-ng") is not None, "espeak-ng is needed: apt-get install espeak-ng"
    assert shutil.which("sox") is not None, "sox is needed: apt-get install sox"
    speaker = Speaker(output_wav_dir=tmp_path, voice="en", status_every_s=60.0)
    assert speaker.available, speaker.reason
    async with speaker:
        speaker.publish(alert(AlertKind.HR_SURGE, 24.0, 20.0))
        speaker.say_nowait(status_words(distance_m=5000.0, pace_s_per_km=278.0, hr_bpm=152.0)
                           or "", Priority.STATUS)  # fmt: skip
        assert await speaker.drain(WAIT_S)
    assert speaker.stats.failed == 0, speaker.last_error
    assert speaker.stats.spoken == 2
    assert [p.name for p in speaker.wav_files] == ["cue-0001.wav", "cue-0002.wav"]
    for path in speaker.wav_files:
        stats = sox_stat(path)
        assert stats["RMS     amplitude"] > 0.01, (path, stats)
        assert 0.5 <= stats["Length (seconds)"] <= 10.0, (path, stats)


def test_the_rms_floor_tells_silence_apart(tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "22050", str(silence), "trim", "0", "1"], check=True,
                   timeout=60)  # fmt: skip
    stats = sox_stat(silence)
    assert stats["RMS     amplitude"] < 0.001
    assert stats["Length (seconds)"] == 1.0


async def test_a_hung_synthesiser_is_killed_after_the_timeout() -> None:
    speaker = Speaker(command=["sleep"], timeout_s=0.05)  # `sleep <text>` fails or hangs
    async with speaker:
        speaker.say_nowait("30")  # sleep 30: killed at the timeout
        assert await speaker.drain(WAIT_S)
    assert speaker.stats.failed == 1
    assert speaker.last_error == "sleep took longer than 0.05 s"
