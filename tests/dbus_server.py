"""A real D-Bus system bus for tests: Debian's ``dbus-daemon`` on its own socket, no bluetoothd.

bleak's BlueZ backend talks to the *system* bus named by ``DBUS_SYSTEM_BUS_ADDRESS``; point that
at :attr:`SystemBus.address` (for a subprocess, or with ``monkeypatch.setenv`` in-process) and
bleak meets a real bus without BlueZ on it, as on a machine where bluetoothd is not running:

* ``bluez="absent"``: nothing provides ``org.bluez`` (``...DBus.Error.ServiceUnknown``);
* ``bluez="exits"``: a D-Bus service file for ``org.bluez`` whose program exits at once, as
  Debian's ``bluetoothd`` does in a container without a Bluetooth management socket
  (``...DBus.Error.Spawn.ChildExited``).

The daemon runs in the foreground (``--nofork``); start-up waits (bounded) until its socket
accepts a connection, not for a sleep. Needs Debian's ``dbus``
package (``make system-deps``); fails loudly without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path
from typing import Literal

from server_process import ServerProcess

START_TIMEOUT_S = 10.0

BluezMode = Literal["absent", "exits"]

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  {servicedir}
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""

_BLUEZ_SERVICE = """[D-BUS Service]
Name=org.bluez
Exec={false}
User=root
"""


def find_dbus_daemon() -> str:
    found = shutil.which("dbus-daemon") or (
        "/usr/bin/dbus-daemon" if os.access("/usr/bin/dbus-daemon", os.X_OK) else None
    )
    if found is None:
        raise RuntimeError("dbus-daemon not found: install Debian's dbus (make system-deps)")
    return found


class SystemBus(ServerProcess):
    """A throwaway system-type D-Bus daemon under ``workdir`` (a context manager)."""

    name = "dbus-daemon"
    stop_timeout_s = 10.0

    def __init__(self, workdir: Path, *, bluez: BluezMode = "absent") -> None:
        super().__init__(workdir / "dbus-daemon.log")
        self.workdir = workdir
        self.bluez = bluez
        self.socket = workdir / "system_bus_socket"

    @property
    def address(self) -> str:
        """The value for ``DBUS_SYSTEM_BUS_ADDRESS``."""
        return f"unix:path={self.socket}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        servicedir = ""
        if self.bluez == "exits":
            services = self.workdir / "services"
            services.mkdir(exist_ok=True)
            false = shutil.which("false") or "/bin/false"
            (services / "org.bluez.service").write_text(_BLUEZ_SERVICE.format(false=false))
            servicedir = f"<servicedir>{services}</servicedir>"
        config = self.workdir / "system.conf"
        config.write_text(_CONFIG.format(socket=self.socket, servicedir=servicedir))
        return config

    def _listens(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket))
            return True
        return False

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        config = self._write_config()
        self._launch([find_dbus_daemon(), f"--config-file={config}", "--nofork"])
        self._wait_ready(self._listens, timeout_s, f"listen on {self.socket}")
