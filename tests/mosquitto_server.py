"""A real Mosquitto broker for tests and benchmarks (Debian's ``mosquitto`` 2.x binary).

:class:`MosquittoServer` writes a config file into a work directory, starts
``mosquitto -c <dir>/mosquitto.conf`` on a free loopback port and waits (bounded) until the
port accepts connections. ``stop()`` (SIGTERM: a persistent broker saves its database),
``kill()`` (SIGKILL: nothing saved) and ``start()`` again on the *same* port let tests restart
the broker under connected clients.

Mosquitto 2.x facts this relies on (``shared/notes/test-servers.md``): a config needs an explicit
``listener PORT 127.0.0.1`` and ``allow_anonymous true``; ``persistence false`` makes a broker
throwaway (sessions and retained messages vanish on restart), ``persistence true`` with a
``persistence_location`` keeps them across ``stop()``/``start()``. ``users={name: password}``
turns authentication on: ``allow_anonymous false`` and a ``password_file`` hashed with
``mosquitto_passwd -U`` (a wrong password gets CONNACK "not authorised").

A missing binary is an error, never a skip: the MQTT tests are part of ``make test``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
"""Bound on waiting for the listener to accept connections (it takes ~20 ms here)."""
STOP_TIMEOUT_S = 5.0
"""Bound on waiting for a SIGTERMed broker to exit (before it is killed)."""
POLL_S = 0.01

MISSING_BINARY = (
    "mosquitto binary not found: install Debian's mosquitto package "
    "(make test does this as root: apt-get install mosquitto)"
)


def find_mosquitto() -> str:
    """Path of the mosquitto binary; raises ``RuntimeError`` (never skips) when missing."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(MISSING_BINARY)


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class MosquittoServer:
    """One mosquitto process on a loopback port; restartable on the same port.

    Args:
        workdir: directory for the config, the log and (when ``persistence``) the database.
        persistence: keep sessions, subscriptions, queued and retained messages across
            ``stop()``/``start()``.
        port: listener port (a free one when ``None``).
    """

    def __init__(self, workdir: Path, *, persistence: bool = False, port: int | None = None,
                 users: Mapping[str, str] | None = None) -> None:
        self.binary = find_mosquitto()
        self.workdir = workdir
        self.persistence = persistence
        self.users = dict(users) if users else None
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``, the form :meth:`MqttTarget.from_url` takes."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            # Generous queue for offline persistent sessions (shared-subscription tests).
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto drops to the 'mosquitto' user, which cannot write our temp dir.
            lines.append("user root")
        if self.users:
            lines += ["allow_anonymous false", f"password_file {self._password_file()}"]
        else:
            lines.append("allow_anonymous true")
        if self.persistence:
            data = self.workdir / "data"
            data.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {data}/"]
        else:
            lines.append("persistence false")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _password_file(self) -> Path:
        """Write the users' passwords, hashed by ``mosquitto_passwd -U``."""
        assert self.users
        path = self.workdir / "passwords"
        path.write_text("".join(f"{user}:{password}\n" for user, password in self.users.items()))
        path.chmod(0o600)
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([tool, "-U", str(path)], check=True, capture_output=True,
                       timeout=START_TIMEOUT_S)
        return path

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (again, on the same port) and wait until it accepts connections."""
        if self.running:
            raise RuntimeError(f"mosquitto on port {self.port} is already running")
        self._write_config()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise RuntimeError(
                    f"mosquitto exited with status {code} before accepting connections on "
                    f"{self.host}:{self.port}; log tail:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(
                (self.host, self.port), timeout=0.5
            ):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"mosquitto did not accept connections on {self.host}:{self.port} within "
                    f"{timeout_s:.0f} s; log tail:\n{self.log_tail()}"
                )
            time.sleep(POLL_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop gracefully (SIGTERM: a persistent broker writes its database); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Kill at once (SIGKILL: nothing saved, clients see the connection drop); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> MosquittoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadSubscriber:
    """A dashboard on its own thread (paho's loop): every message on ``topic``, as
    (topic, payload, retain); for tests whose code under test is synchronous."""

    def __init__(self, server: MosquittoServer, topic: str = "stridewatch/#",
                 wait_s: float = 20.0) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"test-dashboard-{secrets.token_hex(4)}")
        client.on_message = lambda c, u, m: self._add(m.topic, bytes(m.payload), m.retain)
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.connect(server.host, server.port)
        client.loop_start()
        self.client = client
        if not subscribed.wait(wait_s):
            client.loop_stop()
            raise AssertionError("no SUBACK from mosquitto")

    def _add(self, topic: str, payload: bytes, retain: bool) -> None:
        with self._lock:
            self.got.append((topic, payload, retain))

    def topics(self) -> list[str]:
        with self._lock:
            return [topic for topic, _, _ in self.got]

    def messages(self) -> list[tuple[str, bytes, bool]]:
        """A copy of what arrived so far."""
        with self._lock:
            return list(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
