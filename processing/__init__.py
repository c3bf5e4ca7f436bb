"""Readings to metrics, alerts and segments: pure streaming state machines (event time, no I/O)."""
