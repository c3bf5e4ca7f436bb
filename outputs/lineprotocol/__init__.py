"""InfluxDB line protocol: the schema of stridewatch's points and their encoding (pure).

Modules: :mod:`~outputs.lineprotocol.schema` (measurements, tag keys, field types) and
:mod:`~outputs.lineprotocol.encode` (escaping, values, lines).

One record becomes zero or more lines (``measurement,tags fields timestamp``), timestamps in
milliseconds since the Unix epoch (write with ``precision=ms``), taken from ``time_utc``.

Schema rules (``docs/influxdb.md`` has the full table):

* **Tags** only for what dashboards filter on: ``athlete`` everywhere, ``sensor`` (the sensor
  address: a handful per athlete) on raw readings, ``kind``/``severity`` on alerts and
  ``kind`` on segments. Never a session id (one series per session would grow the series
  cardinality without bound); a session is a time range.
* **Every field keeps one type forever.** :data:`FIELD_TYPES` pins the type of every known
  field. A metric field the table does not know gets its type from its Python value by one fixed
  rule (``bool`` → boolean, ``int``/``float`` → float, ``str`` → string), so numbers are floats
  even when they look integral; integers (``i`` suffix) only where the table says so. A value
  that does not fit its field's type is dropped (never written as another type), like ``None``,
  NaN and ±Inf. A point left without fields is not written.
* Escaping follows the line-protocol spec: measurement (comma, space), tag keys, tag values
  and field keys (comma, equals sign, space), string field values (double quote, backslash).
  Non-ASCII text is written as UTF-8 as it is. Line protocol cannot carry a line break, a tab
  or NUL in a key or tag value (influxd answers 204 and stores a tab-led key under another
  key): those are replaced by a space. Nor can it carry a backslash that ends a
  key or tag value or stands right before an escaped character: such a backslash (and a run
  of them) is replaced by a slash (:func:`escape_tag`).

>>> from datetime import datetime, timezone
>>> from ingest.records import BatteryReading
>>> r = BatteryReading(athlete="Ana María", sensor="AA:BB", level_pct=87, raw=b"W",
...                    time_utc=datetime(2024, 5, 1, 6, 30, tzinfo=timezone.utc), time_mono_s=1.5)
>>> encode_point(r)
['battery,athlete=Ana\\\\ María,sensor=AA:BB level_pct=87i 1714545000000']
"""

from __future__ import annotations

from outputs.lineprotocol.encode import (
    encode_point,
    encode_points,
    escape_measurement,
    escape_string_field,
    escape_tag,
    fallback_type,
    field_type,
    format_field_value,
    format_line,
    unix_ms,
)
from outputs.lineprotocol.schema import (
    ACCELERATION,
    ALERT,
    BATTERY,
    EVENT,
    FIELD_TYPES,
    GAIT,
    HEART,
    HR_RAW,
    HRV,
    LINK,
    METRIC_MEASUREMENTS,
    RR,
    RR_RAW,
    SEGMENT,
    SENSOR_INFO,
    SESSION,
    SPLIT,
    STRIDE_RAW,
    TAG_KEYS,
    FieldType,
    Record,
)

__all__ = [
    "ACCELERATION",
    "ALERT",
    "BATTERY",
    "EVENT",
    "FIELD_TYPES",
    "GAIT",
    "HEART",
    "HRV",
    "HR_RAW",
    "LINK",
    "METRIC_MEASUREMENTS",
    "RR",
    "RR_RAW",
    "SEGMENT",
    "SENSOR_INFO",
    "SESSION",
    "SPLIT",
    "STRIDE_RAW",
    "TAG_KEYS",
    "FieldType",
    "Record",
    "encode_point",
    "encode_points",
    "escape_measurement",
    "escape_string_field",
    "escape_tag",
    "fallback_type",
    "field_type",
    "format_field_value",
    "format_line",
    "unix_ms",
]
