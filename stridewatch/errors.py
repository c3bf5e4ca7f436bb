"""The application's two failure classes, mapped to exit codes by :func:`stridewatch.cli.main`.

Kept apart from ``cli.py`` so the commands can raise them without importing the CLI (no cycle).
"""

from __future__ import annotations

__all__ = ["RuntimeFailureError", "UsageError"]


class UsageError(Exception):
    """Bad input or configuration: printed to stderr, exit code 2."""


class RuntimeFailureError(Exception):
    """A failure while running (server, store, radio): printed to stderr, exit code 1."""
