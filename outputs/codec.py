"""Record ⇄ JSON serialisation, shared by the session store and the network writers.

Every record (the readings of :mod:`ingest.records` and the outputs of
:mod:`processing.records`) has a *kind* tag and a compact JSON payload
(``separators=(",", ":")``) with the dataclass field names as keys:

* ``datetime`` → ISO 8601 in UTC with microseconds (``2024-05-01T06:30:00.123456+00:00``);
  naive datetimes are refused (records are timezone-aware UTC by contract). Decoding gives a
  timezone-aware UTC datetime equal to the original to the microsecond.
* ``bytes`` → lowercase hex; enums → their value; tuples → arrays; mappings → objects;
  nested dataclasses (``SegmentSummary``) → objects; ``None`` → ``null``.
* floats are written with ``repr`` (what :mod:`json` does), which round-trips exactly;
  NaN and ±Infinity are written as ``NaN``/``Infinity`` (JSON5-style, read back by :mod:`json`).
  Network writers strip non-finite values before sending; the store keeps them as they were.

Decoding ignores keys it does not know (written by a newer version) and lets dataclass
defaults fill keys that are missing (written by an older one).

>>> from datetime import datetime, timezone
>>> from ingest.records import BatteryReading
>>> r = BatteryReading(athlete="Ana", sensor="AA:BB", level_pct=87, raw=b"W",
...                    time_utc=datetime(2024, 5, 1, 6, 30, tzinfo=timezone.utc), time_mono_s=1.5)
>>> kind, payload = encode_record(r)
>>> kind, payload[:40]
('battery', '{"athlete":"Ana","sensor":"AA:BB","time_')
>>> decode_record(kind, payload) == r
True
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ingest.records import RECORD_TYPES, Reading
from outputs.errors import RecordCodecError
from processing.records import Alert, Metric, ProcessingOutput, Segment

Record = Reading | ProcessingOutput
"""Everything the store and the writers handle."""

OUTPUT_KINDS: dict[type[Any], str] = {Metric: "metric", Alert: "alert", Segment: "segment"}
"""Kind tags of processing outputs (reading kinds are :data:`ingest.records.RECORD_TYPES`)."""

KINDS: dict[type[Any], str] = {**RECORD_TYPES, **OUTPUT_KINDS}
"""Record class → kind tag, for every record type."""

READING_KINDS: frozenset[str] = frozenset(RECORD_TYPES.values())
"""Kind tags of readings."""

_CLASSES: dict[str, type[Any]] = {kind: cls for cls, kind in KINDS.items()}

_Enc = Callable[[Any], Any]
_Dec = Callable[[Any], Any]
_JSON_SCALARS: frozenset[Any] = frozenset({int, float, str, bool, type(None)})


def _identity(value: Any) -> Any:
    return value


def _enc_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (records are timezone-aware UTC)")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dec_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _enc_bytes(value: bytes) -> str:
    return bytes(value).hex()


def _optional(enc: _Enc) -> _Enc:
    def convert(value: Any) -> Any:
        return None if value is None else enc(value)

    return convert


def _tuple_of(conv: _Enc) -> _Enc:
    if conv is _identity:
        return tuple

    def convert(value: Any) -> tuple[Any, ...]:
        return tuple(conv(v) for v in value)

    return convert


def _list_of(conv: _Enc) -> _Enc:
    if conv is _identity:
        return list

    def convert(value: Any) -> list[Any]:
        return [conv(v) for v in value]

    return convert


def _mapping_of(conv: _Enc) -> _Enc:
    def convert(value: Any) -> dict[str, Any]:
        return {str(k): conv(v) for k, v in value.items()}

    return convert


def _converters(hint: Any) -> tuple[_Enc, _Dec]:
    """Encoder (value → JSON-ready) and decoder (JSON value → value) for one type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if all(a in _JSON_SCALARS for a in args):
            return _identity, _identity
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {hint!r}")
        enc, dec = _converters(inner[0])
        return _optional(enc), _optional(dec)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported tuple {hint!r}")
        enc, dec = _converters(args[0])
        return _list_of(enc), _tuple_of(dec)
    if origin in (Mapping, dict):
        enc, dec = _converters(args[1])
        return _mapping_of(enc), _mapping_of(dec)
    if hint in _JSON_SCALARS:
        return _identity, _identity
    if hint is datetime:
        return _enc_datetime, _dec_datetime
    if hint is bytes:
        return _enc_bytes, bytes.fromhex
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return (lambda e: e.value), hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        spec = _ClassSpec.build(hint)
        return spec.to_dict, spec.from_dict
    raise TypeError(f"unsupported field type {hint!r}")


