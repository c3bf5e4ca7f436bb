"""The live console off a terminal (logs, pipes, CI): wide enough for every column."""

from __future__ import annotations

from stridewatch.console import NON_TERMINAL_WIDTH, LiveView


def test_live_table_headers_are_whole_off_a_terminal() -> None:
    view = LiveView("stridewatch demo")  # pytest captures stdout: not a terminal
    assert not view.console.is_terminal
    assert view.console.width == NON_TERMINAL_WIDTH
    with view.console.capture() as captured:
        view.console.print(view._render())  # the table the live view shows
    text = captured.get()
    for column in ("athlete", "zone", "RMSSD", "DFA α1", "cadence", "segment", "battery",
                   "link", "alerts"):
        assert column in text, column
