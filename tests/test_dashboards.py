"""Dashboards as code: the committed JSON is current, and every query runs on a real influxd.

The demo data is a virtual session through the whole path (bumble sensors → bleak backend →
collector → :class:`Pipeline`), every reading and output encoded with ``encode_point`` and
written over HTTP: a low-HRV ``morning-5k`` (surge, ceiling, readiness and low-battery alerts,
splits, segments), two hours later ``start-practice`` (accelerations), then ``easy-8k`` (a run
segment of more than 10 minutes: aerobic decoupling).
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from influx_server import InfluxServer

from dashboards.build import PanelQuery, panel_queries
from dashboards.export import GENERATED_DIR, REGENERATE, export
from dashboards.influxql import Fn, Query
from ingest.clock import LoopClock
from ingest.records import Reading
from ingest.virtual import timewarp
from ingest.virtual.sensors import Fault, virtual_fleet
from outputs.lineprotocol import (
    ACCELERATION,
    FIELD_TYPES,
    METRIC_MEASUREMENTS,
    SPLIT,
    TAG_KEYS,
    FieldType,
    encode_point,
)
from processing.accelerations import Acceleration
from processing.pipeline import AthleteHistory, Pipeline
from processing.records import ProcessingOutput
from processing.splits import Split

ATHLETE = "athlete-1"
EPOCH = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
SESSIONS = (  # (workout, start, low HRV, faults)
    ("morning-5k", EPOCH, True, (Fault("low_battery", "strap", 300.0),)),
    ("start-practice", EPOCH + timedelta(hours=2), False, ()),
    ("easy-8k", EPOCH + timedelta(hours=4), False, ()),  # a run long enough for decoupling
)
INTERVAL = "10s"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "influxdb.md"
FILES = ("stridewatch-live.json", "stridewatch-post-run.json", "stridewatch-team.json")


# ------------------------------------------------------------------ the committed JSON


def test_generated_json_is_current(tmp_path: Path) -> None:
    paths = export(tmp_path)
    assert sorted(p.name for p in paths) == sorted(FILES)
    for name in FILES:
        committed = GENERATED_DIR / name
        assert committed.exists(), f"{committed} is missing: run `{REGENERATE}`"
        assert (tmp_path / name).read_bytes() == committed.read_bytes(), (
            f"{committed} is stale: run `{REGENERATE}` and commit the result"
        )


def test_export_is_stable_json(tmp_path: Path) -> None:
    for path in export(tmp_path):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        data = json.loads(text)
        assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        assert data["uid"] == path.stem


# ------------------------------------------------------------------ queries in the JSON


@dataclasses.dataclass(frozen=True)
class JsonQuery:
    dashboard: str
    panel: str
    ref_id: str
    query: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def _json_queries() -> list[JsonQuery]:
    out: list[JsonQuery] = []
    for name in FILES:
        data = json.loads((GENERATED_DIR / name).read_text(encoding="utf-8"))
        uid = data["uid"]
        for var in data["templating"]["list"]:
            out.append(JsonQuery(uid, f"variable: {var['name']}", "", var["query"]))
        for anno in data["annotations"]["list"]:
            out.append(JsonQuery(uid, f"annotation: {anno['name']}", anno["target"]["refId"],
                                 anno["target"]["query"]))  # fmt: skip
        for panel in data["panels"]:
            for t in panel.get("targets", []):
                assert t["rawQuery"] is True
                assert t["resultFormat"] in ("time_series", "table")
                assert t["datasource"] == {"type": "influxdb", "uid": "stridewatch-influxql"}
                out.append(JsonQuery(uid, panel["title"], t["refId"], t["query"]))
    return out


JSON_QUERIES = _json_queries()


def fill_variables(query: str, start_ms: int, end_ms: int) -> str:
    """Interpolate like Grafana does for the demo athlete, range and interval."""
    return (
        query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        .replace("$__interval", INTERVAL)
        .replace("$athlete", re.escape(ATHLETE))
    )


# ------------------------------------------------------------------ the demo session


@dataclasses.dataclass(frozen=True)
class Demo:
    server: InfluxServer
    db: str
    start_ms: int
    end_ms: int


def _session(workout: str, start: datetime, low_hrv: bool, faults: tuple[Fault, ...]) -> list[
    Reading | ProcessingOutput
]:  # fmt: skip
    history = AthleteHistory(resting_rmssd_ms=(52.0, 48.0, 55.0, 50.0))
    pipeline = Pipeline(history={ATHLETE: history})
    records: list[Reading | ProcessingOutput] = []

    def sink(record: Reading) -> None:
        records.append(record)
        records.extend(pipeline.process(record))

    async def main() -> None:
        async with virtual_fleet(workout, low_hrv=low_hrv, faults=faults) as fleet:
            await fleet.collect(sink, clock=LoopClock(start))

    timewarp.run(main(), speed=None)
    records.extend(pipeline.finish())
    return records


@pytest.fixture(scope="module")
def demo(influxd: InfluxServer) -> Iterator[Demo]:
    influxd.start()
    db = f"dashboards_{secrets.token_hex(4)}"
    influxd.create_database(db)
    times: list[int] = []
    for workout, start, low_hrv, faults in SESSIONS:
        lines = [line for r in _session(workout, start, low_hrv, faults)
                 for line in encode_point(r)]  # fmt: skip
        times.extend(int(line.rsplit(" ", 1)[1]) for line in lines)
        for i in range(0, len(lines), 5000):
            status, body = influxd.write(db, "\n".join(lines[i : i + 5000]))
            assert status == 204, body
    try:
        yield Demo(influxd, db, min(times) - 60_000, max(times) + 60_000)
    finally:
        influxd.drop_database(db)


def test_every_dashboard_has_queries() -> None:
    dashboards = {q.dashboard for q in JSON_QUERIES}
    assert dashboards == {"stridewatch-live", "stridewatch-post-run", "stridewatch-team"}
    ids = [q.id for q in JSON_QUERIES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("q", JSON_QUERIES, ids=[q.id for q in JSON_QUERIES])
def test_query_runs_and_returns_data(demo: Demo, q: JsonQuery) -> None:
    text = fill_variables(q.query, demo.start_ms, demo.end_ms)
    assert not re.search(r"\$\w", text), f"unfilled variable in {text}"
    result = demo.server.query(text, demo.db)  # raises on an HTTP or statement error
    statements = result["results"]
    assert statements
    assert all("error" not in s for s in statements), statements
    series = statements[0].get("series", [])
    assert series, f"no data for {text}"
    values = [
        v
        for s in series
        for row in s["values"]
        for column, v in zip(s["columns"], row, strict=True)
        if column != "time"
    ]
    assert any(v is not None for v in values), f"only nulls for {text}"


# ------------------------------------------------------------------ schema


def _dataclass_fields(measurement: str) -> set[str]:
    cls = {SPLIT: Split, ACCELERATION: Acceleration}[measurement]
    return {f.name for f in dataclasses.fields(cls)}


def _docs_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|(.*)", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


MODEL_QUERIES = [q for q in panel_queries() if q.query is not None]


def _known(measurement: str, key: str) -> FieldType | bool:
    """The field's type, True for a tag, False when unknown."""
    if key in TAG_KEYS.get(measurement, ()):
        return True
    if measurement in (SPLIT, ACCELERATION):
        return FieldType.FLOAT if key in _dataclass_fields(measurement) else False
    return FIELD_TYPES[measurement].get(key, False)


