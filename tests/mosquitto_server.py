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

import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from server_process import HOST, ServerProcess, free_port, port_open

__all__ = ["MosquittoServer", "ThreadSubscriber", "find_mosquitto", "free_port"]

START_TIMEOUT_S = 10.0
"""Bound on waiting for the listener to accept connections (it takes ~20 ms here)."""

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


class MosquittoServer(ServerProcess):
    """One mosquitto process on a loopback port; restartable on the same port.

    Args:
        workdir: directory for the config, the log and (when ``persistence``) the database.
        persistence: keep sessions, subscriptions, queued and retained messages across
            ``stop()``/``start()`` (SIGTERM: a persistent broker saves its database; ``kill()``
            saves nothing).
        port: listener port (a free one when ``None``).
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, *, persistence: bool = False, port: int | None = None,
                 users: Mapping[str, str] | None = None) -> None:
        super().__init__(workdir / "mosquitto.log")
        self.binary = find_mosquitto()
        self.workdir = workdir
        self.persistence = persistence
        self.users = dict(users) if users else None
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.config_path = workdir / "mosquitto.conf"

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``, the form :meth:`MqttTarget.from_url` takes."""
        return f"mqtt://{self.host}:{self.port}"

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

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (again, on the same port) and wait until it accepts connections."""
        self._write_config()
        self._launch([self.binary, "-c", str(self.config_path)])
        self._wait_ready(lambda: port_open(self.port, self.host), timeout_s,
                         f"accept connections on {self.host}:{self.port}")


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
