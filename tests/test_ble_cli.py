"""``stridewatch scan``/``collect``/``run`` without Bluetooth, as a user runs them (subprocess):
one clear line on stderr, exit 1, no traceback; ``--debug`` shows the traceback.

Linux cases caused for real: no D-Bus system bus, and a real system bus (``dbus-daemon`` from
Debian's ``dbus``, :mod:`dbus_server`) with no bluetoothd, absent or exiting when started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_server import SystemBus

RUN_TIMEOUT_S = 60.0

CONFIG = """\
[[athletes]]
name = "zoe"
max_hr_bpm = 190

[store]
path = "{store}"

[sources]
ble = true
"""


@pytest.fixture(params=["no-bus", "no-bluetoothd", "bluetoothd-exits"])
def bus_address(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "no-bus":
        yield f"unix:path={tmp_path / 'no-such-socket'}"
        return
    bluez = "absent" if request.param == "no-bluetoothd" else "exits"
    with SystemBus(tmp_path / "bus", bluez=bluez) as bus:
        yield bus.address


def _stridewatch(args: list[str], bus: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus, HOME=str(home),
               XDG_DATA_HOME=str(home / "data"), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "stridewatch", *args],
        capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S, check=False,
    )


def _command(name: str, tmp_path: Path) -> list[str]:
    if name == "run":
        (tmp_path / "home").mkdir(exist_ok=True)
        config = tmp_path / "stridewatch.toml"
        config.write_text(CONFIG.format(store=tmp_path / "sessions.sqlite"))
        return ["run", "--config", str(config)]
    return {"scan": ["scan", "--timeout", "1"], "collect": ["collect", "--seconds", "1"]}[name]


@pytest.mark.parametrize("command", ["scan", "collect", "run"])
def test_without_bluetooth_one_line_exit_1_no_traceback(
    command: str, bus_address: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    done = _stridewatch(_command(command, tmp_path), bus_address, home)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("stridewatch: error: No Bluetooth stack: ")
    assert ("D-Bus system bus is not running" in lines[0]
            or "bluetoothd (BlueZ) is not running" in lines[0])


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = _stridewatch(["--debug", "scan", "--timeout", "1"],
                        f"unix:path={tmp_path / 'no-such-socket'}", home)
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "FileNotFoundError" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("stridewatch: error: No Bluetooth")
