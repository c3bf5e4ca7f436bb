"""Pick the reader for a recorded file: by content first, then by extension.

Rules, in order:

1. Bytes 8–11 are ``.FIT`` (the FIT file header's data type): FIT, whatever the name.
2. Extension ``.fit`` (any case): FIT (a damaged header then gets FIT's own error).
3. Extension ``.csv``: CSV. Extension ``.txt``, ``.rr``, ``.hrv``: RR text.
4. No known extension: text whose first non-comment line contains ``time`` and a comma is
   CSV; text of numbers only is RR text.

Anything else raises :class:`~ingest.errors.ReplayError` listing the supported formats.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Final

from ingest.errors import ReplayError
from ingest.replay.csv_source import read_csv
from ingest.replay.fit import Activity, SourceFormat, read_fit
from ingest.replay.rr_text import read_rr_text

__all__ = ["SUPPORTED_FORMATS", "read_activity_file", "sniff_format"]

SUPPORTED_FORMATS: Final[dict[SourceFormat, str]] = {
    "fit": "FIT activity file (.fit)",
    "csv": "CSV with a header row (.csv; see docs/import-formats.md)",
    "rr_text": "RR intervals as text, ms or s (.txt, .rr, .hrv)",
}
_EXTENSIONS: Final[dict[str, SourceFormat]] = {
    ".fit": "fit",
    ".csv": "csv",
    ".txt": "rr_text",
    ".rr": "rr_text",
    ".hrv": "rr_text",
}
_SNIFF_BYTES: Final = 4096
_NUMBERS: Final = re.compile(r"[\d.\s,;+-]*")


def _supported() -> str:
    return "; ".join(SUPPORTED_FORMATS.values())


def sniff_format(path: str | os.PathLike[str]) -> SourceFormat:
    """The format of ``path`` by the rules in the module doc.

    Raises:
        ReplayError: unreadable, or no rule matches.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ReplayError(name, f"cannot read file: {exc.strerror or exc}") from exc
    if head[8:12] == b".FIT":
        return "fit"
    by_extension = _EXTENSIONS.get(Path(name).suffix.lower())
    if by_extension is not None:
        return by_extension
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if lines:
        first = lines[0].lower()
        if "," in first and "time" in [c.strip() for c in first.split(",")]:
            return "csv"
        if all(_NUMBERS.fullmatch(ln) for ln in lines[:-1] or lines):
            return "rr_text"
    raise ReplayError(name, f"unsupported file format; supported: {_supported()}")


def read_activity_file(
    path: str | os.PathLike[str],
    *,
    athlete: str,
    start_utc: datetime | None = None,
    salvage: bool = False,
) -> list[Activity]:
    """Read any supported recording: one :class:`Activity` per recorded session.

    Args:
        path: the file.
        athlete: athlete the readings belong to.
        start_utc: start time for formats that have none (RR text; CSV with seconds) and
            for FIT files recorded with the device clock not set.
        salvage: FIT only: import the valid prefix of a damaged file, with a note.

    Raises:
        ReplayError: unsupported format, or the format reader's error.
    """
    name = os.fspath(path)
    match sniff_format(name):
        case "fit":
            return read_fit(name, athlete=athlete, start_utc=start_utc, salvage=salvage)
        case "csv":
            return [read_csv(name, athlete=athlete, start_utc=start_utc)]
        case "rr_text":
            return [read_rr_text(name, athlete=athlete, start_utc=start_utc)]
