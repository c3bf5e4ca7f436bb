"""``stridewatch report``: a stored session's report rendered as JSON, text or HTML.

Apart from :mod:`stridewatch.report` (which builds the data) so the renderers can import the
report's types without a cycle.
"""

from __future__ import annotations

import json

from outputs.store import SessionStore
from stridewatch.report import ReportFormat, build_report, build_timeseries

__all__ = ["render_report"]


def render_report(store: SessionStore, session_id: str, fmt: ReportFormat = "html") -> str:
    """``stridewatch report SESSION --format FMT``: the report as one string.

    ``json`` is indented, key order as documented, and strict (no NaN).

    Raises:
        UnknownSessionError: no such session.
        ValueError: an unknown format.
    """
    report = build_report(store, session_id)
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "text":
        from stridewatch.report_text import render_text

        return render_text(report)
    if fmt == "html":
        from stridewatch.report_html import render_html  # matplotlib only when needed

        return render_html(report, build_timeseries(store, session_id))
    raise ValueError(f"unknown report format {fmt!r} (html, json or text)")
