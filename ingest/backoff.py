"""Reconnect backoff: capped exponential with jitter (pure)."""

from __future__ import annotations

import random

# 1 s first retry: a BLE link that dropped usually comes back within seconds (strap re-seated,
# runner back in range). 30 s cap: a strap out of range is retried often enough to rejoin the
# session soon after it returns, without hammering the adapter (DESIGN.md "Linux/BlueZ reality").
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0


def backoff_delay_s(
    attempt: int,
    rng: random.Random,
    *,
    initial_s: float = BACKOFF_INITIAL_S,
    max_s: float = BACKOFF_MAX_S,
) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry), seconds.

    "Equal jitter": uniform in [d/2, d] with ``d = min(max_s, initial_s * 2**attempt)``, so
    retries never collapse to zero (a herd of sensors reconnecting at once is spread out, yet
    each waits at least half the nominal delay).

    >>> rng = random.Random(1)
    >>> all(0.5 <= backoff_delay_s(0, rng) <= 1.0 for _ in range(100))
    True
    >>> all(15.0 <= backoff_delay_s(9, rng) <= 30.0 for _ in range(100))
    True
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    nominal = min(max_s, initial_s * 2.0 ** min(attempt, 30))
    return rng.uniform(nominal / 2.0, nominal)
