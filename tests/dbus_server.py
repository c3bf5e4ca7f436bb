"""A real D-Bus system bus for tests: Debian's ``dbus-daemon`` on its own socket, no bluetoothd.

bleak's BlueZ backend talks to the *system* bus named by ``DBUS_SYSTEM_BUS_ADDRESS``; point that
at :attr:`SystemBus.address` (for a subprocess, or with ``monkeypatch.setenv`` in-process) and
bleak meets a real bus without BlueZ on it, as on a machine where bluetoothd is not running:

* ``bluez="absent"``: nothing provides ``org.bluez`` (``...DBus.Error.ServiceUnknown``);
* ``bluez="exits"``: a D-Bus service file for ``org.bluez`` whose program exits at once, as
  Debian's ``bluetoothd`` does in a container without a Bluetooth management socket
  (``...DBus.Error.Spawn.ChildExited``).

The daemon runs in the foreground (``--nofork``) and prints its address once it listens
(``--print-address``): start-up waits for that line, not for a sleep. Needs Debian's ``dbus``
package (``make system-deps``); fails loudly without it.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

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


class SystemBus:
    """A throwaway system-type D-Bus daemon under ``workdir`` (a context manager)."""

    def __init__(self, workdir: Path, *, bluez: BluezMode = "absent") -> None:
        self.workdir = workdir
        self.bluez = bluez
        self.socket = workdir / "system_bus_socket"
        self._proc: subprocess.Popen[bytes] | None = None

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

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        config = self._write_config()
        proc = subprocess.Popen(
            [find_dbus_daemon(), f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._proc = proc
        assert proc.stdout is not None
        # The address line is printed once the socket listens: wait for it (bounded).
        deadline = time.monotonic() + timeout_s
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.stop()
                    raise RuntimeError(f"dbus-daemon did not start within {timeout_s} s")
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    code = proc.wait()
                    raise RuntimeError(f"dbus-daemon exited with {code} before listening")
                line += chunk
        if str(self.socket) not in line.decode():
            self.stop()
            raise RuntimeError(f"dbus-daemon listens elsewhere: {line!r}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> SystemBus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
