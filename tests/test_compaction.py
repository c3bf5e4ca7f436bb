"""The compact sliding-window storage behind the rolling HRV and DFA windows."""

from __future__ import annotations

from array import array
from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from processing.compaction import COMPACT_DIVISOR, COMPACT_MIN, compact


@given(st.lists(st.one_of(st.floats(allow_nan=False), st.none()), max_size=3000))
def test_window_over_compacted_columns_matches_a_deque(ops: list[float | None]) -> None:
    """Appends (a float) and pops (None) keep the same live items as a deque, in two
    parallel columns, and the dead prefix stays bounded."""
    values, flags, head = array("d"), array("b"), 0
    ref: deque[float] = deque()
    for op in ops:
        if op is None:
            if ref:
                ref.popleft()
                head = compact(head + 1, values, flags)
        else:
            values.append(op)
            flags.append(1)
            ref.append(op)
        assert list(values[head:]) == list(ref)
        assert len(flags) == len(values)
        assert head < max(COMPACT_MIN, len(values) // COMPACT_DIVISOR + 1)


def test_long_session_keeps_storage_near_the_live_window() -> None:
    """100,000 beats through a 300-beat window: the columns never hold the history."""
    values, head, longest = array("d"), 0, 0
    for i in range(100_000):
        values.append(float(i))
        if len(values) - head > 300:
            head = compact(head + 1, values)
        longest = max(longest, len(values))
    assert values[head] == 100_000 - 300
    assert longest <= 300 * COMPACT_DIVISOR // (COMPACT_DIVISOR - 1) + COMPACT_MIN
