"""Recorded runs as a source: FIT, CSV and RR-interval text files become the same Readings
the collector yields, grouped in :class:`Activity` objects (one per recorded session).

Readers are pure functions of the file: they read everything before returning and raise
:class:`~ingest.errors.ReplayError` (path, reason, line / record number / byte offset) on a
damaged or malformed file, so an importer never sees a partial result (a FIT file's valid
prefix only on request, ``salvage=True``, and then with a note). See
``docs/import-formats.md``.
"""

from ingest.errors import ReplayError
from ingest.replay.csv_source import CSV_HR_SENSOR, CSV_POD_SENSOR, read_csv
from ingest.replay.detect import SUPPORTED_FORMATS, read_activity_file, sniff_format
from ingest.replay.fit import (
    FIT_CADENCE_UNIT,
    FIT_HR_SENSOR,
    FIT_POD_SENSOR,
    Activity,
    CadenceUnit,
    DeviceInfo,
    FitSummary,
    RecordTotals,
    SourceFormat,
    read_fit,
)
from ingest.replay.rr_text import RR_HR_SENSOR, detect_rr_unit, parse_rr_text, read_rr_text

__all__ = [
    "CSV_HR_SENSOR",
    "CSV_POD_SENSOR",
    "FIT_CADENCE_UNIT",
    "FIT_HR_SENSOR",
    "FIT_POD_SENSOR",
    "RR_HR_SENSOR",
    "SUPPORTED_FORMATS",
    "Activity",
    "CadenceUnit",
    "DeviceInfo",
    "FitSummary",
    "RecordTotals",
    "ReplayError",
    "SourceFormat",
    "detect_rr_unit",
    "parse_rr_text",
    "read_activity_file",
    "read_csv",
    "read_fit",
    "read_rr_text",
    "sniff_format",
]
