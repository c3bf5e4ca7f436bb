"""Grafana alert rules as code (issue #12 item 3): the committed provisioning file is current
and valid, every rule's InfluxQL query runs on a real influxd, and on known data the rules
fire for exactly the athletes they should (Grafana's reduce + threshold applied to the
result).

The data: three athletes in the 10 minutes before the evaluation time ``EVAL``, written as
processing records through ``encode_point`` (the same path as the gateway's InfluxDB output):
Ana's heart rate is above the ceiling for the last 2 minutes and she had an HR surge alert;
Ben's strap stopped 2 minutes ago (sensor lost) and he had an early surge alert; Cy is fine.
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
import yaml
from influx_server import InfluxServer

from dashboards.alert_rules import (
    ALERT_LOOKBACK_S,
    DATASOURCE_UID,
    EXPRESSION_UID,
    PIPELINE_KINDS,
    REGENERATE,
    RULES_FILE,
    AlertRule,
    document,
    rules,
    to_yaml,
    write,
)
from dashboards.build import hr_zone_bounds_bpm
from dashboards.export import GENERATED_DIR
from outputs.lineprotocol import FIELD_TYPES, TAG_KEYS, encode_point
from processing.records import Alert, AlertKind, Metric, MetricGroup, ProcessingOutput, Severity

EVAL = datetime(2026, 6, 1, 7, 0, 20, tzinfo=UTC)
"""When "Grafana" evaluates the rules (``now`` of the relative time ranges); not on a minute
boundary, so the last ``GROUP BY time(1m)`` bucket is partial as in real evaluations."""
ATHLETES = ("Ana", "Ben", "Cy")
RULES = rules()
EXPECTED_FIRING = {
    "stridewatch-hr-surge": {"Ana"},
    "stridewatch-early-surge": {"Ben"},
    "stridewatch-sensor-lost": {"Ben"},
    "stridewatch-no-contact": set(),
    "stridewatch-hr-above-ceiling": {"Ana"},
    "stridewatch-no-heart-data": {"Ben"},
}


# ------------------------------------------------------------------ the committed file


def test_provisioning_file_is_current(tmp_path: Path) -> None:
    assert RULES_FILE.exists(), f"{RULES_FILE} is missing: run `{REGENERATE}`"
    assert RULES_FILE.read_text(encoding="utf-8") == to_yaml(), (
        f"{RULES_FILE} is stale: run `{REGENERATE}` and commit the result"
    )
    regenerated = write(tmp_path / "rules.yaml")
    assert regenerated.read_bytes() == RULES_FILE.read_bytes()


def test_provisioning_file_is_the_document_as_yaml() -> None:
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(document()))
    assert RULES_FILE.parent.name == "alerting"
    assert RULES_FILE.parent.parent.name == "provisioning"


def test_rules_are_valid_grafana_provisioning() -> None:
    data = document()
    assert data["apiVersion"] == 1
    [group] = data["groups"]
    assert group["folder"] == "stridewatch"
    assert re.fullmatch(r"\d+[sm]", group["interval"])
    uids = [r["uid"] for r in group["rules"]]
    assert uids == list(EXPECTED_FIRING)
    assert len(set(uids)) == len(uids)
    for rule in group["rules"]:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", rule["uid"])
        refs = [d["refId"] for d in rule["data"]]
        assert refs == ["A", "B", "C"]
        assert rule["condition"] == "C"
        query, reduce, threshold = rule["data"]
        assert query["datasourceUid"] == DATASOURCE_UID
        assert query["model"]["rawQuery"] is True
        assert query["relativeTimeRange"]["from"] > 0 == query["relativeTimeRange"]["to"]
        assert "$athlete" not in query["model"]["query"]  # no dashboard variables in alerting
        assert reduce["datasourceUid"] == threshold["datasourceUid"] == EXPRESSION_UID
        assert reduce["model"]["expression"] == "A"
        assert threshold["model"]["expression"] == "B"
        assert rule["noDataState"] in ("OK", "NoData", "Alerting")
        assert rule["execErrState"] in ("OK", "Error", "Alerting")
        # Grafana expands $VARS from its environment in labels and titles (not in queries or
        # annotations): they must hold none.
        assert "$" not in rule["title"]
        assert not any("$" in v for v in rule["labels"].values())
        assert rule["labels"]["source"] == "stridewatch"
        assert set(rule["annotations"]) == {"summary", "description"}
        assert "{{ $labels.athlete }}" in rule["annotations"]["summary"]


def test_rules_cover_the_pipeline_kinds_and_read_the_schema() -> None:
    kinds = {r.kind for r in RULES}
    assert set(PIPELINE_KINDS) | {AlertKind.HR_CEILING} <= kinds
    for rule in RULES:
        for measurement, key in rule.query.references():
            known = key in FIELD_TYPES[measurement] or key in TAG_KEYS[measurement]
            assert known, f"{rule.uid}: {measurement}.{key} is not in the schema"
    ceiling = next(r for r in RULES if r.uid == "stridewatch-hr-above-ceiling")
    assert ceiling.threshold == hr_zone_bounds_bpm()[-1] == 171.0


def test_dashboards_keep_their_alert_annotations() -> None:
    for path in sorted(GENERATED_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        names = [a["name"] for a in data["annotations"]["list"]]
        assert "Alerts" in names, path


# ------------------------------------------------------------------ queries on real influxd


def _heart(athlete: str, t: datetime, bpm: float) -> Metric:
    return Metric(athlete=athlete, time_utc=t, time_mono_s=(t - EVAL).total_seconds(),
                  group=MetricGroup.HEART, values={"heart_rate_bpm": bpm, "zone": 4.0})  # fmt: skip


def _alert(athlete: str, kind: AlertKind, t: datetime, n: int = 1) -> Alert:
    return Alert(id=f"{athlete}:{kind.value}:{n}", athlete=athlete, time_utc=t,
                 time_mono_s=(t - EVAL).total_seconds(), kind=kind, severity=Severity.WARNING,
                 value=25.0, threshold=20.0, message=f"{kind.value} for {athlete}")  # fmt: skip


def _records() -> Iterator[ProcessingOutput]:
    for s in range(-600, 1):  # 1 Hz for 10 minutes up to EVAL
        t = EVAL + timedelta(seconds=s)
        yield _heart("Ana", t, 182.0 if s >= -120 else 150.0)
        yield _heart("Cy", t, 150.0)
        if s <= -120:
            yield _heart("Ben", t, 140.0)
    yield _alert("Ana", AlertKind.HR_SURGE, EVAL - timedelta(seconds=60))
    yield _alert("Ana", AlertKind.HR_SURGE, EVAL - timedelta(seconds=400), 0)  # too old
    yield _alert("Cy", AlertKind.SENSOR_LOST, EVAL - timedelta(seconds=ALERT_LOOKBACK_S + 60))
    yield _alert("Ben", AlertKind.EARLY_SURGE, EVAL - timedelta(seconds=200))
    yield _alert("Ben", AlertKind.EARLY_SURGE, EVAL - timedelta(seconds=30), 2)
    yield _alert("Ben", AlertKind.SENSOR_LOST, EVAL - timedelta(seconds=110))
    yield _alert("Ben", AlertKind.LOW_BATTERY, EVAL - timedelta(seconds=10))  # no rule


@dataclasses.dataclass(frozen=True)
class Data:
    server: InfluxServer
    db: str


@pytest.fixture(scope="module")
def data(influxd: InfluxServer) -> Iterator[Data]:
    influxd.start()
    db = f"alert_rules_{secrets.token_hex(4)}"
    influxd.create_database(db)
    lines = [line for r in _records() for line in encode_point(r)]
    status, body = influxd.write(db, "\n".join(lines))
    assert status == 204, body
    try:
        yield Data(influxd, db)
    finally:
        influxd.drop_database(db)


def fill_time(query: str, lookback_s: int, now: datetime = EVAL) -> str:
    """Interpolate ``$timeFilter`` as Grafana does for the rule's relative time range."""
    end_ms = int(now.timestamp() * 1000)
    start_ms = end_ms - lookback_s * 1000
    return query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")