@pytest.mark.parametrize(
    "pq", MODEL_QUERIES, ids=[f"{q.dashboard_uid}:{q.panel}:{q.ref_id}" for q in MODEL_QUERIES]
)
def test_query_uses_only_schema_measurements_and_fields(pq: PanelQuery) -> None:
    assert pq.query is not None
    docs = _docs_rows()
    for measurement in pq.query.measurements():
        assert measurement in FIELD_TYPES, measurement
        assert measurement in docs, f"{measurement} is not in docs/influxdb.md"
    for measurement, key in pq.query.references():
        known = _known(measurement, key)
        assert known is not False, f"{measurement}.{key} is not in the schema"
        row = docs[measurement]
        # The docs abbreviate: "zone1_s…zone5_s", and hrv's 300 s fields as "the same for 300s".
        documented = re.sub(r"zone[1-5]_s", "zone1_s", key).replace("_300s", "_60s")
        in_docs = documented in row
        assert in_docs or measurement in (SPLIT, ACCELERATION), f"{measurement}.{key} not in docs"
    _check_function_types(pq.query)


def _check_function_types(query: Query) -> None:
    if not isinstance(query.source, str):
        _check_function_types(query.source)
        return
    numeric_only = {Fn.MEAN, Fn.MEDIAN, Fn.SUM, Fn.SPREAD, Fn.MAX, Fn.MIN}
    for s in query.select:
        kind = _known(query.source, s.field)
        if s.fn in numeric_only:
            assert kind in (FieldType.FLOAT, FieldType.INTEGER), (
                f"{s.fn}() of {query.source}.{s.field} ({kind}) is not numeric"
            )


def test_measurements_cover_the_schema_tables() -> None:
    used = {m for q in MODEL_QUERIES if q.query is not None for m in q.query.measurements()}
    # Every processing output that a dashboard shows is a metric measurement or alert/segment.
    assert set(METRIC_MEASUREMENTS.values()) - used <= {"event"}
    assert {"alert", "segment", "battery", "link"} <= used


def test_json_queries_are_the_model_queries() -> None:
    rendered = {(q.dashboard_uid, q.panel, q.ref_id): q.text for q in panel_queries()}
    from_json = {(q.dashboard, q.panel, q.ref_id): q.query for q in JSON_QUERIES}
    assert from_json == rendered, f"stale JSON: run `{REGENERATE}`"
