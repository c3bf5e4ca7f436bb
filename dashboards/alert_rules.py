"""Grafana alert rules as code (file provisioning), for teams that route alerts through Grafana.

``python -m dashboards.alert_rules [FILE]`` writes :data:`RULES_FILE`
(``deploy/grafana/provisioning/alerting/stridewatch-rules.yaml``), which Grafana loads at start
(``/etc/grafana/provisioning/alerting``). ``tests/test_alert_rules.py`` fails when it is stale
and runs every rule's InfluxQL query against a real influxd.

Every rule is one InfluxQL query (``A``, the dashboards' data source
``stridewatch-influxql``) grouped by the ``athlete`` tag, so Grafana raises one alert instance
per athlete (label ``athlete``), then two server-side expressions: ``B`` reduces each series to
one number (missing/NaN values count as 0) and ``C`` compares it with the threshold (the
rule's condition). Dashboard variables do not exist in alerting: no ``$athlete``; Grafana's
``$timeFilter`` (the rule's relative time range) and fixed ``GROUP BY time(...)`` are used.

Rules (:func:`rules`):

* **pipeline alerts** (``alert`` measurement, one rule per kind in :data:`PIPELINE_KINDS`): an
  alert of that kind was written in the last :data:`ALERT_LOOKBACK_S` — the pipeline's own
  detection (HR surge, early surge, sensor lost, no contact), routed through Grafana;
* **HR above ceiling** (``heart``): the lowest HR of the last ``ceiling_hold_s`` (30 s) is above
  the ceiling (default the start of zone 5, 171 bpm) — independent of the pipeline's alert;
* **no heart data**: the athlete wrote heart data in the last 10 minutes but none in the last
  minute (gateway, strap or network gone), held for 1 minute.

The provisioning file is YAML written by a tiny emitter (strings JSON-quoted, which YAML reads
as double-quoted scalars), so no YAML library is needed at run time. Grafana expands
environment variables (``$NAME``) in most fields of alerting provisioning files but neither
in queries nor in annotations: the ``$timeFilter`` of the queries and the ``{{ $labels... }}``
of the annotations are safe, and labels hold no ``$``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dashboards.build import DATASOURCE, DATASOURCE_UID, hr_zone_bounds_bpm
from dashboards.influxql import ATHLETE_TAG, Eq, Fill, Fn, Query, Select, target
from processing.records import AlertKind
from processing.settings import AlertSettings

RULES_FILE = (
    Path(__file__).resolve().parent.parent
    / "deploy" / "grafana" / "provisioning" / "alerting" / "stridewatch-rules.yaml"
)  # fmt: skip
REGENERATE = "python -m dashboards.alert_rules"
FOLDER = "stridewatch"
"""Grafana folder of the rules (the dashboards' folder)."""
GROUP = "stridewatch"
EVALUATE_EVERY = "30s"
ALERT_LOOKBACK_S = 120
"""A pipeline alert keeps its Grafana alert firing this long (then it resolves)."""
NO_DATA_LOOKBACK_S = 600
NO_DATA_BUCKET = "1m"
EXPRESSION_UID = "__expr__"

PIPELINE_KINDS: dict[AlertKind, tuple[str, str]] = {
    AlertKind.HR_SURGE: ("HR surge", "heart rate rose fast"),
    AlertKind.EARLY_SURGE: ("Early HR surge", "heart rate rose unusually fast early in a run"),
    AlertKind.SENSOR_LOST: ("Sensor lost", "a sensor disconnected or went silent"),
    AlertKind.NO_CONTACT: ("No skin contact", "the strap has no skin contact"),
}
"""Alert kinds of the pipeline with their own Grafana rule: title, what happened."""


class Op(enum.StrEnum):
    """Threshold evaluators of Grafana's threshold expression."""

    GT = "gt"
    LT = "lt"


class Reducer(enum.StrEnum):
    LAST = "last"
    MAX = "max"
    MIN = "min"


@dataclasses.dataclass(frozen=True, slots=True)
class AlertRule:
    """One provisioned Grafana alert rule: query → reduce → threshold."""

    uid: str
    title: str
    query: Query
    lookback_s: int
    """The query's relative time range (``$timeFilter`` = the last ``lookback_s`` seconds)."""
    reducer: Reducer
    op: Op
    threshold: float
    summary: str
    description: str
    severity: str = "warning"
    pending: str = "0s"
    """Grafana's ``for``: how long the condition must hold before the alert fires."""
    kind: str = ""
    """The stridewatch alert kind (label ``kind``)."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", self.uid):
            raise ValueError(f"Grafana rule uid {self.uid!r}: ≤ 40 letters, digits, - or _")
        if ATHLETE_TAG not in self.query.tags or self.query.athlete:
            raise ValueError(f"{self.uid}: rules group by athlete and use no $athlete")

    def provisioning(self) -> dict[str, Any]:
        """The rule in Grafana's file-provisioning format."""
        model = target(self.query, "A", datasource=DATASOURCE)
        model |= {"intervalMs": 1000, "maxDataPoints": 43200}
        expr_ds = {"type": EXPRESSION_UID, "uid": EXPRESSION_UID}
        labels = {"severity": self.severity, "source": "stridewatch"}
        if self.kind:
            labels["kind"] = self.kind
        return {
            "uid": self.uid,
            "title": self.title,
            "condition": "C",
            "data": [
                {
                    "refId": "A",
                    "relativeTimeRange": {"from": self.lookback_s, "to": 0},
                    "datasourceUid": DATASOURCE_UID,
                    "model": model,
                },
                {
                    "refId": "B",
                    "datasourceUid": EXPRESSION_UID,
                    "model": {
                        "refId": "B",
                        "type": "reduce",
                        "expression": "A",
                        "reducer": self.reducer.value,
                        "settings": {"mode": "replaceNN", "replaceWithValue": 0},
                        "datasource": expr_ds,
                    },
                },
                {
                    "refId": "C",
                    "datasourceUid": EXPRESSION_UID,
                    "model": {
                        "refId": "C",
                        "type": "threshold",
                        "expression": "B",
                        "conditions": [
                            {"evaluator": {"type": self.op.value, "params": [self.threshold]}}
                        ],
                        "datasource": expr_ds,
                    },
                },
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": self.pending,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
            },
            "labels": labels,
            "isPaused": False,
        }

    def fires(self, values: Sequence[float | None]) -> bool:
        """What Grafana's ``B`` and ``C`` make of one series' values (for the tests/docs)."""
        clean = [0.0 if v is None or v != v else float(v) for v in values]
        if not clean:
            return False
        match self.reducer:
            case Reducer.LAST:
                x = clean[-1]
            case Reducer.MAX:
                x = max(clean)
            case Reducer.MIN:
                x = min(clean)
        return x > self.threshold if self.op is Op.GT else x < self.threshold


def _per_athlete(measurement: str, column: Select, *, where: tuple[Eq, ...] = (),
                 interval: str | None = None) -> Query:  # fmt: skip
    return Query(measurement, (column,), where=where, athlete=False, interval=interval,
                 fill=None if interval is None else Fill.NULL, tags=(ATHLETE_TAG,))  # fmt: skip


def rules(alerts: AlertSettings | None = None) -> list[AlertRule]:
    """The provisioned rules (thresholds from the default alert settings)."""
    cfg = alerts or AlertSettings()
    ceiling = cfg.ceiling_bpm if cfg.ceiling_bpm is not None else hr_zone_bounds_bpm()[-1]
    hold_s = round(cfg.ceiling_hold_s)
    out: list[AlertRule] = []
    for kind, (title, what) in PIPELINE_KINDS.items():
        out.append(AlertRule(
            uid=f"stridewatch-{kind.value.replace('_', '-')}",
            title=title,
            query=_per_athlete("alert", Select("id", Fn.COUNT, "alerts"),
                               where=(Eq("kind", kind.value),)),
            lookback_s=ALERT_LOOKBACK_S,
            reducer=Reducer.LAST,
            op=Op.GT,
            threshold=0.0,
            summary=f"{{{{ $labels.athlete }}}}: {title}",
            description=f"{{{{ $labels.athlete }}}}: {what} ({{{{ $values.B }}}} "
            f"{kind.value} alert(s) in the last {ALERT_LOOKBACK_S // 60} min; the messages "
            "are in the dashboards' Alerts annotations).",
            kind=kind.value,
        ))  # fmt: skip
    out.append(AlertRule(
        uid="stridewatch-hr-above-ceiling",
        title="HR above ceiling",
        query=_per_athlete("heart", Select("heart_rate_bpm", Fn.MIN, "min HR")),
        lookback_s=hold_s,
        reducer=Reducer.LAST,
        op=Op.GT,
        threshold=ceiling,
        summary="{{ $labels.athlete }}: HR above " f"{ceiling:.0f} bpm",
        description="{{ $labels.athlete }}: heart rate above " f"{ceiling:.0f} bpm for "
        f"{hold_s} s (lowest {{{{ $values.B }}}} bpm).",
        kind=AlertKind.HR_CEILING.value,
    ))  # fmt: skip
    out.append(AlertRule(
        uid="stridewatch-no-heart-data",
        title="No heart data",
        query=_per_athlete("heart", Select("heart_rate_bpm", Fn.COUNT, "beats"),
                           interval=NO_DATA_BUCKET),
        lookback_s=NO_DATA_LOOKBACK_S,
        reducer=Reducer.LAST,
        op=Op.LT,
        threshold=1.0,
        pending="1m",
        summary="{{ $labels.athlete }}: no heart data",
        description="{{ $labels.athlete }}: heart data stopped (none in the last minute, "
        f"some in the last {NO_DATA_LOOKBACK_S // 60} min): strap, gateway or network.",
        kind="no_data",
    ))  # fmt: skip
    return out


def document(alerts: AlertSettings | None = None) -> dict[str, Any]:
    """The provisioning file's content."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER,
                "interval": EVALUATE_EVERY,
                "rules": [r.provisioning() for r in rules(alerts)],
            }
        ],
    }


# ------------------------------------------------------------------ YAML


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER = f"""\
# Grafana alert rules for stridewatch (file provisioning, Grafana 11.6).
# GENERATED by dashboards/alert_rules.py: do not edit; change the code and run
# `{REGENERATE}` (tests/test_alert_rules.py fails on a stale file).
# The queries use the data source uid stridewatch-influxql (../datasources/influxdb.yaml).
# Route the alerts with a contact point and notification policy of your own (labels:
# source=stridewatch, kind, severity; one alert instance per athlete).
"""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a YAML double-quoted scalar
    raise TypeError(f"cannot write {value!r} as YAML")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{_key(k)}:")
                out.extend(_lines(v, indent + 2))
            else:
                out.append(f"{pad}{_key(k)}: {_inline(v)}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            inner = _lines(item, indent + 2)
            out.append(f"{pad}- {inner[0][indent + 2 :]}")
            out.extend(inner[1:])
        return out
    return [pad + _scalar(value)]


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(alerts: AlertSettings | None = None) -> str:
    """The provisioning file's text (stable: regenerating gives identical bytes)."""
    return HEADER + "\n".join(_lines(document(alerts), 0)) + "\n"


def write(path: Path | str = RULES_FILE) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_yaml(), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(f"usage: python -m dashboards.alert_rules [FILE]  (default: {RULES_FILE})")
        return 0 if args and args[0] in ("-h", "--help") else 2
    print(write(args[0] if args else RULES_FILE))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
