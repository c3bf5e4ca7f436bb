"""Compact storage for sliding windows of beats: parallel ``array`` columns and a head index.

Rolling windows (HRV 60 s and 5 min, DFA 2 min) keep hundreds of beats per athlete; a
``deque`` of Python floats or of small objects costs 32–90 bytes a value, an ``array('d')`` 8.
A window appends at the right of its columns and advances a head index at the left; once the
dead prefix is at least an eighth of the columns (and 64 items) it is cut off with one
``memmove`` per column. Memory stays within about 1.2× of the live items, and each value is
moved a bounded number of times (issue #4: per-athlete state ≤ 64 KB).
"""

from __future__ import annotations

from array import array
from typing import Any

__all__ = ["COMPACT_DIVISOR", "COMPACT_MIN", "compact"]

COMPACT_MIN = 64
"""Dead items tolerated at the head before the prefix is cut off."""
COMPACT_DIVISOR = 8
"""The prefix is cut off once it is at least 1/COMPACT_DIVISOR of the columns."""


def compact(head: int, *columns: array[Any]) -> int:
    """Cut the dead prefix ``[:head]`` off every column when it is due; return the new head.

    Example:
        >>> times, values = array("d", range(100)), array("b", [1] * 100)
        >>> compact(70, times, values), len(times), times[0], len(values)
        (0, 30, 70.0, 30)
        >>> compact(10, times, values), len(times)
        (10, 30)
    """
    if head >= COMPACT_MIN and COMPACT_DIVISOR * head >= len(columns[0]):
        for column in columns:
            del column[:head]
        return 0
    return head
