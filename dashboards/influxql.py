"""A small typed InfluxQL query model: what the dashboards ask InfluxDB, rendered to text.

Only the subset the dashboards need (and that runs on InfluxDB 1.x, 2.x through its v1 API
and 3.x): ``SELECT`` fields, raw or through one function, ``FROM`` a measurement or a
subquery, ``WHERE`` the templated athlete (``"athlete" =~ /^$athlete$/``), equality
conditions and Grafana's ``$timeFilter``, ``GROUP BY time($__interval)`` with ``fill(...)``
and tag keys.

>>> q = Query("heart", (Select("heart_rate_bpm", Fn.MEAN, "HR"),))
>>> q.render()
'SELECT mean("heart_rate_bpm") AS "HR" FROM "heart" WHERE "athlete" =~ /^$athlete$/ AND \
$timeFilter GROUP BY time($__interval) fill(null)'
>>> Query("battery", (Select("level_pct", Fn.LAST),), interval=None, tags=("sensor",)).render()
'SELECT last("level_pct") FROM "battery" WHERE "athlete" =~ /^$athlete$/ AND $timeFilter \
GROUP BY "sensor"'

:func:`target` wraps a query into the Grafana InfluxDB (InfluxQL) target of a panel.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator

ATHLETE_TAG = "athlete"
ATHLETE_VARIABLE = "athlete"
TIME_FILTER = "$timeFilter"
"""Grafana's macro for the dashboard (or panel) time range: ``time >= ...ms and time <= ...ms``."""
INTERVAL = "$__interval"
"""Grafana's macro for the group-by interval that fits the panel width."""


class Fn(enum.StrEnum):
    """InfluxQL functions the dashboards use (aggregations and selectors)."""

    MEAN = "mean"
    MEDIAN = "median"
    LAST = "last"
    FIRST = "first"
    MAX = "max"
    MIN = "min"
    SUM = "sum"
    COUNT = "count"
    SPREAD = "spread"


class Fill(enum.StrEnum):
    """``fill()`` for empty ``GROUP BY time`` buckets."""

    NONE = "none"
    NULL = "null"
    PREVIOUS = "previous"


class ResultFormat(enum.StrEnum):
    """How Grafana's InfluxDB data source shapes the result."""

    TIME_SERIES = "time_series"
    TABLE = "table"


def quote_ident(name: str) -> str:
    """A double-quoted identifier (measurement, field, tag key, alias).

    >>> quote_ident('a"b')
    '"a\\\\"b"'
    """
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str | float | bool) -> str:
    """An InfluxQL literal: single-quoted string, number or boolean.

    >>> literal("it's"), literal(True), literal(0.75)
    ("'it\\\\'s'", 'true', '0.75')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Select:
    """One selected column: a field (or a tag in a raw query), through ``fn`` or raw."""

    field: str
    fn: Fn | None = None
    alias: str | None = None

    def render(self) -> str:
        expr = quote_ident(self.field)
        if self.fn is not None:
            expr = f"{self.fn.value}({expr})"
        return f"{expr} AS {quote_ident(self.alias)}" if self.alias else expr

    @property
    def column(self) -> str:
        """The column name in the result."""
        if self.alias:
            return self.alias
        return self.fn.value if self.fn is not None else self.field


@dataclasses.dataclass(frozen=True, slots=True)
class Eq:
    """``"key" = literal`` (a field or a tag compared with a constant)."""

    key: str
    value: str | float | bool

    def render(self) -> str:
        return f"{quote_ident(self.key)} = {literal(self.value)}"


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL ``SELECT`` statement.

    ``source`` is a measurement name or a subquery. ``athlete`` adds the templated athlete
    filter, ``time_filter`` Grafana's ``$timeFilter``. ``interval`` (``$__interval`` by
    default) groups by time, with ``fill``; ``None`` for one row per series (or raw rows).
    ``tags`` are ``GROUP BY`` tag keys.
    """

    source: str | Query
    select: tuple[Select, ...]
    where: tuple[Eq, ...] = ()
    athlete: bool = True
    time_filter: bool = True
    interval: str | None = INTERVAL
    fill: Fill | None = Fill.NULL
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.select:
            raise ValueError("a query selects at least one column")
        aggregated = [s.fn is not None for s in self.select]
        if any(aggregated) and not all(aggregated):
            raise ValueError("InfluxQL cannot mix raw fields and functions in one SELECT")
        if self.interval is not None and not all(aggregated):
            raise ValueError("GROUP BY time needs every column through a function")

    @property
    def raw(self) -> bool:
        """Whether the columns are raw values (no function)."""
        return all(s.fn is None for s in self.select)

    def conditions(self) -> list[str]:
        out: list[str] = []
        if self.athlete:
            out.append(f"{quote_ident(ATHLETE_TAG)} =~ /^${ATHLETE_VARIABLE}$/")
        out.extend(c.render() for c in self.where)
        if self.time_filter:
            out.append(TIME_FILTER)
        return out

    def render(self) -> str:
        """The statement as text (Grafana interpolates the ``$`` variables and macros)."""
        source = (
            quote_ident(self.source)
            if isinstance(self.source, str)
            else f"({self.source.render()})"
        )
        text = f"SELECT {', '.join(s.render() for s in self.select)} FROM {source}"
        conditions = self.conditions()
        if conditions:
            text += " WHERE " + " AND ".join(conditions)
        group = ([f"time({self.interval})"] if self.interval is not None else []) + [
            quote_ident(t) for t in self.tags
        ]
        if group:
            text += " GROUP BY " + ", ".join(group)
        if self.interval is not None and self.fill is not None:
            text += f" fill({self.fill.value})"
        return text

    def measurements(self) -> Iterator[str]:
        """Every measurement read (through subqueries too)."""
        if isinstance(self.source, str):
            yield self.source
        else:
            yield from self.source.measurements()

    def references(self) -> Iterator[tuple[str, str]]:
        """``(measurement, key)`` for every field or tag key this query reads from storage.

        Columns of an outer query over a subquery refer to the subquery's columns, not to
        stored keys: only the innermost query's keys (and its conditions) are reported.
        """
        if isinstance(self.source, Query):
            yield from self.source.references()
            return
        for s in self.select:
            yield self.source, s.field
        for c in self.where:
            yield self.source, c.key
        for t in self.tags:
            yield self.source, t
        if self.athlete:
            yield self.source, ATHLETE_TAG


DataSource = dict[str, str]


def target(
    query: Query,
    ref_id: str = "A",
    *,
    result_format: ResultFormat = ResultFormat.TIME_SERIES,
    alias: str | None = None,
    datasource: DataSource | None = None,
) -> dict[str, object]:
    """The Grafana InfluxDB (InfluxQL) target of a panel: a raw query.

    ``alias`` is Grafana's series alias pattern (``$tag_sensor``, ``$col``), time series only.
    """
    out: dict[str, object] = {
        "refId": ref_id,
        "query": query.render(),
        "rawQuery": True,
        "resultFormat": result_format.value,
    }
    if alias is not None:
        out["alias"] = alias
    if datasource is not None:
        out["datasource"] = dict(datasource)
    return out
