"""Configuration: validated into frozen settings; every problem named with where and how."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.records import SensorKind
from stridewatch.config import ConfigError, check_config, load_config

CONFIGS = Path(__file__).parent / "data" / "configs"
EXAMPLE = Path(__file__).parent.parent / "deploy" / "stridewatch.example.toml"


def test_example_config_is_valid() -> None:
    settings = load_config(EXAMPLE, env={})
    assert settings.processing.athlete("zoe").max_hr_bpm == 192
    assert [s.kind for s in settings.sensors] == [
        SensorKind.HEART_RATE, SensorKind.HEART_RATE, SensorKind.FOOTPOD,
    ]
    assert settings.influx is not None
    assert settings.influx.database == "stridewatch"


def test_valid_config_becomes_frozen_settings() -> None:
    s = load_config(CONFIGS / "ok.toml", env={})
    athlete = s.processing.athlete("Zoë")
    assert athlete.resting_hr_bpm == 48
    assert athlete.cadence_unit == {"C4:7C:8D:6A:12:34": "strides"}
    assert athlete.sensor_priority == ("Polar H10 1A2B3C4D", "C4:7C:8D:6A:12:34")
    with pytest.raises(AttributeError):
        s.ble = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad-values.toml", ["athletes[0].max_hr_bpm", "athletes[0].resting_hr_bpm"]),
        ("unknown-key.toml", ["athletes[0].max_heart_rate: unknown setting",
                              "alerts.surge_rise_bpm"]),
        ("sensor-without-id.toml", ["athletes[0].sensors[0]: a sensor needs an 'address' or a "
                                    "'name'", "athletes[0].sensors[1]: cadence_unit applies to "
                                    "footpods only"]),
        ("missing-secret.toml", ["STRIDEWATCH_INFLUX_TOKEN", "STRIDEWATCH_MQTT_USER",
                                 "STRIDEWATCH_MQTT_PASSWORD"]),
        ("not-toml.toml", ["not valid TOML"]),
        ("duplicate-athletes.toml", ["athlete names must be unique", "outputs.influx.url"]),
    ],
)
def test_each_problem_is_named(name: str, expected: list[str]) -> None:
    problems = [str(p) for p in check_config(CONFIGS / name, env={})]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)


def test_secret_present_in_environment_is_used() -> None:
    env = {"STRIDEWATCH_INFLUX_TOKEN": "t0k", "STRIDEWATCH_MQTT_USER": "u",
           "STRIDEWATCH_MQTT_PASSWORD": "p"}
    s = load_config(CONFIGS / "missing-secret.toml", env=env)
    assert s.influx is not None
    assert s.influx.mode == "v2"
    assert s.influx.token is not None
    assert s.influx.token.get_secret_value() == "t0k"
    assert "t0k" not in repr(s.influx)


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(CONFIGS / "absent.toml")


def test_config_check_command_exits_2_and_lists_problems() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "stridewatch", "config", "check", str(CONFIGS / "bad-values.toml")],
        capture_output=True, text=True, check=False,
    )
    assert bad.returncode == 2
    assert "athletes[0].max_hr_bpm" in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "stridewatch", "config", "check", str(EXAMPLE)],
        capture_output=True, text=True, check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "ok" in good.stdout


def test_every_problem_of_an_athlete_is_listed_at_once(tmp_path: Path) -> None:
    """A bad zones_pct_max used to show only after the other errors were fixed (issue #11)."""
    path = tmp_path / "bad.toml"
    path.write_text('[[athletes]]\nname = "Ana"\nmax_hr_bpm = 300\n'
                    "zones_pct_max = [90, 80, 70, 60]\n", encoding="utf-8")
    problems = [str(p) for p in check_config(path, env={})]
    assert any(p.startswith("athletes[0].max_hr_bpm:") for p in problems), problems
    assert any(p.startswith("athletes[0].zones_pct_max:") for p in problems), problems


def test_piping_into_a_closed_reader_ends_quietly(tmp_path: Path) -> None:
    """`stridewatch sessions | head`: the reader is gone before we write; no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stridewatch", "config", "check",
         str(Path(__file__).parents[1] / "deploy" / "stridewatch.example.toml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before the child has even imported: its first write gets EPIPE
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "BrokenPipe" not in err, err


def test_notify_and_speak_sections(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text('[[notify]]\nname = "coach"\nurl_env = "STRIDEWATCH_NOTIFY_COACH"\n'
                    'athletes = ["Ana"]\nkinds = ["hr_surge"]\nmin_severity = "warning"\n\n'
                    '[[notify]]\nurl = "json://127.0.0.1:9/hook"\n\n'
                    "[speak]\nstatus_every_s = 300\n", encoding="utf-8")
    s = load_config(path, env={"STRIDEWATCH_NOTIFY_COACH": "ntfy://ntfy.sh/t0ken"})
    coach, other = s.notify
    assert coach.name == "coach"
    assert coach.url.get_secret_value() == "ntfy://ntfy.sh/t0ken"
    assert "t0ken" not in repr(coach)
    assert coach.athletes == ("Ana",)
    assert [k.value for k in coach.kinds or ()] == ["hr_surge"]
    assert coach.min_severity.value == "warning"
    assert other.name == "notify-2"
    assert other.athletes is None
    assert s.speak is not None
    assert s.speak.status_every_s == 300
    problems = [str(p) for p in check_config(path, env={})]
    assert problems == ["notify[0].url_env: set the environment variable "
                        "STRIDEWATCH_NOTIFY_COACH to the Apprise URL"]