class _Field(NamedTuple):
    name: str
    enc: _Enc
    dec: _Dec


@dataclasses.dataclass(frozen=True, slots=True)
class _ClassSpec:
    cls: type[Any]
    fields: tuple[_Field, ...]

    @classmethod
    def build(cls, record_cls: type[Any]) -> _ClassSpec:
        hints = typing.get_type_hints(record_cls)
        fields = tuple(
            _Field(f.name, *_converters(hints[f.name])) for f in dataclasses.fields(record_cls)
        )
        return cls(record_cls, fields)

    def to_dict(self, record: Any, skip: str | None = None) -> dict[str, Any]:
        return {f.name: f.enc(getattr(record, f.name)) for f in self.fields if f.name != skip}

    def from_dict(self, data: Mapping[str, Any], **decoded: Any) -> Any:
        """The instance; ``decoded`` supplies fields already decoded (not read from ``data``)."""
        kwargs = {f.name: f.dec(data[f.name]) for f in self.fields if f.name in data}
        kwargs.update(decoded)
        return self.cls(**kwargs)


_SPECS: dict[str, _ClassSpec] = {kind: _ClassSpec.build(cls) for kind, cls in _CLASSES.items()}
_HAS_RAW: frozenset[str] = frozenset(
    kind for kind, spec in _SPECS.items() if any(f.name == "raw" for f in spec.fields)
)


def kind_of(record: Record) -> str:
    """The kind tag of a record (``"heart_rate"``, ``"stride"``, …, ``"metric"``)."""
    try:
        return KINDS[type(record)]
    except KeyError:
        raise RecordCodecError(type(record).__name__, "not a record type") from None


_dumps = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON (a shared encoder: ``json.dumps`` would build one per call with these options)."""


def encode_record(record: Record) -> tuple[str, str]:
    """``(kind, payload)``: a self-contained JSON payload (``raw`` included, as hex).

    Raises:
        RecordCodecError: not a record type, a naive datetime, or a value JSON cannot hold.
    """
    kind = kind_of(record)
    try:
        return kind, _dumps(_SPECS[kind].to_dict(record))
    except (TypeError, ValueError, AttributeError) as exc:
        raise RecordCodecError(kind, f"cannot encode: {exc}") from exc


def decode_record(kind: str, payload: str | bytes) -> Record:
    """The record that :func:`encode_record` encoded as ``(kind, payload)``: equal field by field.

    Raises:
        RecordCodecError: unknown kind, or a payload that does not decode to that kind.
    """
    return decode_parts(kind, payload, None)


def encode_parts(record: Record) -> tuple[str, str, bytes | None]:
    """``(kind, payload, raw)``: like :func:`encode_record` but with ``raw`` kept apart.

    The store keeps raw characteristic bytes in a BLOB column instead of hex inside the JSON.
    ``raw`` is ``None`` for kinds that have no raw field.
    """
    kind = kind_of(record)
    try:
        if kind in _HAS_RAW:
            return kind, _dumps(_SPECS[kind].to_dict(record, skip="raw")), bytes(record.raw)  # type: ignore[union-attr]
        return kind, _dumps(_SPECS[kind].to_dict(record)), None
    except (TypeError, ValueError, AttributeError) as exc:
        raise RecordCodecError(kind, f"cannot encode: {exc}") from exc


def decode_parts(kind: str, payload: str | bytes, raw: bytes | None) -> Record:
    """Inverse of :func:`encode_parts` (``raw=None`` reads ``raw`` from the payload, as hex)."""
    spec = _SPECS.get(kind)
    if spec is None:
        raise RecordCodecError(kind, f"unknown record kind (known: {sorted(_SPECS)})")
    try:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise TypeError(f"payload is a JSON {type(data).__name__}, not an object")
        if raw is not None and kind in _HAS_RAW:
            data.pop("raw", None)
            record: Record = spec.from_dict(data, raw=bytes(raw))
        else:
            record = spec.from_dict(data)
        return record
    except (TypeError, ValueError, KeyError) as exc:
        raise RecordCodecError(kind, f"cannot decode payload: {exc}") from exc
