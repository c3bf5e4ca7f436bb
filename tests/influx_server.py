"""A real InfluxDB 1.x server for tests and benchmarks (Debian's ``influxdb`` package, 1.6).

:class:`InfluxServer` writes ``influxdb.conf`` into a work directory, starts
``influxd -config <dir>/influxdb.conf`` with the HTTP API and the RPC service on free loopback
ports and waits (bounded) until ``/ping`` answers 204. ``stop()`` then ``start()`` restarts it
on the *same* ports and data directory (outage tests). ``query()`` runs InfluxQL through
``/query``; ``create_database()`` / ``drop_database()`` manage per-test databases.

InfluxDB 1.6 facts this relies on (``shared/notes/test-servers.md``): the top-level RPC
``bind-address`` (default 8088) must move too or two instances collide; ``reporting-disabled``,
``[meta] dir``, ``[data] dir``/``wal-dir`` under the work dir, ``[monitor] store-enabled = false``.

A missing binary is an error, never a skip: the InfluxDB tests are part of ``make test``.
"""

from __future__ import annotations

import http.client
import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from server_process import HOST, ServerProcess, free_port

__all__ = ["InfluxServer", "InfluxServerError", "find_influxd", "free_port"]

START_TIMEOUT_S = 20.0
"""Bound on waiting for ``/ping`` (it takes ~0.3 s here; a cold disk can be slower)."""

MISSING_BINARY = (
    "influxd binary not found: install Debian's influxdb package "
    "(make test does this as root: apt-get install influxdb)"
)


class InfluxServerError(RuntimeError):
    """The test server could not be started or queried."""


def find_influxd() -> str:
    """Path of the ``influxd`` binary.

    Raises:
        InfluxServerError: not installed (the message says how to install it).
    """
    path = shutil.which("influxd") or (
        "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None
    )
    if path is None:
        raise InfluxServerError(MISSING_BINARY)
    return path


class InfluxServer(ServerProcess):
    """One ``influxd`` process in ``workdir`` on free loopback ports. A context manager;
    ``stop()`` (SIGTERM) keeps the data, ``kill()`` is a crash (the WAL is replayed on the next
    start)."""

    name = "influxd"
    error = InfluxServerError
    stop_timeout_s = 10.0

    def __init__(self, workdir: Path | str, *, binary: str | None = None) -> None:
        super().__init__(Path(workdir) / "influxd.log")
        self.workdir = Path(workdir)
        self.binary = binary or find_influxd()
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.config_path = self.workdir / "influxdb.conf"

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:8086``."""
        return f"http://{HOST}:{self.http_port}"

    def _write_config(self) -> None:
        w = self.workdir
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "{HOST}:{self.rpc_port}"

[meta]
  dir = "{w / 'meta'}"

[data]
  dir = "{w / 'data'}"
  wal-dir = "{w / 'wal'}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "{HOST}:{self.http_port}"
  log-enabled = false
  max-body-size = 0

[logging]
  level = "warn"
"""
        )

    def start(self) -> None:
        """Start the server unless it runs (same ports and data on a restart); wait until
        ``/ping`` is 204.

        Raises:
            InfluxServerError: it did not come up within :data:`START_TIMEOUT_S` (the message
                has the tail of the server log).
        """
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._launch([self.binary, "-config", str(self.config_path)])
        self._wait_ready(self._ping, START_TIMEOUT_S, f"answer /ping on {self.url}")

    def _ping(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=1.0)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 204
        except OSError:
            return False
        finally:
            conn.close()

    # ------------------------------------------------------------------ HTTP helpers

    def _request(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=30.0)
        try:
            conn.request(method, f"{path}?{urllib.parse.urlencode(params)}", body=body)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError as exc:
            raise InfluxServerError(f"{method} {path} on {self.url} failed: {exc}") from exc
        finally:
            conn.close()

    def query(self, q: str, db: str | None = None, *, epoch: str = "ms") -> dict[str, Any]:
        """Run InfluxQL ``q`` (POST ``/query``); the decoded JSON.

        Raises:
            InfluxServerError: an HTTP error or a statement error in the result.
        """
        params = {"q": q, "epoch": epoch}
        if db is not None:
            params["db"] = db
        status, body = self._request("POST", "/query", params)
        if status != 200:
            raise InfluxServerError(f"query {q!r}: HTTP {status}: {body.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(body)
        for statement in result.get("results", []):
            if "error" in statement:
                raise InfluxServerError(f"query {q!r}: {statement['error']}")
        return result

    def points(self, q: str, db: str) -> list[dict[str, Any]]:
        """Rows of every series of the first statement as dicts (``time`` in ms)."""
        rows: list[dict[str, Any]] = []
        for series in self.query(q, db)["results"][0].get("series", []):
            tags = series.get("tags", {})
            for values in series["values"]:
                rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return rows

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE`` (idempotent)."""
        self.query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE`` (idempotent)."""
        self.query(f'DROP DATABASE "{name}"')

    def write(self, db: str, lines: str | bytes) -> tuple[int, str]:
        """POST line protocol to ``/write?db=..&precision=ms``; (status, body)."""
        body = lines.encode() if isinstance(lines, str) else lines
        status, text = self._request("POST", "/write", {"db": db, "precision": "ms"}, body)
        return status, text.decode(errors="replace")
