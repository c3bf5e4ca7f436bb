"""Reconnect backoff: capped exponential with jitter (pure). The one backoff of the project.

Every client that retries a link uses :func:`backoff_delay_s`: the BLE collector with "equal"
jitter (a sensor always waits at least half the nominal delay), the MQTT clients with "full"
jitter (aiomqtt's scheme: a herd of clients reconnecting after a broker restart is spread over
the whole interval). The loop around it is :mod:`ingest.reconnect`.
"""

from __future__ import annotations

import random
from typing import Final, Literal

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "JITTERS", "Jitter", "backoff_delay_s"]

# 1 s first retry: a BLE link that dropped usually comes back within seconds (strap re-seated,
# runner back in range). 30 s cap: a strap out of range is retried often enough to rejoin the
# session soon after it returns, without hammering the adapter (DESIGN.md "Linux/BlueZ reality").
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0

Jitter = Literal["equal", "full"]
JITTERS: Final[tuple[Jitter, ...]] = ("equal", "full")


def backoff_delay_s(
    attempt: int,
    rng: random.Random,
    *,
    initial_s: float = BACKOFF_INITIAL_S,
    max_s: float = BACKOFF_MAX_S,
    jitter: Jitter = "equal",
) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry), seconds.

    The nominal delay is ``d = min(max_s, initial_s * 2**attempt)``.

    * ``"equal"`` jitter: uniform in [d/2, d], so retries never collapse to zero (a herd of
      sensors reconnecting at once is spread out, yet each waits at least half of ``d``).
    * ``"full"`` jitter: uniform in [0, d] (the widest spread; a first retry may be immediate).

    >>> rng = random.Random(1)
    >>> all(0.5 <= backoff_delay_s(0, rng) <= 1.0 for _ in range(100))
    True
    >>> all(15.0 <= backoff_delay_s(9, rng) <= 30.0 for _ in range(100))
    True
    >>> all(0 <= backoff_delay_s(a, rng, jitter="full") <= 30 for a in range(100))
    True
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if jitter not in JITTERS:
        raise ValueError(f"jitter must be one of {JITTERS}, got {jitter!r}")
    nominal = min(max_s, initial_s * 2.0 ** min(attempt, 30))
    low = nominal / 2.0 if jitter == "equal" else 0.0
    return rng.uniform(low, nominal)
