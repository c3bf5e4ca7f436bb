"""InfluxDB output: line protocol over HTTP, fed in order from the session store's outbox.

* :mod:`~outputs.influx.target`: :class:`InfluxTarget`, the one settings model (frozen,
  validated on construction; credentials from :mod:`outputs.secrets` as ``SecretStr``), and
  the errors.
* :mod:`~outputs.influx.classify`: HTTP status, headers and body, or a request's exception →
  :class:`Outcome` (pure, table-tested; failures described in words).
* :mod:`~outputs.influx.writer`: :class:`InfluxWriter`, an async context manager that POSTs one
  gzipped batch of lines over a kept-alive ``http.client`` connection in a worker thread.
* :mod:`~outputs.influx.delivery`: :class:`OutboxDelivery`, the loop from the outbox (through
  :mod:`outputs.outbox`: no SQLite call on the event loop) to the server, in commit order,
  with retries, dead letters, a read-only status and a real-time :meth:`~OutboxDelivery.drain`.
* :mod:`~outputs.influx.status`: :class:`DeliveryProgress`, :class:`DeliveryState` and the
  outbox protocol the delivery needs.

Modes:

``"v1"``
    ``POST {url}/write?db=..[&rp=..]&precision=ms``. Works on InfluxDB 1.x, on 2.x through its
    v1 compatibility API (database/retention policy mapped to a bucket) and on 3.x and Cloud.
    Credentials: user and password (HTTP Basic) or a token (``Authorization: Token ..``).
``"v2"``
    ``POST {url}/api/v2/write?org=..&bucket=..&precision=ms`` with ``Authorization: Token ..``:
    the endpoint and headers the official ``influxdb-client`` uses. It is plain HTTP here rather
    than ``influxdb-client`` so that both modes share the outbox, batching, retry and dead-letter
    logic, and the client's own background batching/retry (which would acknowledge records
    before they are written) stays out of the way.

Credentials come from the environment (:meth:`InfluxTarget.from_env`,
:meth:`InfluxTarget.build`): ``STRIDEWATCH_INFLUX_TOKEN``, ``STRIDEWATCH_INFLUX_USER``,
``STRIDEWATCH_INFLUX_PASSWORD``.
"""

from __future__ import annotations

from outputs.influx.classify import (
    Outcome,
    OutcomeKind,
    classify,
    classify_exception,
    describe_exception,
    parse_retry_after,
    server_message,
)
from outputs.influx.delivery import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    POLL_INTERVAL_S,
    SPLIT_BUDGET,
    OutboxDelivery,
)
from outputs.influx.status import (
    DeliveryOutbox,
    DeliveryProgress,
    DeliveryState,
    DeliveryStatus,
    StoreDeliveryOutbox,
)
from outputs.influx.target import (
    DEFAULT_BATCH_AGE_S,
    DEFAULT_BATCH_LINES,
    DEFAULT_TIMEOUT_S,
    ENV_PASSWORD,
    ENV_TOKEN,
    ENV_USER,
    InfluxAuthError,
    InfluxConfigError,
    InfluxError,
    InfluxTarget,
)
from outputs.influx.writer import DeliveryResult, InfluxWriter

__all__ = [
    "BACKOFF_INITIAL_S",
    "BACKOFF_MAX_S",
    "DEFAULT_BATCH_AGE_S",
    "DEFAULT_BATCH_LINES",
    "DEFAULT_TIMEOUT_S",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USER",
    "POLL_INTERVAL_S",
    "SPLIT_BUDGET",
    "DeliveryOutbox",
    "DeliveryProgress",
    "DeliveryResult",
    "DeliveryState",
    "DeliveryStatus",
    "InfluxAuthError",
    "InfluxConfigError",
    "InfluxError",
    "InfluxTarget",
    "InfluxWriter",
    "OutboxDelivery",
    "Outcome",
    "OutcomeKind",
    "StoreDeliveryOutbox",
    "classify",
    "classify_exception",
    "describe_exception",
    "parse_retry_after",
    "server_message",
]
