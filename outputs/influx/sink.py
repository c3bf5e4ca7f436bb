"""InfluxDB as a Quix Streams sink: the scale-out worker's writes (issue #13).

The worker's processing outputs (metrics, segments, alerts) reach :class:`InfluxSink` one by
one; Quix batches them per partition and calls :meth:`InfluxSink.write` when it checkpoints.
The batch is encoded with our line protocol (:func:`outputs.lineprotocol.encode.encode_point`,
the same points a single ``run`` writes) and POSTed in chunks by
:class:`~outputs.influx.writer.InfluxWriter`.

Delivery: a batch that InfluxDB did not take (unreachable, 5xx, 429, a wrong database) raises
``SinkBackpressureError``: Quix then drops the batch, aborts the checkpoint (offsets and state
are not committed), pauses the partitions for ``retry_after_s`` and processes the same readings
again from the last commit. Nothing is lost, and the points written twice are the same points
(same series, same timestamps), which InfluxDB overwrites: writes are idempotent. A batch
InfluxDB *rejects* (400: a point it will never take) cannot be fixed by retrying: it is logged
with InfluxDB's reason and skipped, so one bad point never stalls the stream.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from outputs.influx.classify import OutcomeKind
from outputs.influx.target import InfluxTarget
from outputs.influx.writer import InfluxWriter
from outputs.lineprotocol.encode import encode_point
from outputs.quix import BatchingSink, SinkBackpressureError, SinkBatch

logger = logging.getLogger(__name__)

LINES_PER_REQUEST: Final = 5000
"""InfluxDB's recommended batch size for ``/write``."""
RETRY_AFTER_S: Final = 5.0
"""Pause of the partitions after a failed write before the batch is processed again."""


class InfluxSink(BatchingSink):
    """Writes the worker's outputs (processing records) to one InfluxDB target."""

    def __init__(self, target: InfluxTarget, *, retry_after_s: float = RETRY_AFTER_S) -> None:
        super().__init__()
        self.target = target
        self.retry_after_s = retry_after_s
        self.written_lines = 0
        self.failed_writes = 0
        self._writer = InfluxWriter(target)

    def write(self, batch: SinkBatch) -> None:
        lines: list[str] = []
        for item in batch:
            record: Any = item.value
            lines.extend(encode_point(record))
        for start in range(0, len(lines), LINES_PER_REQUEST):
            chunk = lines[start:start + LINES_PER_REQUEST]
            result = self._writer.deliver_blocking(chunk)
            if result.ok:
                self.written_lines += len(chunk)
                continue
            if result.outcome.kind is OutcomeKind.REJECTED:
                logger.error("InfluxDB %s rejected %d line(s), skipped: %s",
                             self.target.url, len(chunk), result.outcome.message)
                continue
            self.failed_writes += 1
            logger.warning("InfluxDB %s: %s; the batch is processed again in %.0f s",
                           self.target.url, result.outcome.message, self.retry_after_s)
            raise SinkBackpressureError(retry_after=self.retry_after_s)

    def close(self) -> None:
        """Close the HTTP connection."""
        self._writer.close()
