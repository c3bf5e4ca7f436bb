"""Reconnect backoff: bounded, growing, jittered."""

from __future__ import annotations

import random

import pytest

from ingest.backoff import BACKOFF_INITIAL_S, BACKOFF_MAX_S, backoff_delay_s


def test_delays_grow_then_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        nominal = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**attempt)
        samples = [backoff_delay_s(attempt, rng) for _ in range(200)]
        assert min(samples) >= nominal / 2
        assert max(samples) <= nominal
        assert len(set(samples)) > 100  # jittered, not constant


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay_s(-1, random.Random(0))


def test_full_jitter_spreads_from_zero_to_the_nominal_delay() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        nominal = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**attempt)
        samples = [backoff_delay_s(attempt, rng, jitter="full") for _ in range(200)]
        assert min(samples) >= 0
        assert min(samples) < nominal / 2  # reaches below the equal-jitter floor
        assert max(samples) <= nominal


def test_unknown_jitter_is_rejected() -> None:
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay_s(0, random.Random(0), jitter="none")  # type: ignore[arg-type]
