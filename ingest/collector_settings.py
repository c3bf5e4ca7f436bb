"""Timing and buffering of the BLE collector, with the reasons behind each default."""

from __future__ import annotations

import dataclasses

from ingest.beat_clock import DEFAULT_GAP_THRESHOLD_S

# BlueZ needs several seconds to connect and discover services on a busy adapter; bleak's own
# default is 10 s and shorter timeouts fail spuriously on a Raspberry Pi (DESIGN.md).
MIN_CONNECT_TIMEOUT_S = 10.0
# Straps notify at ~1 Hz and footpods at 1-2 Hz: 5 s of silence on a connected link means it is
# dead (typical after a rejected connection-parameter update) even if no disconnect was reported.
DEFAULT_SILENCE_TIMEOUT_S = 5.0
# Scan windows: long enough to hear sensors advertising at ~1 s intervals several times.
DEFAULT_SCAN_S = 5.0
# A rescan picks up sensors that are switched on (or put on: Polar straps wake on skin contact)
# after the session started.
DEFAULT_RESCAN_INTERVAL_S = 10.0
# ~10 minutes of 10 athletes' readings: far more than a live consumer should ever lag.
DEFAULT_QUEUE_SIZE = 50_000
# While the adapter is gone discovery probes for it (a scan start, a local call that fails at
# once) with backoff up to this: a dongle plugged back in is used within seconds.
ADAPTER_PROBE_MAX_S = 5.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CollectorSettings:
    """Timing of the collector; defaults suit real sensors on BlueZ."""

    connect_timeout_s: float = MIN_CONNECT_TIMEOUT_S
    silence_timeout_s: float = DEFAULT_SILENCE_TIMEOUT_S
    scan_s: float = DEFAULT_SCAN_S
    rescan_interval_s: float = DEFAULT_RESCAN_INTERVAL_S
    queue_size: int = DEFAULT_QUEUE_SIZE
    rr_gap_threshold_s: float = DEFAULT_GAP_THRESHOLD_S
    seed: int = 0
    """Seed of the backoff jitter (reproducible virtual runs)."""

    def __post_init__(self) -> None:
        if self.connect_timeout_s < MIN_CONNECT_TIMEOUT_S:
            raise ValueError(
                f"connect_timeout_s must be >= {MIN_CONNECT_TIMEOUT_S} s (BlueZ connects slowly)"
            )
        if self.silence_timeout_s <= 0 or self.scan_s <= 0 or self.rescan_interval_s <= 0:
            raise ValueError("collector timings must be > 0")
        if self.queue_size < 1:
            raise ValueError("queue_size must be >= 1")