def run(d: Data, rule: AlertRule) -> list[dict[str, object]]:
    text = fill_time(rule.query.render(), rule.lookback_s)
    assert not re.search(r"\$\w", text), f"unfilled variable in {text}"
    result = d.server.query(text, d.db)  # raises on an HTTP or statement error
    [statement] = result["results"]
    assert "error" not in statement, statement
    series: list[dict[str, object]] = statement.get("series", [])
    return series


@pytest.mark.parametrize("rule", RULES, ids=[r.uid for r in RULES])
def test_rule_query_runs_and_fires_for_the_right_athletes(data: Data, rule: AlertRule) -> None:
    series = run(data, rule)
    if EXPECTED_FIRING[rule.uid]:
        assert series, f"{rule.uid}: no series at all"
    firing: set[str] = set()
    column = rule.query.select[0].column
    for s in series:
        # Shape: one series per athlete, columns time + the selected column, numbers.
        tags = s["tags"]
        assert isinstance(tags, dict)
        assert set(tags) == {"athlete"}
        assert tags["athlete"] in ATHLETES
        assert s["columns"] == ["time", column]
        rows = s["values"]
        assert isinstance(rows, list)
        assert rows
        values = [row[1] for row in rows]
        assert all(v is None or isinstance(v, int | float) for v in values), values
        if rule.query.interval is None:
            assert len(rows) == 1
        if rule.fires(values):
            firing.add(tags["athlete"])
    assert firing == EXPECTED_FIRING[rule.uid]


def test_no_contact_rule_without_alerts_has_no_series(data: Data) -> None:
    rule = next(r for r in RULES if r.uid == "stridewatch-no-contact")
    assert run(data, rule) == []  # Grafana: NoData → noDataState OK


def test_alert_rules_resolve_after_the_lookback(data: Data) -> None:
    later = EVAL + timedelta(seconds=ALERT_LOOKBACK_S + 1)
    rule = next(r for r in RULES if r.uid == "stridewatch-hr-surge")
    text = fill_time(rule.query.render(), rule.lookback_s, later)
    [statement] = data.server.query(text, data.db)["results"]
    assert statement.get("series", []) == []


def test_fires_mirrors_grafana_reduce_and_threshold() -> None:
    surge = next(r for r in RULES if r.uid == "stridewatch-hr-surge")
    assert surge.fires([1])
    assert not surge.fires([0])
    assert not surge.fires([None])  # replaceNN → 0
    assert not surge.fires([])
    no_data = next(r for r in RULES if r.uid == "stridewatch-no-heart-data")
    assert no_data.fires([60, 60, 0])
    assert not no_data.fires([0, 0, 12])
